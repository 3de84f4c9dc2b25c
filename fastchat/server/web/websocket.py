"""IRC over one WebSocket connection, after its upgrade (RFC 6455; IRCv3 websocket).

Owns: turning received bytes into IRC lines, the limits and errors of that, and turning the
IRC lines the server owes into frames (:func:`frame_lines`, one message per line, without
its CRLF).
Must never: touch a socket or the clock, or know about IRC beyond "a line".

Who parses what the peer sends. The headers of its frames are read here, so that each frame
is dealt with whole. The frame almost every message is (final, masked, text or binary, no
reserved bit, no fragmented message under way) is unmasked here, all of a read's at once:
about 1.7 us a message, against 29 through wsproto (both measured on a busy machine), whose
frame pipeline (generators, an incremental UTF-8 decoder and a masker object per frame)
made a WebSocket client cost five times a plain one under load. Every other frame -- fragments, pings, pongs, closes, and
anything malformed: unmasked, reserved bits or opcodes, an oversized control frame -- goes
to wsproto, whole, and wsproto decides what it means and what error it is (its state stays
exact: the frames it does not see are whole messages outside any fragmented one, which
change nothing it keeps). tests/unit/test_web_websocket.py checks the two ways agree.

What the peer gets for what it sends:

- a message (text or binary, either way whatever the subprotocol; fragmented or not): one
  IRC line, its trailing CR/LF dropped. Bytes, not text, go to the core, which applies
  --utf8-only as for any client (``FAIL <command> INVALID_UTF8``, as Ergo does);
- an empty message: ignored, like an empty line;
- a message that holds a CR or LF before its end (two lines in one message): the client
  quits with ``Received malformed line`` (its ``ERROR`` line, then close 1007), as Ergo
  ends it; the lines before it count;
- a message over :data:`~fastchat.irc.message.MAX_INPUT_LINE` bytes (tags and line): the
  client quits with ``Message too big``, close 1009; counted as it arrives, so it is never
  held whole;
- a text frame that is not UTF-8: ``Invalid UTF-8 in a text message``, close 1007; a bad
  frame (unmasked, reserved bits or opcode, a fragmented control frame...): ``WebSocket
  protocol error``, close 1002; the close frame carries wsproto's reason;
- ping: pong; close: the close echoed, and the client quits (``Remote host closed the
  connection``), a line it had half sent dropped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason

from fastchat.irc.message import MAX_INPUT_LINE
from fastchat.server.web.http import Subprotocol

#: Opcodes with FIN set: a whole message in one frame
TEXT_FIN = 0x81
BINARY_FIN = 0x82
#: The two-byte header of every short unmasked frame, by payload length (the common case:
#: most IRC lines are under 126 bytes), for text and for binary
_SHORT = {op: [bytes((op, n)) for n in range(126)] for op in (TEXT_FIN, BINARY_FIN)}
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")

#: The first byte of a frame that is a whole data message (FIN, no reserved bit)
_WHOLE = frozenset((TEXT_FIN, BINARY_FIN))

# Why the client quits, in its ERROR and in the QUIT others see (the close frame carries
# wsproto's details)
MALFORMED = b"Received malformed line"
TOO_BIG = b"Message too big"
BAD_TEXT = b"Invalid UTF-8 in a text message"
PROTOCOL_ERROR = b"WebSocket protocol error"


@dataclass(slots=True)
class Received:
    """What some received bytes amounted to: IRC ``lines`` (in order), bytes to send back
    (pong, our close frame), and, when the connection must end, ``error`` (the reason the
    client quits, for an ERROR line; empty when the peer itself closed) and
    ``closed``."""

    lines: list[bytes] = field(default_factory=list)
    reply: bytes = b""
    closed: bool = False
    error: bytes = b""


class WebSocketSession:
    """The server side of one WebSocket connection, from the first frame on."""

    __slots__ = (
        "_fragmented",
        "_held",
        "_parts",
        "_size",
        "_ws",
        "binary",
        "close_code",
        "close_reason",
        "closed",
        "max_message",
        "reading",
    )

    def __init__(self, subprotocol: Subprotocol, max_message: int = MAX_INPUT_LINE) -> None:
        # wsproto's side of the connection, made when a frame first needs it (most
        # connections never send one: its 1.7 KB per idle connection are saved)
        self._ws: Connection | None = None
        self.binary = subprotocol is Subprotocol.BINARY
        self.max_message = max_message
        self._parts: list[bytes] = []  # the message being received, so far
        self._size = 0  # its size so far
        self._held = b""  # the start of a frame still arriving
        self._fragmented = False  # a fragmented message is under way (wsproto has it)
        # The close frame we owe, when the peer's input ends the connection
        self.close_code: int = CloseReason.NORMAL_CLOSURE
        self.close_reason = ""
        self.reading = True  # False once the peer's input ended the connection
        self.closed = False  # True once a close frame went: no message may follow it

    def receive(self, data: bytes) -> Received:
        """Bytes from the peer (``b""``: the end of the stream)."""
        got = Received()
        if not self.reading:
            got.closed = True
            return got
        if not data:
            self._to_wsproto(None, got)  # (wsproto: the stream ended without a close)
            return got
        buf = self._held + data if self._held else data
        n = len(buf)
        i = 0
        max_message = self.max_message
        # Whole messages are unmasked together (see _whole): their masked payloads, each
        # followed by a separator, their masks, each followed by a zero byte, and their first
        # bytes (text or binary)
        payloads: list[bytes] = []
        masks: list[bytes] = []
        kinds: list[int] = []
        while i + 2 <= n:
            b0 = buf[i]
            b1 = buf[i + 1]
            size = b1 & 0x7F
            head = i + 2
            if size >= 126:
                head = i + 4 if size == 126 else i + 10
                if head > n:
                    break
                size = int.from_bytes(buf[i + 2 : head], "big")
            opcode = b0 & 0x0F
            if opcode < 8 and self._size + size > max_message:
                # (known from its header: no need to hold it whole to refuse it)
                if not kinds or self._whole(payloads, masks, kinds, got):
                    self._fail(CloseReason.MESSAGE_TOO_BIG, TOO_BIG, got)
                return got
            end = head + 4 + size if b1 & 0x80 else head + size
            if end > n:
                if opcode >= 8 and size > 125:  # a control frame this big: wsproto refuses it
                    if not kinds or self._whole(payloads, masks, kinds, got):
                        self._to_wsproto(buf[i:], got)
                    return got
                break
            if (b0 in _WHOLE) and b1 & 0x80 and not self._fragmented:
                payloads.append(buf[head + 4 : end])
                payloads.append(b"\n")
                masks.append((buf[head : head + 4] * (size // 4 + 1))[:size])
                masks.append(b"\0")
                kinds.append(b0)
            else:
                if kinds:  # (in order: the whole messages before this frame first)
                    if not self._whole(payloads, masks, kinds, got):
                        return got
                    payloads, masks, kinds = [], [], []
                if opcode < 8:  # a data frame or a continuation: FIN says if more follow
                    self._fragmented = not b0 & 0x80
                if not self._to_wsproto(buf[i:end], got):
                    return got
            i = end
        if kinds and not self._whole(payloads, masks, kinds, got):
            return got
        self._held = buf[i:] if i < n else b""
        return got

    def _whole(
        self, payloads: list[bytes], masks: list[bytes], kinds: list[int], got: Received
    ) -> bool:
        """Unmask whole messages, all at once: one XOR of two big integers (RFC 6455 5.3),
        the separators between the payloads masked with zeros, so the result is the lines
        one per ``\n``, as the core reads them. A per-message step is needed only when a
        message holds a CR or LF (a trailing CRLF, or two lines), or a text message may not
        be UTF-8. False once the connection ends."""
        masked = b"".join(payloads)
        n = len(masked)
        data = (
            int.from_bytes(masked, "little") ^ int.from_bytes(b"".join(masks), "little")
        ).to_bytes(n, "little")
        if (
            b"\r" not in data
            and data.count(b"\n") == len(kinds)
            and (data.isascii() or TEXT_FIN not in kinds or _is_utf8(data))
        ):
            lines = data.split(b"\n")
            lines.pop()
            got.lines += lines if b"" not in lines else [line for line in lines if line]
            return True
        at = 0
        for k, kind in enumerate(kinds):
            size = len(payloads[2 * k])
            line = data[at : at + size]
            at += size + 1
            if kind == TEXT_FIN and not line.isascii() and not _is_utf8(line):
                return self._fail(CloseReason.INVALID_FRAME_PAYLOAD_DATA, BAD_TEXT, got)
            if not self._take(line, True, got):
                return False
        return True

    def _to_wsproto(self, frame: bytes | None, got: Received) -> bool:
        """Let wsproto read ``frame`` (whole frames, or ``None``: the end of the stream);
        False once the connection ends."""
        ws = self._wsproto()
        ws.receive_data(frame)
        for event in ws.events():
            if isinstance(event, Message):
                piece = event.data.encode() if isinstance(event, TextMessage) else event.data
                if not self._take(piece, event.message_finished, got):
                    break
            elif isinstance(event, Ping):
                got.reply += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                got.closed = True
                self.reading = False
                if ws.state is ConnectionState.OPEN:
                    # wsproto's parser refused a frame (it stays open for our close frame):
                    # the client is owed an ERROR line, then a close with the parser's code
                    self.close_code = event.code
                    self.close_reason = event.reason or "protocol error"
                    bad_text = event.code == CloseReason.INVALID_FRAME_PAYLOAD_DATA
                    got.error = BAD_TEXT if bad_text else PROTOCOL_ERROR
                else:
                    # the peer closed (echoed now: no message may follow), or the stream
                    # ended without a close frame
                    self.closed = True
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        got.reply += ws.send(event.response())
                return False
        return self.reading

    def _take(self, piece: bytes, finished: bool, got: Received) -> bool:
        """A piece of the message under way; a finished one becomes a line. False: the
        connection ends (too big, malformed)."""
        self._size += len(piece)
        if self._size > self.max_message:
            return self._fail(CloseReason.MESSAGE_TOO_BIG, TOO_BIG, got)
        if not finished:
            self._parts.append(piece)
            return True
        if self._parts:
            self._parts.append(piece)
            piece = b"".join(self._parts)
            self._parts = []
        self._size = 0
        line = piece.rstrip(b"\r\n")
        if b"\n" in line or b"\r" in line:
            return self._fail(CloseReason.INVALID_FRAME_PAYLOAD_DATA, MALFORMED, got)
        if line:
            got.lines.append(line)
        return True

    def _fail(self, code: CloseReason, why: bytes, got: Received) -> bool:
        """End the connection for what the peer sent: it is owed an ERROR line (``error``)
        and then a close frame with ``code``, which :meth:`close` makes."""
        self.close_code = code
        self.close_reason = why.decode()
        self.reading = False
        got.error = why
        got.closed = True
        return False

    def _wsproto(self) -> Connection:
        if self._ws is None:
            self._ws = Connection(ConnectionType.SERVER)
        return self._ws

    def close(self) -> bytes:
        """Our close frame, once (``b""`` if one went already, or the stream is over): the
        code an error of the peer's set, else 1000 (QUIT, KILL, shutdown: after the ERROR
        line)."""
        ws = self._wsproto()
        self.closed = True
        if ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return b""
        return ws.send(CloseConnection(self.close_code, self.close_reason))


def frame_lines(data: bytes | bytearray, binary: bool) -> bytes:
    """The frames of the IRC lines in ``data`` (each ending in CRLF): one unmasked message
    per line, without the CRLF, in the subprotocol's type. Text frames must be UTF-8 (a
    browser drops a connection that sends anything else): bytes that are not are replaced
    with U+FFFD, as the spec allows.

    Hand-written, not wsproto's ``send``: a server frame is a header and the payload (no
    mask, no extension), and this runs for every chunk of output a worker sends to its
    WebSocket clients in a turn. wsproto builds each frame through its extension pipeline
    and a bytearray, several times slower per line (measured when this was written: 50
    lines in 10 us here, 340 us through wsproto; ``make bench``'s ``-ws`` scenarios
    hold the figures that matter). The unit tests check these frames against wsproto's own
    decoder."""
    op = BINARY_FIN if binary else TEXT_FIN
    if not binary and not data.isascii():
        data = _valid_utf8(data)
    lines: list[bytes] | list[bytearray] = data.split(b"\r\n")
    last = lines.pop()
    short = _SHORT[op]
    out: list[bytes | bytearray] = []
    append = out.append
    for line in lines if not last else [*lines, last]:  # (a line without CRLF: a line)
        n = len(line)
        if n < 126:
            append(short[n])
        elif n < 65536:
            append(_MEDIUM.pack(op, 126, n))
        else:
            append(_LONG.pack(op, 127, n))
        append(line)
    return b"".join(out)


class FrameCache:
    """The frames of this loop turn's output, by the very ``bytes`` object each came in.

    The core formats a relayed line once and puts that same object in every member's
    output; framing it once per turn (per subprotocol), not once per WebSocket member, is
    what keeps a WebSocket delivery close to a plain one (about 130 ns a line against 500
    to frame it again for each member). Keys are ``id`` of the chunk, and the chunk itself
    is kept beside its frames until :meth:`clear`, so no other object can take its id
    meanwhile; the worker clears the cache after each turn's sends."""

    __slots__ = ("_binary", "_text")

    def __init__(self) -> None:
        self._text: dict[int, tuple[bytes, bytes]] = {}
        self._binary: dict[int, tuple[bytes, bytes]] = {}

    def frames(self, chunks: list[bytes], binary: bool) -> bytes:
        """The frames of ``chunks`` (whole lines each), in order."""
        cache = self._binary if binary else self._text
        out = []
        for chunk in chunks:
            hit = cache.get(id(chunk))
            if hit is None:
                hit = cache[id(chunk)] = (chunk, frame_lines(chunk, binary))
            out.append(hit[1])
        return out[0] if len(out) == 1 else b"".join(out)

    def clear(self) -> None:
        if self._text:
            self._text.clear()
        if self._binary:
            self._binary.clear()


def sizes(data: bytes | bytearray, binary: bool) -> list[tuple[int, int]]:
    """For each line of ``data`` as :func:`frame_lines` frames it: the size of its frame,
    and its size in ``data`` (with its CRLF). What a partial send needs to tell how many
    lines went whole."""
    lines = bytes(data).split(b"\r\n")
    last = lines.pop()
    out = []
    for line in lines:
        n = len(line) if binary or line.isascii() else len(_valid_utf8(line))
        out.append((_header_size(n) + n, len(line) + 2))
    if last:
        n = len(last) if binary or last.isascii() else len(_valid_utf8(last))
        out.append((_header_size(n) + n, len(last)))
    return out


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _header_size(n: int) -> int:
    return 2 if n < 126 else 4 if n < 65536 else 10


def _valid_utf8(data: bytes | bytearray) -> bytes:
    try:
        bytes(data).decode()
    except UnicodeDecodeError:
        return bytes(data).decode("utf-8", "replace").encode()
    return bytes(data)
