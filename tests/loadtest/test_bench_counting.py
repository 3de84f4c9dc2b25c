"""The benchmark load generator's pure arithmetic: counting deliveries in a byte stream cut
anywhere, reading embedded timestamps, percentiles, and the client/room/process plan."""

from __future__ import annotations

import pytest

from bench import wsframes
from bench.counting import (
    BatchCounter,
    DeliveryCounter,
    WsDeliveryCounter,
    percentile,
    plain_text,
    summarize_ns,
    timed_text,
)
from bench.loadgen import LoadSpec, plan


def _line(text: bytes, nick: bytes = b"u7") -> bytes:
    return b":%s!~%s@127.0.0.1 PRIVMSG #r3 :%s\r\n" % (nick, nick, text)


STREAM = b"".join(
    [
        b":srv 353 u1 = #r3 :@u7 u1 u2\r\n",  # setup noise: no marker
        _line(plain_text(20)),
        _line(timed_text(1_000, 5)),
        b"PING :srv\r\n",
        _line(plain_text(3), nick=b"u12"),
        _line(timed_text(2_500, 0)),
        _line(b"=bt12x4 not a timestamp"),  # marker, junk digits: counted, no sample
        _line(b"hello =b. inside text"),  # marker not at the start of the text: not ours
    ]
)


def test_whole_stream() -> None:
    c = DeliveryCounter()
    lat: list[int] = []
    assert c.feed(STREAM, 10_000, lat) == 5
    assert c.count == 5
    assert lat == [9_000, 7_500]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_byte(cut: int) -> None:
    c = DeliveryCounter()
    lat: list[int] = []
    c.feed(STREAM[:cut], 10_000, lat)
    c.feed(STREAM[cut:], 10_000, lat)
    assert c.count == 5
    assert lat == [9_000, 7_500]


def test_byte_by_byte_and_incomplete_tail() -> None:
    c = DeliveryCounter()
    lat: list[int] = []
    tail = _line(plain_text(1))[:-2]  # no newline yet: not counted until it completes
    for i in range(len(STREAM + tail)):
        c.feed((STREAM + tail)[i : i + 1], 10_000, lat)
    assert c.count == 5
    c.feed(b"\r\n", 10_000, lat)
    assert c.count == 6


def test_no_latency_list_means_no_sampling() -> None:
    c = DeliveryCounter()
    assert c.feed(STREAM, 10_000, None) == 5


def test_percentiles() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        percentile([], 50)
    s = summarize_ns([1_000_000, 2_000_000, 3_500_000])
    assert s == {"samples": 3, "p50_ms": 2.0, "p95_ms": 3.5, "p99_ms": 3.5, "max_ms": 3.5}
    assert summarize_ns([]) == {"samples": 0}


def test_closed_loop_plan_keeps_talkers_and_witness_home() -> None:
    spec = LoadSpec("closed", rooms=5, members=10, talkers=2, processes=2)
    shards = plan(spec)
    assert sum(len(s) for s in shards) == 50
    assert abs(len(shards[0]) - len(shards[1])) <= 6
    for i, shard in enumerate(shards):
        for p in shard:
            if p.role in ("talker", "witness"):
                assert p.room % 2 == i
    roles = [p.role for s in shards for p in s]
    assert roles.count("talker") == 10 and roles.count("witness") == 5
    assert len({p.index for s in shards for p in s}) == 50


def test_open_loop_plan_everyone_talks() -> None:
    shards = plan(LoadSpec("open", rooms=3, members=4, rate=10.0, processes=3))
    assert [len(s) for s in shards] == [4, 4, 4]
    assert {p.role for s in shards for p in s} == {"talker"}


def _tagged(text: bytes) -> bytes:
    return b"@time=2026-01-01T00:00:00.000Z;msgid=a-1 " + _line(text)


def _history_batch(ref: bytes, lines: int) -> bytes:
    """A chathistory batch as fastchat sends it: opening, tagged lines, closing."""
    body = b"".join(
        b"@batch=%s;time=2026-01-01T00:00:00.000Z;msgid=m-%d :u1!~u1@h PRIVMSG #r0 :=b. x\r\n"
        % (ref, i)
        for i in range(lines)
    )
    return b":srv BATCH +%s chathistory #r0\r\n" % ref + body + b":srv BATCH -%s\r\n" % ref


# the room's live traffic around two answers, a PING, and a batch of another type
HISTORY_STREAM = b"".join(
    [
        _tagged(plain_text(10)),
        _history_batch(b"history", 3),
        _tagged(plain_text(10)),
        b"PING :srv.bench\r\n",
        b":srv BATCH +x1 netsplit a b\r\n@batch=x1 :u2 QUIT :split\r\n:srv BATCH -x1\r\n",
        _tagged(b"hello BATCH +fake chathistory #r0"),  # in the text: not a batch
        _history_batch(b"h2", 4),
        _tagged(plain_text(10)),
    ]
)


def test_history_batches_whole_stream() -> None:
    c = BatchCounter()
    assert c.feed(HISTORY_STREAM) == [3, 4]
    assert c.pings == [b":srv.bench"]
    assert c.feed(_history_batch(b"history", 100)) == [100]


def test_history_batches_split_at_every_byte() -> None:
    for cut in range(1, len(HISTORY_STREAM)):
        c = BatchCounter()
        ended = c.feed(HISTORY_STREAM[:cut]) + c.feed(HISTORY_STREAM[cut:])
        assert ended == [3, 4], cut
        assert c.pings == [b":srv.bench"], cut


def test_history_batches_byte_by_byte() -> None:
    c = BatchCounter()
    ended: list[int] = []
    for i in range(len(HISTORY_STREAM)):
        ended += c.feed(HISTORY_STREAM[i : i + 1])
    assert ended == [3, 4]


def test_history_batch_empty_and_unfinished() -> None:
    c = BatchCounter()
    assert c.feed(_history_batch(b"e", 0)) == [0]  # an empty answer is an answer
    whole = _history_batch(b"u", 5)
    assert c.feed(whole[:-2]) == []  # the closing line has no newline yet
    assert c.feed(b"\r\n") == [5]


def test_pongs_are_counted_whole_and_split() -> None:
    """The probe's own PING after each answer: its PONG, wherever the stream is cut."""
    stream = _tagged(plain_text(3)) + b":srv PONG srv :hprobe\r\n" + _tagged(b"PONG in text")
    for cut in range(1, len(stream)):
        c = BatchCounter()
        c.feed(stream[:cut])
        c.feed(stream[cut:])
        assert c.pongs == 1, cut


# --- the ws transport: frames instead of lines (bench/wsframes.py) -----------------------------


def _server_frames(stream: bytes) -> bytes:
    """``stream``'s lines as a server sends them over WebSocket: one unmasked text frame
    each, framed by wsproto (the reference the hand-written walker must agree with)."""
    from wsproto.frame_protocol import FrameProtocol

    server = FrameProtocol(client=False, extensions=[])
    lines = stream.split(b"\r\n")[:-1]
    return b"".join(server.send_data(line.decode(), fin=True) for line in lines)


WS_STREAM = _server_frames(STREAM + _line(timed_text(7_000, 400)))  # (a 2-byte length too)


def test_ws_counter_whole_stream() -> None:
    c = WsDeliveryCounter()
    lat: list[int] = []
    assert c.feed(WS_STREAM, 10_000, lat) == 6
    assert lat == [9_000, 7_500, 3_000]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_ws_counter_any_cut(size: int) -> None:
    c = WsDeliveryCounter()
    lat: list[int] = []
    n = sum(c.feed(WS_STREAM[i : i + size], 10_000, lat) for i in range(0, len(WS_STREAM), size))
    assert n == c.count == 6
    assert lat == [9_000, 7_500, 3_000]


def test_ws_counter_primed_mid_frame() -> None:
    """The setup phase hands over the start of a frame it read with the 366."""
    c = WsDeliveryCounter()
    one = _server_frames(_line(plain_text(10)))
    c.prime(one[:5])
    assert c.feed(one[5:] + one, 0, None) == 2


def test_ws_client_frames_decode_as_sent() -> None:
    from wsproto.frame_protocol import FrameProtocol

    server = FrameProtocol(client=False, extensions=[])  # a server: receives masked frames
    long = b"PRIVMSG #r :" + b"y" * 300
    server.receive_bytes(wsframes.client_frames(b"NICK u1\r\n" + long + b"\r\n"))
    got = [(f.opcode, f.payload) for f in server.received_frames()]
    assert [p for _, p in got] == ["NICK u1", long.decode()]


def test_ws_frames_and_handshake() -> None:
    got, rest = wsframes.frames(WS_STREAM + b"\x81\x7e\x01")
    assert len(got) == 9 and rest == b"\x81\x7e\x01"
    assert got[0] == (wsframes.TEXT, b":srv 353 u1 = #r3 :@u7 u1 u2")
    answer = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n\r\n"
    assert wsframes.maybe_handshake_end(answer[:-1]) is None
    assert wsframes.maybe_handshake_end(answer + b"\x81") == len(answer)
    with pytest.raises(ValueError):
        wsframes.maybe_handshake_end(b"HTTP/1.1 403 Forbidden\r\n\r\n")
