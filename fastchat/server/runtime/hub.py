"""The hub process: runs the sequencer for a multi-worker server and relays its decisions.

Owns: the authoritative :class:`~fastchat.server.network.state.State` and its version (the
epoch every event moves, told to each worker in B_SEEN), the worker links, and turning the
sequencer's routing into one batched frame per worker per loop turn (channel messages in
chunks shared by the workers of a route, marshalled once for all of them: see ``to_channel``;
a worker's segment approved whole, as one record per worker: see ``to_route``).
Must never: talk to clients, or reorder: records are decided in the order they arrive, one
worker's batch after another, and each worker receives its records in that same order.

Why a hub (a sequencer) rather than an owner worker per channel: one order for *everything*
(joins, nick changes, quits and messages alike) gives "one order per channel" and per-sender
order for free, makes nick uniqueness a dictionary lookup, and keeps a dead worker's cleanup a
local decision. Its cost is one extra hop per message and a process whose work is a dictionary
lookup and an append per message (it never parses IRC lines); see README "Architecture".
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import secrets
import selectors
import signal
import socket
import struct
import time
from collections.abc import Sequence

from fastchat.irc.casemap import fold
from fastchat.server.config import Config, ConfigError, reloaded
from fastchat.server.configfile import Source
from fastchat.server.network import access
from fastchat.server.network.fence import Fence
from fastchat.server.network.records import (
    B_FENCED,
    B_HELLO,
    B_RECEIVED,
    D_USER,
    E_MOVE,
    R_MOVE,
    R_SYNC,
    BDown,
    BFence,
    BHello,
    BSeen,
    BSnapshot,
    DKill,
    EAccount,
    EAccountCerts,
    EAccountPassword,
    EAccountVerify,
    EAway,
    ECounts,
    EJoin,
    EKline,
    ELogin,
    EMarkread,
    EMetadata,
    EMode,
    EMove,
    EOper,
    EQuit,
    EStore,
    ETopic,
    EUmode,
    Record,
    make,
)
from fastchat.server.network.sequencer import Sequencer
from fastchat.server.network.state import (
    Account,
    Channel,
    KLine,
    Snapshot,
    SnapshotChannel,
    SnapshotUser,
    State,
)
from fastchat.server.runtime.bus import Link, frame_header
from fastchat.server.runtime.klinefile import KLineFile
from fastchat.server.runtime.memory import Trimmer
from fastchat.server.runtime.storage import Storage, StoreReport

log = logging.getLogger("fastchat.hub")

#: Backpressure: when any worker has this much waiting for it, the hub stops reading from every
#: worker (any message might be for the slow one) until all are under ``LOW_WATER`` again.
#: The workers' own bus buffers then fill, and they stop reading from their clients: memory
#: stays bounded everywhere and nothing addressed to a healthy client is dropped.
HIGH_WATER = 8 << 20
#: After a hub restart, workers have this long to reconnect before their users are quit (and
#: before the requests they resent are decided without the workers still missing).
SWEEP_AFTER = 3.0
LOW_WATER = 2 << 20
#: A worker that got no frame for this long is told the new decision order and ``stable``
#: anyway, so origins can forget what everyone has received.
SEEN_EVERY = 0.05
#: A fence round (network/fence.py) that some live worker has not answered in this long is
#: given up: its read barriers are decided without that worker's answer (as before fences)
#: rather than every query on the network waiting for a stopped or stuck worker.
FENCE_PATIENCE = 1.0


class Hub:
    """Router for the sequencer: applies events to the authoritative state and batches records."""

    def __init__(
        self,
        config: Config,
        listener: socket.socket,
        lifeline_fd: int | None,
        reload: Source | None = None,
    ) -> None:
        self.config = config
        self.reload = reload
        self.reload_wanted = False
        self.listener = listener
        self.lifeline_fd = lifeline_fd
        self.state = State()
        self.state.whowas_size = config.whowas_size
        self.sequencer = Sequencer(self.state, config, self)
        # The state's version (Sequencer.epoch): every event bumps it, and each frame's B_SEEN
        # tells its worker the version its replica then holds, which the worker stamps on
        # the segments it approves (RChanSeg). It starts from a random 62-bit number above
        # 2**62 (a worker's 0 before any B_SEEN is never one): a new hub after a crash takes
        # an old hub's numbers for its own only if its start falls within the events the
        # old one counted, odds of ~2**-40 for a million, with no trust in the clock.
        self.sequencer.epoch = secrets.randbits(62) | 1 << 62
        self.klines = KLineFile(config.kline_file)
        self.storage = Storage(
            config.data_dir, config.history, config.history_days, config.history_limit
        )
        self.storage.announce = self._store_report  # its health, to every worker (E_STORE)
        self.keep = self.storage.channel  # channel messages into the history (hot)
        self._keeping = self.storage.history  # without history, not even the call
        self.sequencer.kept = self.storage.kept  # where a joiner's replay ends (EJoin.kept)
        self.sel = selectors.DefaultSelector()
        self.links: dict[int, Link] = {}  # worker slot -> link
        self.sequencer.workers = self.links.keys  # where a user may move (R_MOVE)
        self.out: dict[int, list[Record]] = {}
        # Channel messages go out in shared chunks (see to_channel): a chunk is one list of
        # D_CHAN records for every worker of a route (the set of workers holding a channel's
        # members), sitting as one item in each of their ``out`` lists and marshalled once
        # for all of them at the end of the turn.
        # channel key -> its workers (sorted: one route, one key), cached
        self._route: dict[bytes, tuple[int, ...]] = {}
        self._open: dict[tuple[int, ...], list[Record]] = {}  # route -> its open chunk
        self._tail: dict[int, tuple[int, ...]] = {}  # worker -> route of its last chunk
        self._chunked: set[int] = set()  # workers with a chunk in ``out`` this turn
        self.stopping = False
        # The supervisor is stopping the server (SIGUSR1): workers are about to close their
        # links, which is then no fault, and is logged at INFO (see _link_fault_level).
        self.draining = False
        self.reading = True  # False while backpressure holds
        # Exactly-once across hub restarts (README, "A hub restart loses nothing"): each
        # worker numbers its requests; the hub counts them per origin (``processed``), tells
        # every worker the order it decided batches in (B_SEEN) and, from what each worker
        # reports it has received (B_RECEIVED), which requests every worker has (``stable``).
        self.processed: dict[int, int] = {}  # origin slot -> seq of its next request
        self.reported: dict[int, dict[int, int]] = {}  # worker -> origin -> received up to
        self.stable: dict[int, int] = {}
        self._stable_dirty = False
        self.turn_order: list[tuple[int, int]] = []  # batches decided this loop turn
        self.unsent_order: dict[int, list[tuple[int, int]]] = {}
        self.sent_stable: dict[int, dict[int, int]] = {}
        self.last_frame: dict[int, float] = {}
        # After a restart: hold every request until all workers said hello (or SWEEP_AFTER),
        # then replay the resent ones in the old hub's order (see _replay).
        self.gathering = False
        self.decided = False  # has this hub decided anything yet?
        self.held: list[tuple[int, list[Record]]] = []
        self.hellos: dict[int, tuple[int, dict[int, int], tuple[tuple[int, int], ...]]] = {}
        self.holds: dict[int, set[int]] = {}  # worker -> the users its hello said it holds
        # worker -> the users it handed over lately: uid -> the worker it sent them to; and
        # those on their way to it: uid -> the worker they come from (engine/placement.py)
        self.handed: dict[int, dict[int, int]] = {}
        self.awaited: dict[int, dict[int, int]] = {}
        # the workers that resynced while gathering, whose snapshot waits until who holds
        # whom is settled (see _replay)
        self.unsnapped: list[int] = []
        # Read barriers in real time (network/fence.py): an R_SYNC waits for a fence round.
        # Rounds are numbered from this hub's start, so a late answer to a previous hub's
        # fence matches none of ours.
        self.fence = Fence(time.time_ns() // 1000)
        self.fence_sent = 0.0  # when the round out was sent (monotonic)
        # Fault injection for the test suite (--test-hooks only): the first hub (not one that
        # took over after a crash) dies at the first E_MOVE it decides, having sent it to
        # every worker (``hub-move``), to the move's old or new worker only (``hub-move-src``,
        # ``hub-move-dst``), to every worker but the new one (``hub-move-not-dst``) or to none
        # (``hub-move-none``)
        self.crash_at = os.environ.get("FASTCHAT_TEST_CRASH_AT", "") if config.test_hooks else ""
        self.crash_move: EMove | None = None
        if self.crash_at.startswith("hub-move"):
            self.event = self._event_or_crash  # type: ignore[method-assign]

    # -- Router ---------------------------------------------------------------------------------
    def event(self, event: Record) -> None:
        self.state.apply(event)
        self.sequencer.epoch += 1  # a segment approved before this is decided message by message
        self.storage.record(event)
        if self._route:  # memberships may change: routes are found again, chunks sealed
            self._reroute()
        for records in self.out.values():
            records.append(event)

    def _event_or_crash(self, event: Record) -> None:
        """``event`` with the test hook ``hub-move`` armed: note the first E_MOVE."""
        Hub.event(self, event)
        if event[0] == E_MOVE and self.crash_move is None and self.crash_at:
            self.crash_move = EMove._make(event)

    def _crash_after_move(self, move: EMove) -> None:
        """The test hook ``hub-move*``: send this turn's frames to the workers it names (to
        the end, blocking), then die as a SIGKILL would leave things."""
        mode = self.crash_at
        keep = {
            "hub-move": set(self.links),
            "hub-move-src": {move.src},
            "hub-move-dst": {move.dst},
            "hub-move-not-dst": set(self.links) - {move.dst},
        }.get(mode, set())
        for slot, records in self.out.items():
            link = self.links.get(slot)
            if slot in keep and records and link is not None:
                link.queue_frame(self._frame(link, records, {}))
                link.sock.setblocking(True)
                link.flush()
        log.error("hub: dying after deciding a move (FASTCHAT_TEST_CRASH_AT=%s)", mode)
        os._exit(70)

    def to_channel(self, chan: Channel, record: Record) -> None:
        """Hot: a D_CHAN for every worker holding a member of ``chan``.

        Written for the hot path (issue 14): appending each message to each worker's list
        and marshalling it once per worker cost ~0.5 µs per worker it visits. Instead the
        record joins the *open chunk* of its route (the workers holding the channel): one
        append, whatever the number of workers; a chunk is marshalled once for all of them
        (:meth:`_frame`). Order is kept: a chunk stays open only while it is the last thing
        queued for each of its workers; anything else queued for one of them (an event, an
        answer, another route's chunk) seals it, and the next message starts a new one. A
        route of one worker shares nothing: its record goes straight into that worker's list
        (after sealing its chunk), as before chunks.
        """
        if self._keeping:
            self.keep(record)  # only ever a D_CHAN: the store keeps it as decided (O(1))
        route = self._route.get(chan.key)
        out = self.out
        if route is None:
            route = self._route[chan.key] = tuple(sorted(s for s in chan.workers if s in out))
        opened = self._open
        if len(route) == 1:
            slot = route[0]
            last = self._tail.pop(slot, None)
            if last is not None:
                opened.pop(last, None)  # the record comes after that chunk: sealed
            out[slot].append(record)
            return
        chunk = opened.get(route)
        if chunk is not None:
            chunk.append(record)
            return
        chunk = [record]
        tail = self._tail
        for slot in route:
            last = tail.get(slot)
            if last is not None:
                opened.pop(last, None)  # that worker's last chunk is sealed
            tail[slot] = route
            out[slot].append(chunk)  # type: ignore[arg-type]  # a chunk: see _frame
        opened[route] = chunk
        self._chunked.update(route)

    def to_route(self, route: tuple[int, ...], record: Record, last: dict[bytes, int]) -> None:
        """Hot: a worker's segment, approved whole (Sequencer.handle_batch), as one D_CHANSEG
        to each worker of ``route`` still up: O(1) per segment, its payload forwarded as the
        bytes the worker marshalled. Each of those workers' open chunk is sealed (the segment
        comes after it), as for :meth:`to_worker`."""
        if self._keeping:
            self.storage.segment(record, last)
        out = self.out
        tail = self._tail
        opened = self._open
        for slot in route:
            records = out.get(slot)
            if records is not None:
                sealed = tail.pop(slot, None)
                if sealed is not None:
                    opened.pop(sealed, None)
                records.append(record)

    def _to_channel_each(self, chan: Channel, record: Record) -> None:
        """``to_channel`` while :meth:`_replay` filters ``out``: no chunks, record by record."""
        if self._keeping:
            self.keep(record)
        out = self.out
        for slot in chan.workers:
            records = out.get(slot)
            if records is not None:
                records.append(record)

    def _seal(self) -> None:
        """No open chunk: the next channel message starts a new one."""
        self._open.clear()
        self._tail.clear()

    def _reroute(self) -> None:
        """The channels' workers or the links changed: routes are found again."""
        self._route.clear()
        self._open.clear()
        self._tail.clear()

    def after_stored(self, worker: int, record: Record) -> None:
        self.storage.when_stored(lambda: self.to_worker(worker, record))

    def to_worker(self, worker: int, record: Record) -> None:
        last = self._tail.pop(worker, None)
        if last is not None:
            self._open.pop(last, None)  # it comes after that chunk: sealed
        if record[0] == D_USER:
            self.storage.private(record)  # into the history, if a party is logged in
        records = self.out.get(worker)
        if records is not None:
            records.append(record)

    def _store_report(self, report: StoreReport) -> None:
        """The store's writer flipped health, or its counts moved: the sequencer makes it
        network state (E_STORE), and every worker tells its operators of a flip."""
        self.sequencer.store_status(*report, int(time.time() * 1000))

    # -- I/O ------------------------------------------------------------------------------------
    def run(self) -> int:
        # The K-lines in force before anything is decided (the workers learn them from the
        # snapshot each gets when it says hello)
        self.klines.load(self.state, int(time.time() * 1000))
        self.storage.load(self.state)
        try:
            return self._serve()
        finally:
            self.klines.close()
            self.storage.close()

    def _serve(self) -> int:
        # Signals wake the loop at once (a handler alone would let select() sleep on: PEP 475
        # restarts it), so a stop takes milliseconds, not up to a second.
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        try:
            return self._loop(wake_r)
        finally:
            # A signal after the loop (the supervisor's SIGUSR1 can follow its SIGTERM) must
            # not be written to a closed socket ("Exception ignored ... Bad file descriptor")
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()

    def _loop(self, wake_r: socket.socket) -> int:
        self.sel.register(wake_r, selectors.EVENT_READ, "wakeup")
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_drain)
        signal.signal(signal.SIGHUP, self._on_reload)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        if self.lifeline_fd is not None:
            self.sel.register(self.lifeline_fd, selectors.EVENT_READ, "lifeline")
        self.storage.watch(self.sel, "store")  # the store's writing process
        pending: dict[socket.socket, Link] = {}  # connected, HELLO not yet read
        sweep_at = time.monotonic() + SWEEP_AFTER
        trimmer = Trimmer(time.monotonic())  # the heap's freed pages back, once quiet
        while not self.stopping:
            if sweep_at and time.monotonic() >= sweep_at:
                sweep_at = 0.0
                if self.gathering:
                    self._replay()
                self._sweep()
                self._flush_all()
            waiting = any(self.unsent_order.values()) or any(
                sent is not self.stable for sent in self.sent_stable.values()
            )
            timeout = self.storage.flush_in(SEEN_EVERY if waiting else 1.0)
            if self.fence.out:
                timeout = min(
                    timeout, max(0.0, self.fence_sent + FENCE_PATIENCE - time.monotonic())
                )
            for key, mask in self.sel.select(timeout):
                data = key.data
                if data is None:
                    self._accept(pending)
                elif data == "wakeup":
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        while wake_r.recv(512):
                            pass
                elif data == "store":
                    self.storage.on_wakeup(mask)
                elif data == "lifeline":
                    if not os.read(key.fd, 64):
                        log.error("hub: supervisor is gone; stopping")
                        return 0
                elif isinstance(data, Link):
                    self._from_pending(data, pending)
                else:
                    if mask & selectors.EVENT_READ:
                        self._read(data)
                    if mask & selectors.EVENT_WRITE and data in self.links:
                        self._flush(data)
            if self.reload_wanted:
                self.reload_wanted = False
                self._reload()
            self.storage.maybe_report(int(time.time() * 1000))  # STATS S, within a second
            self._flush_all()
            self.klines.maybe_save(self.state)
            self.storage.maybe_prune(int(time.time() * 1000))
            self.storage.flush()  # history and accounts, to the store's writer (when due)
            now = time.monotonic()
            if now >= trimmer.due:
                trimmer.check(now)
        return 0

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload_wanted = True

    def _reload(self) -> None:
        """SIGHUP from the supervisor, which has checked the file: the sequencer takes the
        limits that may change live (topic, kick and channel limits, autojoin...), and the
        state its WHOWAS bound."""
        if self.reload is None:
            return
        try:
            self.config, _ = reloaded(self.config, self.reload.load())
        except ConfigError as exc:
            log.error("hub: reload failed, the old config stays: %s", exc)
            return
        self.sequencer.config = self.config
        self.state.set_whowas_size(self.config.whowas_size)

    def _on_drain(self, signum: int, frame: object) -> None:
        self.draining = True

    def _link_fault_level(self) -> int:
        """A worker's link closing or failing is a fault worth a WARNING, unless the server
        is being stopped: then every worker leaves, and that is only news (INFO)."""
        return logging.INFO if self.draining else logging.WARNING

    def _accept(self, pending: dict[socket.socket, Link]) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        link = Link(sock)
        pending[sock] = link
        self.sel.register(sock, selectors.EVENT_READ, link)

    def _from_pending(self, link: Link, pending: dict[socket.socket, Link]) -> None:
        """The first frame of a new link must be HELLO: then it is that worker's link."""
        try:
            batches = link.receive()
        except OSError:
            batches = None
        if batches is None:
            self.sel.unregister(link.sock)
            pending.pop(link.sock, None)
            link.close()
            return
        if not batches:
            return
        hello = batches[0][0]
        if hello[0] != B_HELLO or len(batches[0]) != 1:
            log.error("hub: a link spoke before saying hello; dropping it")
            self.sel.unregister(link.sock)
            pending.pop(link.sock, None)
            link.close()
            return
        h = BHello._make(hello)
        slot, replica, first_seq, seen, order = h.slot, h.replica, h.first_seq, h.seen, h.order
        pending.pop(link.sock, None)
        old = self.links.get(slot)
        if old is not None:
            self._worker_gone(slot, "replaced")
        self.links[slot] = link
        self._reroute()
        self.out[slot] = []
        self.unsent_order[slot] = []
        self.last_frame[slot] = time.monotonic()
        self._rearm(slot)
        self.processed[slot] = first_seq
        snapshot_now = True
        if replica is not None:
            local = set(h.local_uids)
            log.warning("hub: worker %d resyncs %d users", slot, len(local))
            self.crash_at = ""  # (a hub after a crash: the test hook fires only once)
            if not self.decided:
                self.gathering = True  # a new hub, and this worker knew an old one
            self.hellos[slot] = (first_seq, dict(seen), tuple(order))
            self.reported[slot] = dict(seen)
            if self.gathering:  # (the moves in flight: see _settle)
                self.handed[slot] = dict(h.handed)
                self.awaited[slot] = dict(h.awaited)
                self.unsnapped.append(slot)
                snapshot_now = False
            self._merge(slot, replica, local)
        else:
            log.info("hub: worker %d connected", slot)
            # It starts from the snapshot: it has, in effect, received everything so far.
            self.reported[slot] = dict(self.processed)
            if self.gathering:
                self.hellos[slot] = (first_seq, dict(self.processed), ())
        self._stable_dirty = True
        if snapshot_now:
            self._snapshot_to(slot)
        self._batches(slot, batches[1:])
        if self.gathering and len(self.links) >= self.config.workers:
            self._replay()

    def _snapshot_to(self, slot: int) -> None:
        """The network as this hub has it, to worker ``slot``."""
        self.out[slot].append(make(BSnapshot, self.state.snapshot(), dict(self.processed)))
        store = self.state.store
        if store is not None:  # the store's last report (not in snapshots), told afresh
            self.out[slot].append(make(EStore, *store[:5], b"", store.time))

    def _merge(self, slot: int, replica: Record, local: set[int]) -> None:
        """Rebuild the network after a hub restart from a worker's replica, through ordinary
        events. Events are idempotent: what every worker already knows changes nothing and
        shows nothing; what some worker missed reaches it as a normal JOIN, TOPIC or QUIT.

        The WHOWAS history is not made of events that can be replayed: the hub takes the
        union of the replicas' histories (each holds the same one, as far as it got), before
        the quits below add their own entries. Workers keep theirs; the hub's copy serves
        the snapshots of workers that start later. Command counts merge as they apply (the
        larger count wins), here in the hub's state only: each worker keeps its own.

        Metadata: a value the hub lacks (or holds otherwise) comes back as an E_METADATA.

        Read markers: a replica's that is later than the hub's (or that the hub lacks) is
        applied as an ordinary E_MARKREAD, which the store keeps for an account.

        K-lines: a replica's that the hub lacks (or holds in an older form) is restored as an
        ordinary E_KLINE that removes nobody and tells nobody (the replay of the requests
        resent decides again any KLINE or UNKLINE some worker missed)."""
        snapshot = Snapshot._make(replica)
        users, channels, max_users, whowas, counts, klines, accounts = snapshot[:7]
        now = int(time.time() * 1000)
        state = self.state
        state.max_users = max(state.max_users, max_users)
        state.merge_whowas(whowas)
        for incarnation, items in counts:
            state.apply(make(ECounts, incarnation, dict(items), now))
            self.sequencer.epoch += 1  # (no event: the version moves anyway)
        for k in map(KLine._make, klines):
            have = state.klines.get(fold(k.mask))
            if k.active(now) and (have is None or have.set_at < k.set_at):
                self.event(make(EKline, 0, *k, (), now))
        for a in map(Account._make, accounts):
            key = fold(a.name)
            if key in state.pending and not a.code:  # verified while the store lagged
                self.event(make(EAccountVerify, a.name, now))
            elif key not in state.accounts and key not in state.pending:
                self.event(make(EAccount, a.name, a.password_hash, a.email, a.code, a.created))
            known = state.accounts.get(key)
            if known is not None and known.certfps != a.certfps:  # changed while the store lagged
                self.event(make(EAccountCerts, a.name, a.certfps, now))
            if known is not None and known.password_hash != a.password_hash:  # (PASSWD) so too
                self.event(make(EAccountPassword, a.name, a.password_hash, now))
        for u in map(SnapshotUser._make, users):
            if u.uid in state.users:
                continue
            if fold(u.nick) in state.nicks:
                if u.uid in local:  # two users with one nick: the later one loses
                    self.to_worker(slot, make(DKill, u.uid, b"Nick collision", now))
                continue
            self.event(u.intro())
            if u.away:
                self.event(make(EAway, u.uid, u.away, now))
            if u.modes:
                self.event(make(EUmode, u.uid, u.modes, b"", now))
            if u.oper:
                self.event(make(EOper, u.uid, u.oper, u.privileges, False, now))
            if u.account:
                self.event(make(ELogin, u.uid, u.account, b"sasl", now))
        for c in map(SnapshotChannel._make, channels):
            fresh = fold(c.name) not in state.channels
            for uid, flags in c.members:
                if uid in state.users:
                    self.event(make(EJoin, uid, c.name, flags, c.created, (), now))
            chan = state.channels.get(fold(c.name))
            if chan is None or not fresh:
                continue
            if c.topic:
                topic = make(ETopic, 0, chan.key, c.topic, c.topic_setter, c.topic_time, now)
                self.event(topic)
            changes, args = mode_delta(chan, c)
            if changes:
                self.event(make(EMode, 0, chan.key, changes, args, now))
        for (
            owner,
            key,
            ms,
        ) in snapshot.markers:  # read markers only move forward: the later one wins
            guest = isinstance(owner, int)
            if (guest and owner not in state.users) or state.markers.get(owner, key) >= ms:
                continue
            uid, account = (owner, b"") if guest else (0, owner)
            self.event(make(EMarkread, account, uid, key, ms, now))
        for owner, key, value in snapshot.metadata:  # what the hub lacks (uid 0: no setter)
            if state.metadata.of(owner).get(key) != value:
                user, channel = (owner, b"") if isinstance(owner, int) else (0, owner)
                self.event(make(EMetadata, 0, user, channel, key, value, now))
        if self.gathering:  # who holds whom is settled once every worker has said hello
            self.holds[slot] = local
            return
        for uid in state.users_on_worker(slot):
            if uid not in local:
                self.event(make(EQuit, uid, b"Connection reset by peer", now))

    def _settle(self, moves: set[tuple[int, int]]) -> None:
        """Every worker that resynced has said hello (or the others are late): each user the
        replicas put on one of them that it does not hold quits, unless another one holds it
        or waits for it (a client that was moving between them when the old hub died: it
        moves there). Settled here and not at each hello: a hello that came later may hold
        the user, or its replica may bring back a user an earlier hello would have quit.

        A move the old hub decided whose R_MOVE its old worker resent (``moves``), and that
        some worker has acted on (the old worker sent the socket, or the new one waits for
        it), is a fact: the user is put back on its old worker, here (the workers' replicas
        follow from the snapshots sent after this), whatever the order of the hellos and
        whichever replica came first; the replay then decides the move again in the old
        hub's order, as the old hub did (``Sequencer.redo``: not refusable, to the worker
        the socket went to), so the lines decided before the move, which the client
        received where it was, do not reach it again where it went, and those after it do."""
        holds, handed, awaited = self.holds, self.handed, self.awaited
        self.holds, self.handed, self.awaited = {}, {}, {}
        claims: dict[int, int] = {}
        for slot, local in holds.items():
            for uid in local:
                claims.setdefault(uid, slot)
        redo: dict[int, tuple[int, int]] = {}  # uid -> (old worker, new worker)
        for slot, comes_from in awaited.items():
            for uid, src in comes_from.items():
                if (uid, src) in moves and src != slot:
                    redo[uid] = (src, slot)
        for slot, sent_to in handed.items():  # (the old worker's word wins: it sent it)
            for uid, dst in sent_to.items():
                if (uid, slot) in moves and dst != slot:
                    redo[uid] = (slot, dst)
        self.sequencer.redo = {uid: dst for uid, (_, dst) in redo.items()}
        now = int(time.time() * 1000)
        for uid, user in list(self.state.users.items()):
            fact = redo.get(uid)
            if fact is not None:
                if user.worker != fact[0]:  # (a replica that had the move came first)
                    self.state.apply(make(EMove, uid, user.worker, fact[0], now))
                    self.sequencer.epoch += 1
                    self._reroute()
                continue
            held = holds.get(user.worker)
            if held is None or uid in held:
                continue
            other = claims.get(uid)
            if other is not None and other in self.links:
                self.event(make(EMove, uid, user.worker, other, now))
            else:
                self.event(make(EQuit, uid, b"Connection reset by peer", now))

    def _down(self, slot: int) -> None:
        """Tell every worker that worker ``slot`` is gone (B_DOWN): one waiting for a
        client's session from it stops waiting (engine/placement.py, point 5)."""
        for other in self.links:
            self.to_worker(other, make(BDown, slot))

    def _sweep(self) -> None:
        """Users merged from a replica whose worker never came back (it died with the hub)."""
        for slot in sorted({user.worker for user in self.state.users.values()} - set(self.links)):
            self._down(slot)
        for uid, user in list(self.state.users.items()):
            if user.worker not in self.links:
                self.event(make(EQuit, uid, b"Connection reset by peer", int(time.time() * 1000)))

    def _read(self, slot: int) -> None:
        link = self.links.get(slot)
        if link is None:
            return
        try:
            batches = link.receive()
        except OSError as exc:
            log.log(self._link_fault_level(), "hub: link to worker %d broke: %s", slot, exc)
            batches = None
        if batches is None:
            self._worker_gone(slot, "closed")
            return
        self._batches(slot, batches)

    def _batches(self, slot: int, batches: list[list[Record]]) -> None:
        fence = self.fence
        for batch in batches:
            kind = batch[-1][0] if batch else 0
            if kind == B_RECEIVED:
                self.reported[slot] = batch[0][1]
                self._stable_dirty = True
            elif kind == B_FENCED:
                self._decide_all(fence.answered(slot, batch[0][1]))
            elif self.gathering:
                self.held.append((slot, batch))
            elif kind != R_SYNC and slot not in fence.held:  # hot: no read barrier waits
                self._decide(slot, batch)
            else:
                self._decide_all(fence.arrive(slot, batch, kind == R_SYNC))

    def _decide_all(self, batches: list[tuple[int, list[Record]]]) -> None:
        for slot, records in batches:
            self._decide(slot, records)

    def _fence_out(self) -> None:
        """End of the loop turn: send the fence round the R_SYNCs that arrived want."""
        fence = self.fence
        if fence.out:
            if time.monotonic() - self.fence_sent < FENCE_PATIENCE:
                return
            log.warning("hub: workers %s did not answer a read fence; going on", fence.waiting)
            self._decide_all(fence.give_up())
        round_, targets, now = fence.start(self.links)
        if round_:
            self.fence_sent = time.monotonic()
        if targets:
            self._seal()
        for slot in targets:
            self.out[slot].append(make(BFence, round_))
        self._decide_all(now)

    def _decide(self, slot: int, records: list[Record]) -> None:
        self.decided = True
        self.sequencer.handle_batch(slot, records, int(time.time() * 1000))
        upto = self.processed[slot] + len(records)
        self.processed[slot] = upto
        self.turn_order.append((slot, upto))

    def _replay(self) -> None:
        """A new hub decides the requests the workers resent, each exactly once for everyone.

        Every worker resent, after its hello, the requests not every worker had received from
        the old hub. Some workers did receive what the old hub decided for some of them (a
        frame reached worker 1 before the hub died, not worker 2): their hello says so
        (``seen``), and the replay sends them nothing for those requests. The order: the old
        hub's, as the most advanced worker knows it (``order``), so every member of a channel
        sees its messages in one order; then whatever nobody had received, in hello order.
        """
        self.gathering = False
        self.decided = True
        requests: dict[int, list[Record]] = {}
        for slot, batch in self.held:
            requests.setdefault(slot, []).extend(batch)
        moves = {(r[1], slot) for slot, batch in self.held for r in batch if r[0] == R_MOVE}
        self.held = []
        self._settle(moves)
        # Who holds whom is settled: the workers that resynced get the network as it is now
        # (each had its own replica until here, and the events that merged the others')
        unsnapped, self.unsnapped = self.unsnapped, []
        if unsnapped:
            # (a segment a worker approved before its snapshot, on its own replica, is
            # decided message by message)
            self.sequencer.epoch += 1
        for slot in dict.fromkeys(unsnapped):
            if slot in self.links:
                self._snapshot_to(slot)
        first = {slot: h[0] for slot, h in self.hellos.items()}
        seen = {slot: h[1] for slot, h in self.hellos.items()}
        cursor = dict.fromkeys(requests, 0)
        longest = max(self.hellos.values(), key=_order_reach, default=None)
        self.hellos = {}
        now = int(time.time() * 1000)
        sequencer = self.sequencer

        def replay(origin: int, upto: int) -> None:
            todo = requests.get(origin, [])
            base = first.get(origin, 0)
            i = cursor.get(origin, 0)
            while i < len(todo) and base + i < upto:
                seq = base + i
                skip = {w for w, got in seen.items() if got.get(origin, 0) > seq}
                if skip and todo[i][0] == R_MOVE and todo[i][1] in sequencer.redo:
                    # a move decided again as a fact: every replica had it undone by its
                    # snapshot (see _settle), so every worker is told it again
                    skip = set()
                # Route as usual, minus the workers that already have this request's records:
                # the router drops records for a slot missing from ``out`` (a gone worker).
                out = self.out
                if skip:
                    self.out = {w: records for w, records in out.items() if w not in skip}
                try:
                    sequencer.handle(origin, todo[i], now)
                finally:
                    self.out = out
                i += 1
            cursor[origin] = i
            if i:
                self.processed[origin] = max(self.processed.get(origin, 0), base + i)
                self.turn_order.append((origin, base + i))

        replayed = sum(len(r) for r in requests.values())
        self._seal()
        self.to_channel = self._to_channel_each  # type: ignore[method-assign]
        try:
            with self.storage.replaying():  # the old hub may have written some to the history
                if longest is not None:
                    for origin, upto in longest[2]:
                        if origin in requests:
                            replay(origin, upto)
                for origin in requests:
                    replay(origin, 1 << 62)
        finally:
            del self.to_channel  # the class's again
            sequencer.redo = {}
        log.warning("hub: %d requests resent by the workers decided again", replayed)

    def _worker_gone(self, slot: int, why: str) -> None:
        """A worker died: its users quit for everyone else, and their nicks are free."""
        link = self.links.pop(slot, None)
        self._reroute()
        self.out.pop(slot, None)
        self.unsent_order.pop(slot, None)
        self.sent_stable.pop(slot, None)
        self.reported.pop(slot, None)
        self._stable_dirty = True
        # Its held requests are decided (as they would have been, before its users quit), and
        # a fence round waits for it no longer.
        self._decide_all(self.fence.gone(slot))
        if link is not None:
            with contextlib.suppress(KeyError):
                self.sel.unregister(link.sock)
            link.close()
        lost = self.state.users_on_worker(slot)
        log.log(self._link_fault_level(), "hub: worker %d %s; %d users quit", slot, why, len(lost))
        self._down(slot)
        for uid in lost:
            self.event(make(EQuit, uid, b"Connection reset by peer", int(time.time() * 1000)))

    def _flush(self, slot: int) -> None:
        link = self.links[slot]
        try:
            link.flush()
        except OSError as exc:
            log.log(self._link_fault_level(), "hub: sending to worker %d failed: %s", slot, exc)
            self._worker_gone(slot, "unreachable")
            return
        self._rearm(slot)
        if link.backlog > HIGH_WATER and self.reading:
            log.warning("hub: worker %d is %d bytes behind; pausing all input", slot, link.backlog)
            self.reading = False
            for other in self.links:
                self._rearm(other)
        elif not self.reading and all(lk.backlog < LOW_WATER for lk in self.links.values()):
            log.info("hub: workers caught up; resuming input")
            self.reading = True
            for other in self.links:
                self._rearm(other)

    def _rearm(self, slot: int) -> None:
        """Watch a link for reading unless backpressure holds, for writing while bytes wait."""
        link = self.links[slot]
        events = (selectors.EVENT_READ if self.reading else 0) | (
            selectors.EVENT_WRITE if link.backlog else 0
        )
        try:
            key = self.sel.get_key(link.sock)
        except KeyError:
            key = None
        if not events:
            if key is not None:
                self.sel.unregister(link.sock)
        elif key is None:
            self.sel.register(link.sock, events, slot)
        elif key.events != events or key.data != slot:
            self.sel.modify(link.sock, events, slot)

    def _flush_all(self) -> None:
        self._fence_out()
        self._seal()  # the turn's chunks are complete: whatever comes now follows them
        self._end_frames()
        if self.crash_move is not None:  # (only with --test-hooks)
            self._crash_after_move(self.crash_move)
        # id(chunk) -> (the chunk, kept alive so that no other list takes its id; its records
        # marshalled, for every worker)
        encoded: dict[int, tuple[list[Record], memoryview]] = {}
        chunked = self._chunked
        # A failed flush can make more records (the dead worker's users quit): loop until done.
        while any(self.out.values()):
            for slot, records in list(self.out.items()):
                link = self.links.get(slot)
                if records and link is not None:
                    self.out[slot] = []
                    if slot in chunked:
                        link.queue_frame(self._frame(link, records, encoded))
                    else:
                        link.queue(records)
                    self._flush(slot)
        chunked.clear()
        # A worker gone in a flush may have had held requests decided (its fence round):
        # their chunks are out now, and must not take the next turn's messages.
        self._seal()

    @staticmethod
    def _frame(
        link: Link,
        items: Sequence[Record | list[Record]],
        encoded: dict[int, tuple[list[Record], memoryview]],
    ) -> bytes:
        """One frame of ``items``: records, and chunks (lists of records, see to_channel)
        spliced in place. A chunk is marshalled once for all its workers (``encoded``), and
        the frame is the marshal of the flat list the worker reads, put together from the
        pieces: marshal version 2 has no back-references, so a list's items marshalled
        apart can be joined under one list header."""
        pieces: list[bytes | memoryview] = [b"", b""]  # the frame's header, the list's
        count = 0
        size = _LIST_HEAD
        plain: list[Record] = []
        for item in items:
            if isinstance(item, list):
                if plain:
                    body = memoryview(marshal.dumps(plain, 2))[_LIST_HEAD:]
                    pieces.append(body)
                    size += len(body)
                    count += len(plain)
                    plain = []
                known = encoded.get(id(item))
                if known is None:
                    body = memoryview(marshal.dumps(item, 2))[_LIST_HEAD:]
                    known = encoded[id(item)] = (item, body)
                pieces.append(known[1])
                size += len(known[1])
                count += len(item)
            else:
                plain.append(item)
        if plain:
            body = memoryview(marshal.dumps(plain, 2))[_LIST_HEAD:]
            pieces.append(body)
            size += len(body)
            count += len(plain)
        pieces[0] = frame_header(size)
        pieces[1] = _LIST.pack(b"[", count)
        link.sent_records += count
        return b"".join(pieces)  # the one copy

    def _end_frames(self) -> None:
        """End each frame with B_SEEN: the batches decided since the worker's last frame (the
        frame holds every record they caused for it) and ``stable``. A worker with no records
        this turn gets it at most every SEEN_EVERY seconds, not at every turn."""
        if self.turn_order:
            for pending in self.unsent_order.values():
                pending.extend(self.turn_order)
            self.turn_order = []
        if self._stable_dirty:
            self._stable_dirty = False
            reports = list(self.reported.values())
            stable = {
                origin: min((r.get(origin, 0) for r in reports), default=upto)
                for origin, upto in self.processed.items()
            }
            if stable != self.stable:
                self.stable = stable
        now = time.monotonic()
        for slot, records in self.out.items():
            pending = self.unsent_order[slot]
            if records or (
                (pending or self.sent_stable.get(slot) is not self.stable)
                and now - self.last_frame[slot] >= SEEN_EVERY
            ):
                news = None if self.sent_stable.get(slot) is self.stable else self.stable
                records.append(make(BSeen, tuple(pending), news, self.sequencer.epoch))
                self.unsent_order[slot] = []
                self.sent_stable[slot] = self.stable
                self.last_frame[slot] = now


#: A marshalled list's header (version 2): the type code ``[`` and the count, little-endian.
_LIST = struct.Struct("<ci")
_LIST_HEAD = _LIST.size


def _order_reach(hello: tuple[int, dict[int, int], tuple[tuple[int, int], ...]]) -> int:
    """How far a worker's record of the old hub's order reaches (the logs are prefixes of one
    order, so the one that reaches furthest holds the others)."""
    reach: dict[int, int] = {}
    for origin, upto in hello[2]:
        reach[origin] = upto
    return sum(reach.values())


def mode_delta(chan: Channel, row: SnapshotChannel) -> tuple[bytes, tuple[bytes, ...]]:
    """The E_MODE changes that take ``chan`` to the modes of a replica's channel ``row`` (for
    a resync): its flags, key, limit, and the access lists' entries it lacks."""
    plus = bytes(c for c in row.modes if c not in chan.modes)
    minus = bytes(c for c in chan.modes if c not in row.modes)
    args: list[bytes] = []
    if row.password and row.password != chan.password:
        plus += b"k"
        args.append(row.password)
    if row.limit and row.limit != chan.limit:
        plus += b"l"
        args.append(b"%d" % row.limit)
    for letter, rows in ((b"b", row.bans), (b"e", row.excepts), (b"I", row.invex)):
        have = access.entries(chan, letter)
        for mask, _, _ in rows:
            if access.find(have, mask) is None:
                plus += letter
                args.append(mask)
    changes = (b"+" + plus if plus else b"") + (b"-" + minus if minus else b"")
    return changes, tuple(args)
