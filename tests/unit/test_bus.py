"""Unit tests for the bus between workers and the hub (``fastchat.server.runtime.bus``).

What the module promises: a frame is a ``!I`` length and ``marshal.dumps`` of a list of
records; :class:`FrameReader` cuts any byte stream into those batches, wherever ``recv``
happened to split it; :class:`Retained` keeps the request frames a worker sent until every
worker has the effects of their requests, and hands back what must be resent to a new hub;
:class:`Link` queues frames and sends what a non-blocking socket takes.

Everything but :class:`Link` is tested without a socket. The few :class:`Link` tests use a
``socket.socketpair()`` (the transport itself is what they test) and close it every time.
"""

from __future__ import annotations

import marshal
import random
import socket
import struct
from collections.abc import Iterable, Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastchat.server.network.records import (
    B_SEEN,
    D_CHAN,
    D_DONE,
    E_JOIN,
    R_CHANMSG,
    Record,
)
from fastchat.server.runtime.bus import HEADER_SIZE, FrameReader, Link, Retained, encode

#: Batches as they cross the bus: records of every shape marshal is asked to carry.
BATCHES: list[list[Record]] = [
    [],
    [(D_DONE, 7, 1_700_000_000_000)],
    [(R_CHANMSG, 1 << 32, b"#chan", b":a!b@c PRIVMSG #chan :hi\r\n", False, True, 0, b"", 0)],
    [(E_JOIN, 3, b"#Chan[x]", 2, 1_700_000_000, 1_700_000_000_123)] * 3,
    [(B_SEEN, ((0, 5), (1, 9)), {0: 5, 1: 9}), (B_SEEN, (), None)],
    [(D_CHAN, b"#big", 1, b"x" * 70_000, 0, b"", 0, 1)],
    [(D_CHAN, b"#bin", 1, bytes(range(256)), 0, b"", 0, 1)],
]


def _stream(batches: Iterable[list[Record]]) -> bytes:
    return b"".join(encode(batch) for batch in batches)


def _feed(chunks: Iterable[bytes]) -> list[list[Record]]:
    reader = FrameReader()
    out: list[list[Record]] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    return out


# -- frames ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_frame_is_length_and_marshal(batch: list[Record]) -> None:
    """bus.py: "A frame is ``!I`` length + ``marshal.dumps(list_of_records)``"."""
    frame = encode(batch)
    (size,) = struct.unpack("!I", frame[:HEADER_SIZE])
    assert HEADER_SIZE == 4
    assert size == len(frame) - HEADER_SIZE
    assert marshal.loads(frame[HEADER_SIZE:]) == batch


@pytest.mark.parametrize("batch", BATCHES)
def test_frame_round_trip(batch: list[Record]) -> None:
    """One frame fed whole gives back its batch, as a list of plain tuples."""
    (got,) = FrameReader().feed(encode(batch))
    assert got == batch
    assert type(got) is list
    assert all(type(record) is tuple for record in got)


def test_several_frames_in_one_read() -> None:
    """A ``recv`` that holds several frames gives every batch, in order."""
    assert FrameReader().feed(_stream(BATCHES)) == BATCHES


def test_split_at_every_byte_boundary() -> None:
    """TCP and Unix stream sockets promise nothing about where a ``recv`` ends (STYLE.md:
    "split inputs at byte boundaries"): cut in two at every offset, the stream gives the same
    batches, each exactly once."""
    stream = _stream(BATCHES[:5])
    for i in range(len(stream) + 1):
        assert _feed([stream[:i], stream[i:]]) == BATCHES[:5], i


def test_split_at_every_pair_of_byte_boundaries() -> None:
    """Cut in three at every pair of offsets (a frame spread over three reads, or a header
    cut in the middle), the stream still gives the same batches."""
    stream = _stream(BATCHES[:3])
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert _feed([stream[:i], stream[i:j], stream[j:]]) == BATCHES[:3], (i, j)


def test_byte_by_byte() -> None:
    """One byte per read: every batch comes out when its last byte arrives, not before."""
    stream = _stream(BATCHES)
    reader = FrameReader()
    out: list[list[Record]] = []
    ends = set()
    pos = 0
    for batch in BATCHES:
        pos += len(encode(batch))
        ends.add(pos)
    for i in range(len(stream)):
        got = reader.feed(stream[i : i + 1])
        assert len(got) == (1 if i + 1 in ends else 0), i
        out += got
    assert out == BATCHES


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0, max_value=len(BATCHES) - 1), max_size=12), st.data())
def test_random_chunking(picks: list[int], data: st.DataObject) -> None:
    """Any sequence of batches, cut into any chunks (empty reads included), comes out whole
    and in order."""
    batches = [BATCHES[i] for i in picks]
    stream = _stream(batches)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in pairwise(bounds)]
    assert _feed(chunks) == batches


def test_an_empty_read_gives_nothing_and_loses_nothing() -> None:
    """Feeding no bytes, or less than a header, yields no batch and keeps what was there."""
    frame = encode(BATCHES[1])
    reader = FrameReader()
    assert reader.feed(b"") == []
    assert reader.feed(frame[:2]) == []
    assert reader.feed(b"") == []
    assert reader.feed(frame[2:]) == [BATCHES[1]]
    assert reader.feed(b"") == []


def test_a_frame_announcing_more_than_has_arrived_waits() -> None:
    """The reader has no size limit (the peers trust each other): a header announcing more
    bytes than have arrived, however many, makes it wait, not fail."""
    reader = FrameReader()
    assert reader.feed(struct.pack("!I", 0xFFFFFFFF) + b"\x00" * 1000) == []
    big = [(D_CHAN, b"#c", 1, b"y" * (1 << 20), 0, b"", 0, 1)]
    frame = encode(big)
    reader = FrameReader()
    for i in range(0, len(frame) - 1, 65536):
        assert reader.feed(frame[i : min(i + 65536, len(frame) - 1)]) == []
    assert reader.feed(frame[-1:]) == [big]


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff", b"[\x02\x00\x00\x00", marshal.dumps([(1, 2)])[:-1]],
    ids=["empty", "unknown-type", "truncated-list", "truncated-tuple"],
)
def test_a_corrupt_frame_raises(body: bytes) -> None:
    """A frame whose body is not marshal data is not skipped in silence (STYLE.md: "No error
    is swallowed silently"): the reader raises marshal's error (ValueError or EOFError).
    The module defines no error of its own for it: both ends are one trusted build."""
    frame = struct.pack("!I", len(body)) + body
    with pytest.raises((ValueError, EOFError)):
        FrameReader().feed(encode(BATCHES[1]) + frame)


# -- Retained --------------------------------------------------------------------------------------


def test_retained_starts_empty_at_its_first_seq() -> None:
    """A worker numbers its requests from ``first_seq``; nothing is kept yet."""
    kept = Retained(40)
    assert (kept.first_seq, kept.next_seq, kept.size, kept.frames()) == (40, 40, 0, [])


def test_retained_keeps_frames_until_acknowledged() -> None:
    """bus.py, Retained: "the hub tells it how far every worker has received (its
    ``stable``), and the frames below that are forgotten"; a frame goes only once *all* its
    requests are below ``stable``, so a partly acknowledged frame is kept whole."""
    kept = Retained(10)
    frames = [encode([(D_DONE, n, 0)] * n) for n in (1, 2, 3)]
    for n, frame in zip((1, 2, 3), frames, strict=True):
        kept.add(frame, n)
    # requests 10 | 11 12 | 13 14 15
    assert kept.next_seq == 16
    assert kept.size == sum(map(len, frames))
    assert kept.frames() == frames

    kept.ack(10)  # nothing below 10: nothing goes
    assert (kept.first_seq, kept.frames()) == (10, frames)
    kept.ack(12)  # 10 and 11 are stable; 12 is not, so the second frame stays
    assert (kept.first_seq, kept.frames()) == (11, frames[1:])
    kept.ack(13)
    assert (kept.first_seq, kept.frames(), kept.size) == (13, frames[2:], len(frames[2]))
    kept.ack(11)  # an older ``stable`` moves nothing back
    assert (kept.first_seq, kept.frames()) == (13, frames[2:])
    kept.ack(16)
    assert (kept.first_seq, kept.next_seq, kept.size, kept.frames()) == (16, 16, 0, [])


def test_retained_keeps_the_bytes_already_encoded() -> None:
    """bus.py: "Frames are kept as the bytes already encoded: nothing is marshalled twice":
    what is resent is the very frame that was sent, and fed to a reader it gives the same
    batches (a new hub decodes the resend like any other traffic)."""
    kept = Retained(0)
    batches = BATCHES[1:4]
    sent = [encode(batch) for batch in batches]
    for frame, batch in zip(sent, batches, strict=True):
        kept.add(frame, len(batch))
    assert all(a is b for a, b in zip(kept.frames(), sent, strict=True))
    assert FrameReader().feed(b"".join(kept.frames())) == batches


@pytest.mark.parametrize("seed", range(10))
def test_retained_against_a_model(seed: int) -> None:
    """Any sequence of sends and acknowledgements: what is kept is exactly the frames with a
    request not yet below the highest ``stable`` acknowledged, ``size`` is their length in
    bytes (the worker's backpressure bound) and ``first_seq`` is the number of the oldest
    request kept."""
    rng = random.Random(seed)
    start = rng.randrange(1000)
    kept = Retained(start)
    model: list[tuple[int, int, bytes]] = []  # (first seq, seq after, frame), oldest first
    seq = start
    for step in range(300):
        if rng.random() < 0.6:
            count = rng.randint(1, 5)  # a worker sends a frame only when it has requests
            frame = encode([(D_DONE, step, 0)] * count)
            kept.add(frame, count)
            model.append((seq, seq + count, frame))
            seq += count
        else:
            upto = rng.randint(kept.first_seq - 3, seq + 1)
            kept.ack(upto)
            while model and model[0][1] <= upto:
                model.pop(0)
        assert kept.frames() == [frame for _, _, frame in model]
        assert kept.size == sum(len(frame) for _, _, frame in model)
        assert kept.next_seq == seq
        if model:
            assert kept.first_seq == model[0][0]
        assert kept.first_seq <= kept.next_seq


# -- Link over a socketpair ------------------------------------------------------------------------


@pytest.fixture
def links() -> Iterator[tuple[Link, Link]]:
    """Two ends of one bus connection; both closed after the test, whatever happened."""
    a, b = socket.socketpair()
    left, right = Link(a), Link(b)
    try:
        yield left, right
    finally:
        left.close()
        right.close()


def _receive_all(link: Link, count: int) -> list[list[Record]]:
    """Read until ``count`` batches have come (a socketpair has them at once; the bound only
    keeps a bug from spinning)."""
    out: list[list[Record]] = []
    for _ in range(10_000):
        got = link.receive()
        assert got is not None
        out += got
        if len(out) >= count:
            break
    return out


def test_link_sends_queued_frames_in_order(links: tuple[Link, Link]) -> None:
    """bus.py: "Each side appends the records of one loop turn to a list and writes them as
    *one* frame"; frames queued in a turn go out with one flush, and arrive in order."""
    left, right = links
    frames = [left.queue(batch) for batch in BATCHES[:4]]
    assert frames == [encode(batch) for batch in BATCHES[:4]]
    assert left.backlog == sum(map(len, frames))
    assert left.flush() is True
    assert left.backlog == 0
    assert _receive_all(right, 4) == BATCHES[:4]
    assert left.flush() is True  # nothing queued: nothing to do


def test_link_counts_its_traffic(links: tuple[Link, Link]) -> None:
    """STATS l: a link counts the records it queued and received and the bytes the socket
    took and gave, per frame and per read; a retained frame queued again (after a hub
    restart) is bytes, not records, again."""
    left, right = links
    frames = [left.queue(batch) for batch in BATCHES[:3]]
    left.queue_frame(frames[0])
    left.flush()
    _receive_all(right, 4)
    records = sum(map(len, BATCHES[:3]))
    size = sum(map(len, frames)) + len(frames[0])
    assert (left.sent_records, left.sent_bytes) == (records, size)
    assert (right.received_records, right.received_bytes) == (records + len(BATCHES[0]), size)
    assert (left.received_records, right.sent_records) == (0, 0)


def test_link_is_non_blocking(links: tuple[Link, Link]) -> None:
    """bus.py: a Link must never block: with nothing to read, ``receive`` gives no batch."""
    _, right = links
    assert right.receive() == []


def test_link_keeps_what_the_socket_did_not_take(links: tuple[Link, Link]) -> None:
    """``flush`` sends what the socket takes and keeps the rest: ``backlog`` is what the peer
    has not taken; flushing again as the peer reads finishes it, and every byte arrives
    once, in order."""
    left, right = links
    big = [
        (D_CHAN, b"#c", 1, bytes(range(256)) * 16384, 0, b"", 0, 1)
    ]  # 4 MiB: more than any buffer
    frame = left.queue(big)
    assert left.flush() is False
    assert 0 < left.backlog < len(frame)
    got: list[list[Record]] = []
    for _ in range(100_000):
        got += right.receive() or []
        if left.flush():
            break
        assert 0 < left.backlog < len(frame)
    assert left.backlog == 0
    if not got:
        got = _receive_all(right, 1)
    assert got == [big]


def test_link_backlog_of_many_frames_is_never_copied(links: tuple[Link, Link]) -> None:
    """bus.py, ``flush``: with many frames waiting for a peer that reads slowly, what the
    socket did not take stays as queued: the first frame as a view past what was sent, the
    others the very objects queued (no join, no ``data[sent:]`` copy of the backlog), and
    every frame arrives once, in order, however the sends cut them."""
    left, right = links
    left.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    batches = [
        [(D_CHAN, b"#c", n, bytes([n % 251]) * (1000 + 37 * n), n, b"", 0, n)] for n in range(600)
    ]  # 600 frames, ~7 MB: more than the 512 one sendmsg takes, more than any buffer
    frames = [left.queue(batch) for batch in batches]
    total = sum(map(len, frames))
    queued_ids = {id(frame) for frame in frames}
    partial = 0
    got: list[list[Record]] = []
    for _ in range(1_000_000):
        if left.flush():
            break
        queued = list(left._out)
        assert left.backlog == sum(map(len, queued)) < total
        head = queued[0]
        if isinstance(head, memoryview):
            partial += 1
            assert id(head.obj) in queued_ids  # a view, not a copy
        assert all(id(q) in queued_ids for q in queued[1:])
        got += right.receive() or []
    assert left.backlog == 0
    assert partial > 0, "no send was partial: the test did not exercise the backlog"
    while len(got) < len(batches):
        got += _receive_all(right, len(batches) - len(got))
    assert got == batches
    assert left.sent_bytes == total


def test_link_receive_says_none_at_eof(links: tuple[Link, Link]) -> None:
    """bus.py, ``receive``: "None on EOF": a peer that closed is told apart from a quiet one,
    after whatever it sent before closing."""
    left, right = links
    left.queue(BATCHES[1])
    assert left.flush()
    left.close()
    assert right.receive() == [BATCHES[1]]
    assert right.receive() is None


def test_link_flush_to_a_closed_peer_raises(links: tuple[Link, Link]) -> None:
    """bus.py, ``flush``: "Raises OSError if the peer is gone" (the hub then treats the
    worker as gone)."""
    left, right = links
    right.close()
    left.queue(BATCHES[1])
    with pytest.raises(OSError):
        left.flush()


def test_link_close_is_safe_twice(links: tuple[Link, Link]) -> None:
    """STYLE.md: "a ``close()`` that is safe to call twice"."""
    left, _ = links
    left.close()
    left.close()
    assert left.sock.fileno() == -1


def test_link_socket_is_non_blocking(links: tuple[Link, Link]) -> None:
    """bus.py: "Must never ... block": a Link makes its socket non-blocking."""
    left, right = links
    assert left.sock.getblocking() is False
    assert right.sock.getblocking() is False
