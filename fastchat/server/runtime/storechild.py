"""The store's helper processes, and a loop's link to one: SQLite work in an interpreter of
its own, so it never shares a GIL with a busy loop.

Why: a thread in the loop's process waits for the GIL every time SQLite gives it back (each
statement step), and a busy loop holds it up to the switch interval (5 ms): a saturated
writer's batches waited 11-18 ms at p50 and 120+ ms at p99 from submit to commit, and a
CHATHISTORY of 100 lines, which takes the reader 0.4 ms, was answered in 80 ms at p50 under
the rooms load (BENCHMARKS.md, "History"). Two children use this: the writing process
(``runtime/writerproc.py``, one per sequencer process) and the reading process
(``runtime/readerproc.py``, one per worker that reads the history).

:class:`ChildLink` is the loop's side: it starts ``python -m <module> FD ...`` (a fresh
interpreter, not a fork: a forked child would inherit SQLite's in-memory record of the
parent's connections and their locks, and the locks of its threads, and could wait on them
forever) with one end of a Unix socket pair, and exchanges *frames* with it: a 4-byte
big-endian length, then a pickle. The loop watches :attr:`ChildLink.sock` (readable: frames
came; writable when :attr:`ChildLink.wants_write`: frames wait for the socket), never blocks
on it, and learns that the child died when the socket closes (:attr:`ChildLink.died`; then
:meth:`ChildLink.restart`). :func:`child_main` is the child's side: logging as the server's,
its process name, the stop signals ignored (a child stops when its socket closes).

Owns: starting, feeding, hearing and stopping a child. Must never: block the loop (but in
:meth:`ChildLink.close`, at the end), or know what the frames mean.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import fastchat
from fastchat.server.runtime.proctitle import set_process_name

log = logging.getLogger("fastchat.store")

_LENGTH = struct.Struct(">I")
#: The socket buffers: enough for the frames of a busy loop turn
_BUFFER = 4 << 20


def frame(message: Any) -> bytes:
    """One frame: ``message`` pickled, after its length."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def frames(buffer: bytearray) -> list[Any]:
    """The whole frames at the start of ``buffer``, taken out of it."""
    out = []
    start = 0
    while len(buffer) - start >= 4:
        (size,) = _LENGTH.unpack_from(buffer, start)
        if len(buffer) - start - 4 < size:
            break
        out.append(pickle.loads(buffer[start + 4 : start + 4 + size]))
        start += 4 + size
    del buffer[:start]
    return out


class ChildLink:
    """The loop's side of a child running ``python -m module FD *args``."""

    def __init__(self, module: str, args: list[str], role: str) -> None:
        self.module = module
        self.args = args
        self.role = role  # for the log: "writing", "reading"
        self.sock: socket.socket | None = None
        self.pid = 0
        self.died = False  # the child's socket closed: the loop must call restart()
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = bytearray()  # frames not yet taken by the socket
        self._in = bytearray()

    def start(self) -> None:
        """Start the child (a fresh interpreter: see the module's docstring)."""
        mine, theirs = socket.socketpair()
        for s in (mine, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(fastchat.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
        )
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        argv = [sys.executable, "-m", self.module, str(theirs.fileno()), level, *self.args]
        self._proc = subprocess.Popen(
            argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env
        )
        theirs.close()
        mine.setblocking(False)
        self.sock, self.pid, self.died = mine, self._proc.pid, False
        self._out.clear()
        self._in.clear()
        log.info("store: %s process %d", self.role, self.pid)

    @property
    def wants_write(self) -> bool:
        """Frames wait for the socket: the loop should watch it for writing."""
        return bool(self._out)

    def send(self, message: Any) -> None:
        """Send a frame, or what the socket takes of it now; the rest waits in order."""
        data = frame(message)
        if self._out or self.sock is None:
            self._out += data
            self.on_writable()
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return  # the child is gone: receive() sees the end of the stream
        if sent < len(data):
            self._out += memoryview(data)[sent:]

    def on_writable(self) -> None:
        if self.sock is None or not self._out:
            return
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # the child is gone: receive() sees the end of the stream
        del self._out[:sent]

    def receive(self) -> list[Any]:
        """The frames the child sent so far (never blocks); on the end of the stream,
        :attr:`died` is set."""
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.died = True
                break
            self._in += data
        return frames(self._in)

    def restart(self) -> None:
        """After the child died (the loop no longer watches :attr:`sock`): reap it, say
        so, start another. The frames not sent are lost (the caller knows what they were)."""
        assert self.sock is not None
        self.sock.close()
        self.sock = None
        pid = self.pid
        self._reap(time.monotonic() + 1.0)
        log.error("store: the %s process %d died; starting another", self.role, pid)
        self.start()

    def close(self, timeout: float = 5.0) -> list[Any]:
        """Send what waits, close our side (the child finishes and exits), and give the
        frames it sent until then, waiting at most ``timeout`` seconds."""
        sock = self.sock
        if sock is None:
            return []
        self.sock = None
        deadline = time.monotonic() + timeout
        try:
            sock.setblocking(True)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            if self._out:
                sock.sendall(self._out)
                self._out.clear()
            sock.shutdown(socket.SHUT_WR)
            while True:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                data = sock.recv(1 << 20)
                if not data:
                    break
                self._in += data
        except OSError as e:
            log.error("store: the %s process did not finish: %s", self.role, e)
        finally:
            sock.close()
            self._reap(deadline)
        return frames(self._in)

    def _reap(self, deadline: float) -> None:
        proc, self._proc, self.pid = self._proc, None, 0
        if proc is None:
            return
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ChildHandle:
    """What a child's handle (the writer's, a reader's) shows the loop, from its link."""

    link: ChildLink

    @property
    def sock(self) -> socket.socket | None:
        """The socket the loop watches (None between a death and :meth:`ChildLink.restart`)."""
        return self.link.sock

    @property
    def pid(self) -> int:
        return self.link.pid

    @property
    def died(self) -> bool:
        return self.link.died

    @property
    def wants_write(self) -> bool:
        return self.link.wants_write

    def on_writable(self) -> None:
        self.link.on_writable()


def child_main(argv: list[str], name: str, run: Callable[[socket.socket, list[str]], int]) -> int:
    """A child's entry point: ``argv`` is ``FD LEVEL *args``; ``run(sock, args)`` is its
    work, its return value the exit status."""
    fd, level, args = int(argv[0]), argv[1], argv[2:]
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s",
    )
    set_process_name(name)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)  # it stops when the loop's side closes
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    try:
        return run(sock, args)
    except BaseException:
        log.exception("store: the %s process failed", name)
        return 1
    finally:
        with contextlib.suppress(OSError):
            sock.close()
