"""The client's event loop: one selector over the keyboard, the server socket and signals.

Owns: the only place the client waits. Each turn it waits on one ``selectors`` selector for
whichever comes first (typed input, bytes from the server, the end of a timer, a signal), feeds
what arrived to the :class:`~fastchat.client.session.Session`, carries out the effects (send
lines, show events, quit, drop a dead link) and redraws.
Must never: hold chat state (the session does), or block anywhere but in ``select``.

Why one selector and not a send thread and a receive thread joined by a queue: the session and
curses are both single-threaded objects, and a single loop owns them both with no locks and no
cross-thread wake-ups. Nothing in a turn can stall: the socket is non-blocking with an output
queue (so typing never waits on the network), and keys are read only when stdin is readable and
without delay (so receiving never waits on typing). Signals come in through
``signal.set_wakeup_fd`` on a pipe in the same selector, so a resize or SIGTERM wakes the loop at
once instead of at the next keypress. The one blocking call, name resolution, runs in a helper
thread inside :class:`~fastchat.client.connection.Link`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Sequence
from typing import Protocol

from fastchat.client.connection import Connected, Connecting, Link, Lost, Received, Refused
from fastchat.client.session import Effects, Event, Session
from fastchat.irc.message import line

#: Wake at least this often while connected (keepalive checks) ...
IDLE_WAKE = 5.0
#: ... and this often while waiting to reconnect (the countdown on the status line).
COUNTDOWN_WAKE = 1.0
_QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Frontend(Protocol):
    """What the loop needs from a view (curses or plain lines)."""

    def input_fds(self) -> Sequence[int]:
        """File descriptors to watch for typed input right now (may be empty)."""
        ...

    def on_input(self, fd: int) -> list[str]:
        """Read what is available on ``fd``; return complete typed lines (or commands)."""
        ...

    def show(self, events: Sequence[Event]) -> None:
        """New events were added to the session's windows."""
        ...

    def resize(self) -> None:
        """The terminal changed size (SIGWINCH)."""
        ...

    def draw(self) -> None:
        """End of a turn: bring the screen up to date."""
        ...


class _SignalPipe:
    """Signals as bytes on a pipe the selector watches (``signal.set_wakeup_fd``)."""

    def __init__(self, signals: Sequence[signal.Signals]) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._previous = {s: signal.signal(s, self._note) for s in signals}
        self._previous_fd = signal.set_wakeup_fd(self._w)

    @staticmethod
    def _note(signum: int, frame: object) -> None:
        """A Python-level handler must exist for the wakeup fd to be written; the work is
        done by the loop when it reads the signal number from the pipe."""

    @property
    def fd(self) -> int:
        return self._r

    def read(self) -> list[int]:
        try:
            return list(os.read(self._r, 256))
        except BlockingIOError:
            return []

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        os.close(self._r)
        os.close(self._w)


class ClientLoop:
    """Runs one session over one link with one frontend until the person quits."""

    def __init__(
        self,
        session: Session,
        link: Link,
        frontend: Frontend,
        selector: selectors.BaseSelector,
        handle_resize: bool = True,
    ) -> None:
        self.session = session
        self.link = link
        self.frontend = frontend
        self.selector = selector
        self._quitting = False
        self._typed: list[str] = []
        self._signals: list[int] = []
        self._watched: set[int] = set()
        wanted = list(_QUIT_SIGNALS) + ([signal.SIGWINCH] if handle_resize else [])
        self._signal_pipe = _SignalPipe(wanted)
        selector.register(self._signal_pipe.fd, selectors.EVENT_READ, self._on_signal)

    def _on_signal(self, mask: int) -> None:
        self._signals += self._signal_pipe.read()

    def _input_callback(self, fd: int) -> object:
        def on_readable(mask: int) -> None:
            self._typed += self.frontend.on_input(fd)

        return on_readable

    def _watch_input(self) -> None:
        wanted = set(self.frontend.input_fds())
        for fd in self._watched - wanted:
            self.selector.unregister(fd)
        for fd in wanted - self._watched:
            self.selector.register(fd, selectors.EVENT_READ, self._input_callback(fd))
        self._watched = wanted

    def apply(self, fx: Effects) -> None:
        """Carry out what the session asked for."""
        for data in fx.send:
            self.link.send(data)
        if fx.events:
            self.frontend.show(fx.events)
        if fx.quit:
            self._quitting = True
        if fx.disconnect:
            self.link.drop("no reply to PING from the server")

    def _timeout(self) -> float:
        mono = time.monotonic()
        wake = COUNTDOWN_WAKE if self.link.retry_in(mono) is not None else IDLE_WAKE
        deadline = self.link.deadline()
        if deadline is not None:
            wake = min(wake, max(deadline - mono, 0.0))
        return wake

    def turn(self) -> None:
        """Wait once, then handle everything that arrived."""
        self._watch_input()
        for key, mask in self.selector.select(self._timeout()):
            key.data(mask)
        now = time.time()
        for ev in self.link.take_events():
            if isinstance(ev, Connecting):
                self.apply(self.session.connecting(now, ev.address))
            elif isinstance(ev, Connected):
                self.apply(self.session.connected(now))
            elif isinstance(ev, Received):
                for raw in ev.lines:
                    self.apply(self.session.receive(raw, now))
            elif isinstance(ev, Lost):
                self.apply(self.session.lost(now, ev.reason, ev.retry_in))
            elif isinstance(ev, Refused):
                self.apply(self.session.refused(now, ev.reason))
        if self.session.registered:
            self.link.backoff.reset()
        typed, self._typed = self._typed, []
        for text in typed:
            self.apply(self.session.command(text, now))
        signals, self._signals = self._signals, []
        for signum in signals:
            if signum == signal.SIGWINCH:
                self.frontend.resize()
            elif not self._quitting:
                self.apply(self.session.command("/quit", now))
        self.link.tick(time.monotonic())
        self.apply(self.session.tick(now))
        retry_in = self.link.retry_in(time.monotonic())
        if retry_in is not None:
            self.session.waiting(retry_in)
        self.frontend.draw()

    def run(self) -> int:
        """Connect and loop until /quit (or Ctrl-C, Ctrl-D, SIGTERM, SIGHUP); 0 on a clean quit."""
        try:
            self.link.start()
            self.frontend.draw()
            while not self._quitting:
                self.turn()
            return 0 if self.session.fatal is None else 1
        finally:
            # On a clean quit this delivers the QUIT line; on a crash it still leaves politely.
            if not self._quitting and self.link.is_open:
                self.link.send(line(b"Client error", command=b"QUIT"))
            self.link.close()
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self._signal_pipe.fd)
            self._signal_pipe.close()
