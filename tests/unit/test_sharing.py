"""What replicas and local clients share to stay small (issue 14's idle memory), and that
sharing never lets a change to one user, channel or client show in another.

Every worker and the hub hold every user, and each record arrives with objects of its own
(``marshal`` makes a new int for every uid and new bytes for every nick): the state keys its
memberships by the user's own uid, a user in one channel shares that channel's 1-tuple, a
username that follows from the nick is not kept twice, and empty per-channel and per-client
containers are shared until first written. Records here go through ``marshal`` as they do on
the bus, so equal values arrive as distinct objects.
"""

from __future__ import annotations

import logging
import marshal

import pytest

from fastchat.server.config import Config
from fastchat.server.connection import NO_INPUT, NO_OUTPUT, Client
from fastchat.server.engine.core import WorkerCore
from fastchat.server.engine.placement import adopt_session, export_session, share_with_user
from fastchat.server.network.records import (
    HIDDEN,
    VOICE,
    EChghost,
    EIntro,
    EJoin,
    EMode,
    EMove,
    ENick,
    EPart,
    EQuit,
    Record,
    make,
)
from fastchat.server.network.state import (
    NO_LOCAL,
    NO_VISIBLE,
    USERNAME_IS_NICK,
    USERNAME_IS_TILDE_NICK,
    State,
)
from fastchat.server.registration import Phase
from tests.unit.fakenet import FakeClient, FakeNet

T0 = 1_700_000_000_123
BIG = 1 << 40  # uids above the small-int cache, as real ones are (incarnation bits)
_LOG = logging.getLogger("test")


def wire(rec: Record) -> Record:
    """``rec`` as a replica receives it: through marshal, with objects of its own."""
    out: Record = marshal.loads(marshal.dumps(rec))
    return out


def intro(uid: int, nick: bytes, username: bytes | None = None, worker: int = 0) -> Record:
    user = b"~" + nick if username is None else username
    return wire(make(EIntro, uid, nick, user, b"127.0.0.1", b"Real", worker, b"", T0))


def join(uid: int, channel: bytes, flags: int = 0) -> Record:
    return wire(make(EJoin, uid, channel, flags, T0 // 1000, (), T0))


def part(uid: int, channel: bytes) -> Record:
    return wire(make(EPart, uid, channel, b"", T0))


def network(*events: Record, routes: bool = True) -> State:
    state = State(routes=routes)
    for ev in events:
        assert state.apply(ev)
    return state


def test_memberships_key_by_the_users_own_uid() -> None:
    """The uid a JOIN brought is not kept: members, hidden and the local fan-out list hold
    the user's int (one per user, not one more per membership)."""
    uid = BIG + 1
    state = network(intro(uid, b"ann"), join(uid, b"#a"), join(uid, b"#b", HIDDEN))
    user = state.users[uid]
    assert next(iter(state.users)) is user.uid
    for name in (b"#a", b"#b"):
        (key,) = state.channels[name].members
        assert key is user.uid
    (hidden,) = state.channels[b"#b"].hidden
    assert hidden is user.uid


def test_a_user_in_one_channel_shares_its_tuple_and_no_other_user_sees_a_change() -> None:
    """Users in one channel alone share ``Channel.alone``; a second JOIN gives that user a
    tuple of its own (the others keep theirs), a PART back to one the shared one again, and
    the channel drops its tuple when it goes."""
    a, b = BIG + 1, BIG + 2
    state = network(intro(a, b"ann"), intro(b, b"bob"), join(a, b"#room"), join(b, b"#room"))
    room = state.channels[b"#room"]
    ann, bob = state.users[a], state.users[b]
    assert ann.channels is bob.channels is room.alone == (room,)
    assert state.apply(join(a, b"#other"))
    other = state.channels[b"#other"]
    assert ann.channels == (room, other)
    assert bob.channels is room.alone == (room,)  # untouched
    assert state.apply(part(a, b"#room"))
    assert ann.channels is other.alone == (other,)
    assert bob.channels is room.alone == (room,)
    assert state.apply(part(b, b"#room"))
    assert bob.channels == () and room.alone == () and b"#room" not in state.channels


def test_empty_channel_containers_are_shared_and_never_written() -> None:
    """``Channel.local`` is NO_LOCAL until a local member joins and ``visible`` NO_VISIBLE
    while nobody is hidden; both stay empty whatever happens to the channels that used them."""
    a, b, c = BIG + 1, BIG + 2, BIG + 3
    state = network(intro(a, b"ann"), intro(b, b"bob"), intro(c, b"cy"))
    client = object()
    state.local[c] = client
    for ev in (join(a, b"#d"), join(b, b"#d", HIDDEN), join(c, b"#d"), join(a, b"#e")):
        assert state.apply(ev)
    d, e = state.channels[b"#d"], state.channels[b"#e"]
    assert e.local is NO_LOCAL and e.visible is NO_VISIBLE
    assert d.local == {c: client} and d.local is not NO_LOCAL
    assert list(d.visible) == [a, c] and d.visible is not NO_VISIBLE
    mode = wire(make(EMode, a, b"#d", b"+v", (b"bob",), T0))
    assert state.apply(mode)  # +v shows the hidden member: nobody is hidden any more
    assert d.members[b] == VOICE and d.visible is NO_VISIBLE
    assert state.apply(wire(make(EQuit, c, b"", T0)))
    assert NO_LOCAL == {} and NO_VISIBLE == {}


def test_bans_are_a_tuple_changed_by_replacing_it() -> None:
    state = network(intro(BIG, b"ann"), join(BIG, b"#a"), join(BIG, b"#b"))
    a, b = state.channels[b"#a"], state.channels[b"#b"]
    assert state.apply(wire(make(EMode, BIG, b"#a", b"+b", (b"x!*@*",), T0)))
    assert [e.mask for e in a.bans] == [b"x!*@*"] and b.bans == ()
    assert state.apply(wire(make(EMode, BIG, b"#a", b"-b", (b"x!*@*",), T0)))
    assert a.bans == ()


def test_a_username_that_follows_from_the_nick_is_not_kept() -> None:
    """``USER nick`` (``~nick`` unverified) is kept as a marker, read back as the username;
    a rename keeps the username it had; any other username is kept as it came."""
    a, b, c = BIG + 1, BIG + 2, BIG + 3
    state = network(intro(a, b"ann"), intro(b, b"bob", b"bob"), intro(c, b"cy", b"~other"))
    ann, bob, cy = state.users[a], state.users[b], state.users[c]
    assert ann._username is USERNAME_IS_TILDE_NICK and ann.username == b"~ann"
    assert bob._username is USERNAME_IS_NICK and bob.username is bob.nick
    assert cy.username == b"~other" and ann.mask == b"ann!~ann@127.0.0.1"
    assert state.apply(wire(make(ENick, a, b"anna", T0)))
    assert ann.username == b"~ann" and ann.mask == b"anna!~ann@127.0.0.1"
    assert bob.username == b"bob"  # (another user's is not touched)
    chghost = make(EChghost, a, b, b"~bob", b"host.example", T0)
    assert state.apply(wire(chghost))
    assert (bob.username, bob.host) == (b"~bob", b"host.example")
    assert bob._username is USERNAME_IS_TILDE_NICK
    # a snapshot carries the usernames as they read
    copy = State()
    copy.load_snapshot(state.snapshot())
    assert [u.username for u in copy.users.values()] == [b"~ann", b"~bob", b"~other"]


def test_a_replica_with_routes_counts_members_by_worker_as_the_hub_does() -> None:
    """A worker with affine placement keeps ``Channel.workers`` (a segment's route is its to
    say: engine/segments.py), and holds what the hub's state holds, moves included; a
    replica without routes (kernel placement) keeps no counts."""
    a, b, c = BIG + 1, BIG + 2, BIG + 3
    events = [intro(a, b"ann", worker=0), intro(b, b"bob", worker=1), intro(c, b"cy", worker=1)]
    events += [join(a, b"#r"), join(b, b"#r"), join(c, b"#r")]
    events += [wire(make(EMove, b, 1, 0, T0)), part(c, b"#r")]
    hub, worker, bare = network(*events), network(*events), network(*events, routes=False)
    assert worker.channels[b"#r"].workers == hub.channels[b"#r"].workers == {0: 2}
    assert bare.channels[b"#r"].workers == {}


def test_a_clients_input_queue_is_shared_only_while_empty() -> None:
    """``Client.inq`` is NO_INPUT until lines wait (behind the ordering barrier here); the
    client then has a list of its own, and NO_INPUT again once they are processed."""
    core = WorkerCore(Config(workers=2), slot=1, standalone=False, log=_LOG)
    one, two = core.connect(b"127.0.0.1", 1.0), core.connect(b"127.0.0.1", 1.0)
    assert one.inq is NO_INPUT and two.inq is NO_INPUT
    one.waiting = 1  # a request with the sequencer: what one sends now waits behind it
    core.data_received(one, b"PONG a\r\nPONG b\r\n", 1.0)
    assert one.inq == [b"PONG a", b"PONG b"] and one.inq is not NO_INPUT
    assert two.inq is NO_INPUT and NO_INPUT == []
    one.waiting = 0
    core.resume(one)
    assert one.inq is NO_INPUT and NO_INPUT == []


def test_an_adopted_client_shares_its_users_objects() -> None:
    """A client that moved here comes with copies of its fields (the session is marshalled):
    those equal to its user's become the user's, the address the state's shared one."""
    uid = BIG + 7
    state = network(intro(uid, b"moe", b"~moe"))
    user = state.users[uid]
    client = Client(uid, b"127.0.0.1", 10.0)
    client.nick, client.username, client.realname = b"moe", b"~moe", b"Real"
    client.phase = Phase.REGISTERED
    adopted = adopt_session(export_session(client, [], 5.0, None), 600)
    assert adopted is not None
    new = adopted[0]
    assert new.nick is not user.nick and new.uid is not user.uid
    share_with_user(new, user, state.shared)
    assert new.uid is user.uid and new.nick is user.nick and new.realname is user.realname
    assert new.username == user.username == b"~moe"
    assert new.ip is state.shared(b"127.0.0.1") and new.host is user.host
    assert new.inq is NO_INPUT and new.last_active is new.connected_at


# -- a local connection's own parts (issue 14, session 3) -----------------------------------------


def _room(workers: int) -> tuple[FakeNet, FakeClient, FakeClient, FakeClient]:
    """alice (first worker) and bob and dave (last worker) in #r, everything sent read."""
    net = FakeNet(workers)
    alice, bob, dave = net.user("alice"), net.user("bob", net.last), net.user("dave", net.last)
    for c in (alice, bob, dave):
        c.send("JOIN #r")
    for c in (alice, bob, dave):
        c.lines()
    return net, alice, bob, dave


def _tick(net: FakeNet) -> None:
    for core in net.cores:
        core.tick(net.now)


@pytest.mark.parametrize("workers", [1, 4])
def test_an_idle_client_holds_no_line_buffer_output_or_prefix(workers: int) -> None:
    """Registered, joined and sent everything it was owed: its unfinished line, its output
    (once a tick has passed) and its cached prefix are nothing of its own (LineBuffer, list
    and bytes: 168 bytes)."""
    net, alice, bob, dave = _room(workers)
    for c in (alice, bob, dave):
        assert c.client.linebuf is None and c.client.source == b""
        assert c.client.pending == [] and c.client.pending is not NO_OUTPUT  # kept a turn
    _tick(net)
    for c in (alice, bob, dave):
        assert c.client.linebuf is None and c.client.pending is NO_OUTPUT
        assert c.client.source == b""
    assert NO_OUTPUT == []


def test_the_shared_empty_output_refuses_to_be_written() -> None:
    for write in (
        lambda: NO_OUTPUT.append(b"x\r\n"),
        lambda: NO_OUTPUT.extend([b"x\r\n"]),
        lambda: NO_OUTPUT.insert(0, b"x\r\n"),
        lambda: NO_OUTPUT.__setitem__(slice(0, 0), [b"x\r\n"]),
        lambda: NO_OUTPUT.__iadd__([b"x\r\n"]),
    ):
        with pytest.raises(TypeError):
            write()
    assert NO_OUTPUT == []


@pytest.mark.parametrize("workers", [1, 4])
def test_a_client_owed_output_has_a_list_of_its_own_while_it_is_busy(workers: int) -> None:
    """An idle client that is sent a line gets a list of its own (each recipient its own),
    keeps it emptied while lines keep coming, and shares NO_OUTPUT again after a quiet
    tick."""
    net, alice, bob, dave = _room(workers)
    carol = net.user("carol", net.last)  # not in #r: owed nothing
    bob.lines(), dave.lines()  # (carol's arrival)
    _tick(net)
    assert bob.client.pending is NO_OUTPUT and carol.client.pending is NO_OUTPUT
    alice.send("PRIVMSG #r :hello")
    line = b":alice!~alice@10.0.0.1 PRIVMSG #r :hello\r\n"
    assert bob.client.pending == [line] and dave.client.pending == [line]
    assert bob.client.pending is not dave.client.pending  # each recipient's own list
    assert bob.client.pending is not NO_OUTPUT and carol.client.pending is NO_OUTPUT
    assert NO_OUTPUT == []
    assert bob.lines() == [line[:-2].decode()] and dave.lines() == [line[:-2].decode()]
    own = bob.client.pending
    assert own == [] and own is not NO_OUTPUT
    alice.send("PRIVMSG #r :again")
    assert bob.client.pending is own and own == [line.replace(b"hello", b"again")]
    bob.lines(), dave.lines()
    _tick(net)
    assert bob.client.pending is NO_OUTPUT and NO_OUTPUT == []


@pytest.mark.parametrize("workers", [1, 4])
def test_a_partial_line_gets_a_line_buffer_of_its_own_until_it_ends(workers: int) -> None:
    net, alice, bob, dave = _room(workers)
    core = alice.core
    core.data_received(alice.client, b"PRIVMSG #r :from al", net.now)
    bob.core.data_received(bob.client, b"PRIVMSG #r :from b", net.now)
    own = alice.client.linebuf
    assert own is not None and bob.client.linebuf is not None
    assert own is not bob.client.linebuf and own is not core.spare_lines
    assert core.spare_lines.idle and dave.client.linebuf is None
    bob.send(b"ob")
    alice.send(b"ice")
    assert dave.lines() == [
        f":bob!~bob@10.0.0.{net.last + 1} PRIVMSG #r :from bob",
        ":alice!~alice@10.0.0.1 PRIVMSG #r :from alice",
    ]
    assert alice.client.linebuf is None and bob.client.linebuf is None


def test_the_rest_of_an_overlong_line_is_discarded_across_reads() -> None:
    """A client whose line is cut for being too long holds a buffer while it discards the
    rest (no unfinished line to keep, but not idle either), and none once the line ends."""
    net = FakeNet(1)
    alice = net.user("alice")
    alice.core.data_received(alice.client, b"PRIVMSG #r :" + b"x" * 9000, net.now)
    assert alice.lines() == [":fastchat.local 417 alice :Input line was too long"]
    assert alice.client.linebuf is not None and not alice.client.linebuf.pending
    alice.send(b"more of it", "PING :after")
    assert alice.lines() == [":fastchat.local PONG fastchat.local :after"]
    assert alice.client.linebuf is None


@pytest.mark.parametrize("workers", [1, 4])
def test_the_cached_prefix_is_made_when_first_needed_and_after_a_rename(workers: int) -> None:
    _, alice, bob, _ = _room(workers)
    alice.send("PRIVMSG #r :one")
    assert alice.client.source == b":alice!~alice@10.0.0.1 "
    alice.send("NICK ally")
    assert alice.client.source == b""
    alice.send("PRIVMSG #r :two")
    assert bob.lines() == [
        ":alice!~alice@10.0.0.1 PRIVMSG #r :one",
        ":alice!~alice@10.0.0.1 NICK :ally",
        ":ally!~alice@10.0.0.1 PRIVMSG #r :two",
    ]
    assert alice.client.source == b":ally!~alice@10.0.0.1 "


@pytest.mark.parametrize("queued_after", [False, True])
@pytest.mark.parametrize("replay", [[], [b"replay\r\n"], [b"one\r\n", b"two\r\n"]])
def test_an_output_slot_filled_into_the_shared_empty_output(
    queued_after: bool, replay: list[bytes]
) -> None:
    """A place kept in an output that was empty (NO_OUTPUT) and filled later, with lines or
    with none: the lines land in a list of the client's own, before what was queued
    meanwhile, and the shared one stays empty."""
    core = WorkerCore(Config(), log=_LOG)
    client, other = core.connect(b"127.0.0.1", 1.0), core.connect(b"127.0.0.1", 1.0)
    assert client.pending is NO_OUTPUT
    slot = core.reserve_output(client)
    after = [b"after\r\n"] if queued_after else []
    for line in after:
        core.queue(client, line)

    def write() -> None:
        for line in replay:
            core.queue(client, line)

    core.fill_output(client, slot, write)
    assert client.pending == replay + after and NO_OUTPUT == []
    assert (client.pending is NO_OUTPUT) == (not replay and not after)
    assert other.pending is NO_OUTPUT and client.slots is None


def test_a_moved_client_with_no_partial_line_comes_without_a_buffer() -> None:
    client = Client(BIG + 9, b"127.0.0.1", 10.0)
    client.nick, client.phase = b"moe", Phase.REGISTERED
    adopted = adopt_session(export_session(client, [], 5.0, None), 600)
    assert adopted is not None
    new, owed = adopted[0], adopted[1]
    assert new.linebuf is None and new.pending is NO_OUTPUT and owed == b""
