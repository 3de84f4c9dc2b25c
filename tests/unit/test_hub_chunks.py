"""The hub's shared chunks (runtime/hub.py, ``to_channel``): a channel message is appended
once to the open chunk of its route and marshalled once for all of that route's workers; each
worker must still receive exactly the records the record-by-record routing gives it, in the
same order, as the same frames.

The reference is the same hub routing record by record (``_to_channel_each``, what
``_replay`` uses), fed the same decisions: whatever the mix of channel messages to channels
on different sets of workers, joins and parts that move those sets, answers to one worker
(``D_DONE``) and loop turns, every worker's decoded stream must be identical.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastchat.server.config import Config
from fastchat.server.network.records import (
    B_FENCED,
    D_CHAN,
    D_DONE,
    R_CHANMSG,
    R_JOIN,
    R_PART,
    R_SYNC,
    BHello,
    Record,
    RRegister,
    make,
)
from fastchat.server.runtime.bus import FrameReader, Link, encode
from fastchat.server.runtime.hub import Hub

WORKERS = 4
USERS = 8  # user i on worker i % WORKERS
CHANNELS = 4
BASE = {w: (w + 1) << 32 for w in range(WORKERS)}
#: The workers whose users join each channel at first: routes that overlap, match, differ
ROUTES = ({0, 1}, {1, 2}, {0, 1, 2, 3}, {3})


def _uid(i: int) -> int:
    return BASE[i % WORKERS] + 1000 + i


class _Net:
    """A hub with WORKERS connected links (socketpairs), and the other ends read back."""

    def __init__(self, chunked: bool, users: int = USERS) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.hub = Hub(Config(workers=WORKERS, autojoin=()), self.listener, None)
        self.hub.sequencer.epoch = 1 << 62  # one state version for both hubs (each B_SEEN's)
        if not chunked:
            self.hub.to_channel = self.hub._to_channel_each  # type: ignore[method-assign]
        self.pairs = [socket.socketpair() for _ in range(WORKERS)]
        self.readers = [FrameReader() for _ in range(WORKERS)]
        self.got: list[list[list[Record]]] = [[] for _ in range(WORKERS)]  # frames per worker
        self.dead: set[int] = set()  # workers whose end of the link was closed
        for w, (worker_end, hub_end) in enumerate(self.pairs):
            worker_end.setblocking(False)
            worker_end.sendall(encode([make(BHello, w, None, (), BASE[w], {}, ())]))
            link = Link(hub_end)
            self.hub._from_pending(link, {hub_end: link})
        self.turn()
        self.got = [[] for _ in range(WORKERS)]
        for i in range(users):
            nick = b"u%d" % i
            self.hub._decide(i % WORKERS, [make(RRegister, _uid(i), nick, b"u", b"h", b"r")])
        self.turn()

    def turn(self) -> None:
        """The end of a loop turn: frames out, and read at the workers' ends."""
        self.hub._flush_all()
        for w, (worker_end, _) in enumerate(self.pairs):
            while w not in self.dead:
                try:
                    data = worker_end.recv(1 << 20)
                except BlockingIOError:
                    break
                self.got[w] += self.readers[w].feed(data)

    def close(self) -> None:
        for a, b in self.pairs:
            a.close()
            b.close()
        self.listener.close()


@pytest.fixture
def nets(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Net, _Net]]:
    # one clock for both hubs: every decision's time and every B_SEEN's timing the same
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    monkeypatch.setattr(time, "monotonic", lambda: 1000.0)
    chunked, reference = _Net(chunked=True), _Net(chunked=False)
    try:
        yield chunked, reference
    finally:
        chunked.close()
        reference.close()


def _request(op: tuple[str, int, int], n: int) -> Record:
    kind, user, chan = op
    uid, name = _uid(user), b"#c%d" % chan
    if kind == "msg":
        line = b":u%d!u@h PRIVMSG %s :m%d\r\n" % (user, name, n)
        return (R_CHANMSG, uid, name, line, False, False, n, b"", 0)
    if kind == "join":
        return (R_JOIN, uid, name, b"")
    if kind == "part":
        return (R_PART, uid, name, b"")
    return (R_SYNC, uid)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["msg"] * 8 + ["join", "part", "sync", "turn"]),
        st.integers(0, USERS - 1),
        st.integers(0, CHANNELS - 1),
    ),
    max_size=80,
)


def _run(net: _Net, ops: list[tuple[str, int, int]]) -> list[list[list[Record]]]:
    batch: list[Record] = []
    origin = -1
    for n, op in enumerate(ops):
        kind, user, _ = op
        if kind == "turn" or (batch and user % WORKERS != origin):
            if batch:
                net.hub._decide(origin, batch)
                batch = []
            if kind == "turn":
                net.turn()
                continue
        origin = user % WORKERS
        batch.append(_request(op, n))
    if batch:
        net.hub._decide(origin, batch)
    net.turn()
    return net.got


def _join_all(net: _Net) -> None:
    for i in range(USERS):
        for c in range(CHANNELS):
            if i % WORKERS in ROUTES[c]:
                net.hub._decide(i % WORKERS, [(R_JOIN, _uid(i), b"#c%d" % c, b"")])
    net.turn()
    net.got = [[] for _ in range(WORKERS)]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_chunks_give_every_worker_what_routing_record_by_record_gives(
    ops: list[tuple[str, int, int]],
) -> None:
    """Each worker's frames, decoded, are the same with chunks as record by record."""
    # the fixture's monkeypatching holds for every example; the nets are made per example
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: 1_800_000_000.0)
        mp.setattr(time, "monotonic", lambda: 1000.0)
        chunked, reference = _Net(chunked=True), _Net(chunked=False)
        try:
            _join_all(chunked)
            _join_all(reference)
            assert _run(chunked, ops) == _run(reference, ops)
        finally:
            chunked.close()
            reference.close()


def test_a_busy_turn_shares_chunks_and_keeps_order(nets: tuple[_Net, _Net]) -> None:
    """Messages to channels whose members sit on the same workers ride in one chunk (the
    hub marshals them once), a join that changes a channel's workers and an answer to one
    worker fall between them in the order decided, and each worker gets exactly its own."""
    chunked, reference = nets
    for net in nets:
        _join_all(net)
    ops = [("msg", u, c) for u in (0, 1, 2, 3) for c in (0, 1, 0, 2, 3, 1, 3, 0)]
    ops += [("join", 5, 3), ("msg", 4, 3), ("sync", 4, 0), ("msg", 4, 0), ("part", 1, 1)]
    ops += [("msg", 6, 1), ("turn", 0, 0), ("msg", 7, 2)]
    got = _run(chunked, ops)
    assert got == _run(reference, ops)
    delivered = [[r for frame in frames for r in frame if r[0] == D_CHAN] for frames in got]
    assert all(delivered), "every worker holds a member of some channel"
    sent = sum(len(d) for d in delivered)
    assert sent > len([op for op in ops if op[0] == "msg"])  # most messages visit several


def test_no_chunk_outlives_the_turn_its_frames_went_out_in(nets: tuple[_Net, _Net]) -> None:
    """A worker found gone while the hub flushes (its link broken) leaves a fence round: the
    requests held for that round are decided right there, in the flush, and their channel
    messages go out in that flush. The next turn's messages to the same channel must go out
    too, not into the chunk already sent."""
    hub_net = _Net(chunked=True, users=2)  # u0 on worker 0, u1 on worker 1; 2 and 3 empty
    try:
        hub = hub_net.hub
        for i in (0, 1):
            hub._decide(i, [(R_JOIN, _uid(i), b"#c", b"")])
        hub_net.turn()
        hub_net.got = [[] for _ in range(WORKERS)]
        line = b":u0!u@h PRIVMSG #c :%d\r\n"
        hub._batches(0, [[(R_SYNC, _uid(0))]])  # a query: held for a fence round
        hub._batches(0, [[(R_CHANMSG, _uid(0), b"#c", line % 1, False, False, 1, b"", 0)]])
        hub_net.turn()  # the round goes to workers 1, 2 and 3
        round_ = hub.fence.round
        for w in (1, 2):
            hub._batches(w, [[(B_FENCED, round_)]])
        hub_net.pairs[3][0].close()  # worker 3 dies without answering
        hub_net.dead.add(3)
        hub.to_worker(3, (D_DONE, 0, 0))  # something for it: its flush finds it gone
        hub_net.turn()
        hub._decide(0, [(R_CHANMSG, _uid(0), b"#c", line % 2, False, False, 2, b"", 0)])
        hub_net.turn()
        got = [r[3] for frame in hub_net.got[1] for r in frame if r[0] == D_CHAN]
        assert got == [line % 1, line % 2]
        assert [r[:2] for f in hub_net.got[0] for r in f if r[0] == D_DONE] == [(D_DONE, _uid(0))]
    finally:
        hub_net.close()
