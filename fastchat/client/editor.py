"""The input line: editing, history and horizontal scrolling of what the person is typing.

Owns: the text being typed, the cursor in it, the history of submitted lines, and which part
of a long line is visible in a row of a given width.
Must never: read keys, draw, or know about IRC; the curses view maps keys to these methods.

The cursor moves over code points, but skips zero-width ones (combining accents) so it never
lands between a letter and its accent.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastchat.client.text import char_width

HISTORY_SIZE = 500


class LineEditor:
    """One editable line with readline-like movement and an Up/Down history."""

    def __init__(self) -> None:
        self._chars: list[str] = []
        self.cursor = 0
        self._history: list[str] = []
        self._hist_pos = 0  # == len(history) while editing a fresh line
        self._draft: list[str] = []  # the fresh line, kept while browsing history
        self._offset = 0  # first visible character

    @property
    def text(self) -> str:
        return "".join(self._chars)

    # -- editing ------------------------------------------------------------------------------

    def insert(self, text: str) -> None:
        """Insert printable ``text`` at the cursor (other characters are dropped)."""
        chars = [ch for ch in text if ch.isprintable() or ch == " "]
        self._chars[self.cursor : self.cursor] = chars
        self.cursor += len(chars)

    def left(self) -> None:
        while self.cursor > 0:
            self.cursor -= 1
            if self.cursor == 0 or char_width(self._chars[self.cursor]) != 0:
                break

    def right(self) -> None:
        n = len(self._chars)
        if self.cursor < n:
            self.cursor += 1
            while self.cursor < n and char_width(self._chars[self.cursor]) == 0:
                self.cursor += 1

    def home(self) -> None:
        self.cursor = 0

    def end(self) -> None:
        self.cursor = len(self._chars)

    def backspace(self) -> None:
        start = self.cursor
        self.left()
        del self._chars[self.cursor : start]

    def delete(self) -> None:
        start = self.cursor
        self.right()
        del self._chars[start : self.cursor]
        self.cursor = start

    def kill_to_start(self) -> None:
        """Ctrl-U."""
        del self._chars[: self.cursor]
        self.cursor = 0

    def kill_to_end(self) -> None:
        """Ctrl-K."""
        del self._chars[self.cursor :]

    def kill_word(self) -> None:
        """Ctrl-W: delete the word before the cursor (and the spaces after it)."""
        start = self.cursor
        while self.cursor > 0 and self._chars[self.cursor - 1] == " ":
            self.cursor -= 1
        while self.cursor > 0 and self._chars[self.cursor - 1] != " ":
            self.cursor -= 1
        del self._chars[self.cursor : start]

    def complete(self, candidates: Iterable[str]) -> None:
        """Tab: complete the word before the cursor from ``candidates`` (case-insensitive).

        A unique match is completed (with ": " after a nick at the start of the line); with
        several, the longest common prefix is filled in.
        """
        start = self.cursor
        while start > 0 and self._chars[start - 1] != " ":
            start -= 1
        word = "".join(self._chars[start : self.cursor]).lower()
        if not word:
            return
        matches = sorted({c for c in candidates if c.lower().startswith(word)}, key=str.lower)
        if not matches:
            return
        if len(matches) == 1:
            done = matches[0] + (": " if start == 0 and matches[0][:1] not in "#&/" else " ")
        else:
            done = matches[0]
            for other in matches[1:]:
                while not other.lower().startswith(done.lower()):
                    done = done[:-1]
            if len(done) < len(word):
                return
        self._chars[start : self.cursor] = list(done)
        self.cursor = start + len(done)

    # -- history ------------------------------------------------------------------------------

    def submit(self) -> str:
        """Enter: return the line, remember it in the history, and start a fresh line."""
        text = self.text
        if text and (not self._history or self._history[-1] != text):
            self._history.append(text)
            del self._history[:-HISTORY_SIZE]
        self._hist_pos = len(self._history)
        self._chars, self._draft = [], []
        self.cursor = self._offset = 0
        return text

    def up(self) -> None:
        if self._hist_pos == 0:
            return
        if self._hist_pos == len(self._history):
            self._draft = self._chars
        self._hist_pos -= 1
        self._load(list(self._history[self._hist_pos]))

    def down(self) -> None:
        if self._hist_pos >= len(self._history):
            return
        self._hist_pos += 1
        if self._hist_pos == len(self._history):
            self._load(self._draft)
        else:
            self._load(list(self._history[self._hist_pos]))

    def _load(self, chars: list[str]) -> None:
        self._chars = chars
        self.cursor = len(chars)

    # -- display ------------------------------------------------------------------------------

    def view(self, width: int) -> tuple[str, int]:
        """The visible slice of the line for a row ``width`` columns wide, and the cursor column.

        Scrolls horizontally only as far as needed to keep the cursor on screen; the last
        column is kept free so the cursor can sit after the final character.
        """
        width = max(width, 2)
        chars = self._chars
        if self.cursor < self._offset:
            self._offset = self.cursor
        while self._offset < self.cursor and (
            sum(char_width(c) for c in chars[self._offset : self.cursor]) > width - 1
        ):
            self._offset += 1
        used = 0
        end = self._offset
        while end < len(chars) and used + char_width(chars[end]) <= width - 1:
            used += char_width(chars[end])
            end += 1
        col = sum(char_width(c) for c in chars[self._offset : self.cursor])
        return "".join(chars[self._offset : end]), col
