"""Unit tests for cutting a byte stream into IRC lines (``fastchat.irc.linebuffer``).

Spec areas: RFC 1459 §2.3 / RFC 2812 §2.3 (message framing and length) and Modern IRC
"Messages". Streams are pushed through the buffer split at every byte boundary and in random
chunkings: TCP promises nothing about where a ``recv`` ends.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastchat.irc import linebuffer
from fastchat.irc.linebuffer import OVERLONG, LineBuffer
from fastchat.irc.message import Message, format_message, parse

MAX = 16


def _feed_all(chunks: Iterable[bytes], max_line: int = MAX) -> list[bytes]:
    buf = LineBuffer(max_line)
    out: list[bytes] = []
    for chunk in chunks:
        out += buf.feed(chunk)
        assert buf.pending <= max_line
    return out


def _expected(stream: bytes, max_line: int = MAX) -> list[bytes]:
    """The reference model: what the buffer must say about ``stream``, however it is cut."""
    *complete, tail = stream.replace(b"\r", b"\n").split(b"\n")
    out = [OVERLONG if len(one) > max_line else one for one in complete if one]
    if len(tail) > max_line:
        out.append(OVERLONG)
    return out


def _two_way_splits(stream: bytes) -> Iterable[list[bytes]]:
    for i in range(len(stream) + 1):
        yield [stream[:i], stream[i:]]


# --- line ends -------------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_each_line_end(end: bytes) -> None:
    """RFC 2812 §2.3.1: "The protocol messages must be extracted from the contiguous stream of
    octets. The current solution is to designate two characters, CR and LF, as message
    separators."
    """
    stream = b"NICK a" + end + b"USER a 0 * :A b" + end + b"JOI"
    assert _feed_all([stream]) == [b"NICK a", b"USER a 0 * :A b"]


def test_mixed_line_ends() -> None:
    """RFC 2812 §2.3.1: CR and LF are both separators, in any mix; a CR can never hide a
    second line inside the first (which a relay would otherwise forward verbatim).
    """
    stream = b"A\rB\nC\r\nD\n\rE\r\r\nF\n"
    assert _feed_all([stream]) == [b"A", b"B", b"C", b"D", b"E", b"F"]


@pytest.mark.parametrize(
    ("stream", "lines"),
    [
        (b"\r\n", []),
        (b"\n\n\n", []),
        (b"\r\r", []),
        (b"\r\n\r\n\n\r", []),
        (b"\n\rX\r\n\n", [b"X"]),
    ],
)
def test_empty_lines_are_dropped(stream: bytes, lines: list[bytes]) -> None:
    """RFC 2812 §2.3.1: "Empty messages are silently ignored, which permits use of the
    sequence CR-LF between messages without extra problems."
    """
    for chunks in _two_way_splits(stream):
        assert _feed_all(chunks) == lines


def test_unfinished_line_waits() -> None:
    """RFC 1459 §2.3: a message is a line "terminated with a CR-LF"; until its end arrives
    nothing is handed back, and the bytes are held as ``pending``.
    """
    buf = LineBuffer(MAX)
    assert buf.feed(b"PING") == []
    assert buf.pending == 4
    assert buf.feed(b" x") == []
    assert buf.feed(b"\r") == [b"PING x"]
    assert buf.pending == 0
    assert buf.feed(b"\n") == []
    assert buf.feed(b"") == []


_STREAM = b"NICK a\r\nUSER a 0 * :A\rJOIN #x\n\r\nPRIVMSG #x :hi there\r\nPART #x\n"
_STREAM_LINES = [b"NICK a", b"USER a 0 * :A", b"JOIN #x", b"PRIVMSG #x :hi there", b"PART #x"]


@pytest.mark.parametrize("chunks", list(_two_way_splits(_STREAM)), ids=lambda c: str(len(c[0])))
def test_split_at_every_byte_boundary(chunks: list[bytes]) -> None:
    """TCP is a byte stream (RFC 2812 §2.3.1: messages "must be extracted from the contiguous
    stream of octets"): where one read ends must not change the lines.
    """
    assert _feed_all(chunks, max_line=64) == _STREAM_LINES


def test_split_at_every_pair_of_boundaries() -> None:
    """As above, with the stream cut in three at every pair of positions."""
    n = len(_STREAM)
    for i in range(n + 1):
        for j in range(i, n + 1):
            chunks = [_STREAM[:i], _STREAM[i:j], _STREAM[j:]]
            assert _feed_all(chunks, max_line=64) == _STREAM_LINES, (i, j)


def test_one_byte_at_a_time() -> None:
    """The worst chunking of all: every ``recv`` returns one byte."""
    chunks = [_STREAM[i : i + 1] for i in range(len(_STREAM))]
    assert _feed_all(chunks, max_line=64) == _STREAM_LINES


# --- overlong lines --------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize(
    ("length", "expected"),
    [(MAX - 1, b"x" * (MAX - 1)), (MAX, b"x" * MAX), (MAX + 1, OVERLONG), (MAX * 10, OVERLONG)],
)
def test_length_limit(end: bytes, length: int, expected: bytes) -> None:
    """RFC 1459 §2.3: messages "shall not exceed 512 characters in length, counting all
    characters including the trailing CR-LF": a line of exactly ``max_line`` bytes passes, one
    byte more is reported (once) as overlong, whichever way the line ends.
    """
    stream = b"x" * length + end + b"PING a" + end
    for chunks in _two_way_splits(stream):
        assert _feed_all(chunks) == [expected, b"PING a"], len(chunks[0])


def test_overlong_marker_is_the_sentinel_object() -> None:
    """Modern IRC, ERR_INPUTTOOLONG (417): "Returned when a message is too long for the server
    to process". The caller tells the marker apart by identity.
    """
    buf = LineBuffer(MAX)
    (marker,) = buf.feed(b"y" * (MAX + 1) + b"\n")
    assert marker is OVERLONG


def test_100kb_without_newline_then_a_normal_line() -> None:
    """Modern IRC, ERR_INPUTTOOLONG: a flood without a line end is reported once and costs no
    memory: the buffer never holds more than ``max_line`` bytes, then resynchronises on the
    next line end.
    """
    buf = LineBuffer(512)
    assert buf.feed(b"A" * 100_000) == [OVERLONG]
    assert buf.pending == 0
    assert buf.feed(b"B" * 100_000) == []
    assert buf.pending == 0
    assert buf.feed(b"tail of the flood\r\nPING x\r\n") == [b"PING x"]
    assert buf.feed(b"PING y\r\n") == [b"PING y"]


def test_overlong_spread_over_many_feeds_is_reported_once() -> None:
    """ERR_INPUTTOOLONG is one reply per offending line, not one per ``recv``."""
    buf = LineBuffer(MAX)
    out: list[bytes] = []
    for _ in range(1000):
        out += buf.feed(b"z" * 7)
        assert buf.pending <= MAX
    out += buf.feed(b"z\r")
    out += buf.feed(b"\nNICK a\r\n")
    assert out == [OVERLONG, b"NICK a"]


def test_overlong_becomes_due_by_one_byte() -> None:
    """A line held at exactly ``max_line`` bytes turns overlong when the next byte arrives
    without a line end, and is reported then, not again when its end comes.
    """
    buf = LineBuffer(MAX)
    assert buf.feed(b"x" * MAX) == []
    assert buf.pending == MAX
    assert buf.feed(b"x") == [OVERLONG]
    assert buf.pending == 0
    assert buf.feed(b"xxx\n") == []
    assert buf.feed(b"ok\n") == [b"ok"]


def test_consecutive_overlong_lines_each_reported() -> None:
    """Each overlong line is its own offence: two in a row give two markers."""
    long = b"q" * (MAX + 5)
    stream = long + b"\n" + long + b"\r\n" + b"ok\n" + long
    for chunks in _two_way_splits(stream):
        assert _feed_all(chunks) == [OVERLONG, OVERLONG, b"ok", OVERLONG], len(chunks[0])


# --- properties ------------------------------------------------------------------------------

_line_ends = st.sampled_from([b"\r\n", b"\n", b"\r"])
_lines = st.one_of(
    st.binary(max_size=MAX).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.integers(min_value=MAX - 1, max_value=MAX * 4).map(lambda n: b"L" * n),
    st.just(b""),
)


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.tuples(_lines, _line_ends), max_size=8))
    tail = draw(_lines)
    return b"".join(line + end for line, end in parts) + tail


@st.composite
def _chunkings(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_chunking_gives_the_same_lines(data: st.DataObject) -> None:
    """However the stream is cut into reads, the lines (and overlong reports, in order) are
    those of the whole stream, and the buffer never holds more than ``max_line`` bytes.
    """
    stream = data.draw(_streams())
    chunks = data.draw(_chunkings(stream))
    assert b"".join(chunks) == stream
    assert _feed_all(chunks) == _feed_all([stream]) == _expected(stream)


_sendable = st.builds(
    lambda target, text: Message(b"PRIVMSG", (target, text), b"n!u@h"),
    st.sampled_from([b"#a", b"bob", b"&x"]),
    st.binary(max_size=40).map(lambda b: b.translate(None, b"\0\r\n")),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_sendable, max_size=6), st.data())
def test_fake_link_round_trip(messages: list[Message], data: st.DataObject) -> None:
    """h11-style fake link: messages formatted with CR LF, pushed through the buffer in
    random pieces and parsed, come out as the messages that went in.
    """
    stream = b"".join(format_message(msg) + b"\r\n" for msg in messages)
    chunks = data.draw(_chunkings(stream))
    assert [parse(one) for one in _feed_all(chunks, max_line=512)] == messages


def test_doctests() -> None:
    """The examples in the docstrings are part of the contract; run them with the suite."""
    result = doctest.testmod(linebuffer, verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0
