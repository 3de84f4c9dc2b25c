"""The plain line mode, for pipes and scripts: typed lines in, one event per line out.

Owns: reading lines from a non-terminal stdin and printing events as ``HH:MM WINDOW TEXT``.
Must never: draw with curses, or hold chat state.

Input is read only once the session is ready (registered and in its channel), so that
``printf 'hello\\n' | fastchat client HOST PORT`` says hello in the channel rather than to a
server that is not there yet; the end of input quits (sending QUIT).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import BinaryIO

from fastchat.client.session import Event, Session, describe

_READ_SIZE = 64 * 1024


def format_event(event: Event) -> str:
    """``12:34 #lobby <ada> hello``; ``*`` names the server window."""
    stamp = time.strftime("%H:%M", time.localtime(event.time))
    return f"{stamp} {event.window or '*'} {describe(event)}"


class PlainView:
    """A :class:`~fastchat.client.loop.Frontend` over plain file descriptors."""

    def __init__(self, session: Session, stdin_fd: int, stdout: BinaryIO) -> None:
        self.session = session
        self._stdin_fd = stdin_fd
        self._stdout = stdout
        self._partial = b""
        self._eof = False

    def input_fds(self) -> Sequence[int]:
        return [self._stdin_fd] if self.session.ready and not self._eof else []

    def on_input(self, fd: int) -> list[str]:
        data = os.read(fd, _READ_SIZE)
        if not data:
            self._eof = True
            tail, self._partial = self._partial, b""
            typed = [tail.decode(errors="replace")] if tail.strip() else []
            return [*typed, "/quit"]
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [x.rstrip(b"\r").decode(errors="replace") for x in lines if x.strip()]

    def show(self, events: Sequence[Event]) -> None:
        text = "".join(format_event(e) + "\n" for e in events)
        self._stdout.write(text.encode("utf-8", errors="replace"))

    def resize(self) -> None:
        """No screen, nothing to lay out."""

    def draw(self) -> None:
        self._stdout.flush()
