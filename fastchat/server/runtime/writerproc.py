"""The store's writer in a process of its own, and the loop's handle on it.

Why a process: the writer (``store/writer.py``) is a thread, and a thread shares its
process's GIL. In the process that runs the sequencer the loop is CPU-bound under load, so
every time the writing thread gave up the GIL (around each SQLite call) it waited for the
loop's switch interval to win it back: a saturated writer's batches waited 11-18 ms from
submit to commit at p50 and 120+ ms at p99, against 0.2 and 2 ms beside an idle loop
(BENCHMARKS.md, "History"). In a process of its own it has a GIL of its own, and the
sequencer's loop pays one pickled frame per loop turn.

:class:`WriterProcess` is what the loop holds (``runtime/storage.py``): the same calls as a
:class:`~fastchat.server.store.writer.Writer` (``submit_many``, ``submitted``,
``wake_when_settled``, ``status``, ``close``), over a Unix socket pair to a child process
forked from the sequencer's process (after its own fork, before it starts any thread). The
loop watches :attr:`WriterProcess.sock`: readable when the child reports (a status, sent
when an asked-for count of operations is settled or the writer's health flips), writable
when frames wait in :attr:`WriterProcess.wants_write` (the loop never blocks on the child).

The child (``fastchat-store``) ignores the stop signals and runs a Writer fed from the
socket: it stops
when the socket closes, after writing everything it received. So a SIGKILL of the hub (or
of the one worker) loses only what the loop had not yet handed over: the frames of its last
loop turn; the child writes the rest and exits. If the child dies, the loop sees the socket
close: it says so (the writer is unhealthy until the new child reports, the operations in
flight are counted as dropped, whoever waits for them is released) and starts another.

Frames, both ways: a 4-byte big-endian length, then a pickle. Loop to child: ``("ops",
[op, ...])`` and ``("wake", count)``; child to loop: ``("status", WriterStatus fields)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import fastchat
from fastchat.server.runtime.proctitle import set_process_name
from fastchat.server.store.writer import Op, Writer, WriterStatus

log = logging.getLogger("fastchat.store")

_LENGTH = struct.Struct(">I")
#: Seconds between the child's reports of counts that moved while nobody asked (STATS S)
REPORT_EVERY = 1.0
#: The socket buffers: enough for the frames of a busy loop turn
_BUFFER = 4 << 20


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _frames(buffer: bytearray) -> list[Any]:
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


class WriterProcess:
    """The loop's side of the store's writing process (see the module's docstring)."""

    def __init__(self, path: str, max_queued: int = 200_000) -> None:
        self.path = path
        self.max_queued = max_queued  # the child's Writer's (see store/writer.py)
        self.submitted = 0  # operations submitted, in all (this side's count)
        self.sock: socket.socket | None = None
        self.pid = 0
        self._out = bytearray()  # frames not yet taken by the socket
        self._in = bytearray()
        self._base = 0  # operations submitted before the current child started
        self._status = WriterStatus(True, "", 0, 0, 0, 0, 0, 0, 0)
        self._lost = 0  # operations in flight when a child died (counted as dropped)
        self._proc: subprocess.Popen[bytes] | None = None
        self.died = False  # the child's socket closed: the loop must call restart()

    # -- the loop's side ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child: a fresh interpreter (``python -m
        fastchat.server.runtime.writerproc``), not a fork: a forked child would inherit
        SQLite's in-memory record of the parent's connections and their locks (a reader's,
        at one worker), and the locks of its threads, and could wait on them forever."""
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
        args = [str(theirs.fileno()), self.path, level, str(self.max_queued)]
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, *args],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        mine.setblocking(False)
        self.sock, self.pid, self._proc = mine, proc.pid, proc
        self._base = self.submitted
        self._out.clear()
        self._in.clear()
        log.info("store %s: writing process %d", self.path, proc.pid)

    @property
    def wants_write(self) -> bool:
        """Frames wait for the socket: the loop should watch it for writing."""
        return bool(self._out)

    def submit_many(self, ops: Iterable[Op]) -> None:
        """Hand ``ops`` to the child (a frame, sent now or when the socket takes it)."""
        ops = list(ops)
        self.submitted += len(ops)
        self._send(("ops", ops))

    def submit(self, op: Op) -> None:
        self.submit_many([op])

    def wake_when_settled(self, count: int) -> bool:
        """True if ``count`` operations are settled already; else ask the child to report
        when they are (a status the loop reads from :attr:`sock`)."""
        if self._base + self._status.settled >= count:
            return True
        self._send(("wake", count - self._base))
        return False

    def status(self) -> WriterStatus:
        """The child's last report (``settled`` counts from the first child on)."""
        st = self._status
        return st._replace(settled=self._base + st.settled, dropped=st.dropped + self._lost)

    def on_writable(self) -> None:
        """The socket takes more: send what waits."""
        self._send_some()

    def on_readable(self) -> bool:
        """Read the child's reports; True if something changed (a status, or the child
        died: then :attr:`died` is set)."""
        assert self.sock is not None
        changed = False
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.died = True  # the loop stops watching this socket, then calls restart()
                return True
            self._in += data
        for message in _frames(self._in):
            if message[0] == "status":
                self._status = WriterStatus(*message[1])
                changed = True
        return changed

    def close(self, timeout: float = 5.0) -> bool:
        """Send what waits, let the child write everything and exit, waiting at most
        ``timeout`` seconds; True if it wrote everything."""
        sock = self.sock
        if sock is None:
            return True
        self.sock = None
        deadline = time.monotonic() + timeout
        all_written = False
        try:
            sock.setblocking(True)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            if self._out:
                sock.sendall(self._out)
                self._out.clear()
            sock.shutdown(socket.SHUT_WR)  # the child writes everything, reports, exits
            while True:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break
                self._in += data
            for message in _frames(self._in):
                if message[0] == "status":
                    self._status = WriterStatus(*message[1])
                elif message[0] == "closed":
                    all_written = bool(message[1])
        except OSError as e:
            log.error("store: the writing process did not finish: %s", e)
        finally:
            sock.close()
            self._reap(deadline)
        return all_written

    # -- inside ---------------------------------------------------------------------------------
    def _send(self, message: Any) -> None:
        self._out += _frame(message)
        self._send_some()

    def _send_some(self) -> None:
        if self.sock is None or not self._out:
            return
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # the child is gone: on_readable sees the end of the stream
        del self._out[:sent]

    def restart(self) -> None:
        """After the child died (:attr:`died`; the loop no longer watches :attr:`sock`):
        count what it had not written as dropped, say so, and start another."""
        assert self.sock is not None
        self.sock.close()
        self.sock = None
        self.died = False
        pid = self.pid
        self._reap(time.monotonic() + 1.0)
        lost = self.submitted - self._base - self._status.settled
        self._lost += lost
        log.error(
            "store %s: the writing process %d died with %d operations not written; "
            "starting another",
            self.path, pid, lost,
        )  # fmt: skip
        st = self.status()
        self._status = WriterStatus(
            False, "the writing process died", 0, st.committed, st.commits, 0, st.failed,
            st.retries, 0,
        )  # fmt: skip
        self.start()  # its settled count starts from _base = everything submitted so far

    def _reap(self, deadline: float) -> None:
        proc, self._proc, self.pid = self._proc, None, 0
        if proc is None:
            return
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _child(sock: socket.socket, path: str, max_queued: int) -> int:
    """The writing process: feed a Writer from ``sock`` until it closes, then write the
    rest and report."""
    set_process_name("fastchat-store")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)  # it stops when the loop's side closes
    sock.setblocking(True)
    sending = threading.Lock()

    last: list[Any] = [None, 0.0]  # the last status reported, and when

    def report(status: WriterStatus) -> None:
        with sending, contextlib.suppress(OSError):
            sock.sendall(_frame(("status", tuple(status))))
            last[:] = [status, time.monotonic()]

    writer = Writer(path, max_queued=max_queued, on_change=report)
    writer.on_settled = lambda: report(writer.status())
    writer.start()
    report(writer.status())  # healthy, to begin with (after a predecessor died, say so)
    buffer = bytearray()
    while True:
        if not select.select([sock], [], [], REPORT_EVERY)[0]:
            # nothing came: if the counts moved since the last report, report them (the
            # loop's STATS S; a retrying writer's attempts), at most every REPORT_EVERY
            status = writer.status()
            if status != last[0] and time.monotonic() - last[1] >= REPORT_EVERY:
                report(status)
            continue
        try:
            data = sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            break
        buffer += data
        for message in _frames(buffer):
            if message[0] == "ops":
                writer.submit_many(message[1])
            elif message[0] == "wake" and writer.wake_when_settled(message[1]):
                report(writer.status())
    written = writer.close()
    report(writer.status())
    with sending, contextlib.suppress(OSError):
        sock.sendall(_frame(("closed", written)))
    delays = sorted(writer.delays())
    if delays:
        status = writer.status()
        log.info(
            "store %s: %d operations written in %d commits; from submit to commit "
            "p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            path, status.committed, status.commits, delays[len(delays) // 2],
            delays[len(delays) * 99 // 100], delays[-1],
        )  # fmt: skip
    sock.close()
    return 0 if written else 1


def main(argv: list[str]) -> int:
    """``python -m fastchat.server.runtime.writerproc FD PATH LEVEL MAX_QUEUED`` (the loop
    starts it)."""
    fd, path, level, max_queued = int(argv[0]), argv[1], argv[2], int(argv[3])
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s",
    )
    try:
        return _child(socket.socket(fileno=fd), path, max_queued)
    except BaseException:
        log.exception("store: the writing process failed")
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
