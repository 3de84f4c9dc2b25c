"""The web port in a worker's loop: accepting, HTTP requests, and WebSocket clients' sockets.

Owns: the web listeners' accepts (--web-port; --web-tls-port, whose TLS handshake comes
first), each connection until its request is answered (:class:`Pending`, bounded by
--web-handshake-timeout and, per address, by --max-clients-per-ip), and
:class:`WebSocketTransport`, what a WebSocket client's ``Client.transport`` is once it is
upgraded: the worker sends it IRC bytes and it sends frames.
Must never: decide what a request gets (fastchat.server.web.http does), parse frames
(fastchat.server.web.websocket does), or speak IRC: after the upgrade the connection is an
ordinary client of the core, like a TLS connection after its handshake.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import fastchat
from fastchat.server.connection import Client
from fastchat.server.runtime.accept import accept_from, answer_and_close, say_nothing
from fastchat.server.web.http import Answer, RequestReader, Upgrade, error, unavailable
from fastchat.server.web.static import StaticFiles
from fastchat.server.web.websocket import (
    FrameCache,
    Received,
    WebSocketSession,
    frame_lines,
    sizes,
)

if TYPE_CHECKING:
    from fastchat.server.runtime.worker import Worker

log = logging.getLogger("fastchat.web")

REQUEST_READ = 1 << 14  # a request is a few KB at most (http.MAX_REQUEST)
SEND_LATER = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)


class WebSocketTransport:
    """A WebSocket client's socket as the worker's output path sees it: ``send`` takes IRC
    bytes (whole lines, as ``client.pending``/``client.outbuf`` hold them) and returns how
    many of them went, as ``socket.send`` does; ``recv``, ``recv_into``, ``shutdown`` and
    ``close`` are the socket's (``shutdown`` sends our close frame first).

    Framing happens here, per connection at flush: the same IRC bytes, formatted once, go to
    plain and WebSocket clients alike. A partial send is the subtle part: the kernel may take
    part of a frame. Then the rest of that frame is kept (``_tail``) and its line is reported
    as not sent yet, so the worker offers it again (first in ``outbuf``); the next ``send``
    finishes the frame and skips the line instead of framing it twice."""

    __slots__ = ("_read", "_tail", "_tail_size", "cache", "session", "sock")

    def __init__(
        self,
        sock: socket.socket,
        session: WebSocketSession,
        read: Callable[[], bytes],
        cache: FrameCache | None = None,
    ) -> None:
        """``cache``: the worker's frames of this turn, shared by its WebSocket clients."""
        self.sock = sock
        self.session = session
        self.cache = cache if cache is not None else FrameCache()
        self._read = read  # the socket's read (TLS or not)
        self._tail = b""  # the unsent end of a frame (and any control frames behind it)
        self._tail_size = 0  # the IRC bytes that frame's line takes at the start of ``data``

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_chunks(self, chunks: list[bytes], data: bytes) -> int:
        """:meth:`send` for a turn's output as the core queued it (``chunks``, whose join
        is ``data``): each chunk framed once per turn for every WebSocket client it goes to
        (:class:`~fastchat.server.web.websocket.FrameCache`)."""
        if self._tail or self.session.closed:
            return self.send(data)
        binary = self.session.binary
        frames = self.cache.frames(chunks, binary)
        n = self.sock.send(frames)
        if n == len(frames):
            return len(data)
        return self._partly_sent(data, frames, n, 0, binary)

    def send(self, data: bytes | bytearray) -> int:
        """Frame and send the lines in ``data``; how many of its bytes went whole. Raises
        what the socket's ``send`` raises when none did."""
        done = 0
        if self._tail:
            n = self.sock.send(self._tail)
            if n < len(self._tail):
                self._tail = self._tail[n:]
                return 0
            done, self._tail, self._tail_size = self._tail_size, b"", 0
            if done:
                data = memoryview(data)[done:].tobytes()
        if not data:
            return done
        if self.session.closed:
            return done + len(data)  # after a close frame no message may follow: dropped
        binary = self.session.binary
        frames = frame_lines(data, binary)
        try:
            n = self.sock.send(frames)
        except SEND_LATER:
            if done:
                return done
            raise
        if n == len(frames):
            return done + len(data)
        return self._partly_sent(data, frames, n, done, binary)

    def _partly_sent(
        self, data: bytes | bytearray, frames: bytes, n: int, done: int, binary: bool
    ) -> int:
        """The kernel took ``n`` bytes of ``frames`` (those of ``data``): count the lines
        that went whole, keep the rest of the one it cut."""
        at = 0
        for frame_size, line_size in sizes(data, binary):
            if n < at + frame_size:
                if n > at:
                    self._tail = frames[n : at + frame_size]
                    self._tail_size = line_size
                return done
            at += frame_size
            done += line_size
        return done

    def control(self, frames: bytes) -> None:
        """Send control frames (pong, a close) now, or behind a frame under way."""
        if self._tail:
            self._tail += frames
            return
        try:
            n = self.sock.send(frames)
        except SEND_LATER:
            n = 0
        if n < len(frames):
            # Sent with the next lines (a socket this full has some waiting), or given up at
            # close: a pong is no IRC line to count
            self._tail = frames[n:]

    def receive(self) -> Received:
        """Read what the peer sent; answers its pings and closes (raises what ``recv``
        raises: ``BlockingIOError`` when nothing came)."""
        return self.feed(self._read())

    def feed(self, data: bytes) -> Received:
        """What ``data`` from the peer amounts to; its pings and close answered."""
        got = self.session.receive(data)
        if got.reply:
            self.control(got.reply)
        return got

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def recv_into(self, buffer: bytearray) -> int:
        return self.sock.recv_into(buffer)

    def shutdown(self, how: int) -> None:
        """Our close frame (1000 after an ERROR; the code of the peer's error), then the
        socket's shutdown."""
        frame = self._tail + self.session.close()
        self._tail = b""
        if frame:
            with contextlib.suppress(OSError):
                self.sock.send(frame)
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


class Pending:
    """A web connection before its request is answered or upgraded."""

    __slots__ = ("deadline", "ip", "out", "reader", "shaking", "upgrade")

    def __init__(self, ip: bytes, deadline: float, reader: RequestReader, tls: bool) -> None:
        self.ip = ip
        self.deadline = deadline
        self.reader = reader
        self.shaking = tls  # a TLS handshake comes first
        self.out = b""  # the answer, while it is being sent
        self.upgrade: Upgrade | None = None  # the upgrade its answer (a 101) leads to


class WebPort:
    """The web listeners of one worker, and its connections that are not clients yet."""

    def __init__(
        self,
        worker: Worker,
        listener: socket.socket | None,
        tls_listener: socket.socket | None,
        recv_tls: Callable[[ssl.SSLSocket], bytes],
    ) -> None:
        """``recv_tls``: the worker's read of a TLS socket (everything the SSL object has).
        TLS connections are wrapped with the worker's ``web_tls_context``, read at each
        accept: a reloaded certificate applies to the connections that follow."""
        self.worker = worker
        self.recv_tls = recv_tls
        self.listener = listener
        self.tls_listener = tls_listener
        config = worker.config
        # (the first worker says so when the root is missing; the others need not repeat it)
        self.files = StaticFiles(web_root(config.web_root, warn=worker.slot == 0))
        self.pending: dict[socket.socket, Pending] = {}
        # This turn's frames, shared by every WebSocket client of this worker (the worker
        # clears it after each turn's sends)
        self.frames = FrameCache()

    def start(self) -> None:
        """Watch the listeners (from the worker's ``run``)."""
        for sock, secure in ((self.listener, False), (self.tls_listener, True)):
            if sock is not None:
                sock.setblocking(False)
                self._watch(sock, secure)

    def _watch(self, listener: socket.socket, secure: bool) -> None:
        self.worker.sel.register(listener, 1, functools.partial(self._accept, listener, secure))

    def tick(self) -> None:
        """Once a second: time out stalled requests."""
        if self.pending:
            self._expire()

    def stop(self) -> None:
        """Stop accepting and drop every connection not upgraded yet (at shutdown)."""
        for sock in (self.listener, self.tls_listener):
            if sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.worker.sel.unregister(sock)
        for sock in list(self.pending):
            self._drop(sock)

    # -- accepting -------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket, secure: bool, mask: int) -> None:
        # Out of descriptors: a 503 where it can be read (plain HTTP), else just closed
        refuse = say_nothing if secure else _out_of_descriptors
        on_socket = functools.partial(self._accepted, secure)
        if accept_from(listener, self.worker.reserve, on_socket, refuse):
            self.worker.pause_accepting(listener, functools.partial(self._accept, listener, secure))

    def _accepted(self, secure: bool, sock: socket.socket, ip: bytes) -> None:
        worker = self.worker
        config = worker.config
        if self._too_many(ip):
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            context = worker.web_tls_context
            assert context is not None
            try:
                sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError as exc:
                log.debug("web TLS from %s: cannot start: %s", ip.decode(), exc)
                sock.close()
                return
        reader = RequestReader(self.files, config.web_origins, secure)
        deadline = worker.now + config.web_handshake_timeout
        self.pending[sock] = Pending(ip, deadline, reader, secure)
        worker.sel.register(sock, 1, functools.partial(self._ready, sock))

    def _too_many(self, ip: bytes) -> bool:
        """--max-clients-per-ip for requests under way (as for TLS handshakes): stalled
        requests cannot hold descriptors without bound until they time out."""
        limit = self.worker.config.max_clients_per_ip
        if not limit or len(self.pending) < limit:
            return False
        return sum(1 for p in self.pending.values() if p.ip == ip) >= limit

    # -- a request -------------------------------------------------------------------------------
    def _ready(self, sock: socket.socket, mask: int) -> None:
        """The socket of a request under way is ready. An unexpected exception is our bug:
        it closes this connection only, logged, and the worker carries on."""
        p = self.pending.get(sock)
        if p is None:
            return
        try:
            self._step(sock, p)
        except Exception:
            log.exception("web connection from %s: unexpected error; closed", p.ip.decode())
            self._drop(sock)

    def _step(self, sock: socket.socket, p: Pending) -> None:
        if p.out:
            self._write(sock, p)
            return
        if p.shaking:
            assert isinstance(sock, ssl.SSLSocket)
            if not self._handshake(sock, p):
                return
        try:
            # (TLS: everything the SSL object holds, which no select would report)
            if isinstance(sock, ssl.SSLSocket):
                data = self.recv_tls(sock)
            else:
                data = sock.recv(REQUEST_READ)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            log.debug("web request from %s: %s", p.ip.decode(), exc)
            self._drop(sock)
            return
        if not data:
            self._drop(sock)  # gone before asking anything: nothing to answer
            return
        decision = p.reader.feed(data)
        if decision is None:
            return
        if isinstance(decision, Upgrade):
            refusal = self.worker.core.admission(p.ip)
            if refusal is not None:
                decision = unavailable(refusal)
            else:
                p.upgrade = decision
        self._answer(sock, p, decision.response)
        if isinstance(decision, Answer) and decision.status >= 400:
            log.debug("web request from %s: %d", p.ip.decode(), decision.status)

    def _handshake(self, sock: ssl.SSLSocket, p: Pending) -> bool:
        """One step of the TLS handshake; True once it is done."""
        sel = self.worker.sel
        callback = functools.partial(self._ready, sock)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            sel.modify(sock, 1, callback)
            return False
        except ssl.SSLWantWriteError:
            sel.modify(sock, 2, callback)
            return False
        except (OSError, ValueError) as exc:
            log.debug("web TLS handshake from %s failed: %s", p.ip.decode(), exc)
            self._drop(sock)
            return False
        p.shaking = False
        sel.modify(sock, 1, callback)
        return True

    def _answer(self, sock: socket.socket, p: Pending, response: bytes) -> None:
        p.out = response
        self._write(sock, p)

    def _write(self, sock: socket.socket, p: Pending) -> None:
        try:
            n = sock.send(p.out)
        except SEND_LATER:
            n = 0
        except OSError:
            self._drop(sock)
            return
        p.out = p.out[n:]
        if p.out:
            self.worker.sel.modify(sock, 2, functools.partial(self._ready, sock))
            return
        if p.upgrade is None:
            self._drop(sock)  # answered: Connection: close
            return
        self._become_client(sock, p, p.upgrade)

    def _become_client(self, sock: socket.socket, p: Pending, upgrade: Upgrade) -> None:
        """The 101 went: from now on this is an ordinary client of the core."""
        worker = self.worker
        del self.pending[sock]
        worker.sel.unregister(sock)
        if isinstance(sock, ssl.SSLSocket):
            read: Callable[[], bytes] = functools.partial(self.recv_tls, sock)
        else:
            read = functools.partial(worker.receiver.recv, sock)
        session = WebSocketSession(upgrade.subprotocol, worker.core.input_limit)
        transport = WebSocketTransport(sock, session, read, self.frames)
        client = worker.core.connect(p.ip, worker.now)
        client.transport = transport
        client.secure = isinstance(sock, ssl.SSLSocket)  # wss:// (the sts value says so)
        worker.sel.register(transport, 1, client)
        if upgrade.trailing:  # frames sent right behind the request
            self._deliver(client, transport.feed(upgrade.trailing))
        if isinstance(sock, ssl.SSLSocket) and not client.closed:
            self.read(client)  # frames may wait inside the SSL object, which no select sees

    def _drop(self, sock: socket.socket) -> None:
        self.pending.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.worker.sel.unregister(sock)
        self.worker._close_gently(sock)

    def _expire(self) -> None:
        """Close the connections that took longer than --web-handshake-timeout: a request
        that never ends gets 408, a TLS handshake that stalls or an answer the peer does not
        read, nothing more."""
        now = self.worker.now
        for sock, p in list(self.pending.items()):
            if now >= p.deadline:
                if not p.shaking and not p.out:
                    with contextlib.suppress(OSError):
                        sock.send(error(408, "request timed out").response)
                self._drop(sock)

    # -- a WebSocket client --------------------------------------------------------------------------
    def read(self, client: Client) -> None:
        """A WebSocket client's socket is readable (the worker's ``_read`` for it)."""
        transport = client.transport
        assert isinstance(transport, WebSocketTransport)
        try:
            got = transport.receive()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            reason = b"Read error: " + (exc.strerror or "").encode()
            self.worker.core.connection_lost(client, reason, self.worker.now)
            return
        except Exception:  # our bug (the frame parser's): this client only
            log.exception("WebSocket client %#x: unexpected error; closed", client.uid)
            self.worker.core.connection_lost(client, b"Internal error", self.worker.now)
            return
        self._deliver(client, got)

    def _deliver(self, client: Client, got: Received) -> None:
        worker = self.worker
        core = worker.core
        if got.lines:
            # One line per message, as the stream would have them: the core's line buffer,
            # limits, flood control and ordering apply unchanged
            core.data_received(client, b"\n".join(got.lines) + b"\n", worker.now)
        if got.error:
            core.disconnect(client, got.error)
        elif got.closed:
            core.connection_lost(client, b"Remote host closed the connection", worker.now)
        elif worker.reading_paused and not client.closed:
            worker._pause_client(client)


def _out_of_descriptors(sock: socket.socket, ip: bytes) -> None:
    answer_and_close(sock, error(503, "Server out of file descriptors").response)


def web_root(configured: str | None, warn: bool = True) -> str | None:
    """The folder the web port serves: --web-root, else the web client that comes with
    fastchat (the package folder ``fastchat/webclient``); ``None`` (every request 404, and
    a warning in the log) if it does not exist."""
    root = configured or os.path.join(os.path.dirname(fastchat.__file__), "webclient")
    if not os.path.isdir(root):
        if warn:
            log.warning("web root %s is not a folder: every request for a file gets 404", root)
        return None
    return root
