"""The benchmark load generator: many IRC clients in a few processes, as cheap per message as
we can make them so that the server, not the generator, is what gets measured.

Owns: planning which client sits in which room and process, connecting and registering them
(paced), running the load (closed loop: a bounded number of messages in flight per room;
open loop: a fixed total rate, senders staggered; idle: connected and silent), counting
deliveries and sampling latency, and the loss check (deliveries expected vs received).
Must never: connect anywhere but the address it is given, run unbounded in count or time,
or leave a child process behind.

Why it looks the way it does (it is a hot path too):
- raw non-blocking sockets on one ``select.epoll`` per process, no asyncio: per-message
  overhead of an event loop would be charged to the measurement;
- talkers pipeline: a closed-loop refill writes many ``PRIVMSG`` lines in one ``send``;
- receivers never split lines: ``bytes.count`` of the marker over each 256 KiB chunk
  (see :mod:`bench.counting`); only every Nth message carries a timestamp to parse;
- one process per core (``processes``), forked, each owning a share of the clients.

Transports (``LoadSpec.transport``): ``tcp``; ``tls`` (the server's certificate is not
verified: the benchmark measures the server's own self-signed one, on loopback); ``ws``, the
IRCv3 WebSocket ``text.ircv3.net`` subprotocol (see :mod:`bench.wsframes`). The counting is
the same for all three; only connecting, reading and framing differ, and the ``tcp`` paths
are what they were before the other two existed.

Closed loop: the talkers of a room and one "witness" member of the same room live in the
same process; a room's messages in flight are those its talkers sent that the witness has
not yet received. Talkers refill the room's window once half of it has drained (with
``topup``, as soon as any of it has).
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import resource
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bench import wsframes
from bench.counting import (
    DeliveryCounter,
    WsDeliveryCounter,
    plain_text,
    summarize_ns,
    timed_text,
)

Mode = Literal["closed", "open", "idle"]
Transport = Literal["tcp", "tls", "ws"]
Probe = Callable[[], dict[str, float]]
#: Seconds an idle load stays connected and silent after the start of its window, before its
#: last reading: servers settle after the connect storm (fastchat gives its heap's freed pages
#: back within a second of going quiet, runtime/memory.py), and an idle connection's memory is
#: what stays once they have.
IDLE_WINDOW = 2.0

#: Where each connected client sits: (room, the client's local TCP port), which the server's
#: side sees as the connection's remote port (bench/run.py finds the worker holding it)
Placement = list[tuple[int, int]]

_RECV = 256 * 1024
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERRS = select.EPOLLERR | select.EPOLLHUP
# A write that cannot go now; a TLS socket says so with errors of its own
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError)
# A PING inside WebSocket frames: its token ends where the next frame's header (not ASCII) is
_WS_PING = re.compile(rb"PING (:?[\x21-\x7e]+)")


@dataclass(frozen=True)
class LoadSpec:
    """One load: who connects where, what they send, for how long."""

    mode: Mode
    rooms: int
    members: int  # per room
    talkers: int = 2  # per room, closed loop; in open loop every member talks
    window: int = 64  # closed: messages in flight per room
    rate: float = 0.0  # open: messages per second, all senders together
    duration: float = 5.0  # seconds of steady state that are measured
    warmup: float = 1.0  # seconds of load before the measured window
    processes: int = 2
    sample_every: int = 32  # closed: one message in N carries a timestamp
    pad: int = 48  # filler bytes per message text
    # Connecting is paced by rate (ngIRCd listens with a tiny backlog and drops bursts) and
    # bounded in number (InspIRCd completes registrations on a one-second timer).
    connect_rate: float = 1000.0  # per process, new connections per second
    connect_concurrency: int = 1000  # per process, registering at once
    setup_timeout: float = 120.0
    drain_quiet: float = 1.0  # after the load: stop once nothing arrived for this long
    drain_timeout: float = 5.0
    # Re-arm TCP_QUICKACK after each read: ngIRCd and InspIRCd leave Nagle on, and on loopback
    # (64 KiB MSS: every write is a "small" segment) Nagle waits for our delayed ACK, up to
    # 40 ms. Quick ACKs take that loopback artefact out of everyone's figures.
    quickack: bool = True
    # IRCv3 capabilities every client requests before registering ('' for none): the
    # "tagged" scenarios measure what tags and echoes cost (with echo-message, a sender's own
    # copy is a delivery too, and counted as one)
    caps: str = ""
    # how the clients connect: plain TCP, TLS, or WebSocket (see the module docstring)
    transport: Transport = "tcp"
    # closed loop: refill a room as soon as any of its window has drained (small sends, a
    # few lines each, as chatty clients write), instead of once half of it has (long
    # pipelined sends, which the server relays as long runs: see engine/relay.py)
    topup: bool = False

    @property
    def clients(self) -> int:
        return self.rooms * self.members


@dataclass
class LoadResult:
    """What one load did and saw; figures are for the measured window unless named total."""

    spec: dict[str, Any]
    clients_connected: int = 0
    setup_failures: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    window_seconds: float = 0.0
    sent_per_s: float = 0.0
    delivered_per_s: float = 0.0
    sent_total: int = 0
    expected_total: int = 0
    received_total: int = 0
    lost: int = 0
    disconnects: int = 0
    latency: dict[str, float] = field(default_factory=dict)
    generator_cpu_s: float = 0.0
    generator_busiest: float = 0.0  # the busiest generator process's share of one core
    probe_before: dict[str, float] = field(default_factory=dict)
    probe_start: dict[str, float] = field(default_factory=dict)
    probe_end: dict[str, float] = field(default_factory=dict)
    sent_by_room: dict[int, int] = field(default_factory=dict)  # messages sent, in all
    refills: int = 0  # closed loop: talkers' writes (each of several lines), in all


@dataclass(frozen=True, slots=True)
class _Plan:
    index: int
    room: int
    role: Literal["talker", "witness", "listener"]


def raise_fd_limit(want: int = 65536) -> int:
    """Lift this process's open-file limit (children inherit it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else max(soft, min(want, hard))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
        return target
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def plan(spec: LoadSpec) -> list[list[_Plan]]:
    """Clients per process. Closed loop: a room's talkers and witness share its home process;
    everyone else is dealt round-robin so processes carry about the same number of sockets."""
    shards: list[list[_Plan]] = [[] for _ in range(spec.processes)]
    deal = 0
    index = 0
    for room in range(spec.rooms):
        home = room % spec.processes
        for m in range(spec.members):
            if spec.mode == "closed" and m < spec.talkers:
                shards[home].append(_Plan(index, room, "talker"))
            elif spec.mode == "closed" and m == spec.talkers:
                shards[home].append(_Plan(index, room, "witness"))
            else:
                role: Literal["talker", "listener"] = (
                    "talker" if spec.mode == "open" else "listener"
                )
                shards[deal % spec.processes].append(_Plan(index, room, role))
                deal += 1
            index += 1
    return shards


def run_load(
    host: str,
    port: int,
    spec: LoadSpec,
    probe: Probe | None = None,
    on_window: Callable[[float], None] | None = None,
    on_ready: Callable[[Placement], None] | None = None,
) -> LoadResult:
    """Run ``spec`` against ``host:port``; call ``probe`` (server CPU, RSS...) before the
    clients connect and at the start and end of the measured window, ``on_window`` with
    the window's length as it starts (to attach a profiler, say), and ``on_ready`` with
    where every connected client sits, once all are connected and before the load starts."""
    if spec.mode == "closed" and spec.members <= spec.talkers:
        raise ValueError("closed loop needs a witness: members must exceed talkers")
    raise_fd_limit()
    probe = probe or dict
    result = LoadResult(spec=asdict(spec))
    result.probe_before = probe()
    ctx = mp.get_context("fork")
    go = ctx.Event()
    schedule = ctx.Array("d", 3)  # window start, window end, stop sending (monotonic seconds)
    pipes: list[mpc.Connection] = []
    procs: list[mp.process.BaseProcess] = []
    t_setup = time.monotonic()
    try:
        for shard, clients in enumerate(plan(spec)):
            parent_end, child_end = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=_shard_main,
                args=(shard, host, port, spec, clients, child_end, go, schedule),
                name=f"bench-loadgen-{shard}",
                daemon=True,
            )
            p.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(p)
        readies = [_receive(pipe, spec.setup_timeout + 10, "ready") for pipe in pipes]
        result.setup_seconds = round(time.monotonic() - t_setup, 3)
        result.clients_connected = sum(r["connected"] for r in readies)
        for r in readies:
            result.setup_failures.extend(r["failures"])
        if on_ready is not None:
            on_ready([(room, port) for r in readies for room, port in r["placement"]])

        t0 = time.monotonic() + 0.2
        window_start = t0 + (spec.warmup if spec.mode != "idle" else 1.0)
        window_end = window_start + (spec.duration if spec.mode != "idle" else IDLE_WINDOW)
        schedule[0], schedule[1], schedule[2] = window_start, window_end, window_end
        go.set()
        _sleep_until(window_start)
        result.probe_start = probe()
        if on_window is not None:
            on_window(window_end - window_start)
        _sleep_until(window_end)
        result.probe_end = probe()
        wait = spec.drain_timeout + 10
        finals = [_receive(pipe, wait, "result") for pipe in pipes]
    finally:
        go.set()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in pipes:
            pipe.close()
    _aggregate(result, spec, readies, finals)
    return result


def _receive(pipe: mpc.Connection, timeout: float, kind: str) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise TimeoutError(f"a load generator process sent no {kind} within {timeout:.0f} s")
    msg: dict[str, Any] = pipe.recv()
    if msg.get("kind") == "crash":
        raise RuntimeError(f"load generator process failed: {msg['error']}")
    return msg


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _aggregate(
    result: LoadResult, spec: LoadSpec, readies: list[dict[str, Any]], finals: list[dict[str, Any]]
) -> None:
    members: dict[int, int] = {}
    sent: dict[int, int] = {}
    for r in readies:
        for room, n in r["members"].items():
            members[room] = members.get(room, 0) + n
    latencies: list[int] = []
    window = 0.0
    for f in finals:
        for room, n in f["sent"].items():
            sent[room] = sent.get(room, 0) + n
        result.received_total += f["received"]
        result.disconnects += f["disconnects"]
        result.generator_cpu_s += f["cpu_window"]
        if f["window_seconds"] > 0:
            share = f["cpu_window"] / f["window_seconds"]
            result.generator_busiest = round(max(result.generator_busiest, share), 3)
        latencies.extend(f["latencies"])
        window = max(window, f["window_seconds"])
    result.sent_total = sum(sent.values())
    result.refills = sum(f.get("refills", 0) for f in finals)
    result.sent_by_room = sent
    echo = "echo-message" in spec.caps.split()  # the sender's copy is a delivery too
    result.expected_total = sum(n * (members.get(room, 0) - (not echo)) for room, n in sent.items())
    result.lost = result.expected_total - result.received_total
    result.window_seconds = round(window, 4)
    if window > 0:
        result.sent_per_s = round(sum(f["sent_window"] for f in finals) / window, 1)
        result.delivered_per_s = round(sum(f["received_window"] for f in finals) / window, 1)
    result.generator_cpu_s = round(result.generator_cpu_s, 4)
    result.latency = summarize_ns(latencies)


# --- one load generator process -------------------------------------------------------------


class _Client:
    """One benchmark connection. Plain attributes: this object is touched per chunk."""

    __slots__ = ("counter", "fd", "nick", "out", "plan", "room", "sock", "state", "tail")

    def __init__(self, plan: _Plan, sock: socket.socket, ws: bool = False) -> None:
        self.plan = plan
        self.sock = sock
        self.fd = sock.fileno()
        self.nick = b"u%d" % plan.index
        self.room = b"#r%d" % plan.room
        self.state = "connecting"
        self.tail = b""  # setup phase: unparsed partial line (ws: partial frame)
        self.out: list[bytes] = []  # bytes the kernel would not take yet
        self.counter = WsDeliveryCounter() if ws else DeliveryCounter()


class _Room:
    """Closed loop: a room's local talkers, its witness and how much it has sent."""

    __slots__ = ("sent", "talkers", "timed", "untimed", "witness")

    def __init__(
        self, talkers: list[_Client], witness: _Client, pad: int, frame: Callable[[bytes], bytes]
    ) -> None:
        self.talkers = talkers
        self.witness = witness
        self.sent = 0
        # (framed once: a refill repeats the same untimed line)
        self.untimed = [frame(b"PRIVMSG %s :%s\r\n" % (t.room, plain_text(pad))) for t in talkers]
        self.timed = [b"PRIVMSG %s :" % t.room for t in talkers]


class _Shard:
    def __init__(
        self, shard: int, host: str, port: int, spec: LoadSpec, plans: list[_Plan]
    ) -> None:
        self.shard = shard
        self.addr = (host, port)
        self.spec = spec
        self.tls: ssl.SSLContext | None = None
        if spec.transport == "tls":
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.tls.check_hostname = False  # the server's own self-signed certificate
            self.tls.verify_mode = ssl.CERT_NONE
        self.ws = spec.transport == "ws"
        self.frame: Callable[[bytes], bytes] = wsframes.client_frames if self.ws else bytes
        self.plans = plans
        self.ep = select.epoll()
        self.by_fd: dict[int, _Client] = {}
        self.ready: list[_Client] = []
        self.failures: list[str] = []
        self.received = 0
        self.disconnects = 0
        self.sent: dict[int, int] = {}
        self.refills = 0  # closed loop: talker writes of a refill (lines per write: sent / this)

    # setup: connect, register, join, paced ---------------------------------------------------

    def setup(self) -> None:
        spec = self.spec
        pending = list(reversed(self.plans))
        in_setup = 0
        opened = 0
        begin = time.monotonic()
        deadline = begin + spec.setup_timeout
        while (pending or in_setup) and (now := time.monotonic()) < deadline:
            allowed = int((now - begin) * spec.connect_rate) + 1 - opened
            while pending and in_setup < spec.connect_concurrency and allowed > 0:
                self._open(pending.pop())
                in_setup += 1
                opened += 1
                allowed -= 1
            for fd, ev in self.ep.poll(0.002 if pending else 0.05):
                c = self.by_fd.get(fd)
                if c is None:
                    continue
                before = c.state
                self._setup_event(c, ev)
                if before != c.state and c.state in ("ready", "failed"):
                    in_setup -= 1
        for c in list(self.by_fd.values()):
            if c.state not in ("ready", "failed"):
                self._fail(c, f"setup timed out in state {c.state}")

    def _open(self, p: _Plan) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Client(p, sock, self.ws)
        self.by_fd[c.fd] = c
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            self._fail(c, f"connect: {os.strerror(err)}")
            return
        self.ep.register(c.fd, _EPOLLOUT | _EPOLLIN)

    def _fail(self, c: _Client, why: str) -> None:
        if c.state == "failed":
            return
        c.state = "failed"
        if len(self.failures) < 20:
            self.failures.append(f"{c.nick.decode()}: {why}")
        self._close(c)

    def _close(self, c: _Client) -> None:
        self.by_fd.pop(c.fd, None)
        with contextlib.suppress(OSError, ValueError):
            self.ep.unregister(c.fd)
        c.sock.close()

    def _setup_event(self, c: _Client, ev: int) -> None:
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(c, f"connect: {os.strerror(err)}")
                return
            if not ev & (_EPOLLOUT | _EPOLLIN):
                return
            self.ep.modify(c.fd, _EPOLLIN)
            if self.tls is not None:
                c.sock = self.tls.wrap_socket(c.sock, do_handshake_on_connect=False)
                c.state = "handshaking"
            elif self.ws:
                self._upgrade(c)
            else:
                self._hello(c)
        if c.state == "handshaking":
            self._handshake(c)
            return
        if ev & (_EPOLLIN | _EPOLLERRS):
            self._setup_read(c)

    def _handshake(self, c: _Client) -> None:
        assert isinstance(c.sock, ssl.SSLSocket)
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.ep.modify(c.fd, _EPOLLIN)
            return
        except ssl.SSLWantWriteError:
            self.ep.modify(c.fd, _EPOLLOUT)
            return
        except (OSError, ValueError) as e:
            self._fail(c, f"TLS handshake: {e}")
            return
        self.ep.modify(c.fd, _EPOLLIN)
        self._hello(c)

    def _upgrade(self, c: _Client) -> None:
        c.state = "upgrading"
        host, port = self.addr
        try:
            c.sock.send(wsframes.handshake_request(host, port))
        except OSError as e:
            self._fail(c, f"send: {e}")

    def _hello(self, c: _Client) -> None:
        c.state = "registering"
        hello = b"NICK %s\r\nUSER %s 0 * :fastchat bench\r\n" % (c.nick, c.nick)
        if self.spec.caps:
            hello = b"CAP REQ :%s\r\n%sCAP END\r\n" % (self.spec.caps.encode(), hello)
        self._say(c, hello)

    def _say(self, c: _Client, line: bytes) -> None:
        """Setup-phase write: small, into an empty socket buffer, so it goes at once."""
        line = self.frame(line)
        try:
            if c.sock.send(line) != len(line):
                self._fail(c, "short write during setup")
        except OSError as e:
            self._fail(c, f"send: {e}")

    def _setup_read(self, c: _Client) -> None:
        try:
            data = _recv_tls(c.sock) if self.tls is not None else c.sock.recv(_RECV)
        except _WOULD_BLOCK:
            return
        except OSError as e:
            self._fail(c, f"recv in state {c.state}: {e}")
            return
        if not data:
            self._fail(c, f"closed by server in state {c.state}: {c.tail[-200:]!r}")
            return
        if c.state == "ready":
            self.received += c.counter.feed(data, 0, None)
        if self.ws:
            lines = self._ws_lines(c, data)
        else:
            buf = c.tail + data
            lines = buf.split(b"\n")
            c.tail = lines.pop()
        for line in lines:
            self._setup_line(c, line.rstrip(b"\r"))
            if c.state == "failed":
                return

    def _ws_lines(self, c: _Client, data: bytes) -> list[bytes]:
        """Setup phase over WebSocket: the server's handshake answer, then one line per frame
        (answering the server's WebSocket pings)."""
        buf = c.tail + data
        if c.state == "upgrading":
            try:
                end = wsframes.maybe_handshake_end(buf)
            except ValueError as e:
                self._fail(c, str(e))
                return []
            if end is None:
                c.tail = buf
                return []
            buf = buf[end:]
            self._hello(c)
        got, c.tail = wsframes.frames(buf)
        lines = []
        for opcode, payload in got:
            if opcode in (wsframes.TEXT, wsframes.BINARY):
                lines.append(payload)
            elif opcode == wsframes.PING:
                self._say_raw(c, wsframes.client_frame(payload, wsframes.PONG))
            elif opcode == wsframes.CLOSE:
                self._fail(c, f"WebSocket closed by the server: {payload!r}")
                return []
        return lines

    def _say_raw(self, c: _Client, data: bytes) -> None:
        try:
            c.sock.send(data)
        except OSError as e:
            self._fail(c, f"send: {e}")

    def _setup_line(self, c: _Client, line: bytes) -> None:
        words = line.split(b" ", 3)
        if words and words[0].startswith(b":"):
            words = words[1:]
        if not words:
            return
        cmd = words[0]
        if cmd == b"PING":
            self._say(c, b"PONG " + line.split(b"PING ", 1)[1] + b"\r\n")
        elif c.state == "ready":
            return
        elif cmd == b"001":
            c.state = "joining"
            self._say(c, b"JOIN %s\r\n" % c.room)
        elif cmd == b"366":
            c.state = "ready"
            self.ready.append(c)
            if self.ws:  # whatever follows a complete frame is the start of the next one
                assert isinstance(c.counter, WsDeliveryCounter)
                c.counter.prime(c.tail)
        elif cmd == b"ERROR" or (len(cmd) == 3 and cmd[:1] in b"45" and cmd.isdigit()):
            self._fail(c, line.decode(errors="replace")[:200])

    def wait_for_go(self, go: Any) -> None:
        """Keep reading (answering PINGs) until every process is ready and the parent says go."""
        while not go.wait(0):
            for fd, ev in self.ep.poll(0.02):
                c = self.by_fd.get(fd)
                if c is not None and ev & (_EPOLLIN | _EPOLLERRS):
                    self._setup_read(c)
        for c in self.ready:
            c.tail = b""  # (ws: the counter has the frame in progress since 366)

    # the load ---------------------------------------------------------------------------------

    def load(self, window_start: float, window_end: float, stop_at: float) -> dict[str, Any]:
        spec = self.spec
        rooms = self._closed_rooms() if spec.mode == "closed" else []
        senders = self._open_senders(window_start) if spec.mode == "open" else []
        period_ns = int(1e9 * self._sender_count() / spec.rate) if spec.mode == "open" else 0
        latencies: list[int] = []
        # latency is sampled in the measured window only (not the warm-up: servers may be
        # slow to start, e.g. InspIRCd holds a new client's first lines for up to a second)
        sample: list[int] | None = None
        ns = time.monotonic_ns
        ws, we, stop = int(window_start * 1e9), int(window_end * 1e9), int(stop_at * 1e9)
        snap_start: tuple[int, int, float] | None = None
        snap_end: tuple[int, int, float] | None = None
        next_send = 0
        last_data = ns()
        poll = self.ep.poll
        by_fd = self.by_fd
        quiet_ns = int(spec.drain_quiet * 1e9)
        drain_deadline = stop + int(spec.drain_timeout * 1e9)
        sending = True
        quickack = spec.quickack
        tls = self.tls is not None
        ws = self.ws
        while True:
            now = ns()
            if snap_start is None and now >= ws:
                sample = latencies
                snap_start = (self.received, self._sent_total(), time.process_time())
            if snap_end is None and now >= we:
                sample = None
                snap_end = (self.received, self._sent_total(), time.process_time())
            if sending and now >= stop:
                sending = False
            if not sending and (now - last_data > quiet_ns or now > drain_deadline):
                break
            timeout = 0.01
            if sending and rooms:
                for room in rooms:
                    self._refill(room)
            elif sending and senders:
                while next_send < len(senders) and senders[next_send][0] <= now:
                    due, sender = senders[next_send]
                    self._send_timed(sender, now)
                    senders[next_send] = (due + period_ns, sender)
                    next_send += 1
                if next_send == len(senders):
                    next_send = 0  # every sender sent once this period: next round
                    senders.sort(key=lambda s: s[0])
                timeout = max(0.0, min(timeout, (senders[next_send][0] - ns()) / 1e9))
            events = poll(timeout)
            if not events:
                continue
            now = ns()
            for fd, ev in events:
                c = by_fd.get(fd)
                if c is None:
                    continue
                if ev & _EPOLLOUT:
                    self._flush(c)
                if ev & (_EPOLLIN | _EPOLLERRS):
                    try:
                        data = _recv_tls(c.sock) if tls else c.sock.recv(_RECV)
                    except _WOULD_BLOCK:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.disconnects += 1
                        self._close(c)
                        continue
                    last_data = now
                    if quickack:
                        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    self.received += c.counter.feed(data, now, sample)
                    if b"PING " in data:
                        if ws:
                            self._answer_ws_pings(c, data)
                        else:
                            self._answer_pings(c, data)
        end = snap_end or (self.received, self._sent_total(), time.process_time())
        start = snap_start or end
        return {
            "kind": "result",
            "received": self.received,
            "sent": self.sent,
            "disconnects": self.disconnects,
            "received_window": end[0] - start[0],
            "sent_window": end[1] - start[1],
            "refills": self.refills,
            "cpu_window": end[2] - start[2],
            "window_seconds": window_end - window_start,
            "latencies": latencies,
        }

    def _sent_total(self) -> int:
        return sum(self.sent.values())

    def _sender_count(self) -> int:
        return self.spec.rooms * self.spec.members

    def _closed_rooms(self) -> list[_Room]:
        talkers: dict[int, list[_Client]] = {}
        witness: dict[int, _Client] = {}
        for c in self.ready:
            if c.plan.role == "talker":
                talkers.setdefault(c.plan.room, []).append(c)
            elif c.plan.role == "witness":
                witness[c.plan.room] = c
        return [
            _Room(t, witness[r], self.spec.pad, self.frame)
            for r, t in talkers.items()
            if r in witness
        ]

    def _open_senders(self, window_start: float) -> list[tuple[int, _Client]]:
        """Every sender's first send time: staggered evenly over one period, by global index,
        so the load is smooth rather than a burst each period."""
        n = self._sender_count()
        period = n / self.spec.rate
        begin = window_start - self.spec.warmup
        out = [(int((begin + period * c.plan.index / n) * 1e9), c) for c in self.ready]
        out.sort(key=lambda s: s[0])
        return out

    def _refill(self, room: _Room) -> None:
        window = self.spec.window
        in_flight = room.sent - room.witness.counter.count
        if in_flight > (window - 1 if self.spec.topup else window // 2):
            return
        want = window - in_flight
        every = self.spec.sample_every
        n_talkers = len(room.talkers)
        for i, t in enumerate(room.talkers):
            k = want // n_talkers + (1 if i < want % n_talkers else 0)
            if k <= 0 or t.out:
                continue
            before = room.sent
            room.sent += k
            if before // every != room.sent // every:
                # one timed message per ``sample_every``: the last of this batch
                timed = room.timed[i] + timed_text(time.monotonic_ns(), self.spec.pad) + b"\r\n"
                self._send(t, room.untimed[i] * (k - 1) + self.frame(timed))
            else:
                self._send(t, room.untimed[i] * k)
            self.sent[t.plan.room] = self.sent.get(t.plan.room, 0) + k
            self.refills += 1

    def _send_timed(self, c: _Client, now_ns: int) -> None:
        line = b"PRIVMSG %s :%s\r\n" % (c.room, timed_text(now_ns, self.spec.pad))
        self._send(c, self.frame(line))
        self.sent[c.plan.room] = self.sent.get(c.plan.room, 0) + 1

    def _send(self, c: _Client, data: bytes) -> None:
        if c.out:
            c.out.append(data)
            return
        try:
            n = c.sock.send(data)
        except _WOULD_BLOCK:
            n = 0
        except OSError:
            return  # the read side sees the close and counts the disconnect
        if n < len(data):
            c.out.append(data[n:])
            self.ep.modify(c.fd, _EPOLLIN | _EPOLLOUT)

    def _flush(self, c: _Client) -> None:
        data = b"".join(c.out)
        try:
            n = c.sock.send(data)
        except _WOULD_BLOCK:
            n = 0
        except OSError:
            return
        c.out = [data[n:]] if n < len(data) else []
        if not c.out:
            self.ep.modify(c.fd, _EPOLLIN)

    def _answer_pings(self, c: _Client, data: bytes) -> None:
        for line in data.split(b"\n"):
            words = line.split(b" ", 2)
            if words[:1] == [b"PING"] or (len(words) > 1 and words[1] == b"PING"):
                self._send(c, b"PONG " + line.rstrip(b"\r").split(b"PING ", 1)[1] + b"\r\n")

    def _answer_ws_pings(self, c: _Client, data: bytes) -> None:
        for token in _WS_PING.findall(data):
            self._send(c, wsframes.client_frame(b"PONG " + token))

    def close_all(self) -> None:
        for c in list(self.by_fd.values()):
            self._close(c)
        self.ep.close()


def _recv_tls(sock: socket.socket) -> bytes:
    """Everything the TLS layer can give now: a ``recv`` returns one record at most, and
    what stays decrypted inside the SSL object would never wake ``epoll`` again."""
    assert isinstance(sock, ssl.SSLSocket)
    chunks = [sock.recv(_RECV)]  # (raises SSLWantReadError if nothing came)
    while chunks[-1]:
        try:
            chunks.append(sock.recv(_RECV))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            break
    return b"".join(chunks)


def _shard_main(
    shard: int,
    host: str,
    port: int,
    spec: LoadSpec,
    plans: list[_Plan],
    pipe: mpc.Connection,
    go: Any,
    schedule: Any,
) -> None:
    s = _Shard(shard, host, port, spec, plans)
    try:
        s.setup()
        # (a client ready earlier may have failed since, while the others registered: its
        # socket is closed, and its reason is in the failures)
        ready = [c for c in s.ready if c.state != "failed"]
        members: dict[int, int] = {}
        for c in ready:
            members[c.plan.room] = members.get(c.plan.room, 0) + 1
        placement = [(c.plan.room, c.sock.getsockname()[1]) for c in ready]
        pipe.send(
            {
                "kind": "ready",
                "connected": len(ready),
                "failures": s.failures,
                "members": members,
                "placement": placement,
            }
        )
        s.wait_for_go(go)
        if spec.mode == "idle":
            # connected and silent: stay until the window has been measured
            s.spec = LoadSpec(**{**asdict(spec), "drain_quiet": 0.0, "drain_timeout": 0.0})
        pipe.send(s.load(schedule[0], schedule[1], schedule[2]))
    except Exception as e:  # report to the parent, which raises; nothing is swallowed
        pipe.send({"kind": "crash", "error": f"process {shard}: {type(e).__name__}: {e}"})
        raise
    finally:
        s.close_all()
        pipe.close()
