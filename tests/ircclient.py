"""A raw-socket IRC test client, transcript style: ``send`` a line, ``expect`` a reply.

Synchronises with the server by PING/PONG (``sync``), never by sleeping. Every wait has a
deadline, and a failed ``expect`` shows everything the client received.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import socket
import ssl
import time
from collections import deque

DEFAULT_TIMEOUT = float(os.environ.get("FASTCHAT_TEST_TIMEOUT", "10"))
_tokens = itertools.count(1)


class IRCClient:
    def __init__(
        self,
        host: str,
        port: int,
        nick: str | None = None,
        *,
        register: bool = True,
        user: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        source: str | None = None,
        tls: ssl.SSLContext | None = None,
        rcvbuf: int = 0,
    ) -> None:
        # ``source``: connect from this local address (any of 127.0.0.0/8 works on loopback),
        # for tests that need clients from different addresses
        # ``tls``: speak TLS with this context (the server's name is fastchat.local);
        # ``rcvbuf``: a small receive buffer, set before connecting (a slow reader's socket
        # fills up quickly)
        if rcvbuf:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        else:
            sock = socket.create_connection(
                (host, port), timeout=timeout, source_address=(source, 0) if source else None
            )
        self.sock = tls.wrap_socket(sock, server_hostname="fastchat.local") if tls else sock
        self.timeout = timeout
        self.buf = b""
        self.lines: deque[str] = deque()  # received, not yet consumed by expect()
        self.log: list[str] = []  # everything ever received
        self.closed = False
        self.nick = nick or ""
        if nick and register:
            self.register(nick, user or nick)

    # -- sending ---------------------------------------------------------------------------------
    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def register(self, nick: str, user: str | None = None) -> list[str]:
        self.nick = nick
        self.send(f"NICK {nick}")
        self.send(f"USER {user or nick} 0 * :Real {nick}")
        return self.expect_until(r" 376 | 422 ", timeout=self.timeout)

    def request_caps(self, caps: str) -> str:
        """IRCv3 negotiation before registering: ``CAP LS 302``, then ``CAP REQ`` of ``caps``
        (a space-separated list), which must be acknowledged; returns the (last) LS line.
        The client sends ``CAP END`` itself, when it is ready to register."""
        self.send("CAP LS 302")
        offered = self.expect(r"CAP \* LS :").string
        self.send("CAP REQ :" + caps)
        self.expect(r"CAP \* ACK :" + re.escape(caps) + "$")
        return offered

    def sasl_plain(self, account: str, password: str) -> None:
        """SASL PLAIN for ``account`` (``sasl`` negotiated): ``AUTHENTICATE PLAIN``, the
        server's ``+``, then the credentials; the caller reads the 90x that answers."""
        self.send("AUTHENTICATE PLAIN")
        self.expect(r"^AUTHENTICATE \+$")
        self.send("AUTHENTICATE " + base64.b64encode(f"\0{account}\0{password}".encode()).decode())

    # -- receiving -------------------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        """Read once, and take what arrived (:meth:`_take`); False on EOF or timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self._take(data)
        return True

    def _take(self, data: bytes) -> None:
        """Bytes from the server into whole lines (CRLF-separated here; a transport that
        frames its lines otherwise overrides this)."""
        self.buf += data
        *complete, self.buf = self.buf.split(b"\r\n")
        for raw in complete:
            text = raw.decode("utf-8", errors="replace")
            self.lines.append(text)
            self.log.append(text)

    def next_line(self, timeout: float | None = None) -> str | None:
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not self.lines:
            if not self._fill(deadline):
                return None
        return self.lines.popleft()

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """Skip lines until one matches ``pattern`` (a regex searched in the line)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        rx = re.compile(pattern)
        skipped: list[str] = []
        while True:
            while self.lines:
                line = self.lines.popleft()
                m = rx.search(line)
                if m:
                    return m
                skipped.append(line)
            if not self._fill(deadline):
                raise AssertionError(
                    f"{self.nick}: no line matching {pattern!r}; got:\n  "
                    + "\n  ".join(skipped)
                    + ("\n  (connection closed)" if self.closed else "")
                )

    def expect_until(self, pattern: str, timeout: float | None = None) -> list[str]:
        """All lines up to and including the first that matches ``pattern``."""
        got: list[str] = []
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        rx = re.compile(pattern)
        while True:
            while self.lines:
                line = self.lines.popleft()
                got.append(line)
                if rx.search(line):
                    return got
            if not self._fill(deadline):
                raise AssertionError(
                    f"{self.nick}: no line matching {pattern!r}; got:\n  " + "\n  ".join(got)
                )

    def sync(self, timeout: float | None = None) -> list[str]:
        """PING a fresh token and return every line received before its PONG: the server has
        processed everything this client sent before the PING (IRC processes a client's lines
        in order)."""
        token = f"sync{next(_tokens)}"
        self.send(f"PING {token}")
        lines = self.expect_until(rf"PONG \S+ :?{token}$", timeout)
        return lines[:-1]

    def replies(self, timeout: float | None = None) -> list[str]:
        """Like :meth:`sync`, keeping only what the server itself said (numerics, PONG, ERROR):
        what other users do in a shared channel (a JOIN, a QUIT of the last test's probe) can
        arrive at any moment and is no answer to what this client sent."""
        return [line for line in self.sync(timeout) if "!" not in line.split(" ", 1)[0]]

    def drain(self) -> list[str]:
        """Everything received so far and not consumed (after a sync, that is all of it)."""
        out = list(self.lines)
        self.lines.clear()
        return out

    def wait_closed(self, timeout: float | None = None) -> list[str]:
        """Read until the server closes the connection; returns what arrived."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not self.closed and self._fill(deadline):
            pass
        assert self.closed, f"{self.nick}: server did not close the connection"
        return self.drain()

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.closed = True

    def __enter__(self) -> IRCClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_probes = itertools.count(1)


def wait_nicks_free(host: str, port: int, nicks: list[str], timeout: float = 10.0) -> None:
    """Leave the server as we found it: wait until every nick a test used is free again, so
    the next test may take it (quits travel through the sequencer, asynchronously)."""
    with IRCClient(host, port, f"probe{next(_probes)}") as probe:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe.send("ISON :" + " ".join(nicks))
            online = probe.expect(r" 303 \S+ :?(.*)$").group(1).split()
            if not online:
                return
            probe.sync()
        raise AssertionError(f"nicks still in use after the test: {online}")


def with_caps(host: str, port: int, nick: str, caps: str) -> IRCClient:
    """A client that negotiated ``caps`` (a space-separated list, all acknowledged), then
    registered as ``nick`` (its welcome read)."""
    c = IRCClient(host, port, register=False)
    c.request_caps(caps)
    c.send("CAP END")
    c.register(nick)
    return c
