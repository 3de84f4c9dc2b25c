"""The CHATHISTORY probe: how long a history query takes to answer while a load runs.

Owns: one client that negotiates ``draft/chathistory batch server-time message-tags``, joins
one of the loaded rooms and, through the measured window, sends ``CHATHISTORY LATEST <room> *
<limit>`` one request at a time, at most every ``every`` seconds, timing each from its send to
the end of its batch (``BATCH -<ref>``) and counting the lines the batch held; after each
answer, a ``PING`` timed to its ``PONG``: what any request waits under the same load, for
reference.
Must never: connect anywhere but the address it is given, have more than one request in
flight, or run past its window, its request count or its timeout.

Why a thread of the parent (``bench.run``'s) process rather than a client of the load
generator: the generator's processes are busy reading the load (a third to a half of a core
each under ``rooms``), and a probe in their loop would add their turn times to what it
measures; the parent only sleeps through the window. It starts as the window opens
(``run_load``'s ``on_window``, as the profiler does), after the generator's processes were
forked, so none of them inherits its socket or its thread; registering and joining take the
first few milliseconds of the window.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.counting import BatchCounter, summarize_ns

#: What the probe negotiates: the history, its batch, and the tags a history client asks for
CAPS = b"draft/chathistory batch server-time message-tags"
_RECV = 256 * 1024


@dataclass(frozen=True)
class ProbeSpec:
    """One history probe: which room, how many lines per request, how often, how many."""

    room: str = "#r0"  # the load generator's first room
    limit: int = 100
    every: float = 0.02  # seconds from one request's send to the next's, at the least
    most: int = 1000  # requests, at most
    timeout: float = 5.0  # seconds an answer may take before the probe gives up


class Prober:
    """``start(seconds)`` as the window opens; ``finish()`` gives the figures (or the error)."""

    def __init__(self, host: str, port: int, spec: ProbeSpec) -> None:
        self.addr = (host, port)
        self.spec = spec
        self.samples: list[int] = []  # ns from send to the batch's end
        # ns from a PING's send to its PONG, one after each answer: the server's own turn
        # time under the same load, for reference (what any request waits at the least)
        self.pings: list[int] = []
        self.lines: list[int] = []  # lines in each answer
        self.timeouts = 0
        self.error = ""
        self._thread: threading.Thread | None = None
        self._end = 0.0

    def start(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._thread = threading.Thread(target=self._run, name="bench-history-probe", daemon=True)
        self._thread.start()

    def finish(self) -> dict[str, Any]:
        """Wait for the probe to end; p50/p95/p99/max ms of the answers, their line counts."""
        if self._thread is not None:
            self._thread.join(max(0.0, self._end - time.monotonic()) + self.spec.timeout + 15)
            if self._thread.is_alive() and not self.error:
                self.error = "the probe did not finish"
        out: dict[str, Any] = summarize_ns(self.samples)
        out.update(room=self.spec.room, limit=self.spec.limit, timeouts=self.timeouts)
        if self.lines:
            out.update(
                lines_min=min(self.lines),
                lines_max=max(self.lines),
                short=sum(n < self.spec.limit for n in self.lines),
            )
        if self.pings:
            out["ping"] = summarize_ns(self.pings)
        if self.error:
            out["error"] = self.error
        return out

    def _run(self) -> None:
        try:
            with socket.create_connection(self.addr, timeout=self.spec.timeout + 5) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._register(sock)
                sock.setblocking(False)
                self._probe(sock)
        except (OSError, RuntimeError) as e:  # socket.timeout is an OSError
            self.error = f"{type(e).__name__}: {e}"

    def _register(self, sock: socket.socket) -> None:
        """CAP REQ, NICK, USER, CAP END; then JOIN the room. Blocking, with the socket's
        timeout: this is setup, not measured."""
        room = self.spec.room.encode()
        sock.sendall(
            b"CAP REQ :%s\r\nNICK hprobe\r\nUSER hprobe 0 * :fastchat bench history probe\r\n"
            b"CAP END\r\n" % CAPS
        )
        granted = False
        tail = b""
        joined = False
        while not joined:
            data = sock.recv(_RECV)
            if not data:
                raise RuntimeError(f"closed by the server while registering: {tail[-200:]!r}")
            lines = (tail + data).split(b"\n")
            tail = lines.pop()
            for raw in lines:
                line = raw.rstrip(b"\r")
                words = line.split(b" ")
                if words[0][:1] in (b"@", b":"):
                    words = words[1:]
                if not words:
                    continue
                cmd = words[0]
                if cmd == b"PING":
                    sock.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
                elif cmd == b"CAP" and len(words) > 2 and words[2] == b"NAK":
                    raise RuntimeError(f"capabilities refused: {line.decode(errors='replace')}")
                elif cmd == b"CAP" and len(words) > 2 and words[2] == b"ACK":
                    granted = True
                elif cmd == b"001":
                    if not granted:
                        raise RuntimeError(f"registered without {CAPS.decode()}")
                    sock.sendall(b"JOIN %s\r\n" % room)
                elif cmd == b"366":
                    joined = True
                elif cmd == b"ERROR" or (len(cmd) == 3 and cmd[:1] in b"45" and cmd.isdigit()):
                    raise RuntimeError(line.decode(errors="replace")[:200])

    def _probe(self, sock: socket.socket) -> None:
        spec = self.spec
        request = b"CHATHISTORY LATEST %s * %d\r\n" % (spec.room.encode(), spec.limit)
        counter = BatchCounter()
        ns = time.monotonic_ns
        end = int(self._end * 1e9)
        every = int(spec.every * 1e9)
        timeout = int(spec.timeout * 1e9)
        next_send = ns()
        while len(self.samples) < spec.most and ns() < end:
            # read (and drop) the room's traffic until it is time, so the request starts
            # with nothing of ours waiting in the socket
            self._pump(sock, counter, next_send)
            sent = ns()
            sock.sendall(request)
            answer = self._pump(sock, counter, sent + timeout)
            if answer is None:
                self.timeouts += 1
                return  # a late answer would be taken for the next one's: stop here
            arrived, lines = answer
            self.samples.append(arrived - sent)
            self.lines.append(lines)
            next_send = sent + every
            pinged = ns()
            pongs = counter.pongs
            sock.sendall(b"PING :hprobe\r\n")
            ponged = self._pump(sock, counter, pinged + timeout, pongs)
            if ponged is None:
                self.timeouts += 1
                return
            self.pings.append(ponged[0] - pinged)

    def _pump(
        self, sock: socket.socket, counter: BatchCounter, until_ns: int, pongs: int = -1
    ) -> tuple[int, int] | None:
        """Read until ``until_ns``; or, if a batch ends first, (when it arrived, its lines);
        with ``pongs`` (the count before a PING was sent), until the PONG instead."""
        while (left := until_ns - time.monotonic_ns()) > 0:
            readable, _, _ = select.select([sock], [], [], left / 1e9)
            if not readable:
                continue
            try:
                data = sock.recv(_RECV)
            except BlockingIOError:
                continue
            arrived = time.monotonic_ns()
            if not data:
                raise RuntimeError("the server closed the probe's connection")
            ended = counter.feed(data)
            for token in counter.pings:
                sock.sendall(b"PONG " + token + b"\r\n")
            counter.pings.clear()
            if pongs >= 0:
                if counter.pongs > pongs:
                    return arrived, 0
            elif ended:
                return arrived, ended[-1]
        return None
