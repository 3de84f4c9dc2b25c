"""fastchat.server.web.websocket, without sockets: a browser's frames (made by wsproto's
client) become IRC lines whatever the split; every bad input gets its close code; and the
hand-written frames of outgoing lines decode, with wsproto's own decoder, to those lines."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)

from fastchat.irc.message import MAX_INPUT_LINE
from fastchat.server.web.http import Subprotocol
from fastchat.server.web.websocket import (
    MALFORMED,
    TOO_BIG,
    Received,
    WebSocketSession,
    frame_lines,
    sizes,
)


def browser() -> Connection:
    """The client side, whose frames are masked as a browser's are."""
    return Connection(ConnectionType.CLIENT)


def decode(data: bytes) -> list[Event]:
    """What a client makes of bytes the server sent."""
    client = browser()
    client.receive_data(data)
    return list(client.events())


def feed_all(data: bytes, protocol: Subprotocol = Subprotocol.TEXT) -> Received:
    return WebSocketSession(protocol).receive(data)


def feed_split(data: bytes, protocol: Subprotocol = Subprotocol.TEXT) -> list[Received]:
    """``data`` at once, then in two pieces cut at every boundary (merged)."""
    results = []
    for cut in range(len(data) + 1):
        session = WebSocketSession(protocol)
        merged = Received()
        for piece in (data[:cut], data[cut:]):
            if not piece:
                continue
            got = session.receive(piece)
            merged.lines += got.lines
            merged.reply += got.reply
            merged.error = merged.error or got.error
            merged.closed = merged.closed or got.closed
            if got.closed:
                break
        results.append(merged)
    return results


def close_code(data: bytes) -> int:
    events = decode(data)
    assert isinstance(events[-1], CloseConnection), events
    return events[-1].code


# -- receiving -------------------------------------------------------------------------------------
def test_messages_become_lines_whatever_the_split() -> None:
    c = browser()
    data = (
        c.send(TextMessage("NICK alice"))
        + c.send(BytesMessage(b"USER a 0 * :Alice"))
        + c.send(TextMessage("PRIVMSG #x :caf\u00e9 \u2603\r\n"))  # trailing CRLF: dropped
        + c.send(TextMessage(""))  # empty: ignored
        + c.send(TextMessage("PING x\n"))
    )
    for got in feed_split(data):
        assert got.lines == [
            b"NICK alice",
            b"USER a 0 * :Alice",
            "PRIVMSG #x :caf\u00e9 \u2603".encode(),
            b"PING x",
        ]
        assert not got.closed and not got.error and not got.reply


def test_fragmented_messages_are_reassembled_around_a_ping() -> None:
    c = browser()
    data = (
        c.send(TextMessage("PRIVMSG #x :hel", message_finished=False))
        + c.send(Ping(b"p1"))
        + c.send(TextMessage("lo wor", message_finished=False))
        + c.send(TextMessage("ld"))
    )
    for got in feed_split(data):
        assert got.lines == [b"PRIVMSG #x :hello world"]
        assert [type(e) for e in decode(got.reply)] == [Pong]


def test_a_binary_message_is_bytes_whatever_the_subprotocol() -> None:
    """Not UTF-8 in a binary message on text.ircv3.net: the core decides (--utf8-only)."""
    c = browser()
    got = feed_all(c.send(BytesMessage(b"PRIVMSG x :caf\xe9")))
    assert got.lines == [b"PRIVMSG x :caf\xe9"] and not got.error


def test_ping_gets_its_pong() -> None:
    got = feed_all(browser().send(Ping(b"are you there")))
    [pong] = decode(got.reply)
    assert isinstance(pong, Pong) and pong.payload == b"are you there"


def test_the_peers_close_is_echoed() -> None:
    c = browser()
    session = WebSocketSession(Subprotocol.TEXT)
    got = session.receive(c.send(TextMessage("PRIVMSG #x :bye")) + c.send(CloseConnection(1001)))
    assert got.lines == [b"PRIVMSG #x :bye"] and got.closed and not got.error
    assert close_code(got.reply) == 1001
    assert session.close() == b""  # no second close frame
    assert session.receive(b"more").closed  # and nothing after it


def test_a_close_in_the_middle_of_a_line_drops_the_line() -> None:
    c = browser()
    got = feed_all(
        c.send(TextMessage("PRIVMSG #x :hal", message_finished=False))
        + c.send(CloseConnection(1000))
    )
    assert got.lines == [] and got.closed and not got.error


def test_the_end_of_the_stream_closes_without_a_reply() -> None:
    session = WebSocketSession(Subprotocol.TEXT)
    session.receive(browser().send(TextMessage("PRIVMSG #x :ha", message_finished=False)))
    got = session.receive(b"")
    assert got.closed and got.lines == [] and got.reply == b"" and not got.error
    assert session.close() == b""


def test_two_lines_in_one_message_end_the_connection_as_ergo_does() -> None:
    """Ergo: ``Received malformed line`` (irc-go's ErrorLineContainsBadChar). The lines
    before it count; the client is owed an ERROR, then close 1007."""
    c = browser()
    data = (
        c.send(TextMessage("PING a"))
        + c.send(TextMessage("PING b\r\nPING c"))
        + c.send(TextMessage("PING d"))
    )
    for got in feed_split(data):
        assert got.lines == [b"PING a"]
        assert got.closed and got.error == MALFORMED
    session = WebSocketSession(Subprotocol.TEXT)
    session.receive(data)
    assert close_code(session.close()) == 1007


@pytest.mark.parametrize("fragments", [1, 3, 50])
def test_a_message_over_the_line_limit_is_closed_1009(fragments: int) -> None:
    c = browser()
    size = MAX_INPUT_LINE + 1
    step = -(-size // fragments)
    pieces = ["x" * min(step, size - i) for i in range(0, size, step)]
    data = b"".join(
        c.send(TextMessage(p, message_finished=i == len(pieces) - 1)) for i, p in enumerate(pieces)
    )
    session = WebSocketSession(Subprotocol.TEXT)
    got = session.receive(c.send(TextMessage("PING ok")) + data + c.send(TextMessage("PING late")))
    assert got.lines == [b"PING ok"] and got.error == TOO_BIG and got.closed
    assert close_code(session.close()) == 1009


def test_a_message_at_the_limit_is_a_line() -> None:
    line = "PRIVMSG #x :" + "y" * (MAX_INPUT_LINE - 12)
    assert feed_all(browser().send(TextMessage(line))).lines == [line.encode()]


# A browser's traffic as a script: ("text"|"binary", line), ("frag", [pieces]) with a ping
# between pieces, ("ping", payload). Lines hold no CR/LF; text may be any Unicode.
SCRIPT = st.lists(
    st.one_of(
        st.tuples(
            st.just("text"),
            st.text(max_size=200).map(lambda t: t.replace("\r", "").replace("\n", "")),
        ),
        st.tuples(
            st.just("binary"),
            st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        ),
        st.tuples(
            st.just("frag"),
            st.lists(st.text(alphabet="abc\u00e9\u2603", max_size=20), min_size=2, max_size=4),
        ),
        st.tuples(st.just("ping"), st.binary(max_size=20)),
    ),
    max_size=10,
)


@settings(max_examples=150, deadline=None)
@given(SCRIPT, st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8))
def test_the_fast_path_and_wsproto_agree(script: list[tuple[str, object]], cuts: list[int]) -> None:
    """Whole messages are unmasked here, everything else goes through wsproto: together they
    give the lines and pongs that the messages hold, in order, however the bytes are cut."""
    c = browser()
    data = b""
    lines: list[bytes] = []
    pings = 0
    for kind, value in script:
        if kind == "text":
            assert isinstance(value, str)
            data += c.send(TextMessage(value))
            lines += [value.encode()] if value else []
        elif kind == "binary":
            assert isinstance(value, bytes)
            data += c.send(BytesMessage(value))
            lines += [value] if value else []
        elif kind == "frag":
            assert isinstance(value, list)
            for k, piece in enumerate(value):
                data += c.send(TextMessage(piece, message_finished=k == len(value) - 1))
                if k == 0:
                    data += c.send(Ping(b"mid"))
                    pings += 1
            whole = "".join(value)
            lines += [whole.encode()] if whole else []
        else:
            assert isinstance(value, bytes)
            data += c.send(Ping(value))
            pings += 1
    session = WebSocketSession(Subprotocol.TEXT)
    got_lines: list[bytes] = []
    reply = b""
    at = 0
    for cut in [*cuts, len(data)]:
        got = session.receive(data[at : at + cut]) if data[at : at + cut] else Received()
        assert not got.closed and not got.error
        got_lines += got.lines
        reply += got.reply
        at += cut
    while at < len(data):
        got = session.receive(data[at:])
        got_lines += got.lines
        reply += got.reply
        at = len(data)
    assert got_lines == lines
    assert [type(e) for e in decode(reply)] == [Pong] * pings


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    """1009 as soon as the header says so: the payload is never waited for, nor held."""
    head = bytes([0x81, 0x80 | 127]) + (MAX_INPUT_LINE + 1).to_bytes(8, "big") + b"\x01\x02\x03\x04"
    for got in feed_split(head):
        assert got.closed and got.error == TOO_BIG
    session = WebSocketSession(Subprotocol.TEXT)
    session.receive(head)
    assert close_code(session.close()) == 1009


def masked_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    key = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | opcode])
    if not mask:
        return head + bytes([len(payload)]) + payload
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + bytes([0x80 | len(payload)]) + key + body


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_frame(0x1, b"PRIVMSG x :caf\xe9"), 1007),  # a text frame that is not UTF-8
        (masked_frame(0x1, b"PING a", mask=False), 1002),  # an unmasked client frame
        (masked_frame(0x3, b"x"), 1002),  # a reserved opcode
        (masked_frame(0x0, b"PING a"), 1002),  # a continuation of nothing
        (masked_frame(0x9, b"p", fin=False), 1002),  # a fragmented ping
    ],
)
def test_bad_frames_get_their_close_code(frame: bytes, code: int) -> None:
    """The client quits with a short reason (others read it in its QUIT); the close frame
    carries wsproto's details."""
    for got in feed_split(frame):
        assert got.closed and got.lines == []
        assert got.error == (
            b"Invalid UTF-8 in a text message" if code == 1007 else b"WebSocket protocol error"
        )
    session = WebSocketSession(Subprotocol.TEXT)
    session.receive(frame)
    assert close_code(session.close()) == code


def test_our_close_is_1000_once() -> None:
    session = WebSocketSession(Subprotocol.TEXT)
    assert close_code(session.close()) == 1000
    assert session.close() == b""


# -- sending ---------------------------------------------------------------------------------------
def messages(events: list[Event]) -> list[tuple[type, bytes]]:
    out = []
    for e in events:
        assert isinstance(e, Message) and e.message_finished
        out.append((type(e), e.data.encode() if isinstance(e.data, str) else bytes(e.data)))
    return out


LINES = st.lists(
    st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(LINES, st.booleans())
def test_frames_decode_to_the_lines(lines: list[bytes], binary: bool) -> None:
    """Binary: the bytes as they are; text: valid UTF-8, anything else replaced by U+FFFD."""
    data = b"".join(line + b"\r\n" for line in lines)
    frames = frame_lines(data, binary)
    expected = [
        (BytesMessage, line) if binary else (TextMessage, line.decode("utf-8", "replace").encode())
        for line in lines
    ]
    assert messages(decode(frames)) == expected
    # sizes() agrees with the frames, line by line
    table = sizes(data, binary)
    assert sum(f for f, _ in table) == len(frames) and sum(d for _, d in table) == len(data)


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_length_encoding(n: int) -> None:
    line = b"a" * n
    for binary in (False, True):
        frames = frame_lines(line + b"\r\n", binary)
        assert messages(decode(frames)) == [((BytesMessage if binary else TextMessage), line)]


def test_a_text_line_that_is_not_utf8_is_repaired() -> None:
    """irctest testReceiveNonUtf8Text: ``caf\\xe9`` reaches a text client as ``caf\\ufffd``."""
    frames = frame_lines(b":a!b@c PRIVMSG web :caf\xe9\r\n:a!b@c PING x\r\n", binary=False)
    assert messages(decode(frames)) == [
        (TextMessage, ":a!b@c PRIVMSG web :caf\ufffd".encode()),
        (TextMessage, b":a!b@c PING x"),
    ]


def test_the_web_package_is_sans_io() -> None:
    """fastchat.server.web imports no socket, selector, ssl or clock module (h11 and wsproto
    come along, which is why tests/unit/test_layout.py's probe, without site packages,
    cannot check it)."""
    code = (
        "import sys\n"
        "for n in ('socket', 'selectors', 'ssl', 'time'): sys.modules.pop(n, None)\n"
        "import fastchat.server.web.http, fastchat.server.web.websocket, fastchat.server.web.static\n"
        "print(','.join(n for n in ('socket', 'selectors', 'ssl', 'time') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
