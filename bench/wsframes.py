"""WebSocket framing for the load generator's ``ws`` transport (RFC 6455, IRCv3 WebSocket).

Owns: the client's opening handshake request and the check of the server's answer, framing
the client's IRC lines (one line per message, masked, as RFC 6455 section 5.3 requires of a
client), and walking the server's frames in a received byte stream.
Must never: touch sockets or clocks; the load generator does the I/O.

Why not wsproto here: this is the benchmark's *client* side, a hot path of its own (every
delivery a benchmark client receives goes through :func:`complete_frames`). What the server
sends is only unmasked, unfragmented data frames and the odd control frame, so walking their
headers is a few integer operations per frame. The client masks with the all-zero key, which
RFC 6455 allows (the key must be unpredictable only to defeat proxies' cache poisoning, which
a loopback benchmark has no proxy for): the payload then goes out unchanged and the server
still does its full unmasking work.
"""

from __future__ import annotations

import base64

#: The subprotocol the benchmark's clients ask for (IRCv3 WebSocket)
SUBPROTOCOL = b"text.ircv3.net"
_KEY = base64.b64encode(b"fastchat-bench!!")  # 16 bytes, as RFC 6455 4.1 asks
_ZERO_MASK = b"\x00\x00\x00\x00"
# Opcodes (RFC 6455 5.2)
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA


def handshake_request(host: str, port: int) -> bytes:
    """The opening handshake (RFC 6455 4.1) asking for :data:`SUBPROTOCOL` on ``/``."""
    return (
        b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: %s\r\n\r\n" % (host.encode(), port, _KEY, SUBPROTOCOL)
    )


def maybe_handshake_end(buf: bytes) -> int | None:
    """Where the server's handshake answer in ``buf`` ends (``None``: not all here yet);
    raises ``ValueError`` unless it is ``101 Switching Protocols`` with our subprotocol."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    if not head.startswith(b"http/1.1 101"):
        raise ValueError(f"no upgrade: {buf[:end].decode(errors='replace')[:200]}")
    if b"sec-websocket-protocol: " + SUBPROTOCOL not in head:
        raise ValueError(f"subprotocol not chosen: {buf[:end].decode(errors='replace')[:200]}")
    return end + 4


def client_frames(data: bytes, opcode: int = TEXT) -> bytes:
    """Each ``\\r\\n``-terminated line of ``data`` as one masked message (its CRLF left out)."""
    out = []
    for line in data.split(b"\r\n")[:-1] if data.endswith(b"\r\n") else [data]:
        out.append(client_frame(line, opcode))
    return b"".join(out)


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, masked frame (zero key: see the module docstring)."""
    n = len(payload)
    first = bytes((0x80 | opcode,))
    if n < 126:
        head = first + bytes((0x80 | n,))
    elif n < 1 << 16:
        head = first + b"\xfe" + n.to_bytes(2, "big")
    else:
        head = first + b"\xff" + n.to_bytes(8, "big")
    return head + _ZERO_MASK + payload


def complete_frames(buf: bytes) -> int:
    """How many leading bytes of ``buf`` are whole server frames: the rest is the start of a
    frame still arriving. (Server frames are unmasked: RFC 6455 5.1.)"""
    i = 0
    n = len(buf)
    while i + 2 <= n:
        length = buf[i + 1] & 0x7F
        if length < 126:
            end = i + 2 + length
        elif length == 126:
            if i + 4 > n:
                break
            end = i + 4 + int.from_bytes(buf[i + 2 : i + 4], "big")
        else:
            if i + 10 > n:
                break
            end = i + 10 + int.from_bytes(buf[i + 2 : i + 10], "big")
        if end > n:
            break
        i = end
    return i


def frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole server frames at the start of ``buf`` as ``(opcode, payload)``, and the
    bytes left over (a frame still arriving)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    end = complete_frames(buf)
    while i < end:
        length = buf[i + 1] & 0x7F
        start = i + 2 if length < 126 else i + 4 if length == 126 else i + 10
        if length >= 126:
            length = int.from_bytes(buf[i + 2 : start], "big")
        out.append((buf[i] & 0x0F, buf[start : start + length]))
        i = start + length
    return out, buf[end:]
