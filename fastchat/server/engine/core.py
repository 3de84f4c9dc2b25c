"""A worker's sans-I/O core: connections in, effects out.

Owns: each local connection's protocol life (input processing in order, the ordering barrier,
flood control, timeouts), applying the sequencer's events and deliveries to the local replica,
and rendering what each local client must receive.
Must never: touch a socket, a selector, the clock or another process. The I/O shell
(:mod:`fastchat.server.runtime.worker`) feeds it bytes, events and the time, and carries out its effects.

Effects are collected, not performed:
- ``client.pending`` gets the bytes a client is owed; ``dirty`` lists clients with new output,
  so the shell sends each one once per loop turn (coalescing is what makes fan-out cheap);
- ``outbox`` gets requests for the sequencer when it runs in the hub (multi-worker);
- ``closing`` lists clients to disconnect once their last bytes are out.

Ordering: a client's commands are processed strictly in order. A command that needs the
sequencer (JOIN, NICK, ...) raises the client's barrier until the sequencer's ``D_DONE`` comes
back; lines that arrive meanwhile wait in ``inq``. So every command sees the effects of the ones
before it, exactly as on a single-process server. Messages (PRIVMSG/NOTICE) change no state and
do not raise the barrier: they stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.irc.linebuffer import OVERLONG
from fastchat.irc.message import (
    MAX_INPUT_LINE,
    MAX_LINE,
    BlankLine,
    ProtocolError,
    fit_line,
    input_too_long,
    parse,
)
from fastchat.server.config import Config
from fastchat.server.connection import Client
from fastchat.server.network.records import (
    B_HELLO,
    B_RECEIVED,
    B_SEEN,
    B_SNAPSHOT,
    D_CHAN,
    D_DONE,
    D_KILL,
    D_REPLY,
    D_USER,
    E_AWAY,
    E_INTRO,
    E_INVITE,
    E_JOIN,
    E_KICK,
    E_MODE,
    E_NICK,
    E_PART,
    E_QUIT,
    E_TOPIC,
    E_UMODE,
    R_CHANMSG,
    R_QUIT,
    R_SYNC,
    R_USERMSG,
    Record,
)
from fastchat.server.network.sequencer import Sequencer, may_speak
from fastchat.server.network.state import Channel, State
from fastchat.server.render import replies

if TYPE_CHECKING:
    from fastchat.server.commands import Handler

log = logging.getLogger("fastchat.core")

_MESSAGE_COMMANDS = (b"PRIVMSG ", b"NOTICE ")
_CHANNEL_PREFIXES = b"#&"


class _Run:
    """Approved messages from one client to one channel, not yet relayed (see _flush_run)."""

    __slots__ = ("client", "key", "lines", "notice")

    def __init__(self, client: Client, key: bytes, lines: list[bytes], notice: bool) -> None:
        self.client = client
        self.key = key
        self.lines = lines
        self.notice = notice


class LocalRouter:
    """Routes the sequencer's decisions straight back into this core (``--workers 1``)."""

    __slots__ = ("core",)

    def __init__(self, core: WorkerCore) -> None:
        self.core = core

    def event(self, event: Record) -> None:
        self.core.apply(event)

    def to_channel(self, chan: Channel, record: Record) -> None:
        self.core._d_chan(record)

    def to_worker(self, worker: int, record: Record) -> None:
        self.core.apply(record)


class WorkerCore:
    """Everything a worker knows and decides, without I/O."""

    def __init__(
        self, config: Config, slot: int = 0, incarnation: int = 1, standalone: bool = True
    ) -> None:
        from fastchat.server.commands import COMMANDS

        self.config = config
        self.slot = slot
        self.state = State()
        self.clients: dict[int, Client] = {}  # uid -> local connection (registered or not)
        self.dirty: list[Client] = []
        self.closing: list[Client] = []
        self.held_changed: list[Client] = []  # input held or released (see _recvq_full)
        self.outbox: list[Record] = []
        self.throttled: set[Client] = set()  # input held back by flood control
        self._run: _Run | None = None  # approved channel messages being joined (_flush_run)
        self.created = b"at start-up"
        self._next_uid = incarnation << 32
        # Exactly-once across hub restarts (see _b_seen, hello; the shell keeps the request
        # frames, bus.Retained): our requests are numbered from ``first_seq``; ``acked``: how
        # far every worker has received ours; ``seen``: how far we have received each
        # origin's; ``order_log``: the hub's decision order since what every worker had.
        self.first_seq = incarnation << 32
        self.acked = self.first_seq
        self.seen: dict[int, int] = {}
        self.seen_changed = False
        self.order_log: list[tuple[int, int]] = []
        self._now = 0.0
        self._commands: dict[bytes, Handler] = COMMANDS
        self.sequencer: Sequencer | None = (
            Sequencer(self.state, config, LocalRouter(self)) if standalone else None
        )
        self._events: dict[int, Callable[[Record], None]] = {
            D_CHAN: self._d_chan,
            D_USER: self._d_user,
            D_REPLY: self._d_reply,
            D_DONE: self._d_done,
            D_KILL: self._d_kill,
            B_SNAPSHOT: self._b_snapshot,
            B_SEEN: self._b_seen,
            E_INTRO: self._e_intro,
            E_NICK: self._e_nick,
            E_JOIN: self._e_join,
            E_PART: self._e_part,
            E_QUIT: self._e_quit,
            E_TOPIC: self._e_topic,
            E_MODE: self._e_mode,
            E_KICK: self._e_kick,
            E_AWAY: self._e_away,
            E_INVITE: self._e_invite,
            E_UMODE: self._e_umode,
        }

    def set_start_time(self, now: float) -> None:
        self.created = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC").encode()

    # -- effects ---------------------------------------------------------------------------------
    def send(self, client: Client, data: bytes) -> None:
        """Queue ``data`` (whole lines) for ``client``; the shell sends it this loop turn."""
        if client.closed:
            return
        pending = client.pending
        if not pending:
            self.dirty.append(client)
        pending.append(data)

    def send_lines(self, client: Client, lines: Iterable[bytes]) -> None:
        self.send(client, b"".join(lines))

    def reply(self, client: Client, code: bytes, *params: bytes) -> None:
        self.send(client, replies.numeric(self.config.server_name, client.name, code, *params))

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
        log.debug(
            "connection %#x (%s) closed: %s",
            client.uid,
            client.ip.decode(),
            reason.decode(errors="replace"),
        )
        error = b"ERROR :Closing link: (%s@%s) [%s]\r\n" % (
            client.username or b"*",
            client.host,
            reason,
        )
        user = client.user
        request = (R_QUIT, client.uid, quit_message if quit_message is not None else reason)
        if user is not None:
            for chan in user.channels:
                chan.local.pop(client.uid, None)
            self.state.local.pop(client.uid, None)
            if flush:
                client.quitting = error
                client.inq.clear()
                client.inq_bytes = 0
                self.throttled.discard(client)
                self.submit(request)  # under the barrier: _d_done sends the ERROR
                return
        if not flush:
            client.pending.clear()
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

    def _last_words(self, client: Client, error: bytes) -> None:
        """Queue ``error`` as the client's last line and hand it to the shell to close."""
        if not client.pending:
            self.dirty.append(client)
        client.pending.append(error)
        client.closed = True
        self.closing.append(client)
        self.throttled.discard(client)
        client.inq.clear()

    def forget(self, client: Client) -> None:
        """The shell has closed the connection: drop it."""
        self.clients.pop(client.uid, None)
        self.throttled.discard(client)

    # -- connections -------------------------------------------------------------------------------
    def admission(self, ip: bytes) -> bytes | None:
        """Why a new connection from ``ip`` must be refused (``--max-clients``,
        ``--max-clients-per-ip``), or None. Counts the whole network from the replica plus
        this worker's connections that have not registered yet."""
        cfg = self.config
        if not cfg.max_clients and not cfg.max_clients_per_ip:
            return None
        unregistered = [c for c in self.clients.values() if c.user is None]
        if cfg.max_clients and len(self.state.users) + len(unregistered) >= cfg.max_clients:
            return b"Server is full"
        if cfg.max_clients_per_ip:
            same = sum(1 for u in self.state.users.values() if u.host == ip)
            same += sum(1 for c in unregistered if c.ip == ip)
            if same >= cfg.max_clients_per_ip:
                return b"Too many connections from your IP"
        return None

    def connect(self, ip: bytes, now: float) -> Client:
        self._now = now
        self._next_uid += 1
        client = Client(self._next_uid, ip, now, MAX_INPUT_LINE)
        self.clients[client.uid] = client
        return client

    def connection_lost(self, client: Client, reason: bytes, now: float) -> None:
        """The peer went away (EOF or socket error) without QUIT."""
        self._now = now
        if client.quitting and not client.closed:
            client.pending.clear()
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
        lines = client.linebuf.feed(data)
        client.received += len(lines)
        if not lines:
            if client.linebuf.pending > self.config.recvq + MAX_INPUT_LINE:
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
            self._flush_run()

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
            if not self.handle_line(client, line, first + i):
                # behind a read barrier: this line and the rest wait for the sync's D_DONE
                if flood:
                    client.flood_clock -= interval
                self._hold(client, lines[i:])
                return

    def _hold(self, client: Client, rest: list[bytes]) -> None:
        """Keep ``rest`` (every line not processed yet: ``inq`` is empty here) for later."""
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
        client.inq = []
        client.inq_bytes = 0
        self._process(client, lines)
        if client.held and client.inq_bytes <= self.config.recvq:
            client.held = False
            self.held_changed.append(client)

    def handle_line(self, client: Client, line: bytes, index: int) -> bool:
        """One line (the ``index``-th the client sent): parse, dispatch through the command
        table, turn remote errors into numerics. False when the line must wait behind a read
        barrier: the caller keeps it, and everything after it, for when the barrier lifts.

        The read barrier makes queries linearizable across workers. A command that answers
        from the replica (``Handler.reads``: WHO, WHOIS, NAMES, ISON, MODE, NICK...) must see
        every change the network acknowledged to anyone before the line arrived; another
        worker's replica may not have applied it yet. So the query first sends ``R_SYNC``
        through the sequencer, under the client's barrier: its ``D_DONE`` comes back after
        every event decided before it (one FIFO from the hub), and then the replica is at
        least that current. One sync covers every line received before it was sent
        (``client.synced_upto``), so a burst of queries pays one round trip. With one worker
        the replica *is* the sequencer's state: no sync, no cost.

        An unexpected exception in a handler is *our* bug: it disconnects this client only
        (logged with its connection id) and the worker carries on.
        """
        if (
            client.user is not None
            and line.startswith(_MESSAGE_COMMANDS)
            and self._fast_message(client, line)
        ):
            return True
        self._flush_run()  # whatever this line does comes after the messages before it
        if line is OVERLONG or input_too_long(line):
            self.reply(client, N.ERR_INPUTTOOLONG, b"Input line was too long")
            return True
        try:
            msg = parse(line)
        except BlankLine:
            return True  # Modern IRC: empty lines are ignored, without a reply
        except ProtocolError as exc:
            self.reply(client, N.ERR_UNKNOWNERROR, b"*", b"Malformed message: " + str(exc).encode())
            return True
        handler = self._commands.get(msg.command)
        if handler is None:
            if client.registered:
                self.reply(client, N.ERR_UNKNOWNCOMMAND, msg.command, b"Unknown command")
            else:
                self.reply(client, N.ERR_NOTREGISTERED, b"You have not registered")
            return True
        if not handler.before_registration and not client.registered:
            self.reply(client, N.ERR_NOTREGISTERED, b"You have not registered")
            return True
        if handler.reads and self.sequencer is None and index >= client.synced_upto:
            client.synced_upto = client.received
            self.submit((R_SYNC, client.uid))
            return False
        try:
            handler(self, client, msg)
        except N.IRCError as err:
            self.reply(client, err.numeric, *err.params)
        except Exception:
            log.exception(
                "connection %#x: handler for %r failed; disconnecting it", client.uid, msg.command
            )
            self.disconnect(client, b"Internal server error")
        return True

    def _fast_message(self, client: Client, line: bytes) -> bool:
        """The hot path for the commonest line, ``PRIVMSG <one target> :<text>``.

        It does exactly what the PRIVMSG handler does for that shape, without building a
        :class:`Message`; any other shape (several targets, tags, a source, no text, odd
        spacing, an overlong line) returns False and takes the general path.
        """
        notice = line[0] == 78  # "N"
        target, sep, text = line[7 if notice else 8 :].partition(b" ")
        if (
            not sep
            or not target
            or text[:1] != b":"
            or len(text) < 2
            or b"," in target
            or len(line) > MAX_LINE - 2
            or b"\0" in line
        ):
            return False
        out = b"%s%s %s %s\r\n" % (
            client.source,
            b"NOTICE" if notice else b"PRIVMSG",
            target,
            text,
        )
        if len(out) > MAX_LINE:  # our prefix made it longer than a line may be: cut the text
            out = fit_line(out)
        self.relay_message(client, target, out, notice)
        return True

    def relay_message(self, client: Client, target: bytes, line: bytes, notice: bool) -> None:
        """Send one formatted PRIVMSG/NOTICE ``line`` towards ``target``.

        If the replica says the message may go, it streams to the sequencer with no barrier
        (the common case, and the fast one). If the replica says no, the replica may only be
        behind (a user who registered a moment ago on another worker), so the sequencer
        decides, under the client's barrier: its answer comes before the reply to anything
        the client sent next, exactly as on a single server.
        """
        key = fold(target)
        state = self.state
        if target[0] in _CHANNEL_PREFIXES:
            chan = state.channels.get(key)
            if chan is not None and may_speak(state, chan, client.uid):
                run = self._run
                if run is not None and run.client is client and run.key == key:
                    run.lines.append(line)
                    run.notice = run.notice and notice
                else:
                    self._flush_run()
                    self._run = _Run(client, key, [line], notice)
                return
            self._flush_run()
            self.submit((R_CHANMSG, client.uid, key, line, notice, True))
            return
        self._flush_run()
        them = state.nicks.get(key)
        if them is None:
            self.submit((R_USERMSG, client.uid, key, line, notice, True))
            return
        # Whether the target is away is the sequencer's to say (RPL_AWAY): a replica may not
        # have applied an AWAY that was already acknowledged.
        self.submit((R_USERMSG, client.uid, key, line, notice, False), barrier=False)

    def _flush_run(self) -> None:
        """Relay the run of approved messages from one client to one channel as one record.

        Shaped for speed: consecutive messages from one sender to one channel (what a client
        that pipelines writes) are joined into one ``bytes``, so the sequencer's check, the
        hub's routing, the bus frame and each member's append happen once per run instead of
        once per message. Members receive exactly the same bytes in the same order; any other
        command flushes the run first, so order across targets is untouched.
        """
        run = self._run
        if run is None:
            return
        self._run = None
        blob = run.lines[0] if len(run.lines) == 1 else b"".join(run.lines)
        uid = run.client.uid
        if self.sequencer is not None:
            # One worker: this replica *is* the sequencer's state, so the approval above is
            # its decision; deliver without re-deciding (the hot path).
            self._d_chan((D_CHAN, run.key, uid, blob, int(self._now * 1000)))
        else:
            self.outbox.append((R_CHANMSG, uid, run.key, blob, run.notice, False))

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
        """Once a second or so: registration timeout, idle PING, ping timeout."""
        self._now = now
        cfg = self.config
        for client in list(self.clients.values()):
            if client.closed:
                continue
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
                self.send(client, b"PING :%s\r\n" % cfg.server_name)

    def shutdown(self, reason: bytes) -> None:
        """Tell every client the server is going away (the shell flushes, then closes)."""
        error = b"ERROR :%s\r\n" % reason
        for client in list(self.clients.values()):
            if not client.closed:
                self._last_words(client, error)

    # -- sequenced events and deliveries ------------------------------------------------------------
    def apply(self, record: Record) -> None:
        """Apply one record from the sequencer (an event, a delivery, a reply or a D_DONE)."""
        self._events[record[0]](record)

    def apply_batch(self, records: Iterable[Record], now: float) -> None:
        self._now = now
        table = self._events
        for record in records:
            table[record[0]](record)

    def _d_chan(self, rec: Record) -> None:
        # The hot path: one formatted line, the same bytes appended to every local member's
        # queue. No per-delivery accounting: the shell bounds a queue (--sendq) only once the
        # kernel stops taking its bytes.
        chan = self.state.channels.get(rec[1])
        if chan is None:
            return
        sender = rec[2]
        line = rec[3]
        dirty = self.dirty
        for uid, client in chan.local.items():
            if uid != sender:
                pending = client.pending
                if not pending:
                    dirty.append(client)
                pending.append(line)

    def _d_kill(self, rec: Record) -> None:
        client = self.clients.get(rec[1])
        if client is not None:
            self.disconnect(client, rec[2])

    def _b_snapshot(self, rec: Record) -> None:
        self.load_snapshot(rec[1])
        # A snapshot holds every request decided so far: we have, in effect, received them.
        seen = self.seen
        for origin, upto in rec[2].items():
            if upto > seen.get(origin, 0):
                seen[origin] = upto
        self.seen_changed = True

    # -- exactly once across hub restarts ------------------------------------------------------------
    def take_report(self) -> Record:
        """What we have received, for the hub's ``stable`` (B_RECEIVED); the shell asks when
        ``seen_changed``."""
        self.seen_changed = False
        return (B_RECEIVED, dict(self.seen))

    def _b_seen(self, rec: Record) -> None:
        """The end of a hub frame: the batches it decided (and we now hold every record of),
        and which requests every worker has."""
        order = rec[1]
        if order:
            seen = self.seen
            for origin, upto in order:
                seen[origin] = upto
            self.order_log += order
            self.seen_changed = True
        stable = rec[2]
        if stable is None:
            return  # unchanged since the hub's last frame
        mine = stable.get(self.slot, 0)
        if mine > self.acked:
            self.acked = mine
        log_ = self.order_log
        done = 0
        for origin, upto in log_:
            if upto > stable.get(origin, 0):
                break
            done += 1
        if done:
            del log_[:done]

    def hello(self, resync: bool, first_seq: int) -> Record:
        """The record that opens a link to a hub. To a new hub after a crash: our replica,
        what we received from the old one, and ``first_seq``, the number of the first request
        the shell sends again right after it (every one not every worker had received)."""
        if not resync:
            return (B_HELLO, self.slot, None, (), first_seq, {}, ())
        return (
            B_HELLO,
            self.slot,
            self.state.snapshot(),
            tuple(self.state.local),  # the users we hold
            first_seq,
            dict(self.seen),
            tuple(self.order_log),
        )

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
                client.user = user
                client.source = b":" + user.mask + b" "

    def _d_user(self, rec: Record) -> None:
        client = self.state.local.get(rec[1])
        if client is not None:
            self.send(client, rec[2])

    def _d_reply(self, rec: Record) -> None:
        client = self.clients.get(rec[1])
        if client is not None:
            if client.user is None and rec[2] == N.ERR_NICKNAMEINUSE:
                client.nick = b""  # the nick it asked for is not its: address it as "*"
            self.reply(client, rec[2], *rec[3])

    def _d_done(self, rec: Record) -> None:
        client = self.clients.get(rec[1])
        if client is None:
            return
        client.waiting -= 1
        if client.registering and client.user is None:
            client.registering = False  # refused (nick in use): the client may try again
        if not client.waiting:
            if client.quitting:
                if not client.closed:
                    self._last_words(client, client.quitting)
                return
            self.resume(client)

    def _e_intro(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        client = self.clients.get(ev[1])
        if client is None:
            return
        user = self.state.users[ev[1]]
        if client.closed:
            return
        client.user = user
        client.source = b":" + user.mask + b" "
        client.registering = False
        self.state.local[user.uid] = client
        cfg = self.config
        self.send_lines(client, replies.welcome(cfg, user, self.created))
        self.send_lines(client, replies.lusers(cfg, user.nick, self.state, len(self.clients)))
        self.send_lines(client, replies.motd(cfg, user.nick))

    def _members_of_channels(self, uid: int) -> dict[int, Client]:
        """Local clients that share a channel with ``uid`` (each once)."""
        user = self.state.users.get(uid)
        seen: dict[int, Client] = {}
        if user is not None:
            for chan in user.channels:
                seen.update(chan.local)
        return seen

    def _e_nick(self, ev: Record) -> None:
        user = self.state.users.get(ev[1])
        if user is None:
            return
        line = b":%s NICK :%s\r\n" % (user.mask, ev[2])
        recipients = self._members_of_channels(user.uid)
        me = self.state.local.get(user.uid)
        if me is not None:
            recipients[user.uid] = me
        self.state.apply(ev)
        for client in recipients.values():
            self.send(client, line)
        if me is not None:
            me.nick = user.nick
            me.source = b":" + user.mask + b" "

    def _e_join(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        user = self.state.users[ev[1]]
        chan = self.state.channels[fold(ev[2])]
        line = b":%s JOIN %s\r\n" % (user.mask, chan.name)
        for client in chan.local.values():
            self.send(client, line)
        me = chan.local.get(user.uid)
        if me is not None:
            cfg = self.config
            if chan.topic:
                self.send_lines(me, replies.topic(cfg, me.name, chan))
            self.send_lines(me, replies.names(cfg, me.name, self.state, chan))

    def _e_part(self, ev: Record) -> None:
        chan = self.state.channels.get(ev[2])
        user = self.state.users.get(ev[1])
        if chan is None or user is None or user.uid not in chan.members:
            return
        if ev[3]:
            line = fit_line(b":%s PART %s :%s\r\n" % (user.mask, chan.name, ev[3]))
        else:
            line = b":%s PART %s\r\n" % (user.mask, chan.name)
        for client in chan.local.values():
            self.send(client, line)
        self.state.apply(ev)

    def _e_kick(self, ev: Record) -> None:
        chan = self.state.channels.get(ev[2])
        kicker = self.state.users.get(ev[1])
        target = self.state.users.get(ev[3])
        if chan is None or kicker is None or target is None or target.uid not in chan.members:
            return
        line = fit_line(
            b":%s KICK %s %s :%s\r\n" % (kicker.mask, chan.name, target.nick, ev[4] or kicker.nick)
        )
        for client in chan.local.values():
            self.send(client, line)
        self.state.apply(ev)

    def _e_quit(self, ev: Record) -> None:
        user = self.state.users.get(ev[1])
        if user is None:
            return
        line = fit_line(b":%s QUIT :%s\r\n" % (user.mask, ev[2]))
        recipients = self._members_of_channels(user.uid)
        recipients.pop(user.uid, None)
        self.state.apply(ev)
        for client in recipients.values():
            self.send(client, line)
        me = self.clients.get(user.uid)
        if me is not None and not me.closed and not me.quitting:
            # the sequencer removed a user we still hold (e.g. a resync collision)
            self.disconnect(me, ev[2])

    def _e_topic(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        chan = self.state.channels[ev[2]]
        user = self.state.users.get(ev[1])
        source = user.mask if user is not None else ev[4]
        line = fit_line(b":%s TOPIC %s :%s\r\n" % (source, chan.name, ev[3]))
        for client in chan.local.values():
            self.send(client, line)

    def _e_mode(self, ev: Record) -> None:
        chan = self.state.channels.get(ev[2])
        user = self.state.users.get(ev[1])
        if chan is None or not self.state.apply(ev):
            return
        source = user.mask if user is not None else self.config.server_name
        args = ev[4]
        tail = b"".join(b" " + a for a in args[:-1]) + (b" :" + args[-1] if args else b"")
        line = b":%s MODE %s %s%s\r\n" % (source, chan.name, ev[3], tail)
        for client in chan.local.values():
            self.send(client, line)

    def _e_away(self, ev: Record) -> None:
        self.state.apply(ev)
        me = self.state.local.get(ev[1])
        if me is not None:
            if ev[2]:
                self.reply(me, N.RPL_NOWAWAY, b"You have been marked as being away")
            else:
                self.reply(me, N.RPL_UNAWAY, b"You are no longer marked as being away")

    def _e_umode(self, ev: Record) -> None:
        self.state.apply(ev)
        me = self.state.local.get(ev[1])
        if me is not None and ev[3]:
            self.send(me, b":%s MODE %s :%s\r\n" % (me.name, me.name, ev[3]))

    def _e_invite(self, ev: Record) -> None:
        self.state.apply(ev)
        chan = self.state.channels.get(ev[3])
        inviter = self.state.users.get(ev[1])
        target = self.state.users.get(ev[2])
        if chan is None or inviter is None or target is None:
            return
        me = self.state.local.get(inviter.uid)
        if me is not None:
            self.send(
                me,
                replies.numeric_tokens(
                    self.config.server_name, me.name, N.RPL_INVITING, target.nick, chan.name
                ),
            )
        them = self.state.local.get(target.uid)
        if them is not None:
            self.send(them, b":%s INVITE %s :%s\r\n" % (inviter.mask, target.nick, chan.name))
