"""Cutting a byte stream into IRC lines, with a bound on memory (RFC 1459 §2.3).

Owns: the bytes a peer has sent that do not yet form a whole line.
Must never: parse lines, or hold more than ``max_line`` bytes of an unfinished line.

Lines end in LF; a CR (alone or before LF) also ends a line, so a stray CR can never smuggle a
second line inside a relayed message. Empty lines are dropped (Modern IRC: "servers SHOULD
gracefully ignore empty lines"). A line that grows past ``max_line`` without an end is cut:
the buffer reports it once as overlong and discards the rest of it up to the next line end.
"""

from __future__ import annotations

#: Marker yielded in place of a line that was too long (the caller answers ERR_INPUTTOOLONG).
OVERLONG = b"\0overlong"


class LineBuffer:
    """Accumulate received bytes; hand back complete lines.

    Shaped for speed: one ``replace`` and one ``split`` per received chunk, not per line.

    >>> buf = LineBuffer(512)
    >>> buf.feed(b"NICK a\\r\\nUSER a 0 * :A\\r\\nJOI")
    [b'NICK a', b'USER a 0 * :A']
    >>> buf.feed(b"N #x\\n")
    [b'JOIN #x']
    """

    __slots__ = ("_discarding", "_partial", "max_line")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._partial = b""
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held of an unfinished line."""
        return len(self._partial)

    @property
    def idle(self) -> bool:
        """Does it hold nothing (no unfinished line, no overlong one being discarded)? Then
        a new buffer would cut the next bytes the same way."""
        return not self._partial and not self._discarding

    def saved(self) -> tuple[bytes, bool]:
        """What this buffer holds (an unfinished line, and whether it is discarding an
        overlong one), to carry it to another process: :meth:`restore` takes it back."""
        return self._partial, self._discarding

    def restore(self, saved: tuple[bytes, bool]) -> None:
        """Hold again what :meth:`saved` returned (a connection handed between workers)."""
        self._partial, self._discarding = saved

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the complete lines it finished, in order."""
        if self._partial:
            data = self._partial + data
        if b"\r" in data:
            data = data.replace(b"\r", b"\n")
        lines = data.split(b"\n")
        tail = lines.pop()
        out: list[bytes] = []
        if lines:
            if self._discarding:
                # the first finished piece is the end of an overlong line: drop it
                lines[0] = b""
                self._discarding = False
            max_line = self.max_line
            for one in lines:
                if one:
                    out.append(OVERLONG if len(one) > max_line else one)
        if len(tail) > self.max_line:
            if not self._discarding:
                out.append(OVERLONG)
                self._discarding = True
            tail = b""
        elif self._discarding:
            tail = b""
        self._partial = tail
        return out
