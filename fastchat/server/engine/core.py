"""A worker's sans-I/O core: connections in, effects out.

Owns: each local connection's protocol life: admission, input processed in order (the
ordering barrier, flood control, backpressure), the effects handlers may ask for (the
:class:`~fastchat.server.commands.context.Context` they see is this object), timeouts and
shutdown. It delegates the rest to one part per job:
- :class:`~.dispatch.Dispatcher`: a line through the command table and its checks;
- :class:`~.relay.Relay`: the PRIVMSG/NOTICE hot path and runs;
- :class:`~.replica.Replica`: applying the sequencer's events and deliveries, and rendering
  what local clients see of them;
- :class:`~.resync.Resync`: exactly-once bookkeeping across hub restarts;
- :class:`~.segments.Segments`: approved channel messages to the hub in segments it can
  forward whole, and their delivery;
- :class:`~.offload.Offload`: blocking work as effects (password checks, REHASH, mailing a
  verification code).
Must never: touch a socket, a selector, the clock or another process; import ``logging``
(the shell hands it a logger). The I/O shell (:mod:`fastchat.server.runtime.worker`) feeds
it bytes, records and the time, and carries out its effects.

Effects are collected, not performed:
- ``client.pending`` gets the bytes a client is owed; ``dirty`` lists clients with new output,
  so the shell sends each one once per loop turn (coalescing is what makes fan-out cheap).
  An idle client's is the shared ``NO_OUTPUT``: whoever marks a client dirty gives it a list
  of its own first, which the shell clears once sent and :meth:`WorkerCore.tick` drops
  once a second if it stayed empty (one list per busy client, none per idle one);
- ``outbox`` gets requests for the sequencer when it runs in the hub (multi-worker); the
  shell takes them as batches (:meth:`WorkerCore.take_requests`: each ``R_SYNC`` ends one),
  then the answer to a hub's fence, if one came (:meth:`WorkerCore.take_fence_ack`, see
  :mod:`~fastchat.server.network.fence`);
- ``closing`` lists clients to disconnect once their last bytes are out;
- ``offload`` (:class:`~.offload.Offload`) queues blocking work for the shell to do off the
  loop (password checks, reading the config file) and carries on when the answers come back.

Ordering: a client's commands are processed strictly in order. A command that needs the
sequencer (JOIN, NICK, ...) raises the client's barrier until the sequencer's ``D_DONE`` comes
back; lines that arrive meanwhile wait in ``inq``. So every command sees the effects of the ones
before it, exactly as on a single-process server. Messages (PRIVMSG/NOTICE) change no state and
do not raise the barrier: they stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from fastchat.irc import numerics as N
from fastchat.irc.linebuffer import LineBuffer
from fastchat.irc.message import max_input_line
from fastchat.server.caps import CAPABILITIES, Registry, labeled_response
from fastchat.server.commands import Command, accounts, nickserv
from fastchat.server.commands.context import LinkInfo, MailOutcome
from fastchat.server.commands.monitor import Monitors
from fastchat.server.commands.registration import feed
from fastchat.server.config import Config
from fastchat.server.connection import NO_INPUT, NO_OUTPUT, Client, OutputSlot
from fastchat.server.engine.dispatch import Dispatcher
from fastchat.server.engine.labels import Labels
from fastchat.server.engine.offload import Offload
from fastchat.server.engine.placement import Placement, Stall
from fastchat.server.engine.relay import Relay
from fastchat.server.engine.replica import Replica
from fastchat.server.engine.resync import Resync
from fastchat.server.engine.segments import Segments
from fastchat.server.network.records import (
    B_DOWN,
    B_FENCE,
    D_CHANSEG,
    D_DONE,
    D_KILL,
    D_NOTICE,
    D_OVERRIDE,
    D_PENDING,
    D_REGISTERED,
    D_REPLY,
    D_SERVICE,
    D_STANDARD,
    D_STORED,
    E_JOIN,
    E_KILL,
    E_MOVE,
    E_QUIT,
    R_SYNC,
    BFenced,
    DKill,
    DNotice,
    DOverride,
    DPending,
    DRegistered,
    DReply,
    DService,
    DStandard,
    EMove,
    RCounts,
    Record,
    RQuit,
    make,
)
from fastchat.server.network.sequencer import Sequencer
from fastchat.server.network.state import Channel, State
from fastchat.server.registration import Input, Phase
from fastchat.server.render import dates, lines, replies

#: How a TLS ClientHello begins: a handshake record (22), protocol version 3.x
TLS_HANDSHAKE = b"\x16\x03"


class Log(Protocol):
    """The part of a :class:`logging.Logger` the core uses (the shell passes one in)."""

    def debug(self, msg: str, *args: Any) -> None: ...

    def info(self, msg: str, *args: Any) -> None: ...

    def warning(self, msg: str, *args: Any) -> None: ...

    def error(self, msg: str, *args: Any) -> None: ...

    def exception(self, msg: str, *args: Any) -> None: ...


def _nowhere(record: Record) -> None:
    """Where a core's events go when no store keeps them."""


class LocalRouter:
    """Routes the sequencer's decisions straight back into this core (``--workers 1``)."""

    __slots__ = ("core",)

    def __init__(self, core: WorkerCore) -> None:
        self.core = core

    def event(self, event: Record) -> None:
        self.core.apply(event)
        self.core.stored(event)

    def to_channel(self, chan: Channel, record: Record) -> None:
        self.core.replica.d_chan(record)
        self.core.stored(record)

    def to_worker(self, worker: int, record: Record) -> None:
        self.core.apply(record)
        self.core.stored(record)  # a private message: into the history (runtime/storage.py)

    def to_route(self, route: tuple[int, ...], record: Record, last: dict[bytes, int]) -> None:
        self.core.apply(record)  # (never: one worker keeps no epoch, so takes no segment whole)

    def after_stored(self, worker: int, record: Record) -> None:
        # the shell holds it until its store has written everything (runtime/worker.py)
        self.core.offload.stored_waits.append(record)


class WorkerCore:
    """Everything a worker knows and decides, without I/O."""

    def __init__(
        self,
        config: Config,
        slot: int = 0,
        incarnation: int = 1,
        standalone: bool = True,
        *,
        log: Log,
        caps: Registry = CAPABILITIES,
    ) -> None:
        self.config = config
        self.slot = slot
        self.incarnation = incarnation
        self.log = log
        self.caps = caps
        # The hub routes by Channel.workers; a worker keeps them where a channel message's
        # route is its to say (segments: engine/segments.py) and placement scores the workers
        # by them (engine/placement.py): with affine placement at several workers
        self.state = State(routes=config.placement == "affine" and not standalone)
        self.state.whowas_size = config.whowas_size
        self.clients: dict[int, Client] = {}  # uid -> local connection (registered or not)
        self.dirty: list[Client] = []
        # what cuts a read into lines for a client that holds no unfinished line (nearly
        # every read): the client takes it only when a read ends mid-line (data_received)
        # the longest line a client may send, its tags included (the max_line setting)
        self.input_limit = max_input_line(config.max_line)
        self.spare_lines = LineBuffer(self.input_limit)
        self.closing: list[Client] = []
        self.held_changed: list[Client] = []  # input held or released (see _recvq_full)
        self.outbox: list[Record] = []
        self.outbox_syncs = 0  # R_SYNCs in ``outbox`` (each ends a batch: take_requests)
        # One worker: a query waits for the end of the loop turn (end_turn), so that it
        # answers after every line read in the same turn, whichever socket the selector
        # listed first (a PING after another client's PRIVMSG to us: the PONG comes after
        # the message, as at several workers, where the read fence does it). The worker's
        # shell turns it on; a core driven line by line (tests) answers at once.
        self.reads_at_turn_end = False
        self.turn_reads: list[Client] = []
        self.fence_due = 0  # the hub's last fence round, to answer at the end of this turn
        # ticket -> the client waiting for that check, and what to do with the answer
        self.throttled: set[Client] = set()  # input held back by flood control
        # Local clients that negotiated a capability changing what the fan-out sends them (tags,
        # or echo-message): while there are none, the fan-out sends everyone but the sender
        # the one plain line without looking at capabilities.
        self.tagged = 0
        self.echo_bit = caps.bit(b"echo-message")  # 0 when not offered: never echoes
        # What makes a client's fan-out special (``tagged`` counts such local clients): tags,
        # echoes, and labeled responses (a reply must be told from other traffic)
        self.special_mask = caps.tag_mask | self.echo_bit | caps.bit(labeled_response.NAME)
        self.oper_backoff: dict[bytes, tuple[int, float]] = {}  # see commands/operators.py
        # At one worker this core runs the sequencer: its events and channel messages
        # (D_CHAN) go here too, for the shell to keep what the store keeps
        # (runtime/storage.py: accounts, history); by default nowhere
        self.stored: Callable[[Record], None] = _nowhere
        self.created = b"at start-up"
        self.started = 0.0  # when the server started (Unix time; see set_start_time)
        # This worker's links (STATS l): the shell refreshes them about once a second.
        self.links: tuple[LinkInfo, ...] = ()
        self.monitors = Monitors()  # IRCv3 MONITOR: which local clients watch which nick
        # nick protection (commands/nickserv.py): when each warned local client is renamed
        self.nick_deadlines: nickserv.Deadlines = {}
        self._reported_counts: dict[bytes, int] = {}  # the last R_COUNTS (see tick)
        self._next_uid = incarnation << 32
        self._now = 0.0
        self.sequencer: Sequencer | None = (
            Sequencer(self.state, config, LocalRouter(self)) if standalone else None
        )
        self.replica = Replica(self)
        self.labels = Labels(self)
        self.relay = Relay(self)
        self.segments = Segments(self)  # (enabled only with routes in the replica)
        self.dispatcher = Dispatcher(self)
        self.resync = Resync(self, incarnation)
        self.offload = Offload(self)
        self.placement = Placement(self, standalone)  # (enabled only at several workers)
        self._events: dict[int, Callable[[Record], None]] = {
            **self.replica.table,
            **self.resync.table,
            D_REPLY: self._d_reply,
            D_DONE: self._d_done,
            B_FENCE: self._b_fence,
            D_STORED: self._d_stored,
            D_KILL: self._d_kill,
            D_OVERRIDE: self._d_override,
            D_NOTICE: self._d_notice,
            D_STANDARD: self._d_standard,
            D_REGISTERED: self._d_registered,
            D_PENDING: self._d_pending,
            D_SERVICE: self._d_service,
            D_CHANSEG: self.segments.d_chanseg,
            E_MOVE: self.placement.e_move,
            B_DOWN: self.placement.b_down,
        }
        if self.placement.enabled:
            self._events[E_JOIN] = self._e_join_placed
            self._events[E_QUIT] = self._e_gone_placed
            self._events[E_KILL] = self._e_gone_placed

    def set_start_time(self, started: float) -> None:
        """When the server started (the supervisor's clock, the same for every worker): what
        RPL_CREATED and INFO show, and where STATS u counts the uptime from."""
        self.started = started
        self.created = dates.created(started)

    @property
    def commands(self) -> Mapping[bytes, Command]:
        """Context: the command table (HELP lists it)."""
        return self.dispatcher.commands

    @property
    def local_count(self) -> int:
        return len(self.clients)

    # -- effects ---------------------------------------------------------------------------------
    def send(self, client: Client, data: bytes) -> None:
        """Queue ``data`` (whole lines) for ``client``; the shell sends it this loop turn.
        While the client's labeled command is open, ``data`` is part of its reply (see
        :mod:`.labels`)."""
        if client.closed:
            return
        if client.label is not None:
            self.labels.capture(client, data)
            return
        self.queue(client, data)

    def queue(self, client: Client, data: bytes) -> None:
        """Append ``data`` to ``client``'s output as it is (no labeled reply takes it)."""
        pending = client.pending
        if not pending:
            if pending is NO_OUTPUT:  # (shared: a list of its own first)
                pending = client.pending = []
            self.dirty.append(client)
        pending.append(data)

    def notify(self, client: Client, data: bytes) -> None:
        """Context: queue ``data`` for ``client``, a line it did not ask for: while its
        labeled command is open, it goes out beside the reply, not in it (see :mod:`.labels`)."""
        self.labels.other(client, data)

    def send_lines(self, client: Client, out: Iterable[bytes]) -> None:
        self.send(client, b"".join(out))

    def reserve_output(self, client: Client) -> OutputSlot:
        """Context: keep a place in ``client``'s output, after what it was sent so far, for
        lines that come later (:meth:`fill_output`); whatever it is sent meanwhile waits
        behind that place (the shell sends a corked client nothing). While its labeled
        command is open, the reply's batch opens first, so the reply so far comes before."""
        if client.label is not None:
            self.labels.spill(client)
        slot = OutputSlot(len(client.pending))
        if client.slots is None:
            client.slots = [slot]
        else:
            client.slots.append(slot)
        return slot

    def fill_output(self, client: Client, slot: OutputSlot, write: Callable[[], None]) -> None:
        """Context: what ``write()`` sends ``client`` (by the usual means: send, notify) goes
        in ``slot``'s place, before everything queued since it was reserved; once no slot is
        left, the client's output flows again.

        ``write`` renders into an empty queue of its own, swapped in for the call, so that
        the lines are rendered where they always are (labels and batches included) and
        then spliced in at once: the slots reserved after this one move down by as much."""
        slots = client.slots
        if slots is None or slot not in slots:
            return
        queued = client.pending
        client.pending = NO_OUTPUT
        try:
            write()
        finally:
            written = client.pending
            client.pending = queued
        if written:
            if queued is NO_OUTPUT:  # (the shared empty one: never written)
                queued = client.pending = []
            queued[slot.at : slot.at] = written
        index = slots.index(slot)
        del slots[index]
        for later in slots[index:]:
            later.at += len(written)
        if not slots:
            client.slots = None
            if queued:
                self.dirty.append(client)

    def reply(self, client: Client, code: bytes, *params: bytes) -> None:
        self.send(client, replies.numeric(self.config.server_name, client.name, code, *params))

    def fail(
        self, client: Client, command: bytes, code: bytes, why: bytes, *context: bytes
    ) -> None:
        server = self.config.server_name
        self.send(client, lines.standard_reply(server, b"FAIL", command, code, why, context))

    def submit(self, request: Record, barrier: bool = True) -> None:
        """Hand a request to the sequencer: in-process, or via the bus to the hub."""
        if barrier:
            client = self.clients.get(request[1])
            if client is not None:
                client.waiting += 1
        if self.sequencer is not None:
            self.sequencer.handle(self.slot, request, int(self._now * 1000))
        else:
            self.outbox.append(request)
            if request[0] == R_SYNC:
                self.outbox_syncs += 1

    def read_at_turn_end(self, client: Client) -> None:
        """One worker: ``client``'s query (and the lines after it) waits under its barrier
        for :meth:`end_turn`."""
        client.waiting += 1
        self.turn_reads.append(client)

    def end_turn(self) -> None:
        """Every readable socket of this loop turn has been read: the queries that waited
        for it answer now (before the turn's output goes out)."""
        while self.turn_reads:
            waiting = self.turn_reads
            self.turn_reads = []
            for client in waiting:
                client.waiting -= 1
                if client.uid in self.clients:
                    self._barrier_down(client)

    def take_requests(self) -> list[list[Record]]:
        """This turn's requests for the hub, as batches, each ``R_SYNC`` ending one: the hub
        holds an R_SYNC for a fence round (network/fence.py) and looks only at a batch's last
        record for one. Without an R_SYNC (nearly always): the outbox, whole."""
        batch = self.outbox
        self.outbox = []
        self.segments.seal(batch)
        if not self.outbox_syncs:
            return [batch]
        self.outbox_syncs = 0
        batches: list[list[Record]] = []
        start = 0
        for i, record in enumerate(batch):
            if record[0] == R_SYNC:
                batches.append(batch[start : i + 1])
                start = i + 1
        if start < len(batch):
            batches.append(batch[start:])
        return batches

    def _b_fence(self, rec: Record) -> None:
        """The hub fences a read barrier: answer at the end of this loop turn."""
        self.fence_due = rec[1]

    def take_fence_ack(self) -> Record | None:
        """The answer to the hub's fence (B_FENCED), if one came since the last turn. The
        shell queues it after this turn's requests, so every client line read before the
        fence is ahead of it on the link."""
        round_ = self.fence_due
        if not round_:
            return None
        self.fence_due = 0
        return make(BFenced, round_)

    def disconnect(
        self, client: Client, reason: bytes, flush: bool = True, quit_message: bytes | None = None
    ) -> None:
        """Close ``client`` with ``ERROR :reason``; its channels see it quit with
        ``quit_message`` (default: the reason). Safe to call twice.

        The acknowledgement rule: a registered client's ``ERROR`` is sent only once the
        sequencer has decided its quit (the ``D_DONE`` of ``R_QUIT``, which follows the
        ``E_QUIT``). A client that has read its ``ERROR`` can then reconnect with the same
        nick on any worker, and a query from anyone after that sees it gone. Meanwhile its
        input is ignored and it receives nothing more from its channels. ``flush=False``
        (the peer is gone, or not reading) closes at once: there is nobody to acknowledge.
        """
        if client.closed or client.quitting:
            return
        self.log.debug(
            "connection %#x (%s) closed: %s",
            client.uid,
            client.ip.decode(),
            reason.decode(errors="replace"),
        )
        error = lines.closing_link(client.username or b"*", client.host, reason)
        user = client.user
        request = make(RQuit, client.uid, quit_message if quit_message is not None else reason)
        if user is not None:
            for chan in user.channels:
                chan.local.pop(client.uid, None)
            self.state.local.pop(client.uid, None)
            if flush:
                client.quitting = error
                client.inq = NO_INPUT
                client.inq_bytes = 0
                self.throttled.discard(client)
                self.submit(request)  # under the barrier: _d_done sends the ERROR
                return
        if not flush:
            client.pending = NO_OUTPUT
            outbuf = client.outbuf
            if outbuf is not None:
                # The kernel may hold the first part of a line: keep its tail, or the ERROR
                # would be glued to half a message.
                end = outbuf.find(b"\n")
                del outbuf[end + 1 if end >= 0 else 0 :]
                if not outbuf:
                    client.outbuf = None
        self._last_words(client, error)
        if user is not None:
            self.submit(request, barrier=False)

    def check_password(
        self, client: Client, password: bytes, stored: str, then: Callable[[bool], None]
    ) -> None:
        """Context: check a password off the loop (see :class:`~.offload.Offload`)."""
        self.offload.check_password(client, password, stored, then)

    def after_stored(self, client: Client, then: Callable[[], None]) -> None:
        """Context: run ``then`` once the store has every message decided so far (the
        history barrier, engine/offload.py)."""
        self.offload.after_stored(client, then)

    def ask_history(
        self, client: Client, query: tuple[Any, ...], then: Callable[[tuple[list[Any], str]], None]
    ) -> None:
        """Context: a store query off the loop (engine/offload.py)."""
        self.offload.ask_history(client, query, then)

    def hash_password(self, client: Client, password: bytes, then: Callable[[str], None]) -> None:
        """Context: hash a new password off the loop (see :class:`~.offload.Offload`)."""
        self.offload.hash_password(client, password, then)

    def send_verification(
        self,
        client: Client | None,
        account: bytes,
        email: bytes,
        code: bytes,
        then: Callable[[MailOutcome], None],
    ) -> None:
        """Context: mail a verification code off the loop (see :class:`~.offload.Offload`)."""
        self.offload.send_verification(client, account, email, code, then)

    def audit(self, client: Client, action: str, *, failed: bool = False) -> None:
        """Context: log an operator's action, with who did it (nick!user@host, address and
        connection id). A failed attempt is a warning."""
        who = client.user.mask if client.user is not None else client.name
        (self.log.warning if failed else self.log.info)(
            "operator %s: %s (from %s, connection %#x)",
            who.decode(errors="replace"),
            action,
            client.ip.decode(errors="replace"),
            client.uid,
        )

    def _d_override(self, rec: Record) -> None:
        d = DOverride._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            self.audit(client, "override: " + d.action.decode(errors="replace"))

    def _d_standard(self, rec: Record) -> None:
        """An IRCv3 standard reply (FAIL/WARN/NOTE) the sequencer decided for a client."""
        d = DStandard._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            server = self.config.server_name
            line = lines.standard_reply(
                server, d.reply, d.command, d.code, d.description, tuple(d.context)
            )
            self.send(client, line)

    def _d_registered(self, rec: Record) -> None:
        """An account its unregistered client created or verified (REGISTER or VERIFY
        before connecting): it is logged in to it on registering."""
        d = DRegistered._make(rec)
        client = self.clients.get(d.uid)
        if client is not None and client.user is None:
            client.account = d.name
            if d.how == b"verify":
                accounts.verified(self, client, d.name)
            else:
                accounts.registered(self, client, d.name)

    def _d_pending(self, rec: Record) -> None:
        """An account its client registered awaits verification: mail the code (or log it),
        then answer (commands/accounts.py), even if the client has gone since."""
        d = DPending._make(rec)
        client = self.clients.get(d.uid)
        if client is not None and (client.closed or client.quitting):
            client = None
        if d.how == b"nickserv":
            nickserv.awaiting_verification(self, client, d.uid, d.name, d.email, d.code)
        else:
            accounts.awaiting_verification(self, client, d.uid, d.name, d.email, d.code)

    def _d_notice(self, rec: Record) -> None:
        """The sequencer's answer to an operator's request, as a NOTICE (logged too)."""
        d = DNotice._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            self.send(client, lines.notice(self.config.server_name, client.name, d.text))
            self.audit(client, d.text.removeprefix(b"*** ").decode(errors="replace"))

    def _d_service(self, rec: Record) -> None:
        """A NickServ notice the sequencer decided (commands/nickserv.py)."""
        d = DService._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            nickserv.notice(self, client, d.text)

    def _last_words(self, client: Client, error: bytes) -> None:
        """Queue ``error`` as the client's last line and hand it to the shell to close."""
        self.queue(client, error)
        client.closed = True
        self.closing.append(client)
        self.throttled.discard(client)
        client.inq = NO_INPUT

    def forget(self, client: Client) -> None:
        """The shell has closed the connection: drop it."""
        self.clients.pop(client.uid, None)
        self.throttled.discard(client)
        self.placement.forget(client.uid)
        if client.caps & self.special_mask:
            self.tagged -= 1
        client.caps = 0

    # -- command counts (STATS m) -----------------------------------------------------------------
    def local_counts(self) -> dict[bytes, int]:
        """How often each command ran on this worker since it started."""
        counts = dict(self.dispatcher.counts)
        relay = self.relay
        for name, fast in ((b"PRIVMSG", relay.privmsgs), (b"NOTICE", relay.notices)):
            if fast:
                counts[name] = counts.get(name, 0) + fast
        return counts

    def command_counts(self) -> dict[bytes, int]:
        """Context: how often each command ran on the whole server: every other worker's last
        report (network state, about a second old at most), and this worker's counts now."""
        return self.state.total_counts((self.incarnation, self.local_counts()))

    def _report_counts(self) -> None:
        """Tell the network this worker's command counts, when they changed (every tick)."""
        counts = self.local_counts()
        if counts != self._reported_counts:
            self._reported_counts = counts
            self.submit(make(RCounts, self.incarnation, counts), barrier=False)

    # -- connections -------------------------------------------------------------------------------
    def admission(self, ip: bytes) -> bytes | None:
        """Why a new connection from ``ip`` must be refused (``--max-clients``,
        ``--max-clients-per-ip``), or None. Counts the whole network from the replica plus
        this worker's connections that have not registered yet."""
        cfg = self.config
        if cfg.max_clients <= 0 and not cfg.max_clients_per_ip:  # (AUTO: only unresolved)
            return None
        # (counted, not listed: --max-clients auto is on by default, and a list of the
        # local clients at every accept would cost O(clients) each at 20,000 of them)
        unregistered = max(0, len(self.clients) - len(self.state.local))
        if 0 < cfg.max_clients <= len(self.state.users) + unregistered:
            return b"Server is full"
        if cfg.max_clients_per_ip:
            same = sum(1 for u in self.state.users.values() if u.ip == ip)
            same += sum(1 for c in self.clients.values() if c.user is None and c.ip == ip)
            if same >= cfg.max_clients_per_ip:
                return b"Too many connections from your IP"
        return None

    def connect(self, ip: bytes, now: float) -> Client:
        self._now = now
        self._next_uid += 1
        # the address shared with every other client and user from it (State.shared)
        client = Client(self._next_uid, self.state.shared(ip), now)
        self.clients[client.uid] = client
        return client

    def connection_lost(self, client: Client, reason: bytes, now: float) -> None:
        """The peer went away (EOF or socket error) without QUIT, or without a QUIT we have
        processed: lines it sent before hanging up may still wait behind its barrier or flood
        control (a client that sends ``NICK`` then ``QUIT`` and closes at once). They count,
        as if it had waited: its input is held (the shell stops reading), they run when the
        wait is over, and then the shell reads again, meets the end of the stream again, and
        this closes it (or holds it again, while lines are left)."""
        self._now = now
        if client.inq and not client.closed and not client.quitting:
            if not client.held:
                client.held = True
                self.held_changed.append(client)
            return
        if client.quitting and not client.closed:
            client.pending = NO_OUTPUT
            self._last_words(client, b"")  # gone before its quit was decided: just close
        elif not client.closed:
            self.disconnect(client, reason, flush=False)

    def data_received(self, client: Client, data: bytes, now: float) -> None:
        """Bytes from ``client``: cut into lines, then process as many as ordering allows."""
        self._now = now
        if client.quitting:
            return  # its QUIT is with the sequencer: nothing after it counts
        client.last_active = now
        client.ping_sent = 0.0
        buf = client.linebuf
        if not client.received and data[:2] == TLS_HANDSHAKE and (buf is None or not buf.pending):
            # A TLS client on a plain port: its ClientHello is no IRC. Say why and close, at
            # once (a registered client has received lines: it never gets this far)
            self.disconnect(client, b"This port does not speak TLS")
            return
        # A client holds a LineBuffer only between a read that ends mid-line and the one
        # that ends it (issue 14's idle memory: 56 bytes): the others share the spare.
        # Per read, not per line: one byte test for a read that ends a line (nearly all;
        # the shell never passes an empty read: that is the end of the stream).
        if buf is None:
            buf = self.spare_lines
            lines = buf.feed(data)
            if data[-1] != 10 and not buf.idle:
                client.linebuf = buf
                self.spare_lines = LineBuffer(self.input_limit)
        else:
            lines = buf.feed(data)
            if buf.idle:
                client.linebuf = None
        client.received += len(lines)
        if not lines:
            if buf.pending > self.config.recvq + self.input_limit:
                self.disconnect(client, b"Excess Flood")
            return
        if client.inq or client.waiting or client in self.throttled:
            self._hold(client, lines)
            return
        self._process(client, lines)

    def _process(self, client: Client, lines: list[bytes]) -> None:
        """Process ``lines`` in order until the barrier or flood control stops us."""
        flood = self.config.flood_control
        interval = 1.0 / self.config.flood_rate
        allowance = self.config.flood_burst * interval
        now = self._now
        try:
            self._process_lines(client, lines, flood, interval, allowance, now)
        finally:
            self.relay.flush()

    def _process_lines(
        self,
        client: Client,
        lines: list[bytes],
        flood: bool,
        interval: float,
        allowance: float,
        now: float,
    ) -> None:
        first = client.received - len(lines)  # the index of lines[0] (see handle_line)
        handle_line = self.dispatcher.handle_line
        for i, line in enumerate(lines):
            if client.closed or client.quitting:
                return
            if client.waiting or (flood and client.flood_clock - now > allowance):
                if not client.waiting:
                    self.throttled.add(client)
                self._hold(client, lines[i:])
                return
            if flood:
                client.flood_clock = max(client.flood_clock, now) + interval
            if not handle_line(client, line, first + i):
                # behind a read barrier: this line and the rest wait for the sync's D_DONE
                if flood:
                    client.flood_clock -= interval
                self._hold(client, lines[i:])
                return

    def _hold(self, client: Client, rest: list[bytes]) -> None:
        """Keep ``rest`` (every line not processed yet: ``inq`` is empty here) for later."""
        if client.inq is NO_INPUT:  # (shared while empty: never written)
            client.inq = list(rest)
        else:
            client.inq.extend(rest)
        client.inq_bytes += sum(map(len, rest))
        if client.inq_bytes > self.config.recvq:
            self._recvq_full(client)

    def _recvq_full(self, client: Client) -> None:
        """More than --recvq waits unprocessed. With flood control on, the client outran it:
        ``Excess Flood``. With it off (a trusted bot pipelining 1,000 NICKs), the lines only
        wait for the ordering barrier: hold its input (the shell stops reading the socket, so
        the kernel's window pushes back) until the queue drains, and lose nothing."""
        if self.config.flood_control:
            self.disconnect(client, b"Excess Flood")
        elif not client.held:
            client.held = True
            self.held_changed.append(client)

    def resume(self, client: Client) -> None:
        """Process what ``client`` has queued, now that its barrier or flood hold lifted."""
        if client.closed or not client.inq:
            return
        self.throttled.discard(client)
        lines = client.inq
        client.inq = NO_INPUT
        client.inq_bytes = 0
        self._process(client, lines)
        if client.held and client.inq_bytes <= self.config.recvq:
            client.held = False
            self.held_changed.append(client)

    def handle_line(self, client: Client, line: bytes, index: int) -> bool:
        """One line through the dispatcher (see :meth:`Dispatcher.handle_line`)."""
        return self.dispatcher.handle_line(client, line, index)

    def relay_message(
        self,
        client: Client,
        target: bytes,
        line: bytes,
        notice: bool,
        tags: bytes = b"",
        flags: int = 0,
    ) -> None:
        """Context: send a formatted PRIVMSG/NOTICE/TAGMSG ``line`` towards ``target`` (the
        relay)."""
        self.relay.message(client, target, line, notice, tags, flags)

    def request_rehash(self, client: Client) -> None:
        """Context: reload the config file for ``client`` (see :class:`~.offload.Offload`)."""
        self.offload.rehash_requests.append(client.uid)

    def reconfigure(self, config: Config) -> None:
        """A reloaded config (the shell read the file): every later decision uses it, and the
        WHOWAS history keeps at most its new ``whowas_size`` entries."""
        self.config = config
        self.state.set_whowas_size(config.whowas_size)
        if self.sequencer is not None:
            self.sequencer.config = config

    def set_caps(self, client: Client, caps: int) -> None:
        """Context: ``client`` negotiated ``caps`` (keeps ``tagged`` counting the clients
        whose lines need tags)."""
        mask = self.special_mask
        self.tagged += bool(caps & mask) - bool(client.caps & mask)
        client.caps = caps

    # -- time --------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self._now

    def release_throttled(self, now: float) -> None:
        """Give flood-held clients their turn again (called every loop turn while any wait)."""
        self._now = now
        if not self.throttled:
            return
        interval = 1.0 / self.config.flood_rate
        allowance = self.config.flood_burst * interval
        for client in [c for c in self.throttled if c.flood_clock - now <= allowance]:
            self.resume(client)

    def tick(self, now: float) -> None:
        """Once a second or so: registration timeout, idle PING, ping timeout; the command
        counts go to the network (STATS m)."""
        self._now = now
        cfg = self.config
        self._report_counts()
        if self.nick_deadlines:  # nick protection's renames (nick_protection = rename)
            nickserv.enforce(self, self.nick_deadlines, self.clients, self.placement.moving)
        for client in list(self.clients.values()):
            if client.closed:
                continue
            if not client.pending:  # sent, and nothing since: the shared empty one (idle memory)
                client.pending = NO_OUTPUT
            if client.user is None:
                if now - client.connected_at > cfg.registration_timeout:
                    self.disconnect(client, b"Registration timeout")
            elif client.ping_sent:
                if now - client.ping_sent > cfg.ping_timeout:
                    seconds = b"%d seconds" % int(now - client.last_active)
                    self.disconnect(
                        client,
                        b"Ping timeout: " + seconds,
                        quit_message=b"Ping timeout: " + seconds,
                    )
            elif now - client.last_active > cfg.ping_interval:
                client.ping_sent = now
                self.labels.other(client, lines.ping(cfg.server_name))

    def shutdown(self, reason: bytes) -> None:
        """Tell every client the server is going away (the shell flushes, then closes)."""
        error = lines.error(reason)
        for client in list(self.clients.values()):
            if not client.closed:
                self._last_words(client, error)

    # -- sequenced events and deliveries ------------------------------------------------------------
    def apply(self, record: Record) -> None:
        """Apply one record from the sequencer (an event, a delivery, a reply or a D_DONE)."""
        self._events[record[0]](record)

    def apply_batch(self, records: Iterable[Record], now: float) -> None:
        self._now = now
        placement = self.placement
        if placement.stalled is not None:  # a client is on its way here: the rest waits
            placement.behind(records)
            return
        table = self._events
        remaining = iter(records)
        try:
            for record in remaining:
                table[record[0]](record)
        except Stall:  # (an E_MOVE to this worker; a try costs nothing until it raises)
            placement.stalled = []
            placement.behind(remaining)

    def _e_join_placed(self, rec: Record) -> None:
        """E_JOIN with channel-affine placement: a local joiner may want another worker."""
        self.replica.table[E_JOIN](rec)
        uid = rec[1]  # EJoin.uid
        if uid in self.clients:
            self.placement.consider(uid)
        chan = self.state.channel(rec[2])  # EJoin.channel
        if chan is not None and chan.local:
            self.placement.reconsider(chan, uid)

    def _e_gone_placed(self, rec: Record) -> None:
        """E_QUIT or E_KILL with channel-affine placement: a session that came early for the
        user is closed (:meth:`Placement.gone`)."""
        self.replica.table[rec[0]](rec)
        if self.placement.early:
            self.placement.gone(rec[2] if rec[0] == E_KILL else rec[1])  # (EKill.target)

    def _d_kill(self, rec: Record) -> None:
        d = DKill._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            self.disconnect(client, d.reason)

    def load_snapshot(self, snap: Record) -> None:
        """Adopt the sequencer's view of the network (at start, or from a restarted hub), and
        point each local client at its user in it."""
        self.state.load_snapshot(snap)
        for uid, client in list(self.state.local.items()):
            user = self.state.users.get(uid)
            if user is None:
                self.state.local.pop(uid)
                client.user = None
                self.disconnect(client, b"Lost in a server restart")
            else:
                if user.worker != self.slot:  # (a move the new hub will decide again: here)
                    self.state.apply(make(EMove, uid, user.worker, self.slot, 0))
                client.user = user
                client.source = b""  # made again from this user's mask (source_of)
                client.privileges = user.privileges
        self.placement.hub_back()
        self.placement.resynced()
        self.offload.hub_restarted()  # (nothing waits at the first snapshot)

    def _d_reply(self, rec: Record) -> None:
        d = DReply._make(rec)
        client = self.clients.get(d.uid)
        if client is not None:
            if client.user is None and d.numeric == N.ERR_NICKNAMEINUSE:
                client.refused_nick = client.nick  # (REGISTER * names it: accounts.py)
                client.nick = b""  # the nick it asked for is not its: address it as "*"
            self.reply(client, d.numeric, *d.params)

    def _d_stored(self, rec: Record) -> None:
        """The store has written what the sequencer decided before an R_HISTSYNC: carry on
        with what waited for it (:meth:`~.offload.Offload.after_stored`)."""
        self.offload.password_checked(rec[2], None, self._now)

    def _d_done(self, rec: Record) -> None:
        moving = self.placement.moving
        if moving:  # (a client's first D_DONE after its R_MOVE: the move was refused)
            moving.discard(rec[1])
        client = self.clients.get(rec[1])
        if client is None:
            return
        client.waiting -= 1
        if client.phase is Phase.PENDING and client.user is None:
            feed(client, Input.REFUSED)  # (nick in use): the client may try again
        self._barrier_down(client)

    def _barrier_down(self, client: Client) -> None:
        """One of ``client``'s waits is over: when none is left, send the ERROR its decided
        quit owes it, or process the lines that waited."""
        if not client.waiting:
            if client.label is not None:
                self.labels.close_if_done(client)
            if client.quitting:
                if not client.closed:
                    self._last_words(client, client.quitting)
                return
            self.resume(client)
