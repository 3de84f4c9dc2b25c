"""Channel-affine placement without sockets (issue 14 part 3): the session that travels with a
client (engine/placement.py), the E_MOVE in the state, and the sequencer's rules for R_MOVE.
"""

from __future__ import annotations

import pytest

from fastchat.irc.linebuffer import LineBuffer
from fastchat.server.connection import Client, _Rare
from fastchat.server.engine.core import WorkerCore
from fastchat.server.engine.placement import (
    HANDOFF_GRACE,
    HANDOFF_TIMEOUT,
    REBUILT_FIELDS,
    SESSION_FIELDS,
    adopt_session,
    export_session,
    gone_session,
    session_uid,
)
from fastchat.server.network.records import (
    B_SNAPSHOT,
    E_MOVE,
    R_MOVE,
    R_PROTECT,
    R_QUIT,
    BDown,
    EJoin,
    EMove,
    EQuit,
    Record,
    RMove,
    RPart,
    RQuit,
    RRegister,
    make,
)
from fastchat.server.network.sequencer import PLACEMENT_SLACK
from fastchat.server.network.state import State
from fastchat.server.registration import Phase
from tests.unit.fakenet import FakeClient, FakeNet
from tests.unit.test_sequencer import ALICE, BOB, CAROL, DAVE, NOW, WORKER, Net, dones, events


def test_every_client_field_travels_or_is_rebuilt() -> None:
    """A field added to Client must be given a place in the session (or a reason why not)."""
    assert set(SESSION_FIELDS).isdisjoint(REBUILT_FIELDS)
    # a Client's fields: its slots, and its rare fields (kept apart until one is set) in place
    # of the slot that holds them
    rare = {name for name, value in vars(Client).items() if isinstance(value, _Rare)}
    assert rare
    fields = set(Client.__slots__) - {"_rare"} | rare
    assert set(SESSION_FIELDS) | set(REBUILT_FIELDS) == fields


def test_a_session_round_trips() -> None:
    client = Client(0x500000007, b"10.0.0.1", 123.5)
    client.nick, client.username, client.caps, client.msgs = b"moe", b"~moe", 0b1011, 42
    client.phase = Phase.REGISTERED
    client.inq = [b"PRIVMSG #x :held", b"PING t"]
    client.inq_bytes = 25
    client.flood_clock = 130.25
    client.linebuf = LineBuffer(600)
    client.linebuf.feed(b"PRIVMSG #x :unfini")
    client.pending = [b"line 2\r\n", b"line 3\r\n"]
    client.outbuf = bytearray(b"ne 1\r\n")  # what the kernel refused, the oldest
    session = export_session(client, [(b"alice", b"Alice")], 99.0, (140.0, b"alice"))
    assert session_uid(session) == client.uid
    adopted = adopt_session(session, 600)
    assert adopted is not None
    new, owed, monitored, moved_at, deadline = adopted
    assert owed == b"ne 1\r\nline 2\r\nline 3\r\n"  # the output owed, in order
    assert monitored == [(b"alice", b"Alice")] and moved_at == 99.0
    assert deadline == (140.0, b"alice")
    assert all(getattr(new, f) == getattr(client, f) for f in SESSION_FIELDS)
    assert new.phase is Phase.REGISTERED and new.uid == client.uid
    assert new.linebuf is not None
    assert new.linebuf.feed(b"shed\r\n") == [b"PRIVMSG #x :unfinished"]
    assert adopt_session(gone_session(7), 600) is None and session_uid(gone_session(7)) == 7


@pytest.mark.parametrize("junk", [b"", b"\x00\x01", b"not marshal"])
def test_junk_is_no_session(junk: bytes) -> None:
    with pytest.raises(ValueError):
        session_uid(junk)


def test_e_move_reroutes_the_users_channels() -> None:
    state = State()
    net = Net()
    for uid in (ALICE, BOB, CAROL):
        net.register(uid)
        net.join(uid, b"#room")
    state.load_snapshot(net.state.snapshot())
    chan = state.channels[b"#room"]
    assert chan.workers == {0: 1, 1: 1, 2: 1}
    move = make(EMove, BOB, 1, 2, NOW)
    assert state.apply(move)
    assert chan.workers == {0: 1, 2: 2} and state.users[BOB].worker == 2
    assert not state.apply(move), "applied twice (a replay after a hub restart): no change"
    state.apply(make(EJoin, BOB, b"#other", 0, NOW, (), NOW))
    assert state.channels[b"#other"].workers == {2: 1}


def net_with_workers(*workers: int) -> Net:
    """#room: alice on worker 0, bob on 1, carol and dave on 2 (see test_sequencer)."""
    net = Net()
    net.sequencer.workers = lambda: workers
    for uid in (ALICE, BOB, CAROL, DAVE):
        net.register(uid)
        net.join(uid, b"#room")
    return net


def test_the_sequencer_moves_a_user_where_its_channel_is() -> None:
    net = net_with_workers(0, 1, 2)
    out = net.handle(make(RMove, BOB, 0), origin=1)  # (its replica's pick is only a hint)
    assert events(out) == [make(EMove, BOB, 1, 2, NOW)], "to where most of #room is"
    assert dones(out) == [(1, BOB)], "the D_DONE follows the E_MOVE, to the old worker"
    assert net.state.users[BOB].worker == 2
    assert net.chan(b"#room").workers == {0: 1, 2: 3}


@pytest.mark.parametrize(
    ("why", "uid", "origin", "workers"),
    [
        ("one worker: the sequencer knows no workers", BOB, 1, ()),
        ("not on the worker that asks", BOB, 0, (0, 1, 2)),
        ("nothing to gain: carol is where most of #room is", CAROL, 2, (0, 1, 2)),
        ("the workers that hold #room's others are not up", BOB, 1, (1, 3)),
    ],
)
def test_the_sequencer_refuses(why: str, uid: int, origin: int, workers: tuple[int, ...]) -> None:
    net = net_with_workers(*workers)
    out = net.handle(make(RMove, uid, 0), origin=origin)
    assert not [e for e in events(out) if e[0] == E_MOVE], why
    assert dones(out) == [(origin, uid)], "a refusal is the D_DONE alone"
    assert net.state.users[uid].worker == WORKER[uid]


def test_the_users_per_worker_follow_them_as_they_come_move_and_go() -> None:
    """What the sequencer weighs a move by is exact at every step (no count once a second
    that registrations since it can outrun), in the hub and in a snapshot's replica."""
    net = net_with_workers(0, 1, 2)
    assert net.state.load == {0: 1, 1: 1, 2: 2}
    net.handle(make(RMove, BOB, 2), origin=1)
    assert net.state.load == {0: 1, 2: 3}
    net.handle(make(RQuit, ALICE, b"bye"), origin=0)
    assert net.state.load == {2: 3}
    replica = State()
    replica.load_snapshot(net.state.snapshot())
    assert replica.load == {2: 3}


def test_a_worker_that_is_not_up_is_passed_over_for_the_next_best() -> None:
    net = net_with_workers(0, 1)  # (carol and dave's worker 2 is not up)
    assert events(net.handle(make(RMove, BOB, 2), origin=1)) == [make(EMove, BOB, 1, 0, NOW)]


def test_no_second_move_within_the_interval() -> None:
    net = net_with_workers(0, 1, 2)
    assert events(net.handle(make(RMove, BOB, 2), origin=1))
    for uid in (CAROL, DAVE):
        net.handle(make(RPart, uid, b"#room", b""))
    # #room is alice (worker 0) and bob (now on 2): bob would go to 0, but not at once
    assert not events(net.handle(make(RMove, BOB, 0), origin=2, now=NOW + 1000))
    interval = int(net.config.placement_interval * 1000)
    later = NOW + interval
    assert events(net.handle(make(RMove, BOB, 0), origin=2, now=later)) == [
        make(EMove, BOB, 2, 0, later)
    ]


def _crowd(net: Net, worker: int) -> None:
    """Users on ``worker`` past the average plus the slack: it takes nobody more."""
    for i in range(2 * PLACEMENT_SLACK):
        uid = 100 + i
        net.handle(make(RRegister, uid, b"u%d" % uid, b"~u", b"host", b"U"), origin=worker)


def test_a_full_worker_is_passed_over_for_the_next_best() -> None:
    net = net_with_workers(0, 1, 2)
    _crowd(net, 2)
    # #room: carol and dave on the full worker 2, alice on 0: bob (on 1) goes to alice
    assert events(net.handle(make(RMove, BOB, 2), origin=1)) == [make(EMove, BOB, 1, 0, NOW)]
    assert net.chan(b"#room").workers == {0: 2, 2: 2}


def test_no_move_when_only_a_full_worker_scores_higher() -> None:
    net = net_with_workers(1, 2)  # (alice's worker 0 is not up)
    _crowd(net, 2)
    assert not events(net.handle(make(RMove, BOB, 2), origin=1))
    assert net.state.users[BOB].worker == 1


def _ann_registered_and_gone_room_on_worker_1(net: FakeNet) -> None:
    """The account "ann" registered by a client that left, and #room with two members on
    worker 1: a client that then takes the nick on worker 0 and joins #room is renamed
    after the grace period and wants to move to worker 1."""
    owner = net.user("ann", 0)
    owner.send("PRIVMSG NickServ :REGISTER hunter2! ann@example.org")
    owner.send("QUIT")
    owner.core.connection_lost(owner.client, b"Client quit", net.now)
    for nick in ("a1", "a2"):
        net.user(nick, 1).send("JOIN #room")


def test_nick_protection_due_while_a_client_moves_waits_for_the_move() -> None:
    """A client's nick protection comes due between its R_MOVE and the E_MOVE: the worker's
    rename (R_PROTECT, the only request a worker makes for a client on its own) must not go
    under the moving client's barrier on the old worker, as work in flight that the new
    worker knows nothing of. The deadline travels with the session; the new worker renames
    the client, once; the client is served there."""
    net = FakeNet(workers=2, autojoin=(), nick_protection="rename", placement="affine")
    net.sequencer.workers = lambda: (0, 1)
    _ann_registered_and_gone_room_on_worker_1(net)
    c = net.user("ann", 0)  # not logged in: renamed after the grace period
    uid = c.client.uid
    c.send("JOIN #room")
    src, dst = net.cores
    assert uid in src.placement.wanted, "it should live where #room is"
    net.now += net.config.nick_protection_grace + 1
    src.placement.propose(lambda client: True)  # R_MOVE: under its barrier from now on
    src.tick(net.now)  # the deadline passed: but the client is moving
    asked = [r[0] for r in src.outbox]
    assert R_MOVE in asked and R_PROTECT not in asked, "nothing else under its barrier"
    assert src.clients[uid].waiting == 1
    net.pump()  # the E_MOVE: the old worker lets it go, the new one waits for it
    (moved,) = src.placement.take_outgoing()
    assert moved[0] == 1 and moved[2] is not None
    assert dst.placement.arrived(moved[1], object())
    assert uid in dst.nick_deadlines, "the deadline travels with the session"
    c.core, c.worker, c.client = dst, 1, dst.clients[uid]
    net.now += 1
    dst.tick(net.now)
    net.pump()
    guest = f"Guest{uid % 100000:05d}"
    renames = [line for line in c.lines() if " NICK " in line]
    assert renames == [f":ann!~ann@10.0.0.1 NICK :{guest}"]
    for core in net.cores:
        assert core.state.users[uid].nick == guest.encode() and core.state.users[uid].worker == 1
    c.send("PING :still")
    assert c.lines() == [":fastchat.local PONG fastchat.local :still"]
    assert dst.clients[uid].waiting == 0


def test_a_refused_move_lets_nick_protection_go_on() -> None:
    """The R_MOVE is refused (the D_DONE alone): the client is no longer moving, and its
    overdue rename happens at the next tick, on its worker."""
    net = FakeNet(workers=2, autojoin=(), nick_protection="rename", placement="affine")
    _ann_registered_and_gone_room_on_worker_1(net)
    c = net.user("ann", 0)
    uid = c.client.uid
    c.send("JOIN #room")
    src = net.cores[0]
    net.now += net.config.nick_protection_grace + 1
    src.placement.propose(lambda client: True)  # the sequencer knows no workers: refused
    src.tick(net.now)
    net.pump()
    assert src.state.users[uid].worker == 0 and not src.placement.moving
    assert src.state.users[uid].nick == b"ann"
    net.now += 1
    src.tick(net.now)
    net.pump()
    assert src.state.users[uid].nick == f"Guest{uid % 100000:05d}".encode()


def _moving_to_worker_1(net: FakeNet) -> tuple[FakeClient, bytes]:
    """moe (worker 0) joins #room, whose members are on worker 1, and moves there: the
    E_MOVE is applied on both workers, and worker 1 waits for the session (returned)."""
    net.sequencer.workers = lambda: (0, 1)
    for nick in ("a1", "a2"):
        net.user(nick, 1).send("JOIN #room")
    c = net.user("moe", 0)
    c.send("JOIN #room")
    src, dst = net.cores
    src.placement.propose(lambda client: True)
    net.pump()
    (moved,) = src.placement.take_outgoing()
    assert dst.placement.arriving is not None and dst.placement.stalled is not None
    return c, moved[1]


def _quits(core: WorkerCore) -> list[Record]:
    return [r for r in core.outbox if r[0] == R_QUIT]


def test_a_slow_old_worker_is_waited_for() -> None:
    """Worker 0 is far behind the bus (loaded): the session comes long after the E_MOVE.
    Worker 1 waits, stalled, and neither quits the user nor drops the session when it comes
    (a 2 s deadline here once closed healthy connections under load)."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    c, session = _moving_to_worker_1(net)
    dst = net.cores[1]
    for _ in range(10):  # ten of its ticks, a second apart
        net.now += 1.0
        assert dst.placement.expire(net.now) == []
    assert not _quits(dst) and dst.placement.arriving is not None
    assert dst.placement.arrived(session, object())
    assert c.client.uid in dst.clients and dst.placement.stalled is None


def test_the_wait_ends_soon_after_the_old_worker_is_down() -> None:
    """B_DOWN of the worker the session comes from, seen among the records stalled behind
    the E_MOVE (as it comes, not once applied, which would be never): the wait ends after
    HANDOFF_GRACE (what the old worker sent before dying is read meanwhile), the user quits
    once. B_DOWN of another worker changes nothing."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    c, session = _moving_to_worker_1(net)
    dst = net.cores[1]
    dst.apply_batch([make(BDown, 7)], net.now)
    net.now += 1.0
    assert dst.placement.expire(net.now) == [] and not _quits(dst)
    dst.apply_batch([make(BDown, 0)], net.now)
    net.now += HANDOFF_GRACE / 2
    dst.placement.expire(net.now)
    assert not _quits(dst), "gave up before what the old worker sent could be read"
    net.now += HANDOFF_GRACE
    dst.placement.expire(net.now)
    assert [r[1] for r in _quits(dst)] == [c.client.uid]
    assert dst.placement.arriving is None and dst.placement.stalled is None
    assert not dst.placement.arrived(session, object()), "late: given up on, so closed"


def test_a_session_may_come_before_its_user_is_known() -> None:
    """Worker 1 is so far behind the bus that a client registers on worker 0, joins a room
    whose members are on worker 1 and moves there before worker 1 has applied its E_INTRO.
    Its session is not a stranger's (it was closed as one: the loss of ready clients seen
    once in the bench's rooms setup at four workers); it waits, and the client is served
    once worker 1 catches up. If its user quits meanwhile, the session is closed."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    net.sequencer.workers = lambda: (0, 1)
    src, dst = net.cores
    for nick in ("a1", "a2"):
        net.user(nick, 1).send("JOIN #room")
    c = net.connect(0)
    c.send("NICK moe", "USER moe 0 * :moe", "JOIN #room", pump=False)
    held = net.pump(lagging=1)
    uid = c.client.uid
    assert uid in src.state.users and uid not in dst.state.users
    src.placement.propose(lambda client: True)
    held += net.pump(lagging=1)
    (moved,) = src.placement.take_outgoing()
    assert dst.placement.arrived(moved[1], object()), "closed as a stranger's"
    for _ in range(3):
        net.now += 1.0
        assert dst.placement.expire(net.now) == []
    dst.apply_batch(held, net.now)  # worker 1 catches up: E_INTRO, E_JOIN, E_MOVE
    assert uid in dst.clients and not dst.placement.early
    assert not _quits(dst)
    # ...and an early session whose user quits before its E_MOVE comes is closed at once
    d = net.connect(0)
    d.send("NICK dee", "USER dee 0 * :dee", "JOIN #room", pump=False)
    held = net.pump(lagging=1)
    src.placement.propose(lambda client: True)
    held += net.pump(lagging=1)
    (moved,) = src.placement.take_outgoing()
    assert dst.placement.arrived(moved[1], transport := object())
    dst.apply_batch([r for r in held if r[0] != E_MOVE], net.now)
    dst.apply_batch([make(EQuit, d.client.uid, b"gone", 0)], net.now)  # (a new hub's sweep)
    net.now += 1.0
    assert dst.placement.expire(net.now) == [transport]


def test_an_early_gone_notice_leaves_no_socket_to_close() -> None:
    """A "gone" notice (the client hung up before its old worker could send it) that comes
    early, for a move that never comes here: dropped at the deadline, with no socket to
    close (None would have broken the shell's close)."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    dst = net.cores[1]
    dst.apply_batch([], net.now)
    assert dst.placement.arrived(gone_session(12345), None)
    net.now += HANDOFF_TIMEOUT + 1
    assert dst.placement.expire(net.now) == [] and not dst.placement.early


def _early_at_worker_1(net: FakeNet) -> tuple[FakeClient, bytes, list[Record]]:
    """moe (worker 0) joins #room, whose members are on worker 1; the move is decided and
    worker 0 applies it, but worker 1 gets nothing of it yet: moe's session (returned) is
    early there. Returns moe, the session and what the hub sent worker 1 meanwhile."""
    src = net.cores[0]
    net.sequencer.workers = lambda: (0, 1)
    for nick in ("a1", "a2"):
        net.user(nick, 1).send("JOIN #room")
    c = net.user("moe", 0)
    c.send("JOIN #room")
    src.placement.propose(lambda client: True)
    for request in src.outbox:
        net.sequencer.handle(0, request, int(net.now * 1000))
    src.outbox = []
    to_src, net.queues[0] = net.queues[0], []
    to_dst, net.queues[1] = net.queues[1], []
    assert any(r[0] == E_MOVE for r in to_dst)
    src.apply_batch(to_src, net.now)
    (moved,) = src.placement.take_outgoing()
    return c, moved[1], to_dst


def test_an_early_session_waits_for_its_move_however_late() -> None:
    """A session that came before this worker applied its E_MOVE, the hub up: the E_MOVE
    follows, however far behind the bus this worker is. The session waits for it (not
    closed after a deadline a loaded worker can reach), and its client is served here."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    dst = net.cores[1]
    c, session, to_dst = _early_at_worker_1(net)
    uid = c.client.uid
    assert dst.placement.arrived(session, object())
    assert uid in dst.placement.early
    for _ in range(10):
        net.now += 1.0
        assert dst.placement.expire(net.now) == []
    dst.apply_batch(to_dst, net.now)  # worker 1 catches up with the bus: the E_MOVE
    assert uid in dst.clients and uid not in dst.placement.early
    assert dst.placement.stalled is None and not _quits(dst)


def test_the_wait_for_a_moving_client_stops_while_the_hub_is_away() -> None:
    """The hub dies while worker 1 waits for a client's session, and its replacement takes
    longer than HANDOFF_TIMEOUT to come up (the session may come only once the new hub has
    decided the move again). Worker 1 must not give up on the client meanwhile; its wait
    starts again, whole, when the new hub's snapshot comes (waiting behind the E_MOVE)."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    c, session = _moving_to_worker_1(net)
    dst = net.cores[1]
    dst.placement.hub_lost()
    net.now += 3 * HANDOFF_TIMEOUT
    assert dst.placement.expire(net.now) == [] and not _quits(dst)
    assert dst.placement.arriving is not None, "gave up while the hub was away"
    dst.apply_batch([(B_SNAPSHOT, dst.state.snapshot(), {})], net.now)  # the new hub is up
    net.now += HANDOFF_TIMEOUT * 0.75
    dst.placement.expire(net.now)
    assert not _quits(dst) and dst.placement.arriving is not None
    assert dst.placement.arrived(session, object())
    assert c.client.uid in dst.clients and dst.placement.stalled is None


def test_the_wait_for_a_moving_client_runs_out_once_the_hub_is_back() -> None:
    """...and once the new hub is up, a session that does not come in time is given up on,
    as before (the client quits, once)."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    c, _ = _moving_to_worker_1(net)
    dst = net.cores[1]
    dst.placement.hub_lost()
    net.now += 3 * HANDOFF_TIMEOUT
    dst.apply_batch([(B_SNAPSHOT, dst.state.snapshot(), {})], net.now)
    net.now += HANDOFF_TIMEOUT
    dst.placement.expire(net.now)
    assert [r[1] for r in _quits(dst)] == [c.client.uid]
    assert dst.placement.arriving is None and dst.placement.stalled is None


def test_an_early_session_waits_for_its_move_while_the_hub_is_away() -> None:
    """A session that came before its E_MOVE (the old hub died before sending it to this
    worker) is kept while the hub is away, and for HANDOFF_TIMEOUT after the new hub's
    snapshot, not closed after HANDOFF_TIMEOUT from its arrival."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    dst = net.cores[1]
    c, session, _ = _early_at_worker_1(net)  # (the E_MOVE never reaches worker 1: the hub died)
    uid = c.client.uid
    assert dst.placement.arrived(session, transport := object())
    assert uid in dst.placement.early
    dst.placement.hub_lost()
    net.now += 3 * HANDOFF_TIMEOUT
    assert dst.placement.expire(net.now) == [] and uid in dst.placement.early
    dst.apply_batch([(B_SNAPSHOT, dst.state.snapshot(), {})], net.now)  # still on worker 0
    assert uid in dst.placement.early, "adopted though the new hub has it on worker 0"
    net.now += HANDOFF_TIMEOUT * 0.75
    assert dst.placement.expire(net.now) == [] and uid in dst.placement.early
    net.now += HANDOFF_TIMEOUT
    assert dst.placement.expire(net.now) == [transport]


def test_a_move_decided_again_sends_nothing_from_the_old_worker() -> None:
    """A new hub decides again a move whose socket worker 0 sent already (its snapshot put
    the user back on worker 0 first): worker 0 lets the E_MOVE through its replica and sends
    nothing more, neither a second session nor a "gone" notice that worker 1 would take
    for the client having left."""
    net = FakeNet(workers=2, autojoin=(), placement="affine")
    c, _ = _moving_to_worker_1(net)
    src = net.cores[0]
    uid = c.client.uid
    assert uid in dict(src.placement.handed())
    src.state.apply(make(EMove, uid, 1, 0, 0))  # (the new hub's snapshot: back on worker 0)
    src.apply_batch([make(EMove, uid, 0, 1, NOW)], net.now)
    assert src.state.users[uid].worker == 1
    assert src.placement.take_outgoing() == []
