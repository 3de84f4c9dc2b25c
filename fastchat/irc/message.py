"""IRC message parsing and formatting (RFC 1459 §2.3, RFC 2812 §2.3, Modern IRC "Messages").

Owns: turning one line of bytes (without its CR LF) into a :class:`Message` and back.
Must never: touch sockets, decode text, or know about server state.

Wire grammar (Modern IRC; IRCv3 message-tags)::

    message ::= ['@' tags SPACE] [':' source SPACE] command [params] crlf
    params  ::= *( SPACE middle ) [ SPACE ':' trailing ]
    tags    ::= tag *( ';' tag )
    tag     ::= key [ '=' escaped_value ]
    key     ::= [ '+' ] [ vendor '/' ] 1*( letter / digit / '-' )

Bytes stay bytes: IRC has no mandated encoding, so the server relays what it gets.

Lengths: the 512 bytes of RFC 1459 (CR LF included) bound a line *without* its tag section;
a client's tag section gets 4,096 bytes of its own ('@', 4,094 bytes of tag data, the space).
:func:`input_too_long` applies both, and is the one place a received line's length is judged.
Lines the server sends obey the same 512 (:func:`fit_line` trims one that would not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: RFC 1459 §2.3: 512 bytes including CR LF, not counting IRCv3 tags.
MAX_LINE = 512
#: IRCv3 message-tags, "Size limit": a client's tag section is at most '@', 4,094 bytes of tag
#: data and the space.
MAX_CLIENT_TAGS = 4096
#: The longest line (without its line end) a client may send: its tags, then 510 bytes.
MAX_INPUT_LINE = MAX_CLIENT_TAGS + MAX_LINE - 2


def max_input_line(max_line: int = MAX_LINE) -> int:
    """The longest line (without its line end) a client may send where the line without its
    tags may be ``max_line`` bytes with CR LF (a server's ``max_line`` setting; RFC 1459's 512
    unless raised)."""
    return MAX_CLIENT_TAGS + max_line - 2


class ProtocolError(ValueError):
    """The peer sent a line that is not an IRC message (a *remote* error)."""


class BlankLine(ProtocolError):
    """The line is empty or holds only spaces: not a message, and not worth an answer (Modern
    IRC, "Messages": servers SHOULD gracefully ignore empty lines)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One IRC message. ``command`` is upper-case ASCII (or a 3-digit numeric)."""

    command: bytes
    params: tuple[bytes, ...] = ()
    source: bytes | None = None
    tags: bytes | None = None  # the raw tag section without '@'; parsed on demand

    def param(self, index: int, default: bytes = b"") -> bytes:
        """The parameter at ``index``, or ``default`` when there are fewer."""
        return self.params[index] if index < len(self.params) else default


def _is_command(token: bytes) -> bool:
    """A command is letters (RFC 2812 §2.3.1) or three digits; a word of ASCII letters,
    digits, ``_`` and ``-`` is one too, which the server may not know (``421``, as Ergo
    answers ``NONEXISTENT_COMMAND``), rather than a malformed line (``400``)."""
    if token.isalpha() and token.isascii():
        return True
    if len(token) == 3 and token.isdigit():
        return True
    return token.isascii() and token.replace(b"_", b"").replace(b"-", b"").isalnum()


def parse(line: bytes) -> Message:
    """Parse one line (CR LF already removed) into a :class:`Message`.

    Raises :class:`BlankLine` (a :class:`ProtocolError`) for a line that is empty or only
    spaces, and :class:`ProtocolError` for a line holding NUL, CR or LF or a missing or
    malformed command. Any number of parameters is accepted (Modern IRC, "Parameters": servers
    SHOULD accept more than 15). Tags stay raw; :func:`parse_tags` reads them on demand.

    >>> parse(b":nick!u@h PRIVMSG #chan :hello world")
    Message(command=b'PRIVMSG', params=(b'#chan', b'hello world'), source=b'nick!u@h', tags=None)
    >>> parse(b"join #a,#b").command
    b'JOIN'
    """
    if b"\0" in line or b"\r" in line or b"\n" in line:
        raise ProtocolError("message contains NUL, CR or LF")
    tags: bytes | None = None
    source: bytes | None = None
    rest = line
    if rest[:1] == b"@":
        tags, _, rest = rest[1:].partition(b" ")
        if not tags:
            raise ProtocolError("empty tag section")
        rest = rest.lstrip(b" ")
    if rest[:1] == b":":
        source, _, rest = rest[1:].partition(b" ")
        if not source:
            raise ProtocolError("empty source")
        rest = rest.lstrip(b" ")
    trailing: bytes | None = None
    head, sep, tail = rest.partition(b" :")
    if sep:
        trailing = tail
    elif head.startswith(b":"):
        # a line whose first param is trailing right after the command is impossible here
        raise ProtocolError("missing command")
    # Split on SPACE only: RFC 2812 §2.3.1 lets a middle hold any octet but NUL, CR, LF, SPACE
    # (and ':' first), so TAB, VT and FF are data, not separators as ``bytes.split()`` assumes.
    words = head.split(b" ")
    if b"" in words:  # rare: runs of spaces; skip the list rebuild on the common path
        words = [word for word in words if word]
    if not words:
        if not line.strip(b" "):
            raise BlankLine("empty line")
        raise ProtocolError("missing command")
    command = words[0].upper()
    if not _is_command(command):
        raise ProtocolError("malformed command")
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command, tuple(params), source, tags)


_TAG_UNESCAPES = {
    ord(":"): b";",
    ord("s"): b" ",
    ord("\\"): b"\\",
    ord("r"): b"\r",
    ord("n"): b"\n",
}
_TAG_KEY = re.compile(rb"\+?(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9-]+")


def parse_tags(raw: bytes) -> dict[bytes, bytes]:
    r"""The tags of a message (its raw tag section, without '@'), keys to unescaped values.

    IRCv3 message-tags, "Format" and "Escaping values": ``\:`` is ';', ``\s`` a space,
    ``\\`` a backslash, ``\r`` and ``\n`` CR and LF; a backslash before any other character
    stands for that character, and a lone one at the end for nothing. A tag without a value
    (or with ``=`` and nothing after it) has the empty value. A key is an optional client-only
    ``+``, an optional ``vendor/`` (a host name) and a name of letters, digits and hyphens; a
    tag whose key is not one is skipped rather than failing the message, and of a key given
    twice the last one counts ("Clients receiving messages with more than one occurrence of a
    tag key SHOULD discard all but the final occurrence").

    >>> parse_tags(b"aaa=bbb;ccc;example.com/ddd=eee;+icon=x\\sy\\:z")
    {b'aaa': b'bbb', b'ccc': b'', b'example.com/ddd': b'eee', b'+icon': b'x y;z'}
    """
    tags: dict[bytes, bytes] = {}
    for tag in raw.split(b";"):
        key, _, value = tag.partition(b"=")
        if not _TAG_KEY.fullmatch(key):
            continue
        if b"\\" in value:
            value = _unescape_tag_value(value)
        tags[key] = value
    return tags


def _unescape_tag_value(value: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for byte in value:
        if escaped:
            out += _TAG_UNESCAPES.get(byte, bytes((byte,)))
            escaped = False
        elif byte == 0x5C:  # backslash
            escaped = True
        else:
            out.append(byte)
    return bytes(out)  # a lone backslash at the end stands for nothing


def input_too_long(line: bytes, max_line: int = MAX_LINE) -> bool:
    """Is a received line (without its line end) over the limits? Modern IRC, "Messages":
    512 bytes with CR LF for the line without its tags; IRCv3 message-tags, "Size limit": a
    client's tag section is at most '@', 4,094 bytes of tag data and a space. Both apply: a
    tagged line whose rest is too long is refused like an untagged one (ERR_INPUTTOOLONG).
    ``max_line``: the limit of the line without its tags, if a server raised it.

    >>> input_too_long(b"PRIVMSG #a :" + b"x" * 498), input_too_long(b"PRIVMSG #a :" + b"x" * 499)
    (False, True)
    >>> input_too_long(b"@a=b PRIVMSG #a :" + b"x" * 498), input_too_long(b"@" + b"t" * 4095 + b" PING")
    (False, True)
    """
    if line[:1] != b"@":
        return len(line) > max_line - 2
    end = line.find(b" ")
    if end < 0:  # all tags and no command: too long if the tags alone are
        return len(line) > MAX_CLIENT_TAGS - 1
    return end + 1 > MAX_CLIENT_TAGS or len(line) - end - 1 > max_line - 2


def truncate_utf8(data: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``data``, or fewer so as not to cut a UTF-8 character in two.

    Only a well-formed UTF-8 sequence is kept whole; bytes in another encoding are cut where
    the size says (IRC text has no mandated encoding).

    >>> truncate_utf8("ça va?".encode(), 1), truncate_utf8("ça va?".encode(), 2)
    (b'', b'\\xc3\\xa7')
    >>> truncate_utf8(b"\\xe7a va", 1)
    b'\\xe7'
    """
    if len(data) <= size:
        return data
    if size <= 0:
        return b""
    start = size
    # back up over continuation bytes (10xxxxxx) to where the character cut at ``size`` begins
    while start > 0 and size - start < 3 and data[start] & 0xC0 == 0x80:
        start -= 1
    if start < size:
        lead = data[start]
        width = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if start + width > size:
            try:
                data[start : start + width].decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                return data[:start]
    return data[:size]


def fit_line(line: bytes, limit: int = MAX_LINE) -> bytes:
    """``line`` (one message ending in CR LF), cut to ``limit`` bytes if it is longer.

    What goes is the end of the line: the end of its last parameter, the free text of a
    PRIVMSG, QUIT, PART, KICK or TOPIC (what InspIRCd, Solanum and Ergo do when a relayed
    message would not fit once they have added its source). A UTF-8 character is not cut.

    >>> fit_line(b":n!u@h PRIVMSG #a :hello\\r\\n", 22)
    b':n!u@h PRIVMSG #a :h\\r\\n'
    """
    if len(line) <= limit:
        return line
    return truncate_utf8(line[:-2], limit - 2) + b"\r\n"


def format_message(msg: Message) -> bytes:
    """Format ``msg`` as one line *without* CR LF (the inverse of :func:`parse`).

    The last parameter is written as trailing (with ':') when it is empty, starts with ':'
    or holds a space. Raises ``ValueError`` for a parameter that cannot be sent (a *local*
    error: our code built an impossible message).
    """
    parts: list[bytes] = []
    if msg.tags is not None:
        parts.append(b"@" + msg.tags)
    if msg.source is not None:
        parts.append(b":" + msg.source)
    parts.append(msg.command)
    last = len(msg.params) - 1
    for i, param in enumerate(msg.params):
        if b"\0" in param or b"\r" in param or b"\n" in param:
            raise ValueError("parameter contains NUL, CR or LF")
        if i == last and (not param or param[:1] == b":" or b" " in param):
            parts.append(b":" + param)
        elif not param or param[:1] == b":" or b" " in param:
            raise ValueError(f"middle parameter {param!r} cannot be sent")
        else:
            parts.append(param)
    return b" ".join(parts)


def line(*params: bytes, source: bytes | None = None, command: bytes) -> bytes:
    """Format a message straight to wire bytes, CR LF included."""
    return format_message(Message(command, params, source)) + b"\r\n"
