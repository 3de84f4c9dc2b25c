"""Locust users that chat over IRC: realistic load for ``make loadtest``.

Owns: the :class:`IrcUser` behaviour (connect, register, join one of ``--rooms`` rooms, send
``--rate`` messages a second with a monotonic timestamp inside, receive and count everything)
and this process's exact tallies, written as JSON for ``loadtest/run.py`` to merge.
Must never: start or stop servers (the driver does), or fire one locust event per delivery.

Locust's bookkeeping costs about 6 µs per event and rounds response times under 100 ms to
whole milliseconds. So delivery counting and latency live outside locust: every message
carries its send time (nanoseconds, ``time.monotonic_ns``, system-wide on Linux so comparable
across locust processes), receivers count messages with ``bytes.count`` and keep exact
latency samples, and locust only sees one event per ``--irc-sample-every`` deliveries (and
sends) so its charts show the shape of the load without being the load. The exact
p50/p95/p99 come from the JSON tallies.

Run through ``python -m loadtest.run`` (``make loadtest``), or by hand:
``locust -f loadtest/locustfile.py --headless -u 50 -t 20s --host irc://127.0.0.1:6667``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser

# The locustfile lives in the repository and shares the benchmark's delivery counting.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.counting import DeliveryCounter, timed_text

_PAD = 40  # filler bytes in each message: a short chat line


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--rooms", type=int, default=20, help="rooms users spread over")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per user")
    parser.add_argument(
        "--irc-sample-every", type=int, default=10, help="one locust event per N deliveries/sends"
    )
    parser.add_argument(
        "--irc-stats-dir", default="", help="write this process's exact tallies here as JSON"
    )


class _Tally:
    """This locust process's exact counts; one per process, shared by its users."""

    def __init__(self) -> None:
        self.sent = 0
        self.delivered = 0
        self.latencies_ns: list[int] = []
        self.connect_errors = 0
        self.disconnects = 0
        self.send_errors = 0
        self.users = 0
        self.first_send_ns = 0
        self.last_send_ns = 0
        self.last_delivery_ns = 0
        self.errors: list[str] = []
        self.samples_seen = 0

    def add_latencies(self, samples: list[int]) -> None:
        """Keep a uniform sample of at most ``_MAX_SAMPLES`` (reservoir sampling), so a long
        run's percentiles cover all of it, not just its beginning, in bounded memory."""
        kept = self.latencies_ns
        for ns in samples:
            self.samples_seen += 1
            if len(kept) < _MAX_SAMPLES:
                kept.append(ns)
            else:
                j = random.randrange(self.samples_seen)
                if j < _MAX_SAMPLES:
                    kept[j] = ns

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}


TALLY = _Tally()
#: Cap on kept latency samples per process: enough for p99.9, bounded in memory.
_MAX_SAMPLES = 500_000


def _write_tally(environment: Environment, **_kw: Any) -> None:
    options = environment.parsed_options
    out = getattr(options, "irc_stats_dir", "") if options else ""
    if not out or (TALLY.users == 0 and TALLY.sent == 0):
        return  # the master of a multi-process run has no users: nothing to say
    path = Path(out) / f"irc-tally-{os.getpid()}.json"
    path.write_text(json.dumps(TALLY.as_json()))


events.test_stop.add_listener(_write_tally)
events.quitting.add_listener(_write_tally)


class IrcUser(User):
    """One chat user: a raw socket (gevent-patched by locust), one room, a steady rate."""

    host = "irc://127.0.0.1:6667"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.rooms = max(1, getattr(options, "rooms", 20))
        self.rate = max(0.001, getattr(options, "rate", 1.0))
        self.sample_every = max(1, getattr(options, "irc_sample_every", 10))
        self.sock: socket.socket | None = None
        self.reader: gevent.Greenlet | None = None
        self.next_send = 0.0
        self.counter = DeliveryCounter()
        self.nick = b""
        self.room = b""
        self.stopping = False
        self.sent_here = 0

    # lifecycle ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        url = urlsplit(self.host if "//" in self.host else "irc://" + self.host)
        addr = (url.hostname or "127.0.0.1", url.port or 6667)
        self.nick = b"lt%d%04d" % (os.getpid() % 10000, random.randrange(10000))
        self.room = b"#room%d" % random.randrange(self.rooms)
        t0 = time.perf_counter()
        try:
            self.sock = socket.create_connection(addr, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._register()
        except (OSError, RuntimeError) as e:
            TALLY.connect_errors += 1
            TALLY.error(f"connect {self.nick.decode()}: {e}")
            self._event("connect", t0, 0, e)
            self._close()
            raise StopUser() from e
        self._event("connect+join", t0, 0, None)
        TALLY.users += 1
        self.sock.settimeout(None)
        self.reader = gevent.spawn(self._read_loop)
        # Stagger: the first message goes out at a random point of the first period, so
        # users started together do not send together forever after. (Locust runs the first
        # task right after on_start, so the offset is slept here, not in wait_time.)
        gevent.sleep(random.random() / self.rate)
        self.next_send = time.monotonic()

    def on_stop(self) -> None:
        self.stopping = True
        if self.sock is not None:
            # already gone? the reader has counted that disconnect
            with contextlib.suppress(OSError):
                self.sock.sendall(b"QUIT :load test over\r\n")
        if self.reader is not None:
            self.reader.join(timeout=1.0)
            self.reader.kill(block=False)
        self._close()

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _register(self) -> None:
        """NICK/USER, wait for 001 (retrying on 433), JOIN, wait for 366: RFC 2812 3.1, 3.2.1."""
        assert self.sock is not None
        self.sock.sendall(b"NICK %s\r\nUSER %s 0 * :locust user\r\n" % (self.nick, self.nick))
        buf = b""
        joined = False
        while not joined:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError(f"server closed during registration: {buf[-200:]!r}")
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                words = raw.rstrip(b"\r").split(b" ")
                if words[0].startswith(b":"):
                    words = words[1:]
                if words[0] == b"PING":
                    self.sock.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
                elif words[0] == b"433":  # ERR_NICKNAMEINUSE: pick another
                    self.nick = b"lt%d" % random.randrange(10**8)
                    self.sock.sendall(b"NICK %s\r\n" % self.nick)
                elif words[0] == b"001":  # RPL_WELCOME
                    self.sock.sendall(b"JOIN %s\r\n" % self.room)
                elif words[0] == b"366":  # RPL_ENDOFNAMES: joined
                    joined = True
                elif words[0] == b"ERROR" or words[0][:1] in (b"4", b"5"):
                    raise RuntimeError(raw.decode(errors="replace")[:200])

    # the load ----------------------------------------------------------------------------------

    def wait_time(self) -> float:
        """Constant pacing at ``--rate`` from the staggered start (sends never bunch up)."""
        self.next_send += 1.0 / self.rate
        return max(0.0, self.next_send - time.monotonic())

    @task
    def say(self) -> None:
        if self.sock is None:
            raise StopUser()
        now = time.monotonic_ns()
        line = b"PRIVMSG %s :%s\r\n" % (self.room, timed_text(now, _PAD))
        try:
            self.sock.sendall(line)
        except OSError as e:
            TALLY.send_errors += 1
            TALLY.error(f"send {self.nick.decode()}: {e}")
            self._event("send", 0.0, 0, e)
            self._close()
            return
        TALLY.sent += 1
        TALLY.first_send_ns = TALLY.first_send_ns or now
        TALLY.last_send_ns = now
        self.sent_here += 1
        if self.sent_here % self.sample_every == 0:
            self.environment.events.request.fire(
                request_type="IRC",
                name=f"send (1 event per {self.sample_every})",
                response_time=0.0,
                response_length=len(line),
                exception=None,
                context={},
            )

    def _read_loop(self) -> None:
        sock = self.sock
        assert sock is not None
        samples: list[int] = []
        while True:
            try:
                data = sock.recv(262144)
            except OSError as e:
                data = b""
                if not self.stopping:
                    TALLY.error(f"recv {self.nick.decode()}: {e}")
            if not data:
                if not self.stopping:
                    TALLY.disconnects += 1
                    self._event(
                        "disconnect", 0.0, 0, ConnectionError("server closed the connection")
                    )
                return
            now = time.monotonic_ns()
            before = self.counter.count // self.sample_every
            samples.clear()
            n = self.counter.feed(data, now, samples)
            if n:
                TALLY.delivered += n
                TALLY.last_delivery_ns = now
                TALLY.add_latencies(samples)
                if self.counter.count // self.sample_every != before and samples:
                    # one locust event per ``sample_every`` deliveries, carrying a real latency
                    self.environment.events.request.fire(
                        request_type="IRC",
                        name=f"deliver (1 event per {self.sample_every})",
                        response_time=samples[-1] / 1e6,
                        response_length=n,
                        exception=None,
                        context={},
                    )
            if b"PING " in data:
                for raw in data.split(b"\n"):
                    if raw.startswith(b"PING ") or b" PING " in raw[:80]:
                        token = raw.rstrip(b"\r").split(b"PING ", 1)[1]
                        sock.sendall(b"PONG " + token + b"\r\n")

    def _event(self, name: str, t0: float, length: int, exc: BaseException | None) -> None:
        elapsed = (time.perf_counter() - t0) * 1000 if t0 else 0.0
        self.environment.events.request.fire(
            request_type="IRC",
            name=name,
            response_time=elapsed,
            response_length=length,
            exception=exc,
            context={},
        )


__all__ = ["TALLY", "IrcUser"]
