"""IRC message parsing and formatting (RFC 1459 §2.3, RFC 2812 §2.3, Modern IRC "Messages").

Owns: turning one line of bytes (without its CR LF) into a :class:`Message` and back.
Must never: touch sockets, decode text, or know about server state.

Wire grammar (Modern IRC)::

    message ::= ['@' tags SPACE] [':' source SPACE] command [params] crlf
    params  ::= *( SPACE middle ) [ SPACE ':' trailing ]

Bytes stay bytes: IRC has no mandated encoding, so the server relays what it gets.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RFC 1459 §2.3: 512 bytes including CR LF, not counting IRCv3 tags.
MAX_LINE = 512
#: IRCv3 message-tags: the tag section may use up to 8191 bytes including '@' and the space.
MAX_TAGS = 8191


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
    if token.isalpha() and token.isascii():
        return True
    return len(token) == 3 and token.isdigit()


def parse(line: bytes) -> Message:
    """Parse one line (CR LF already removed) into a :class:`Message`.

    Raises :class:`BlankLine` (a :class:`ProtocolError`) for a line that is empty or only
    spaces, and :class:`ProtocolError` for a line holding NUL, CR or LF or a missing or
    malformed command. Any number of parameters is accepted (Modern IRC, "Parameters": servers
    SHOULD accept more than 15).

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
