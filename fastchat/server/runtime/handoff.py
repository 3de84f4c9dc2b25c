"""Handing a client's socket to another worker: ``SCM_RIGHTS`` over a Unix socket.

Owns: each worker's hand-off listener (a Unix socket in Linux's abstract namespace, named
after the hub's, one per worker slot), and the connections that carry one session each: the
old worker connects to the new one's listener, sends the session's bytes with the client's
descriptor attached to the first of them, and closes; the new worker reads to the end of the
stream and hands the session and the socket to the core (engine/placement.py decides what a
session holds and what happens to it).
Must never: decide anything about a client, or block the loop: connections are
non-blocking both ways, so two workers handing clients to each other at the same moment
cannot wait on each other.

Only processes of the same user may hand a socket in (``SO_PEERCRED``): the abstract
namespace has no file permissions, and the hub's socket is exposed the same way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable

log = logging.getLogger("fastchat.handoff")

#: A session is the client's state and its output owed: at most --sendq and --recvq plus a
#: little. Reading stops (and the connection is dropped) past this.
MAX_SESSION = 64 << 20
#: A new worker's hand-off backlog is full (it is busy: many clients move to it at once):
#: the old one tries again each loop turn, for this many seconds, before it gives up on the
#: client (the new worker's own wait for it is longer: placement.HANDOFF_TIMEOUT).
RETRY_FOR = 20.0
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


def address_of(hub_address: str, slot: int) -> str:
    """The hand-off listener of worker ``slot`` (beside the hub's Unix socket)."""
    return f"{hub_address}-handoff-{slot}"


class _Outgoing:
    """One session on its way: the bytes left to send (the descriptor went with the first)."""

    __slots__ = ("client", "data", "sock")

    def __init__(self, sock: socket.socket, data: bytes, client: socket.socket | None) -> None:
        self.sock = sock
        self.data = data
        self.client = client  # the socket to attach, until it is sent (then closed here)


class _Incoming:
    """One session arriving: its bytes so far and the descriptor that came with them."""

    __slots__ = ("chunks", "fds", "size", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.chunks: list[bytes] = []
        self.fds: list[int] = []
        self.size = 0


Register = Callable[[socket.socket, int, Callable[[int], None]], None]


class Handoff:
    """This worker's hand-off listener, and its sessions in flight both ways."""

    def __init__(
        self,
        hub_address: str,
        slot: int,
        register: Register,
        unregister: Callable[[socket.socket], object],
        deliver: Callable[[bytes, socket.socket | None], None],
    ) -> None:
        """``register(sock, events, handler)``/``unregister(sock)``: the worker's selector;
        ``deliver(session, sock)``: a session arrived (with its client's socket, or None)."""
        self.hub_address = hub_address
        self._register = register
        self._unregister = unregister
        self._deliver = deliver
        # sessions whose new worker's backlog was full: (slot, session, client, give up at)
        self.retrying: list[tuple[int, bytes, socket.socket | None, float]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = address_of(hub_address, slot)
        if not address.startswith("\0"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)
        self.listener.bind(address)
        self.listener.listen(socket.SOMAXCONN)
        self.listener.setblocking(False)
        register(self.listener, EVENT_READ, self._accept)

    def close(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._unregister(self.listener)
        self.listener.close()

    # -- sending -------------------------------------------------------------------------------
    def send(
        self, slot: int, session: bytes, client: socket.socket | None, until: float = 0.0
    ) -> bool:
        """Send ``session`` with ``client``'s descriptor to worker ``slot``. This takes
        ``client``: its descriptor here is closed once it is in flight (the kernel holds a
        reference of its own then), or at once if the session cannot go. False if worker
        ``slot`` cannot be reached (its listener is gone). Its backlog full (EAGAIN), the
        session waits for :meth:`retry`, until ``until`` (0: ``RETRY_FOR`` from now)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(address_of(self.hub_address, slot))
        except BlockingIOError:
            sock.close()
            now = time.monotonic()
            until = until or now + RETRY_FOR
            if now < until:
                self.retrying.append((slot, session, client, until))
                return True
            log.error("hand-off to worker %d failed: its backlog stayed full", slot)
            if client is not None:
                client.close()
            return False
        except OSError as exc:
            log.error("hand-off to worker %d failed: %s", slot, exc)
            sock.close()
            if client is not None:
                client.close()
            return False
        out = _Outgoing(sock, session, client)
        if not self._write(out):
            return False
        if out.data:
            self._register(sock, EVENT_WRITE, lambda mask: self._writable(out))
        return True

    def retry(self) -> None:
        """The worker's turn: send again what a full backlog turned away (in order)."""
        retrying, self.retrying = self.retrying, []
        for slot, session, client, until in retrying:
            self.send(slot, session, client, until)

    def _write(self, out: _Outgoing) -> bool:
        """Send what the socket takes; close it once all is sent. False on an error."""
        try:
            while out.data:
                client = out.client
                if client is not None:
                    sent = socket.send_fds(out.sock, [out.data], [client.fileno()])
                    out.client = None
                    client.close()  # in flight: the kernel holds it now
                else:
                    sent = out.sock.send(out.data)
                out.data = out.data[sent:]
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            log.error("hand-off: sending a session failed: %s", exc)
            out.data = b""
            out.sock.close()
            if out.client is not None:
                out.client.close()
                out.client = None
            return False
        out.sock.close()
        return True

    def _writable(self, out: _Outgoing) -> None:
        self._unregister(out.sock)
        if self._write(out) and out.data:
            self._register(out.sock, EVENT_WRITE, lambda mask: self._writable(out))

    # -- receiving -----------------------------------------------------------------------------
    def _accept(self, mask: int) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("hand-off: accept failed: %s", exc)
                return
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
            if _CREDENTIALS.unpack(creds)[1] != os.getuid():
                log.error("hand-off: a connection from another user; dropped")
                sock.close()
                continue
            sock.setblocking(False)
            incoming = _Incoming(sock)
            self._register(sock, EVENT_READ, functools.partial(self._when_readable, incoming))

    def _when_readable(self, incoming: _Incoming, mask: int) -> None:
        self._readable(incoming)

    def _readable(self, incoming: _Incoming) -> None:
        sock = incoming.sock
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("hand-off: receiving a session failed: %s", exc)
                data, fds = b"", []
                incoming.chunks = []
            incoming.fds.extend(fds)
            if not data:
                break
            incoming.chunks.append(data)
            incoming.size += len(data)
            if incoming.size > MAX_SESSION:
                log.error("hand-off: a session over %d bytes; dropped", MAX_SESSION)
                incoming.chunks = []
                break
        self._unregister(sock)
        sock.close()
        client: socket.socket | None = None
        for i, fd in enumerate(incoming.fds):
            if i == 0 and incoming.chunks:
                client = socket.socket(fileno=fd)
            else:
                os.close(fd)
        if not incoming.chunks:
            if client is not None:
                client.close()
            return
        self._deliver(b"".join(incoming.chunks), client)
