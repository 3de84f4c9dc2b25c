"""The client's link to the server: a non-blocking TCP socket, TLS if asked, that reconnects
with backoff.

Owns: resolving the server's name, connecting without blocking, the TLS handshake (the
context given says what is verified), reading lines (through
:class:`~fastchat.irc.linebuffer.LineBuffer`), writing queued bytes, noticing the link is gone,
and the backoff timer before the next attempt.
Must never: parse or build IRC messages (that is the session's job), or block the event loop:
name resolution runs in a helper thread, connect/send/recv are non-blocking, and the socket is
registered for writability only while bytes wait to go out.

The link reports what happened as :class:`LinkEvent` values that the event loop drains with
:meth:`Link.take_events` after each turn. A server whose certificate cannot be verified is
:class:`Refused`, not lost: trying again would fail again, so the link gives up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastchat.irc.linebuffer import OVERLONG, LineBuffer

#: Generous: a client must accept whatever a server sends (tags can make lines long).
MAX_RECEIVED_LINE = 16 * 1024
CONNECT_TIMEOUT = 15.0
RECV_SIZE = 64 * 1024

Handler = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Connecting:
    address: str


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Received:
    lines: list[bytes]


@dataclass(frozen=True, slots=True)
class Lost:
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class Refused:
    """The server's TLS certificate could not be verified (why, in OpenSSL's words): the link
    stops (no retry)."""

    reason: str


LinkEvent = Connecting | Connected | Received | Lost | Refused

#: What a TLS socket raises when it must wait for the network (a record not complete yet)
_TLS_LATER = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Backoff:
    """Exponential backoff with jitter: 1, 2, 4 ... up to ``cap`` seconds, ±20%.

    Jitter keeps many clients from reconnecting in lock step after a server restart.
    """

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = self.first


class Link:
    """One logical connection to ``host:port`` that survives any number of TCP connections."""

    def __init__(
        self,
        host: str,
        port: int,
        selector: selectors.BaseSelector,
        backoff: Backoff | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls  # speak TLS with this context (None: plain TCP)
        self.backoff = backoff or Backoff()
        self._selector = selector
        self._sock: socket.socket | ssl.SSLSocket | None = None
        self._open = False  # TCP connected (not just connecting)
        self._out = bytearray()
        self._lines = LineBuffer(MAX_RECEIVED_LINE)
        self._events: list[LinkEvent] = []
        self._addresses: list[tuple[socket.AddressFamily, tuple[str, int]]] = []
        self._last_error = ""
        self._retry_at: float | None = None
        self._connect_deadline: float | None = None
        self._closed = False
        # Resolution runs in a thread (getaddrinfo blocks); it reports back through this pipe.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._resolved: list[tuple[socket.AddressFamily, tuple[str, int]]] | str | None = None
        self._resolving = False
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_resolved)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._open

    def take_events(self) -> list[LinkEvent]:
        events, self._events = self._events, []
        return events

    def deadline(self) -> float | None:
        """The monotonic time by which :meth:`tick` must run (reconnect or connect timeout)."""
        if self._retry_at is not None:
            return self._retry_at
        return self._connect_deadline

    def retry_in(self, now: float) -> float | None:
        return None if self._retry_at is None else self._retry_at - now

    # -- connecting ---------------------------------------------------------------------------

    def start(self) -> None:
        """Begin a connection attempt: resolve in a helper thread, then connect."""
        if self._closed or self._resolving:
            return
        self._retry_at = None
        self._events.append(Connecting(self.address))
        self._resolving = True
        threading.Thread(target=self._resolve, name="fastchat-resolve", daemon=True).start()

    def _resolve(self) -> None:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            result: list[tuple[socket.AddressFamily, tuple[str, int]]] | str = [
                (family, (str(addr[0]), int(addr[1]))) for family, _, _, _, addr in infos
            ]
        except OSError as exc:
            result = f"cannot resolve {self.host}: {exc}"
        self._resolved = result
        with contextlib.suppress(OSError):  # the link was closed meanwhile
            os.write(self._wake_w, b"r")

    def _on_resolved(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 64)
        result, self._resolved = self._resolved, None
        self._resolving = False
        if result is None or self._closed:
            return
        if isinstance(result, str):
            self._fail(result)
            return
        self._addresses = result
        self._try_next_address()

    def _try_next_address(self) -> None:
        if not self._addresses:
            self._fail(self._last_error or "no address to connect to")
            return
        family, addr = self._addresses.pop(0)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self._last_error = os.strerror(err)
            self._try_next_address()
            return
        self._sock = sock
        self._connect_deadline = time.monotonic() + CONNECT_TIMEOUT
        self._selector.register(sock, selectors.EVENT_WRITE, self._on_connect_ready)

    def _on_connect_ready(self, mask: int) -> None:
        sock = self._sock
        assert sock is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._selector.unregister(sock)
        if err:
            sock.close()
            self._sock = None
            self._last_error = os.strerror(err)
            self._try_next_address()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # chat lines are small
        if self.tls is None:
            self._opened()
            return
        try:
            self._sock = self.tls.wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
        except (OSError, ValueError) as exc:
            sock.close()
            self._sock = None
            self._fail(f"TLS: {exc}")
            return
        self._selector.register(self._sock, selectors.EVENT_WRITE, self._on_handshake)

    def _on_handshake(self, mask: int) -> None:
        """One step of the TLS handshake (within the connect timeout, which still runs)."""
        sock = self._sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(sock, selectors.EVENT_READ, self._on_handshake)
            return
        except ssl.SSLWantWriteError:
            self._selector.modify(sock, selectors.EVENT_WRITE, self._on_handshake)
            return
        except ssl.SSLCertVerificationError as exc:
            self._drop_socket()
            self._retry_at = None
            self._events.append(Refused(exc.verify_message or str(exc)))
            return
        except (OSError, ValueError) as exc:  # a reset, a plaintext server, EOF
            self.drop(f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return
        self._selector.unregister(sock)
        self._opened()

    def _opened(self) -> None:
        sock = self._sock
        assert sock is not None
        self._open = True
        self._connect_deadline = None
        self._out.clear()
        self._lines = LineBuffer(MAX_RECEIVED_LINE)
        self._selector.register(sock, selectors.EVENT_READ, self._on_io)
        self._events.append(Connected())

    def tick(self, now: float) -> None:
        """Run timers: start the next attempt when the backoff is over; time out a connect."""
        if self._retry_at is not None and now >= self._retry_at:
            self.start()
        elif self._connect_deadline is not None and now >= self._connect_deadline:
            self._drop_socket()
            self._last_error = "connection timed out"
            self._try_next_address()

    # -- an open link -------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Queue ``data`` and try to send it now; False (nothing queued) when not open."""
        if not self._open or self._sock is None:
            return False
        had_backlog = bool(self._out)
        self._out += data
        if not had_backlog:
            self._flush()
        return True

    def _flush(self) -> None:
        """Send what the kernel takes now; watch for writability only for the leftover."""
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(self._out)
        except (BlockingIOError, InterruptedError, *_TLS_LATER):
            sent = 0
        except OSError as exc:
            self.drop(f"send failed: {exc.strerror or exc}")
            return
        del self._out[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0)
        if self._selector.get_key(sock).events != events:
            self._selector.modify(sock, events, self._on_io)

    def _on_io(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and self._sock is not None:
            try:
                data = self._sock.recv(RECV_SIZE)
                # TLS: what is decrypted already waits inside the SSL object, where no
                # select() sees it; take it now
                while isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
                    data += self._sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError, *_TLS_LATER):
                return
            except OSError as exc:
                self.drop(exc.strerror or str(exc))
                return
            if not data:
                self.drop("server closed the connection")
                return
            lines = [x for x in self._lines.feed(data) if x != OVERLONG]
            if lines:
                self._events.append(Received(lines))

    def drop(self, reason: str) -> None:
        """Close the TCP connection and schedule the next attempt."""
        self._drop_socket()
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        self._addresses = []
        if self._closed:
            return
        delay = self.backoff.next()
        self._retry_at = time.monotonic() + delay
        self._events.append(Lost(reason, delay))

    def _drop_socket(self) -> None:
        self._open = False
        self._connect_deadline = None
        if self._sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._sock)
            self._sock.close()
            self._sock = None

    # -- the end ------------------------------------------------------------------------------

    def close(self, linger: float = 1.0) -> None:
        """Send what is queued (waiting at most ``linger`` seconds) and close; safe twice.

        Used on quit: the QUIT line must reach the server before the socket goes.
        """
        if self._closed:
            return
        self._closed = True
        sock = self._sock
        if sock is not None and self._open and self._out:
            with contextlib.suppress(OSError):
                sock.setblocking(True)
                sock.settimeout(linger)
                sock.sendall(self._out)
                sock.shutdown(socket.SHUT_WR)
                # wait briefly for the server's ERROR / close, so the QUIT is processed
                while sock.recv(RECV_SIZE):
                    pass
        self._drop_socket()
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._wake_r)
        os.close(self._wake_r)
        if not self._resolving:  # else the resolver thread may still write to it: leave it
            os.close(self._wake_w)
