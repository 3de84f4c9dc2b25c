"""The store's writer in a process of its own (``fastchat-store``), and the loop's handle on it.

Why a process: see ``runtime/storechild.py`` (a writing thread shared the sequencer loop's
GIL). :class:`WriterProcess` is what the loop holds (``runtime/storage.py``): the same calls
as a :class:`~fastchat.server.store.writer.Writer` (``submit_many``, ``submitted``,
``wake_when_settled``, ``status``, ``close``), over a :class:`~.storechild.ChildLink`. The
loop watches its socket: readable when the child reports (a status, sent when an asked-for
count of operations is settled, when the writer's health flips, and every
:data:`REPORT_EVERY` while its counts move), writable when frames wait.

The child runs a Writer fed from the socket: it stops when the socket closes, after writing
everything it received. So a SIGKILL of the hub (or of the one worker) loses only what the
loop had not yet handed over: the operations of its last loop turn; the child writes the
rest and exits. If the child dies, the loop sees the socket close: it says so (the writer is
unhealthy until the new child reports, the operations in flight are counted as dropped,
whoever waits for them is released) and starts another.

Frames: loop to child ``("ops", [op, ...])`` and ``("wake", count)``; child to loop
``("status", WriterStatus fields)`` and, last, ``("closed", everything_written)``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from fastchat.server.runtime.memory import CHECK_EVERY, Trimmer
from fastchat.server.runtime.storechild import (
    ChildHandle,
    ChildLink,
    child_main,
    frame,
    frames,
    log,
)
from fastchat.server.store.writer import Op, Writer, WriterStatus

#: Seconds between the child's reports of counts that moved while nobody asked (STATS S)
REPORT_EVERY = 1.0


class WriterProcess(ChildHandle):
    """The loop's side of the store's writing process (see the module's docstring)."""

    def __init__(self, path: str, max_queued: int = 200_000) -> None:
        self.path = path
        self.link = ChildLink(__name__, [path, str(max_queued)], "writing")
        self.submitted = 0  # operations submitted, in all (this side's count)
        self._base = 0  # operations submitted before the current child started
        self._status = WriterStatus(True, "", 0, 0, 0, 0, 0, 0, 0)
        self._lost = 0  # operations in flight when a child died (counted as dropped)

    def start(self) -> None:
        self.link.start()
        self._base = self.submitted

    def submit_many(self, ops: Iterable[Op]) -> None:
        """Hand ``ops`` to the child (a frame, sent now or when the socket takes it)."""
        ops = list(ops)
        self.submitted += len(ops)
        self.link.send(("ops", ops))

    def submit(self, op: Op) -> None:
        self.submit_many([op])

    def wake_when_settled(self, count: int) -> bool:
        """True if ``count`` operations are settled already; else ask the child to report
        when they are (a status the loop reads from :attr:`sock`)."""
        if self._base + self._status.settled >= count:
            return True
        self.link.send(("wake", count - self._base))
        return False

    def status(self) -> WriterStatus:
        """The child's last report (``settled`` counts from the first child on)."""
        st = self._status
        return st._replace(settled=self._base + st.settled, dropped=st.dropped + self._lost)

    def on_readable(self) -> bool:
        """Read the child's reports; True if something changed (a status, or the child
        died: then :attr:`died` is set)."""
        changed = False
        for message in self.link.receive():
            if message[0] == "status":
                self._status = WriterStatus(*message[1])
                changed = True
        return changed or self.link.died

    def restart(self) -> None:
        """After the child died (the loop no longer watches :attr:`sock`): count what it
        had not written as dropped, and start another (unhealthy until it reports)."""
        lost = self.submitted - self._base - self._status.settled
        self._lost += lost
        log.error("store %s: %d operations were not written", self.path, lost)
        st = self.status()
        self._status = WriterStatus(
            False, "the writing process died", 0, st.committed, st.commits, 0, st.failed,
            st.retries, 0,
        )  # fmt: skip
        self.link.restart()
        self._base = self.submitted

    def close(self, timeout: float = 5.0) -> bool:
        """Let the child write everything and exit, waiting at most ``timeout`` seconds;
        True if it wrote everything."""
        written = False
        for message in self.link.close(timeout):
            if message[0] == "status":
                self._status = WriterStatus(*message[1])
            elif message[0] == "closed":
                written = bool(message[1])
        return written


# -- the child ------------------------------------------------------------------------------------
def _run(sock: socket.socket, args: list[str]) -> int:
    """Feed a Writer from ``sock`` until it closes, then write the rest and report."""
    path, max_queued = args[0], int(args[1])
    sending = threading.Lock()
    last: list[Any] = [None, 0.0]  # the last status reported, and when

    def report(status: WriterStatus) -> None:
        with sending, contextlib.suppress(OSError):
            sock.sendall(frame(("status", tuple(status))))
            last[:] = [status, time.monotonic()]

    writer = Writer(path, max_queued=max_queued, on_change=report)
    writer.on_settled = lambda: report(writer.status())
    writer.start()
    report(writer.status())  # healthy, to begin with (after a predecessor died, say so)
    buffer = bytearray()
    trimmer = Trimmer(time.monotonic())  # the heap's freed pages back, once quiet
    while True:
        now = time.monotonic()
        if now >= trimmer.due:
            trimmer.check(now)
        if not select.select([sock], [], [], min(REPORT_EVERY, CHECK_EVERY))[0]:
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
        for message in frames(buffer):
            if message[0] == "ops":
                writer.submit_many(message[1])
            elif message[0] == "wake" and writer.wake_when_settled(message[1]):
                report(writer.status())
    written = writer.close()
    report(writer.status())
    with sending, contextlib.suppress(OSError):
        sock.sendall(frame(("closed", written)))
    delays = sorted(writer.delays())
    if delays:
        status = writer.status()
        log.info(
            "store %s: %d operations written in %d commits; from submit to commit "
            "p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            path, status.committed, status.commits, delays[len(delays) // 2],
            delays[len(delays) * 99 // 100], delays[-1],
        )  # fmt: skip
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1:], "fastchat-store", _run))
