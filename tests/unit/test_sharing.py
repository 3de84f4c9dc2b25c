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

from fastchat.server.config import Config
from fastchat.server.connection import NO_INPUT, Client
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
    assert a.bans == (b"x!*@*",) and b.bans == ()
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
    client = Client(uid, b"127.0.0.1", 10.0, 600)
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
