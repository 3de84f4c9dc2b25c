"""Accepting connections: the one accept loop of every listener of a worker (plain, TLS,
web, web TLS), and what happens when descriptors run out.

Owns: the loop (at most :data:`ACCEPTS_PER_TURN` accepts per readiness, so a flood of
newcomers cannot starve the clients already served), the descriptor each worker holds in
reserve (:class:`Reserve`), and the answer to a newcomer when every other descriptor is
taken: the reserve is freed, the newcomer accepted, told why by the caller's ``refuse``,
closed, and the reserve taken again; so it learns at once that the server is out of
descriptors, instead of waiting in the backlog for nothing.
Must never: decide who is admitted (the caller's ``on_socket`` does), or know what a
listener speaks: the words of a refusal are the caller's (an IRC ``ERROR``, an HTTP 503,
none over TLS).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("fastchat.accept")

#: Accepts per readiness of a listener; the listener stays readable if more wait.
ACCEPTS_PER_TURN = 64
#: accept() failing for want of descriptors: this process's (EMFILE) or the system's (ENFILE)
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
#: ... or of kernel memory: no reserve helps, the listener pauses for a moment
OUT_OF_MEMORY = (errno.ENOBUFS, errno.ENOMEM)


class Reserve:
    """One descriptor held back (``/dev/null``, opened read-only) to answer a newcomer when
    every other one is taken. :meth:`release` frees it for that moment; :meth:`restore`
    takes it back (which fails while another thread holds the freed number, say a
    verification mail's socket: it is tried again at the next shortage)."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        self.fd: int | None = None
        self.restore()

    def release(self) -> bool:
        """Free the descriptor; False if there was none to free."""
        if self.fd is None:
            return False
        os.close(self.fd)
        self.fd = None
        return True

    def restore(self) -> bool:
        """Hold a descriptor again (if none is held); False if none could be had."""
        if self.fd is None:
            try:
                self.fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        return True

    def close(self) -> None:
        self.release()


def address_of(addr: object) -> bytes:
    """The peer's IP as the core knows it (a Unix socket's peer: ``local``)."""
    return (addr[0] if isinstance(addr, tuple) else "local").encode()


def accept_from(
    listener: socket.socket,
    reserve: Reserve,
    on_socket: Callable[[socket.socket, bytes], None],
    refuse: Callable[[socket.socket, bytes], None],
) -> bool:
    """Accept what waits on ``listener`` (non-blocking), up to :data:`ACCEPTS_PER_TURN`:
    each newcomer goes to ``on_socket(sock, ip)``, which owns it from then on. Out of
    descriptors, each newcomer goes instead to ``refuse(sock, ip)``, with the reserve's
    descriptor, and is closed here after it (``refuse`` only says why, without blocking:
    see :func:`answer_and_close`).

    Returns True when the caller should stop watching ``listener`` for a moment: out of
    kernel memory, or out of descriptors with no reserve to answer with (a listener that
    stays readable would spin the loop)."""
    refused = 0
    if reserve.fd is None:
        reserve.restore()  # (another thread took the number it freed last time)
    try:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS and reserve.release():
                    # The freed descriptor is the newcomer's: answer it, close, take it back
                    try:
                        sock, addr = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        return False  # (gone meanwhile)
                    except OSError as again:
                        exc = again
                    else:
                        try:
                            refuse(sock, address_of(addr))
                        finally:
                            sock.close()
                            refused += 1
                        continue
                    finally:
                        reserve.restore()
                if exc.errno in OUT_OF_DESCRIPTORS + OUT_OF_MEMORY:
                    log.warning("accept failed (%s); pausing accepts for 1 s", exc.strerror)
                    return True
                log.warning("accept failed: %s", exc)
                return False
            on_socket(sock, address_of(addr))
        return False
    finally:
        if refused:
            log.warning(
                "accept failed (out of descriptors): %d newcomer%s told so and closed",
                refused,
                "" if refused == 1 else "s",
            )


def say_nothing(sock: socket.socket, ip: bytes) -> None:
    """``refuse`` for a TLS listener: nothing can be said before a handshake (accept_from
    closes the socket)."""


def answer_and_close(sock: socket.socket, words: bytes) -> None:
    """``refuse`` for the plain and web listeners: send ``words`` if the socket takes them
    now (a new socket's buffer does), never blocking, then close with a FIN rather than a
    reset (shut our side and read what the peer sent already), so that it reads them."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        if words:
            sock.send(words)
        sock.shutdown(socket.SHUT_WR)
        for _ in range(4):
            if not sock.recv(4096):
                break
    sock.close()
