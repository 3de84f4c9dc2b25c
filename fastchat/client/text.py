"""Human-readable text for the client: decoding wire bytes, display width, wrapping, splitting.

Owns: the boundary between IRC bytes and text a person reads or types: decoding what the
server relays into safe display text, measuring how many terminal columns text takes, wrapping
it to a width, and cutting typed text into pieces that fit in one IRC line.
Must never: touch curses, sockets or the clock, or know about IRC state.

IRC mandates no encoding (RFC 2812 §2.2 only says the protocol is octet based); UTF-8 is the
modern norm, and clients fall back to Latin-1 for the odd legacy byte, as done here.
"""

from __future__ import annotations

import re
import unicodedata

# mIRC formatting: bold, colour (with up to two 2-digit numbers), hex colour, reset, reverse,
# italics, strikethrough, underline, monospace. Stripped rather than rendered: small and safe.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
# Every other C0/C1 control (ESC above all) would let a peer drive our terminal: replace them.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def decode(data: bytes) -> str:
    """Decode wire bytes as UTF-8, falling back to Latin-1 for non-UTF-8 text.

    >>> decode("café".encode()), decode("café".encode("latin-1"))
    ('café', 'café')
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def sanitize(text: str) -> str:
    """Text safe to put on a terminal: no IRC formatting codes, tabs as spaces, controls as '?'.

    >>> sanitize("\\x02bold\\x02 \\x0304,01red\\x03 \\x1b[2Jx")
    'bold red ?[2Jx'
    """
    text = _FORMATTING.sub("", text)
    if "\t" in text:
        text = text.replace("\t", " ")
    return _CONTROLS.sub("?", text)


def char_width(ch: str) -> int:
    """Terminal columns taken by one code point: 0 for combining marks, 2 for wide ones.

    >>> char_width("a"), char_width("日"), char_width("\\u0301")
    (1, 2, 0)
    """
    if ch < "\u0300":  # fast path: Latin text
        return 1 if ch >= " " else 0
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Terminal columns taken by ``text``.

    >>> text_width("héllo"), text_width("日本")
    (5, 4)
    """
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """Cut ``text`` into rows of at most ``width`` columns, breaking at spaces where possible.

    Rows after the first start with ``indent`` spaces (so continuation lines sit under the
    message, not under the time stamp). A word longer than a row is broken anywhere.

    >>> wrap("12:00 <ada> hello there world", 18, indent=6)
    ['12:00 <ada> hello', '      there world']
    >>> wrap("abcdefghij", 4)
    ['abcd', 'efgh', 'ij']
    """
    width = max(width, 1)
    indent = indent if indent < width // 2 else 0
    rows: list[str] = []
    row: list[str] = []
    used = 0
    last_space = -1  # index in ``row`` of the last breakable space
    for ch in text:
        w = char_width(ch)
        if used + w > width and row:
            if ch == " ":
                rows.append("".join(row))
                row, used, last_space = [" "] * indent, indent, -1
                continue
            if last_space > indent:
                rest = row[last_space + 1 :]
                rows.append("".join(row[:last_space]))
                row = [" "] * indent + rest
            else:
                rows.append("".join(row))
                row = [" "] * indent
            used = text_width("".join(row))
            last_space = -1
        if ch == " ":
            last_space = len(row)
        row.append(ch)
        used += w
    rows.append("".join(row))
    return [r.rstrip(" ") if i < len(rows) - 1 else r for i, r in enumerate(rows)]


def split_utf8(data: bytes, limit: int) -> list[bytes]:
    """Cut ``data`` into pieces of at most ``limit`` bytes, never inside a UTF-8 sequence.

    Prefers to cut after a space in the last quarter of a piece, so words stay whole.

    >>> split_utf8("aéé".encode(), 4)
    [b'a\\xc3\\xa9', b'\\xc3\\xa9']
    >>> split_utf8(b"one two three", 8)
    [b'one two ', b'three']
    """
    limit = max(limit, 4)  # room for the longest UTF-8 sequence
    pieces: list[bytes] = []
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # continuation byte: back up
            cut -= 1
        space = data.rfind(b" ", limit * 3 // 4, cut)
        if space != -1:
            cut = space + 1
        pieces.append(data[:cut])
        data = data[cut:]
    if data or not pieces:
        pieces.append(data)
    return pieces
