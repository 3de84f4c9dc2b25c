"""The curses view: message pane, status line and input line, and the keys that drive them.

Owns: the screen layout, turning keys into :class:`~fastchat.client.editor.LineEditor` edits and
typed lines, scrolling back (PgUp/PgDn), and adapting to a new terminal size.
Must never: talk to the network or interpret IRC; it reads the session's windows and hands
typed lines to the loop. Terminal set-up and restoration belong to ``curses.wrapper`` in
:mod:`fastchat.client.app`, so a crash restores the terminal too.

Layout, top to bottom::

    12:00 <bob> message pane: the current window's events, wrapped, newest at the bottom
    server | nick | 2:#lobby (3) | connected | act: 3      <- status line (reverse video)
    [#lobby] what the person is typing_                     <- input line
"""

from __future__ import annotations

import contextlib
import curses
import os
import time
import zlib
from collections.abc import Sequence

from fastchat.client.editor import LineEditor
from fastchat.client.session import Event, Kind, Session, describe
from fastchat.client.text import char_width, text_width, wrap

_STAMP_WIDTH = 6  # "HH:MM " -- continuation rows are indented by this much

# Keys that arrive as characters (raw mode: Ctrl-C is a key, not SIGINT).
_CTRL_A, _CTRL_B, _CTRL_C, _CTRL_D, _CTRL_E, _CTRL_F = (
    "\x01",
    "\x02",
    "\x03",
    "\x04",
    "\x05",
    "\x06",
)
_CTRL_K, _CTRL_L, _CTRL_N, _CTRL_P, _CTRL_U, _CTRL_W = (
    "\x0b",
    "\x0c",
    "\x0e",
    "\x10",
    "\x15",
    "\x17",
)
_ESC = "\x1b"
_BACKSPACES = ("\x7f", "\x08")
_ENTERS = ("\n", "\r")

_HOME_KEYS = (curses.KEY_HOME, curses.KEY_FIND, curses.KEY_A1)
_END_KEYS = (curses.KEY_END, curses.KEY_SELECT, curses.KEY_C1, curses.KEY_LL)

_NICK_COLOURS = (curses.COLOR_GREEN, curses.COLOR_YELLOW, curses.COLOR_BLUE, curses.COLOR_MAGENTA,
                 curses.COLOR_CYAN, curses.COLOR_RED)  # fmt: skip


def _fit(text: str, width: int) -> str:
    """``text`` cut (or space-padded) to exactly ``width`` columns."""
    out: list[str] = []
    used = 0
    for ch in text:
        w = char_width(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (width - used)


class CursesView:
    """A :class:`~fastchat.client.loop.Frontend` drawing on a curses screen."""

    def __init__(self, screen: curses.window, session: Session, stdin_fd: int = 0) -> None:
        self.screen = screen
        self.session = session
        self.editor = LineEditor()
        self._stdin_fd = stdin_fd
        self._pane_height = 1
        curses.raw()  # Ctrl-C, Ctrl-Z, Ctrl-S arrive as keys: the client decides what they do
        curses.noecho()
        screen.keypad(True)
        screen.nodelay(True)
        curses.set_escdelay(25)  # Alt-N arrives as ESC N; do not wait a second after ESC
        self._colours = curses.has_colors()
        self._attr: dict[Kind, int] = {}
        self._nick_attr: list[int] = [curses.A_BOLD]
        if self._colours:
            curses.start_color()
            curses.use_default_colors()
            for i, colour in enumerate(_NICK_COLOURS, start=1):
                curses.init_pair(i, colour, -1)
            self._nick_attr = [curses.color_pair(i) | curses.A_BOLD for i in range(1, 7)]
            self._attr = {
                Kind.ERROR: curses.color_pair(6) | curses.A_BOLD,
                Kind.JOIN: curses.color_pair(1),
                Kind.PART: curses.color_pair(6),
                Kind.QUIT: curses.color_pair(6),
                Kind.NICK: curses.color_pair(5),
                Kind.TOPIC: curses.color_pair(5),
                Kind.INFO: curses.A_DIM,
                Kind.ACTION: curses.color_pair(4),
                Kind.NOTICE: curses.color_pair(2),
                Kind.AWAY: curses.color_pair(5),
            }
        else:
            self._attr = {Kind.ERROR: curses.A_BOLD, Kind.INFO: curses.A_DIM}

    # -- input --------------------------------------------------------------------------------

    def input_fds(self) -> Sequence[int]:
        return [self._stdin_fd]

    def on_input(self, fd: int) -> list[str]:
        """Read every key waiting (non-blocking) and return the lines typed."""
        typed: list[str] = []
        while (key := self._get()) is not None:
            self._key(key, typed)
        return typed

    def _get(self) -> str | int | None:
        try:
            return self.screen.get_wch()
        except curses.error:  # nothing (more) to read
            return None

    def _key(self, key: str | int, typed: list[str]) -> None:
        ed = self.editor
        if isinstance(key, int):
            self._special_key(key)
        elif key in _ENTERS:
            text = ed.submit()
            if text.strip():
                self.session.window.scroll = 0
                typed.append(text)
        elif key in _BACKSPACES:
            ed.backspace()
        elif key == _CTRL_C:
            typed.append("/quit")
        elif key == _CTRL_D:
            if ed.text:
                ed.delete()
            else:
                typed.append("/quit")
        elif key == _ESC:
            self._escape(typed)
        elif key == "\t":
            ed.complete(self.session.completions())
        else:
            control = {
                _CTRL_A: ed.home,
                _CTRL_E: ed.end,
                _CTRL_B: ed.left,
                _CTRL_F: ed.right,
                _CTRL_K: ed.kill_to_end,
                _CTRL_U: ed.kill_to_start,
                _CTRL_W: ed.kill_word,
            }
            if key == _CTRL_L:
                self.screen.clearok(True)
            elif key in control:
                control[key]()
            elif key == _CTRL_N:
                typed.append("/win next")
            elif key == _CTRL_P:
                typed.append("/win prev")
            elif key.isprintable():
                ed.insert(key)

    def _special_key(self, key: int) -> None:
        ed = self.editor
        page = max(self._pane_height - 2, 1)
        window = self.session.window
        if key == curses.KEY_LEFT:
            ed.left()
        elif key == curses.KEY_RIGHT:
            ed.right()
        elif key in _HOME_KEYS:
            ed.home()
        elif key in _END_KEYS:
            ed.end()
        elif key == curses.KEY_BACKSPACE:
            ed.backspace()
        elif key == curses.KEY_DC:
            ed.delete()
        elif key == curses.KEY_UP:
            ed.up()
        elif key == curses.KEY_DOWN:
            ed.down()
        elif key == curses.KEY_PPAGE:
            window.scroll += page  # clamped when drawn, where the row count is known
        elif key == curses.KEY_NPAGE:
            window.scroll = max(window.scroll - page, 0)
        elif key == curses.KEY_ENTER:
            self._key("\n", [])
        elif key == curses.KEY_RESIZE:
            # curses has already adopted the new size (resizeterm queues this key): just redraw
            self.screen.clear()

    def _escape(self, typed: list[str]) -> None:
        """ESC: Alt-digit switches window (Alt-1 is the server window, Alt-0 the tenth);
        any other unrecognised escape sequence is swallowed whole rather than typed."""
        nxt = self._get()
        if isinstance(nxt, str) and nxt.isdigit() and len(nxt) == 1:
            typed.append(f"/win {int(nxt) or 10}")
        elif nxt in ("[", "O"):  # CSI / SS3: skip up to the final byte
            while isinstance(ch := self._get(), str) and not ("@" <= ch <= "~"):
                pass

    # -- output -------------------------------------------------------------------------------

    def show(self, events: Sequence[Event]) -> None:
        """Nothing to do: :meth:`draw` reads the windows, which already hold the events."""

    def resize(self) -> None:
        """Adopt the terminal's new size (we handle SIGWINCH ourselves, so tell curses)."""
        try:
            size = os.get_terminal_size(self._stdin_fd)
        except OSError:
            return
        curses.resizeterm(size.lines, size.columns)
        self.screen.clear()

    def _rows(self, width: int, wanted: int) -> list[tuple[str, int, str, int]]:
        """The last ``wanted`` wrapped rows of the current window, oldest first, as
        (text, attribute, nick, nick attribute): the nick is drawn in its own colour."""
        rows: list[tuple[str, int, str, int]] = []
        for event in reversed(self.session.window.lines):
            stamp = time.strftime("%H:%M", time.localtime(event.time))
            text = f"{stamp} {describe(event)}"
            attr = self._attr.get(event.kind, 0)
            if event.highlight:
                attr |= curses.A_BOLD | curses.A_REVERSE
            nick, nick_attr = "", 0
            if event.kind is Kind.MESSAGE:
                nick = f"{stamp} <{event.nick}>"
                nick_attr = self._nick_colour(event.nick)
            wrapped = wrap(text, width, indent=_STAMP_WIDTH)
            rows[:0] = [(r, attr, nick if i == 0 else "", nick_attr) for i, r in enumerate(wrapped)]
            if len(rows) >= wanted:
                break
        return rows

    def _nick_colour(self, nick: str) -> int:
        if self.session.nick.decode(errors="replace") == nick:
            return curses.A_BOLD
        return self._nick_attr[zlib.crc32(nick.encode()) % len(self._nick_attr)]

    def _put(self, y: int, x: int, text: str, attr: int = 0) -> None:
        # writing the bottom-right cell moves the cursor off-screen and raises: expected
        with contextlib.suppress(curses.error):
            self.screen.addstr(y, x, text, attr)

    def draw(self) -> None:
        """Redraw the whole screen (cheap at chat rates; curses sends only the changes)."""
        screen = self.screen
        height, width = screen.getmaxyx()
        screen.erase()
        if height < 3 or width < 12:
            self._put(0, 0, _fit("window too small", width - 1))
            screen.refresh()
            return
        pane = self._pane_height = height - 2
        window = self.session.window
        rows = self._rows(width, pane + window.scroll)
        window.scroll = max(min(window.scroll, len(rows) - pane), 0)
        end = len(rows) - window.scroll
        visible = rows[max(end - pane, 0) : end]
        top = pane - len(visible)  # newest at the bottom, like a terminal
        for y, (text, attr, nick, nick_attr) in enumerate(visible, start=top):
            if nick and text.startswith(nick):
                stamp_len = _STAMP_WIDTH
                self._put(y, 0, text[:stamp_len], curses.A_DIM)
                self._put(y, stamp_len, nick[stamp_len:], nick_attr)
                self._put(y, text_width(nick), text[len(nick) :], attr)
            else:
                self._put(y, 0, text, attr)
        parts = self.session.status_parts()
        status = " " + " | ".join(parts)
        if text_width(status) > width:  # narrow: activity matters more than the server name
            status = " " + " | ".join(parts[1:])
        if window.scroll:
            status = f" -- MORE ({window.scroll}) --" + status
        self._put(height - 2, 0, _fit(status, width), curses.A_REVERSE)
        prompt = f"[{window.title}] " if window.title else "> "
        if text_width(prompt) > width // 3:
            prompt = "> "
        prompt_width = text_width(prompt)
        text, col = self.editor.view(width - prompt_width)
        self._put(height - 1, 0, prompt, curses.A_BOLD)
        self._put(height - 1, prompt_width, text)
        with contextlib.suppress(curses.error):  # too narrow: leave the cursor where it is
            screen.move(height - 1, min(prompt_width + col, width - 1))
        screen.noutrefresh()
        curses.doupdate()
