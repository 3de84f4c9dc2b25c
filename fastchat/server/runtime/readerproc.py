"""The store's reader in a process of its own (``fastchat-read``), and a worker's handle on it.

Why a process: see ``runtime/storechild.py`` (a reading thread in the worker's process waited
for the loop's GIL at every row: a 100-line CHATHISTORY, 0.4 ms of SQLite, took 80 ms at p50
under load). :class:`ReaderProcess` has the calls of a :class:`~fastchat.server.store.reader.
Reader` (``ask(query, ticket)``, ``answers()``, ``close()``) over a
:class:`~.storechild.ChildLink`; the worker watches its socket (readable: answers came;
writable while queries wait for it). The child runs a Reader (its threads, each with its own
read-only connection) and sends each answer back as it comes.

If the child dies, the queries it had not answered are answered with an error (the clients
get ``FAIL CHATHISTORY MESSAGE_ERROR``; their barriers lift), and another starts.

Frames: worker to child ``("ask", ticket, query)``; child to worker ``("answer", ticket,
rows, error)``.
"""

from __future__ import annotations

import select
import socket
import sys
import time

from fastchat.server.runtime.memory import CHECK_EVERY, Trimmer
from fastchat.server.runtime.storechild import ChildHandle, ChildLink, child_main, frame, frames
from fastchat.server.store.reader import Answer, Query, Reader


class ReaderProcess(ChildHandle):
    """A worker's side of its store reading process (see the module's docstring)."""

    def __init__(self, path: str, threads: int = 2) -> None:
        self.link = ChildLink(__name__, [path, str(threads)], "reading")
        self._asked: set[int] = set()  # tickets not answered yet
        self._lost: list[Answer] = []  # answers for what a dead child had not answered
        self.link.start()

    def ask(self, query: Query, ticket: int) -> None:
        """Queue ``query``; its :class:`Answer` comes back under ``ticket``. Never blocks."""
        self._asked.add(ticket)
        self.link.send(("ask", ticket, query))

    def answers(self) -> list[Answer]:
        """Every answer that came (after the worker saw the socket readable); if the child
        died (:attr:`died`), an error for each query it had not answered."""
        ready = [Answer(*message[1:]) for message in self.link.receive() if message[0] == "answer"]
        for answer in ready:
            self._asked.discard(answer.ticket)
        if self.link.died:
            ready += [Answer(t, [], "the store's reading process died") for t in self._asked]
            self._asked.clear()
        return ready

    def restart(self) -> None:
        """After the child died (the worker no longer watches :attr:`sock`)."""
        self.link.restart()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child once the queries asked so far are answered (their answers are
        dropped: the worker is stopping)."""
        self.link.close(timeout)


# -- the child ------------------------------------------------------------------------------------
def _run(sock: socket.socket, args: list[str]) -> int:
    """Answer the queries that come on ``sock`` with a Reader's threads, until it closes."""
    path, threads = args[0], int(args[1])
    reader = Reader(path, threads=threads)
    buffer = bytearray()
    open_ = True
    trimmer = Trimmer(time.monotonic())  # the heap's freed pages back, once quiet
    try:
        while open_ or reader.pending:
            now = time.monotonic()
            if now >= trimmer.due:
                trimmer.check(now)
            watched = [sock, reader.wakeup] if open_ else [reader.wakeup]
            readable = select.select(watched, [], [], CHECK_EVERY)
            if reader.wakeup in readable[0]:
                out = b"".join(
                    frame(("answer", a.ticket, a.rows, a.error)) for a in reader.answers()
                )
                if out:
                    sock.sendall(out)
            if open_ and sock in readable[0]:
                data = sock.recv(1 << 20)
                if not data:
                    open_ = False
                    continue
                buffer += data
                for message in frames(buffer):
                    if message[0] == "ask":
                        reader.ask(message[2], message[1])
    finally:
        reader.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1:], "fastchat-read", _run))
