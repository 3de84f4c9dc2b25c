"""The hub process: runs the sequencer for a multi-worker server and relays its decisions.

Owns: the authoritative :class:`~fastchat.server.state.State`, the worker links, and turning the
sequencer's routing into one batched frame per worker per loop turn.
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
import os
import selectors
import signal
import socket
import time

from fastchat.irc.casemap import fold
from fastchat.server.bus import Link
from fastchat.server.config import Config
from fastchat.server.events import (
    B_HELLO,
    B_SNAPSHOT,
    D_KILL,
    E_AWAY,
    E_INTRO,
    E_JOIN,
    E_MODE,
    E_QUIT,
    E_TOPIC,
    E_UMODE,
    Record,
)
from fastchat.server.sequencer import Sequencer
from fastchat.server.state import Channel, SnapshotChannel, SnapshotUser, State

log = logging.getLogger("fastchat.hub")

#: Backpressure: when any worker has this much waiting for it, the hub stops reading from every
#: worker (any message might be for the slow one) until all are under ``LOW_WATER`` again.
#: The workers' own bus buffers then fill, and they stop reading from their clients: memory
#: stays bounded everywhere and nothing addressed to a healthy client is dropped.
HIGH_WATER = 8 << 20
#: After a hub restart, workers have this long to reconnect before their users are quit.
SWEEP_AFTER = 3.0
LOW_WATER = 2 << 20


class Hub:
    """Router for the sequencer: applies events to the authoritative state and batches records."""

    def __init__(self, config: Config, listener: socket.socket, lifeline_fd: int | None) -> None:
        self.config = config
        self.listener = listener
        self.lifeline_fd = lifeline_fd
        self.state = State()
        self.sequencer = Sequencer(self.state, config, self)
        self.sel = selectors.DefaultSelector()
        self.links: dict[int, Link] = {}  # worker slot -> link
        self.out: dict[int, list[Record]] = {}
        self.stopping = False
        # The supervisor is stopping the server (SIGUSR1): workers are about to close their
        # links, which is then no fault, and is logged at INFO (see _link_fault_level).
        self.draining = False
        self.reading = True  # False while backpressure holds

    # -- Router ---------------------------------------------------------------------------------
    def event(self, event: Record) -> None:
        self.state.apply(event)
        for records in self.out.values():
            records.append(event)

    def to_channel(self, chan: Channel, record: Record) -> None:
        out = self.out
        for slot in chan.workers:
            records = out.get(slot)
            if records is not None:
                records.append(record)

    def to_worker(self, worker: int, record: Record) -> None:
        records = self.out.get(worker)
        if records is not None:
            records.append(record)

    # -- I/O ------------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_drain)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        if self.lifeline_fd is not None:
            self.sel.register(self.lifeline_fd, selectors.EVENT_READ, "lifeline")
        pending: dict[socket.socket, Link] = {}  # connected, HELLO not yet read
        sweep_at = time.monotonic() + SWEEP_AFTER
        while not self.stopping:
            if sweep_at and time.monotonic() >= sweep_at:
                sweep_at = 0.0
                self._sweep()
                self._flush_all()
            for key, mask in self.sel.select(1.0):
                data = key.data
                if data is None:
                    self._accept(pending)
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
            self._flush_all()
        return 0

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

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
        hello, *rest = [r for batch in batches for r in batch]
        if hello[0] != B_HELLO:
            log.error("hub: a link spoke before saying hello; dropping it")
            self.sel.unregister(link.sock)
            pending.pop(link.sock, None)
            link.close()
            return
        _, slot, replica, local_uids = hello
        pending.pop(link.sock, None)
        old = self.links.get(slot)
        if old is not None:
            self._worker_gone(slot, "replaced")
        self.links[slot] = link
        self.out[slot] = []
        self._rearm(slot)
        if replica is not None:
            log.warning("hub: worker %d resyncs %d users", slot, len(local_uids))
            self._merge(slot, replica, set(local_uids))
        else:
            log.info("hub: worker %d connected", slot)
        self.out[slot].append((B_SNAPSHOT, self.state.snapshot()))
        self._decide(slot, rest)

    def _merge(self, slot: int, replica: Record, local: set[int]) -> None:
        """Rebuild the network after a hub restart from a worker's replica, through ordinary
        events. Events are idempotent: what every worker already knows changes nothing and
        shows nothing; what some worker missed reaches it as a normal JOIN, TOPIC or QUIT."""
        users, channels = replica
        state = self.state
        for u in map(SnapshotUser._make, users):
            if u.uid in state.users:
                continue
            if fold(u.nick) in state.nicks:
                if u.uid in local:  # two users with one nick: the later one loses
                    self.to_worker(slot, (D_KILL, u.uid, b"Nick collision"))
                continue
            self.event((E_INTRO, u.uid, u.nick, u.username, u.host, u.realname, u.worker, u.signon))
            if u.away:
                self.event((E_AWAY, u.uid, u.away))
            if u.modes:
                self.event((E_UMODE, u.uid, u.modes, b""))
        for c in map(SnapshotChannel._make, channels):
            fresh = fold(c.name) not in state.channels
            for uid, flags in c.members:
                if uid in state.users:
                    self.event((E_JOIN, uid, c.name, flags, c.created))
            chan = state.channels.get(fold(c.name))
            if chan is None or not fresh:
                continue
            if c.topic:
                self.event((E_TOPIC, 0, chan.key, c.topic, c.topic_setter, c.topic_time))
            changes, args = mode_delta(chan, c.modes, c.password, c.limit, c.bans)
            if changes:
                self.event((E_MODE, 0, chan.key, changes, args))
        for uid in state.users_on_worker(slot):
            if uid not in local:
                self.event((E_QUIT, uid, b"Connection reset by peer"))

    def _sweep(self) -> None:
        """Users merged from a replica whose worker never came back (it died with the hub)."""
        for uid, user in list(self.state.users.items()):
            if user.worker not in self.links:
                self.event((E_QUIT, uid, b"Connection reset by peer"))

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
        for batch in batches:
            self._decide(slot, batch)

    def _decide(self, slot: int, records: list[Record]) -> None:
        self.sequencer.handle_batch(slot, records, int(time.time()))

    def _worker_gone(self, slot: int, why: str) -> None:
        """A worker died: its users quit for everyone else, and their nicks are free."""
        link = self.links.pop(slot, None)
        self.out.pop(slot, None)
        if link is not None:
            with contextlib.suppress(KeyError):
                self.sel.unregister(link.sock)
            link.close()
        lost = self.state.users_on_worker(slot)
        log.log(self._link_fault_level(), "hub: worker %d %s; %d users quit", slot, why, len(lost))
        for uid in lost:
            self.event((E_QUIT, uid, b"Connection reset by peer"))

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
        # A failed flush can make more records (the dead worker's users quit): loop until done.
        while any(self.out.values()):
            for slot, records in list(self.out.items()):
                link = self.links.get(slot)
                if records and link is not None:
                    self.out[slot] = []
                    link.queue(records)
                    self._flush(slot)


def mode_delta(
    chan: Channel, modes: bytes, password: bytes, limit: int, bans: tuple[bytes, ...]
) -> tuple[bytes, tuple[bytes, ...]]:
    """The E_MODE changes that take ``chan`` to the given modes (for a resync)."""
    plus = bytes(c for c in modes if c not in chan.modes)
    minus = bytes(c for c in chan.modes if c not in modes)
    args: list[bytes] = []
    if password and password != chan.password:
        plus += b"k"
        args.append(password)
    if limit and limit != chan.limit:
        plus += b"l"
        args.append(b"%d" % limit)
    for mask in bans:
        if mask not in chan.bans:
            plus += b"b"
            args.append(mask)
    changes = (b"+" + plus if plus else b"") + (b"-" + minus if minus else b"")
    return changes, tuple(args)
