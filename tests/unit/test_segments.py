"""Channel segments (engine/segments.py, the hub's ``to_route``, Sequencer.handle_batch):
a worker's approved plain channel messages reach the hub as one R_CHANSEG per run of one
epoch and one route, and the hub forwards one whose epoch is still its own as a single
D_CHANSEG; any other is decided message by message, exactly as R_CHANMSG records would be.

Most tests drive the real :class:`Hub` (its links socketpairs, its frames decoded and applied
by real worker cores, :class:`HubNet`), so the epoch a worker stamps is the one the hub's
B_SEEN told it. The races are made by the order in which the hub reads the workers' outboxes
(``pump(order=...)``): a change one worker asked for decided between another worker's
approval and the hub's reading of its segment.
"""

from __future__ import annotations

import marshal
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from fastchat.server.config import Config
from fastchat.server.network.records import (
    B_SEEN,
    D_CHAN,
    D_CHANSEG,
    D_DONE,
    R_CHANMSG,
    R_CHANSEG,
    R_SYNC,
    R_USERMSG,
    SEG_FIELDS,
    Record,
)
from fastchat.server.runtime.bus import FrameReader, Link, encode
from fastchat.server.runtime.hub import Hub
from fastchat.server.runtime.storage import Kept, Storage
from fastchat.server.store.writer import run_row, segment_rows
from tests.hardening.test_hub_replay import BASE, UIDS, _hello, _line
from tests.unit.fakenet import FakeClient, FakeNet


class HubNet(FakeNet):
    """A FakeNet whose hub is the real one: each core's requests go through
    ``Hub._batches`` as the shell takes them (``take_requests``: segments marshalled), and
    the hub's frames, read from its links, go back through ``apply_batch``."""

    def __init__(self, workers: int = 4, **config: Any) -> None:
        config.setdefault("autojoin", ())
        super().__init__(workers, **config)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.hub = Hub(self.config, self.listener, None)
        self.pairs = [socket.socketpair() for _ in range(workers)]
        self.readers = [FrameReader() for _ in range(workers)]
        self.queues = [[] for _ in range(workers)]  # (FakeNet's: nothing goes there)
        self.routed: list[Record] = []  # every D_CHANSEG the hub forwarded whole
        self.decided_each = 0  # channel messages the hub routed one by one
        to_route, to_channel = self.hub.to_route, self.hub.to_channel

        def spy_route(route: tuple[int, ...], record: Record, last: dict[bytes, int]) -> None:
            self.routed.append(record)
            to_route(route, record, last)

        def spy_channel(chan: Any, record: Record) -> None:
            self.decided_each += 1
            to_channel(chan, record)

        self.hub.to_route = spy_route  # type: ignore[method-assign]
        self.hub.to_channel = spy_channel  # type: ignore[method-assign]
        for w, (worker_end, hub_end) in enumerate(self.pairs):
            worker_end.setblocking(False)
            hello = self.cores[w].resync.hello(False, self.cores[w].resync.first_seq)
            worker_end.sendall(encode([hello]))
            link = Link(hub_end)
            self.hub._from_pending(link, {hub_end: link})
        self.pump()

    def pump(self, order: Iterable[int] | None = None) -> None:
        """Until nothing moves: the requests of the workers in ``order`` (all by default; a
        worker left out keeps its outbox, as one whose turn ends late), every fence answer,
        the hub's frames to every worker."""
        order = list(order) if order is not None else None
        moved = True
        while moved:
            moved = not self.hold_checks and self.finish_checks()
            for i in order if order is not None else range(len(self.cores)):
                core = self.cores[i]
                if core.outbox:
                    self.hub._batches(i, core.take_requests())
                    moved = True
            for i, core in enumerate(self.cores):
                ack = core.take_fence_ack()
                if ack is not None:
                    self.hub._batches(i, [[ack]])
                    moved = True
            self.hub._flush_all()
            for i, (worker_end, _) in enumerate(self.pairs):
                while True:
                    if self.hub.links[i].backlog:
                        self.hub._flush(i)
                    try:
                        data = worker_end.recv(1 << 20)
                    except BlockingIOError:
                        break
                    for batch in self.readers[i].feed(data):
                        self.cores[i].apply_batch(batch, self.now)
                        moved = True

    def close(self) -> None:
        for a, b in self.pairs:
            a.close()
            b.close()
        self.listener.close()


@pytest.fixture
def net() -> Iterator[HubNet]:
    n = HubNet()
    try:
        yield n
    finally:
        n.close()


def _privmsgs(c: FakeClient) -> list[str]:
    return [line.split(" :", 1)[1] for line in c.lines() if " PRIVMSG " in line]


def _room(net: HubNet, workers: Iterable[int], channel: str = "#a") -> list[FakeClient]:
    """A user per worker in ``workers`` (u<worker>), each joined to ``channel``, the first
    one its operator."""
    users = []
    for w in workers:
        c = net.user(f"u{w}", w)
        c.send(f"JOIN {channel}")
        users.append(c)
    for c in users:
        c.lines()
    return users


# -- the fast path --------------------------------------------------------------------------------
def test_messages_approved_on_the_hubs_state_go_whole(net: HubNet) -> None:
    """Nothing decided between the approvals and the hub's reading: one D_CHANSEG for the
    worker's turn (three lines to #a, two to #b, whose members sit on the same workers), no
    message decided on its own, and every member gets every line in order."""
    u0, u1, u2 = _room(net, (0, 1, 2))
    for c in (u0, u1, u2):
        c.send("JOIN #b")
        c.lines()
    lines = ["PRIVMSG #a :one", "PRIVMSG #a :two", "PRIVMSG #b :three", "PRIVMSG #a :four"]
    u0.send(*lines, pump=False)
    outbox = net.cores[0].outbox
    assert [r[0] for r in outbox] == [R_CHANSEG]
    assert outbox[0][1] == net.hub.sequencer.epoch  # the B_SEEN told it
    assert outbox[0][2] == (0, 1, 2)
    net.pump()
    assert len(net.routed) == 1 and net.decided_each == 0
    for c in (u1, u2):
        assert _privmsgs(c) == ["one", "two", "three", "four"]
    assert _privmsgs(u0) == []  # (no echo-message)


def test_a_segment_is_one_request_for_the_hubs_counting(net: HubNet) -> None:
    """``processed`` (and so B_SEEN's order, the resend buffer's numbering) counts a segment
    as one request, as the worker's numbering does."""
    u0, _u1 = _room(net, (0, 1))
    before = net.hub.processed[0]
    u0.send("PRIVMSG #a :x", "PRIVMSG #a :y", "PRIVMSG #a :z")
    assert net.hub.processed[0] == before + 1
    assert net.cores[0].resync.seen[0] == before + 1


def test_a_worker_without_routes_sends_messages_as_before() -> None:
    """``--placement kernel``: the replica keeps no routes, so no segments."""
    n = HubNet(placement="kernel")
    try:
        u0, u1 = _room(n, (0, 1))
        u0.send("PRIVMSG #a :x", pump=False)
        assert [r[0] for r in n.cores[0].outbox] == [R_CHANMSG]
        n.pump()
        assert _privmsgs(u1) == ["x"] and not n.routed
    finally:
        n.close()


def test_segments_break_where_the_route_or_the_kind_of_request_changes(net: HubNet) -> None:
    """Only consecutive approved plain messages to channels of one route join: a message to
    a channel on other workers, or any other request (here a private message, which streams
    too) starts a new segment, so the outbox keeps the order."""
    u0, u1, u2 = _room(net, (0, 1, 2))
    for c in (u0, u1):
        c.send("JOIN #b")
    for c in (u0, u1, u2):
        c.send("JOIN #c")
        c.lines()
    u0.send(
        "PRIVMSG #a :1", "PRIVMSG #a :2", "PRIVMSG #c :x", "PRIVMSG #b :3", "PRIVMSG u1 :p",
        "PRIVMSG #a :4", pump=False,
    )  # fmt: skip
    kinds = [(r[0], r[2] if r[0] == R_CHANSEG else None) for r in net.cores[0].outbox]
    assert kinds[0] == (R_CHANSEG, (0, 1, 2))
    assert kinds[1] == (R_CHANSEG, (0, 1))
    assert kinds[2][0] == R_USERMSG
    assert len(kinds) == 4
    assert kinds[3] == (R_CHANSEG, (0, 1, 2))
    batch = net.cores[0].take_requests()[0]
    payload = marshal.loads(batch[0][3])
    assert len(payload) == 2 * SEG_FIELDS
    # channel, sender, line (a run of two), first, notice, account; then #c's
    assert payload[0:2] == [b"#a", u0.client.uid]
    assert payload[2].endswith(b" PRIVMSG #a :1\r\n:u0!~u0@10.0.0.1 PRIVMSG #a :2\r\n")
    assert payload[3:6] == [0, False, b""]
    assert payload[SEG_FIELDS : SEG_FIELDS + 2] == [b"#c", u0.client.uid]
    assert payload[SEG_FIELDS + 2].endswith(b" PRIVMSG #c :x\r\n")
    assert payload[SEG_FIELDS + 3] == 2  # msgids: the run took 0 and 1


# -- the per-message path -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change", ["MODE #a +m", "MODE #a +b u1!*@*", "KICK #a u1 :out"], ids=["+m", "+b", "kick"]
)
def test_a_change_decided_between_approval_and_arrival_silences(net: HubNet, change: str) -> None:
    """u1's worker approved its message on a state where u1 may speak; u0's change, decided
    first, silences u1. The segment's epoch is then not the hub's: the message is decided on
    its own, refused (404 to u1), and nobody gets it."""
    u0, u1, u2 = _room(net, (0, 1, 2))
    u1.send("PRIVMSG #a :too late", pump=False)
    u0.send(change, pump=False)
    net.pump(order=[0, 2, 3])  # the change is decided (a MODE waits for a read fence first)
    assert [r[0] for r in net.cores[1].outbox] == [R_CHANSEG]  # still u1's turn's
    net.pump()
    assert not net.routed and net.decided_each == 0
    assert _privmsgs(u2) == [] and _privmsgs(u0) == []
    assert any(" 404 u1 #a " in line for line in u1.lines())


@pytest.mark.parametrize("change", ["MODE #a +m", "MODE #a +b u1!*@*", "KICK #a u1 :out"])
def test_the_same_change_decided_after_the_segment_does_not(net: HubNet, change: str) -> None:
    """The control: the segment read first is forwarded whole and everyone gets it."""
    u0, u1, u2 = _room(net, (0, 1, 2))
    u1.send("PRIVMSG #a :in time", pump=False)
    u0.send(change, pump=False)
    net.pump(order=[1, 0, 2, 3])
    assert len(net.routed) == 1
    assert _privmsgs(u2) == ["in time"] and _privmsgs(u0) == ["in time"]


def test_a_stale_segment_is_decided_as_its_messages_would_be() -> None:
    """Record for record: a segment whose epoch the hub no longer holds gives every worker
    what the same messages as R_CHANMSG records give (the reference hub)."""
    nets = [HubNet(), HubNet(placement="kernel")]
    try:
        got = []
        for n in nets:
            u0, u1, u2, u3 = _room(n, (0, 1, 2, 3))
            for c in (u0, u1, u2, u3):
                c.send("JOIN #b")
                c.lines()
            u1.send("PRIVMSG #a :a", "NOTICE #b :b", "PRIVMSG #a :c", "PRIVMSG #b :d", pump=False)
            u0.send("MODE #a +m", pump=False)  # a change: the segment is stale
            n.pump(order=[0, 2, 3])
            n.pump()
            got.append([[line.split(" ", 1)[1] for line in c.lines()] for c in (u0, u1, u2, u3)])
        assert not nets[0].routed and nets[0].decided_each == 2
        assert got[0] == got[1]
        assert got[0][2][-3:] == ["MODE #a +m", "NOTICE #b :b", "PRIVMSG #b :d"]
        assert [line.split(" ")[0] for line in got[0][1][-3:]] == ["MODE", "404", "404"]
    finally:
        for n in nets:
            n.close()


# -- routes ---------------------------------------------------------------------------------------
def test_a_join_from_another_worker_mid_stream_gets_each_message_once(net: HubNet) -> None:
    """u0's first message was approved with the route (0, 1); u2's JOIN, on worker 2, is
    decided before the hub reads it: decided on its own, it reaches worker 2 too. The next
    one, approved on the new state, goes whole to (0, 1, 2). u2 gets each once."""
    u0, u1 = _room(net, (0, 1))
    u2 = net.user("u2", 2)
    u0.send("PRIVMSG #a :first", pump=False)
    assert net.cores[0].outbox[0][2] == (0, 1)
    u2.send("JOIN #a", pump=False)
    net.pump(order=[2, 0, 1, 3])
    assert not net.routed and net.decided_each == 1
    u0.send("PRIVMSG #a :second", pump=False)
    assert net.cores[0].outbox[0][2] == (0, 1, 2)
    net.pump()
    assert len(net.routed) == 1
    assert _privmsgs(u2) == ["first", "second"]
    assert _privmsgs(u1) == ["first", "second"]


def test_a_join_decided_after_the_segment_misses_it(net: HubNet) -> None:
    """The other order: the segment goes whole to (0, 1), and u2 joins after it."""
    u0, u1 = _room(net, (0, 1))
    u2 = net.user("u2", 2)
    u0.send("PRIVMSG #a :before", pump=False)
    u2.send("JOIN #a", pump=False)
    net.pump(order=[0, 1, 2, 3])
    assert len(net.routed) == 1
    assert _privmsgs(u2) == [] and _privmsgs(u1) == ["before"]


# -- a worker's delivery ---------------------------------------------------------------------------
def test_a_segment_is_delivered_as_the_d_chans_it_stands_for() -> None:
    """The same lines, tags (server-time, msgid) and order for a client with tags as the
    D_CHAN records it stands for, and the sender's echo in its place."""
    got = []
    for whole in (True, False):
        n = FakeNet(2)
        u0 = n.negotiated(0, "u0", "echo-message", "server-time", "message-tags")
        u1 = n.negotiated(1, "u1", "server-time", "message-tags")
        for c in (u0, u1):
            c.send("JOIN #a")
        for c in (u0, u1):
            c.lines()
        uid = u0.client.uid
        items = [b"#a", uid, b":u0!u0@h PRIVMSG #a :x\r\n", 7, False, b"",
                 b"#a", uid, b":u0!u0@h PRIVMSG #a :y\r\n:u0!u0@h PRIVMSG #a :z\r\n", 8, False,
                 b""]  # fmt: skip
        now = 1_800_000_000_123
        if whole:
            records = [(D_CHANSEG, marshal.dumps(items), now)]
        else:
            records = [
                (D_CHAN, *items[i : i + 4], b"", 0, now) for i in range(0, len(items), SEG_FIELDS)
            ]
        for w in (0, 1):
            n.cores[w].apply_batch(records, n.now)
        got.append((u0.lines(), u1.lines()))
    assert got[0] == got[1]
    assert len(got[0][1]) == 3 and "msgid=" in got[0][1][0] and "time=" in got[0][1][0]
    assert len(got[0][0]) == 3  # the echoes


def test_the_epoch_is_the_last_b_seen_applied() -> None:
    n = FakeNet(2)
    core = n.cores[1]
    core.apply_batch([(B_SEEN, (), None, 12345)], n.now)
    assert core.segments.epoch == 12345


# -- a new hub after a crash ------------------------------------------------------------------------
def test_a_new_hub_decides_resent_segments_once_for_everybody() -> None:
    """As tests/hardening/test_hub_replay.py, with the resent requests segments of two
    messages each (the old hub's epoch, or by chance the new one's: a replay decides each
    message anyway): worker 1 had received the first two segments' effects, worker 0 the
    first, worker 2 none."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hub = Hub(Config(workers=3), listener, None)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        segments = []
        for n, epoch in ((1, 5), (3, hub.sequencer.epoch), (5, 7)):
            items = [b"#x", UIDS[0], _line(n), n, False, b"", b"#x", UIDS[0], _line(n + 1),
                     n + 1, False, b""]  # fmt: skip
            last = {b"#x": SEG_FIELDS}
            segments.append([(R_CHANSEG, epoch, (0, 1, 2), marshal.dumps(items), last)])
        sync = [(R_SYNC, UIDS[0])]
        hellos = {
            0: _hello(0, {0: BASE[0] + 1}, ((0, BASE[0] + 1),)),
            1: _hello(1, {0: BASE[0] + 2}, ((0, BASE[0] + 1), (0, BASE[0] + 2))),
            2: _hello(2, {}, ()),
        }
        for w in (2, 0, 1):
            worker_end, hub_end = pairs[w]
            frames = [encode([hellos[w]])]
            if w == 0:
                frames += [encode(s) for s in segments] + [encode(sync)]
            worker_end.sendall(b"".join(frames))
            link = Link(hub_end)
            hub._from_pending(link, {hub_end: link})
        assert not hub.gathering
        delivered = {
            w: [r[3] for r in hub.out[w] if r[0] == D_CHAN and r[2] == UIDS[0]] for w in range(3)
        }
        assert delivered == {
            0: [_line(n) for n in (3, 4, 5, 6)],
            1: [_line(n) for n in (5, 6)],
            2: [_line(n) for n in range(1, 7)],
        }
        assert not any(r[0] == D_CHANSEG for w in range(3) for r in hub.out[w])
        assert [r[:2] for r in hub.out[0] if r[0] == D_DONE] == [(D_DONE, UIDS[0])]
        assert hub.processed[0] == BASE[0] + 4
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        listener.close()


# -- history ---------------------------------------------------------------------------------------
def _segment(now: int) -> Record:
    items = [b"#a", 11, b"l1\r\n", 0, False, b"acct", b"#b", 12, b"l2\r\nl3\r\n", 4, True, b"",
             b"#a", 12, b"l4\r\n", 6, False, b""]  # fmt: skip
    return (D_CHANSEG, marshal.dumps(items), now)


#: _segment's RChanSeg.last: where each channel's last message starts
LAST = {b"#a": 2 * SEG_FIELDS, b"#b": SEG_FIELDS}


def test_the_store_keeps_a_segment_as_the_runs_of_its_messages() -> None:
    """The writer's rows for a segment are those of its messages' "message_run" ops, and
    each channel's last kept message is found when asked (a JOIN), in order with the
    messages decided alone around it."""
    seg = _segment(1000)
    runs = [
        ("message_run", b"#a", 1000, 11, 0, b"acct", b"", b"l1\r\n"),
        ("message_run", b"#b", 1000, 12, 4, b"", b"", b"l2\r\nl3\r\n"),
        ("message_run", b"#a", 1000, 12, 6, b"", b"", b"l4\r\n"),
    ]
    assert segment_rows(("message_segment", 1000, seg[1])) == [run_row(op) for op in runs]
    storage = Storage(None)
    before = (D_CHAN, b"#a", 9, b"old\r\n", 3, b"", 0, 900)
    after = (D_CHAN, b"#b", 9, b"new\r\n", 4, b"", 0, 1100)
    storage.record(before)
    storage.segment(seg, LAST)
    assert storage.kept[b"#a"] == (D_CHAN, b"#a", 12, b"l4\r\n", 6, b"", 0, 1000)
    storage.segment(_segment(1050), LAST)
    storage.record(after)  # decided alone after the segment: it is the last of #b
    assert dict(storage.kept) == {
        b"#a": (D_CHAN, b"#a", 12, b"l4\r\n", 6, b"", 0, 1050),
        b"#b": after,
    }
    off = Storage(None, history=False)
    off.segment(seg, LAST)
    assert len(off.kept) == 0


def test_kept_is_a_mapping_that_makes_a_segments_record_when_read() -> None:
    kept = Kept()
    kept.later(_segment(5), LAST)
    assert len(kept) == 2 and sorted(kept) == [b"#a", b"#b"]
    assert kept.get(b"#c") is None
    assert kept[b"#b"] == (D_CHAN, b"#b", 12, b"l2\r\nl3\r\n", 4, b"", 0, 5)
    # from a worker that keeps no history (no ``last``), the store finds it itself
    storage = Storage(None)
    storage.segment(_segment(5), {})
    assert dict(storage.kept) == dict(kept)


def test_a_worker_notes_where_each_channels_last_message_starts(net: HubNet) -> None:
    """RChanSeg.last, made as the shell takes the turn's requests."""
    u0, u1 = _room(net, (0, 1))
    u0.send("JOIN #b")
    u1.send("JOIN #b")
    u0.send("PRIVMSG #a :1", "PRIVMSG #b :2", "PRIVMSG #a :3", pump=False)
    ((seg,),) = net.cores[0].take_requests()
    assert seg[4] == {b"#a": 2 * SEG_FIELDS, b"#b": SEG_FIELDS}


def test_hub_epochs_differ_between_incarnations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hub starts its epoch from a random 62-bit number above 2**62: never a worker's 0
    (before any B_SEEN), and a new hub's is not an old one's (odds of 2**-62 a pair), even
    with a clock that stands still or goes back."""
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        epochs = {Hub(Config(workers=2), listener, None).sequencer.epoch for _ in range(8)}
    finally:
        listener.close()
    assert len(epochs) == 8
    assert all(epoch >= 1 << 62 for epoch in epochs)


def test_a_new_epoch_mid_turn_starts_a_segment_and_both_are_sealed(net: HubNet) -> None:
    """A B_SEEN with a new epoch applied between two approvals (a hub frame read mid-turn):
    the second message starts a segment of its own, stamped with the new epoch; and a
    segment closed by such a B_SEEN with nothing after it still leaves marshalled."""
    u0, u1 = _room(net, (0, 1))
    core = net.cores[0]
    epoch = core.segments.epoch
    u0.send("PRIVMSG #a :before", pump=False)
    core.apply_batch([(B_SEEN, (), None, epoch + 1)], net.now)
    u0.send("PRIVMSG #a :after", pump=False)
    (batch,) = core.take_requests()
    assert [(r[0], r[1]) for r in batch] == [(R_CHANSEG, epoch), (R_CHANSEG, epoch + 1)]
    assert all(isinstance(r[3], bytes) and r[4] == {b"#a": 0} for r in batch)
    u0.send("PRIVMSG #a :alone", pump=False)
    core.apply_batch([(B_SEEN, (), None, epoch + 2)], net.now)
    (alone,) = core.take_requests()
    assert [(r[0], r[1], isinstance(r[3], bytes)) for r in alone] == [(R_CHANSEG, epoch + 1, True)]
    net.hub._batches(0, [batch, alone])
    net.pump()
    assert len(net.routed) == 1 and net.decided_each == 2  # (epoch + 1 and + 2: no hub's)
    assert _privmsgs(u1) == ["before", "after", "alone"]
