"""Unit tests for the network state and the one function that changes it
(``fastchat.server.network.state``).

Every worker holds a replica and applies the sequencer's events in the same order, so the
rules here are what keep the replicas equal: names fold under rfc1459 case mapping (RFC 2812
§2.2), joins, parts, kicks and quits keep membership, member counts per worker and empty
channels straight (RFC 2812 §3.2), mode changes are applied exactly as validated (RFC 2812
§3.2.3, Modern IRC "Channel modes"), ``apply`` says False when an event changed nothing (a
replayed event after a hub restart must be harmless), and a snapshot rebuilds the same state.
Events are built with ``make(schema, ...)``, exactly as the sequencer builds them.
"""

from __future__ import annotations

import marshal
from typing import Any

import pytest

from fastchat.irc.casemap import fold
from fastchat.server.network.access import Entry
from fastchat.server.network.records import (
    OP,
    VOICE,
    EAway,
    EChghost,
    ECounts,
    EIntro,
    EInvite,
    EJoin,
    EKick,
    EKill,
    EKline,
    EMode,
    ENick,
    EOper,
    EPart,
    EQuit,
    ETopic,
    EUmode,
    EUnkline,
    Record,
    make,
)
from fastchat.server.network.state import (
    DEFAULT_CHANNEL_MODES,
    SHARED_BYTES,
    Channel,
    KLine,
    State,
    User,
    WhowasEntry,
    apply_mode_changes,
    prefix_of,
)

T0 = 1_700_000_000_123  # ms, as the sequencer stamps events
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 1 << 32  # uids; DAVE's comes from a second incarnation


# -- event builders --------------------------------------------------------------------------------


def intro(uid: int, nick: bytes, worker: int = 0, time: int = T0) -> Record:
    return make(
        EIntro, uid, nick, b"~" + nick.lower(), b"10.0.0.%d" % uid, b"Real", worker, b"", time
    )


def join(uid: int, channel: bytes, flags: int = 0, created: int = T0 // 1000) -> Record:
    return make(EJoin, uid, channel, flags, created, (), T0)


def part(uid: int, channel: bytes, reason: bytes = b"bye") -> Record:
    return make(EPart, uid, fold(channel), reason, T0)


def kick(uid: int, channel: bytes, target: int, reason: bytes = b"out") -> Record:
    return make(EKick, uid, fold(channel), target, reason, T0)


def quit_(uid: int, reason: bytes = b"gone", time: int = T0) -> Record:
    return make(EQuit, uid, reason, time)


def nick(uid: int, new: bytes, time: int = T0) -> Record:
    return make(ENick, uid, new, time)


def topic(channel: bytes, text: bytes, setter: bytes = b"alice!~alice@h", when: int = 5) -> Record:
    return make(ETopic, ALICE, fold(channel), text, setter, when, T0)


def mode(channel: bytes, modes: bytes, *args: bytes) -> Record:
    return make(EMode, ALICE, fold(channel), modes, args, T0)


def away(uid: int, message: bytes) -> Record:
    return make(EAway, uid, message, T0)


def invite(target: int, channel: bytes) -> Record:
    return make(EInvite, ALICE, target, fold(channel), T0)


def umode(uid: int, modes: bytes, changes: bytes = b"") -> Record:
    return make(EUmode, uid, modes, changes, T0)


def oper(uid: int, name: bytes = b"admin", privileges: tuple[str, ...] = ("kill",)) -> Record:
    return make(EOper, uid, name, privileges, True, T0)


def kill(uid: int, target: int, comment: bytes = b"spam") -> Record:
    return make(EKill, uid, target, comment, T0)


def counts(incarnation: int, **by_name: int) -> Record:
    return make(ECounts, incarnation, {k.encode(): v for k, v in by_name.items()}, T0)


def kline(
    mask: bytes,
    victims: tuple[int, ...] = (),
    *,
    expires: int = 0,
    time: int = T0,
    uid: int = ALICE,
    reason: bytes = b"spam",
) -> Record:
    return make(EKline, uid, mask, b"alice", reason, time, expires, victims, time)


def unkline(mask: bytes, time: int = T0) -> Record:
    return make(EUnkline, ALICE, mask, time)


def build(*events: Record) -> State:
    state = State()
    for event in events:
        assert state.apply(event), event
    return state


def network() -> State:
    """alice (worker 0) and bob, carol (worker 1); alice created #chan, bob joined it."""
    return build(
        intro(ALICE, b"alice", 0),
        intro(BOB, b"Bob", 1),
        intro(CAROL, b"carol", 1),
        join(ALICE, b"#Chan", OP),
        join(BOB, b"#Chan"),
    )


def describe(state: State) -> dict[str, Any]:
    """Everything a replica holds that two replicas must agree on, comparable with ``==``."""
    return {
        "users": {
            uid: (
                u.nick,
                u.key,
                u.username,
                u.host,
                u.realname,
                u.worker,
                u.signon,
                u.away,
                u.modes,
                u.oper,
                sorted(u.privileges),
                sorted(c.key for c in u.channels),
            )
            for uid, u in state.users.items()
        },
        "nicks": {key: u.uid for key, u in state.nicks.items()},
        "channels": {
            key: (
                c.name,
                c.key,
                c.created,
                c.topic,
                c.topic_setter,
                c.topic_time,
                c.modes,
                c.password,
                c.limit,
                list(c.bans),
                sorted(c.invites),
                dict(c.members),
                dict(c.workers),
            )
            for key, c in state.channels.items()
        },
        "invisible": state.invisible,
        "opers": state.opers,
        "max_users": state.max_users,
        "whowas": {key: list(entries) for key, entries in state.whowas.items()},
        "command_counts": state.command_counts,
        "klines": state.klines,
    }


def chan(state: State, name: bytes = b"#chan") -> Channel:
    found = state.channel(name)
    assert found is not None
    return found


# -- users and nicks (RFC 2812 §3.1) ---------------------------------------------------------------


def test_intro_registers_the_user() -> None:
    """RFC 2812 §3.1.3: a registered user is known by nick, username, host and real name; the
    sequencer's decision time (ms) gives its signon (seconds)."""
    state = build(intro(ALICE, b"Alice", worker=3, time=T0))
    user = state.users[ALICE]
    assert (user.nick, user.username, user.host, user.realname) == (
        b"Alice",
        b"~alice",
        b"10.0.0.1",
        b"Real",
    )
    assert user.worker == 3
    assert user.signon == T0 // 1000
    assert user.mask == b"Alice!~alice@10.0.0.1"
    assert (user.away, user.modes, user.channels) == (b"", b"", ())


@pytest.mark.parametrize(
    ("registered", "lookup"),
    [
        (b"alice", b"ALICE"),
        (b"Alice", b"aLiCe"),
        (b"[Ann]", b"{ann}"),
        (b"{ann}", b"[ANN]"),
        (b"back\\slash", b"BACK|SLASH"),
        (b"tilde~", b"TILDE^"),
    ],
)
def test_nick_index_is_case_folded(registered: bytes, lookup: bytes) -> None:
    """RFC 2812 §2.2: "the characters {}|^ are considered to be the lower case equivalents of
    the characters []\\~ respectively" (CASEMAPPING=rfc1459): the nick index is keyed by the
    folded nick, and the user keeps the spelling it chose."""
    state = build(intro(ALICE, registered))
    assert list(state.nicks) == [fold(registered)]
    user = state.user_by_nick(lookup)
    assert user is not None and user.nick == registered


def test_rename_frees_the_old_nick() -> None:
    """RFC 2812 §3.1.2 NICK: after a change the old nick is free for anyone, the new one is
    taken."""
    state = network()
    assert state.apply(nick(BOB, b"Robert"))
    assert state.user_by_nick(b"bob") is None
    assert state.user_by_nick(b"ROBERT") is state.users[BOB]
    assert set(state.nicks) == {b"alice", b"robert", b"carol"}
    assert state.apply(intro(DAVE, b"BOB"))  # the old nick can be registered again
    assert state.user_by_nick(b"bob") is state.users[DAVE]


def test_rename_changing_only_case() -> None:
    """RFC 2812 §2.2: a change of case only is still a change of nick (the user is shown
    differently) but keeps the same folded key."""
    state = network()
    assert state.apply(nick(BOB, b"BOB"))
    assert state.users[BOB].nick == b"BOB"
    assert state.nicks[b"bob"] is state.users[BOB]
    assert len(state.nicks) == 3


def test_max_users_is_a_peak() -> None:
    """Modern IRC RPL_GLOBALUSERS (266) reports the current and the maximum global user
    count: ``max_users`` is the most users there ever were at once; quits do not lower it."""
    state = network()
    assert state.max_users == 3
    state.apply(quit_(CAROL))
    state.apply(quit_(BOB))
    assert (len(state.users), state.max_users) == (1, 3)
    state.apply(intro(DAVE, b"dave"))
    assert state.max_users == 3
    state.apply(intro(5, b"eve"))
    state.apply(intro(6, b"frank"))
    assert state.max_users == 4


def test_users_on_worker() -> None:
    """A worker that died takes its users with it: the hub finds them by worker slot."""
    state = network()
    assert sorted(state.users_on_worker(1)) == [BOB, CAROL]
    assert state.users_on_worker(0) == [ALICE]
    assert state.users_on_worker(2) == []


# -- channels (RFC 2812 §3.2) ----------------------------------------------------------------------


def test_join_creates_the_channel() -> None:
    """RFC 2812 §3.2.1 / Modern IRC JOIN: the first JOIN creates the channel with the name as
    given (looked up folded), the creation time the sequencer decided, the member flags given
    (its creator is operator) and the default modes +nt."""
    state = build(intro(ALICE, b"alice"), join(ALICE, b"#Chan[1]", OP, created=12345))
    assert list(state.channels) == [b"#chan{1}"]
    c = chan(state, b"#CHAN{1}")
    assert (c.name, c.key, c.created) == (b"#Chan[1]", b"#chan{1}", 12345)
    assert c.members == {ALICE: OP}
    assert c.modes == DEFAULT_CHANNEL_MODES == b"nt"
    assert (c.topic, c.password, c.limit, c.bans, c.invites) == (b"", b"", 0, (), set())
    assert state.users[ALICE].channels == (c,)


def test_join_an_existing_channel_keeps_its_name_and_creation_time() -> None:
    """A later JOIN adds a member with its flags; the channel's name and creation time are the
    creator's, whatever spelling the joiner used."""
    state = network()
    state.apply(make(EJoin, CAROL, b"#CHAN", VOICE, 999, (), T0))
    c = chan(state)
    assert (c.name, c.created) == (b"#Chan", T0 // 1000)
    assert c.members == {ALICE: OP, BOB: 0, CAROL: VOICE}
    assert state.users[CAROL].channels == (c,)


def test_workers_count_members_per_worker() -> None:
    """``chan.workers`` counts the members each worker holds: a channel message goes to every
    worker with at least one member, and to no other."""
    state = network()
    assert chan(state).workers == {0: 1, 1: 1}
    state.apply(join(CAROL, b"#chan"))
    assert chan(state).workers == {0: 1, 1: 2}
    state.apply(part(BOB, b"#chan"))
    assert chan(state).workers == {0: 1, 1: 1}
    state.apply(kick(ALICE, b"#chan", CAROL))
    assert chan(state).workers == {0: 1}


def test_a_replica_that_does_not_route_keeps_no_worker_counts() -> None:
    """A worker's replica (``State(routes=False)``) applies the same events but leaves
    ``chan.workers`` empty: only the hub routes by it, and every worker holds every channel
    (issue 14's idle memory). Everything else is as the hub's."""
    replica = State(routes=False)
    events = [intro(ALICE, b"alice", 0), intro(BOB, b"Bob", 1), join(ALICE, b"#Chan", OP)]
    events += [join(BOB, b"#Chan"), join(CAROL, b"#chan"), part(BOB, b"#chan")]
    for event in events:
        replica.apply(event)
    assert chan(replica).workers == {}
    assert chan(replica).members == {ALICE: OP}
    hub = build(*events[:4], events[5])
    assert chan(hub).workers == {0: 1}
    assert {k: v for k, v in describe(replica).items() if k != "channels"} == {
        k: v for k, v in describe(hub).items() if k != "channels"
    }


def test_users_share_equal_bytes_and_the_table_stays_bounded() -> None:
    """Users from one host, with one username or realname, hold one bytes object for it
    (``State.shared``: every worker holds every user); the table of values is emptied when it
    reaches its bound, so it never grows without end."""
    state = State()
    for uid, nick in ((ALICE, b"alice"), (BOB, b"bob")):
        record = list(intro(uid, nick))
        # fresh objects, as each record brings (bytes(bytearray(...)) is never a constant)
        record[3:6] = [
            bytes(bytearray(b"~web")),
            bytes(bytearray(b"10.0.0.9")),
            bytes(bytearray(b"Real")),
        ]
        state.apply(tuple(record))
    alice, bob = state.users[ALICE], state.users[BOB]
    assert (alice.username, alice.host, alice.realname) == (b"~web", b"10.0.0.9", b"Real")
    assert alice.host is bob.host
    assert alice.username is bob.username and alice.realname is bob.realname
    for i in range(SHARED_BYTES + 1):
        state.shared(b"value %d" % i)
    assert len(state._shared) <= SHARED_BYTES


def test_join_adds_a_local_member_to_the_fanout_list() -> None:
    """A worker's own clients (``state.local``) become the channel's ``local`` members, the
    list a channel message fans out to; other workers' users do not."""
    state = State()
    client = object()
    state.local[ALICE] = client
    for event in (
        intro(ALICE, b"alice"),
        intro(BOB, b"bob", 1),
        join(ALICE, b"#c"),
        join(BOB, b"#c"),
    ):
        state.apply(event)
    assert chan(state, b"#c").local == {ALICE: client}
    state.apply(part(ALICE, b"#c"))
    assert chan(state, b"#c").local == {}


@pytest.mark.parametrize(
    "leave",
    [part(BOB, b"#chan"), kick(ALICE, b"#chan", BOB), quit_(BOB)],
    ids=["part", "kick", "quit"],
)
def test_leaving_removes_the_member(leave: Record) -> None:
    """RFC 2812 §3.2.2 PART, §3.2.8 KICK, §3.1.7 QUIT: the user is no longer a member, and
    the channel no longer among its channels."""
    state = network()
    assert state.apply(leave)
    c = chan(state)
    assert c.members == {ALICE: OP}
    assert BOB not in c.members
    assert BOB not in state.users or state.users[BOB].channels == ()


@pytest.mark.parametrize(
    "leave",
    [part(ALICE, b"#solo"), kick(ALICE, b"#solo", ALICE), quit_(ALICE)],
    ids=["part", "kick", "quit"],
)
def test_an_empty_channel_disappears(leave: Record) -> None:
    """RFC 2812 §1.3: "the channel ceases to exist when the last client leaves it", so its
    modes, key and bans go with it (a later JOIN creates a fresh channel)."""
    state = build(intro(ALICE, b"alice"), join(ALICE, b"#solo", OP))
    state.apply(mode(b"#solo", b"+kb", b"key", b"x!*@*"))
    assert state.apply(leave)
    assert state.channels == {}
    if ALICE in state.users:
        assert state.users[ALICE].channels == ()
        assert state.apply(join(ALICE, b"#solo", OP, created=1))
        fresh = chan(state, b"#solo")
        assert (fresh.password, fresh.bans, fresh.created) == (b"", (), 1)


def test_quit_leaves_every_channel_and_frees_the_nick() -> None:
    """RFC 2812 §3.1.7 QUIT: the user leaves every channel it was on (an emptied channel
    disappears), its nick is free again, and it no longer counts as invisible."""
    state = network()
    for event in (join(BOB, b"#b1", OP), join(BOB, b"#b2", OP), join(CAROL, b"#b2")):
        state.apply(event)
    state.apply(umode(BOB, b"i", b"+i"))
    state.local[BOB] = object()
    assert state.invisible == 1
    assert state.apply(quit_(BOB))
    assert BOB not in state.users
    assert state.user_by_nick(b"bob") is None
    assert set(state.channels) == {b"#chan", b"#b2"}
    assert chan(state).members == {ALICE: OP}
    assert chan(state, b"#b2").members == {CAROL: 0}
    assert chan(state, b"#b2").workers == {1: 1}
    assert state.invisible == 0
    assert BOB not in state.local


def test_events_about_unknown_users_or_channels_change_nothing() -> None:
    """An event for a user that has quit or a channel that is gone (a replay, or an event that
    crossed a QUIT) is ignored, and ``apply`` says so."""
    state = network()
    before = describe(state)
    for event in (
        nick(99, b"ghost"),
        join(99, b"#chan"),
        part(99, b"#chan"),
        part(CAROL, b"#chan"),  # not a member
        part(ALICE, b"#nowhere"),
        kick(ALICE, b"#chan", CAROL),
        kick(ALICE, b"#nowhere", BOB),
        quit_(99),
        topic(b"#nowhere", b"t"),
        mode(b"#nowhere", b"+m"),
        away(99, b"afk"),
        umode(99, b"i"),
        invite(CAROL, b"#nowhere"),
    ):
        assert state.apply(event) is False, event
    assert describe(state) == before


# -- topic (RFC 2812 §3.2.4) -----------------------------------------------------------------------


def test_topic_is_set_with_its_setter_and_time() -> None:
    """RFC 2812 §3.2.4 TOPIC and RPL_TOPICWHOTIME (333): the channel keeps the topic, who set
    it and when (seconds); an empty topic clears it."""
    state = network()
    assert state.apply(topic(b"#CHAN", b"hello world", b"alice!~alice@h", 77))
    c = chan(state)
    assert (c.topic, c.topic_setter, c.topic_time) == (b"hello world", b"alice!~alice@h", 77)
    assert state.apply(topic(b"#chan", b"", b"bob!~bob@h", 78))
    assert (c.topic, c.topic_setter, c.topic_time) == (b"", b"bob!~bob@h", 78)


# -- channel modes (RFC 2812 §3.2.3, Modern IRC "Channel modes") -----------------------------------


def _mode_view(c: Channel) -> tuple[bytes, bytes, int, list[bytes], dict[int, int]]:
    return (c.modes, c.password, c.limit, [e.mask for e in c.bans], dict(c.members))


@pytest.mark.parametrize(
    ("setup", "changes", "args", "expected"),
    [
        ((), b"+k", (b"secret",), (b"nt", b"secret", 0, [], {ALICE: OP, BOB: 0})),
        ((b"+k", b"secret"), b"-k", (b"secret",), (b"nt", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((b"+k", b"secret"), b"-k", (b"*",), (b"nt", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((), b"+l", (b"5",), (b"nt", b"", 5, [], {ALICE: OP, BOB: 0})),
        ((b"+l", b"5"), b"-l", (), (b"nt", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((), b"+b", (b"*!*@bad",), (b"nt", b"", 0, [b"*!*@bad"], {ALICE: OP, BOB: 0})),
        ((b"+b", b"*!*@bad"), b"-b", (b"*!*@bad",), (b"nt", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((), b"+o", (b"BOB",), (b"nt", b"", 0, [], {ALICE: OP, BOB: OP})),
        ((), b"+v", (b"bob",), (b"nt", b"", 0, [], {ALICE: OP, BOB: VOICE})),
        ((b"+ov", b"bob", b"bob"), b"-o", (b"bob",), (b"nt", b"", 0, [], {ALICE: OP, BOB: VOICE})),
        ((), b"-o", (b"alice",), (b"nt", b"", 0, [], {ALICE: 0, BOB: 0})),
        ((), b"+mi", (), (b"imnt", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((), b"-nt", (), (b"", b"", 0, [], {ALICE: OP, BOB: 0})),
        ((), b"+s-t", (), (b"ns", b"", 0, [], {ALICE: OP, BOB: 0})),
        (
            (),
            b"+kl-n+bv",
            (b"k", b"9", b"a!*@*", b"bob"),
            (b"t", b"k", 9, [b"a!*@*"], {ALICE: OP, BOB: VOICE}),
        ),
    ],
    ids=[
        "+k",
        "-k",
        "-k *",
        "+l",
        "-l",
        "+b",
        "-b",
        "+o",
        "+v",
        "-o keeps +v",
        "op removes own op",
        "+flags sorted",
        "-flags",
        "+s-t",
        "mixed",
    ],
)
def test_mode_event_applies_the_changes(
    setup: tuple[bytes, ...],
    changes: bytes,
    args: tuple[bytes, ...],
    expected: tuple[bytes, bytes, int, list[bytes], dict[int, int]],
) -> None:
    """RFC 2812 §3.2.3 MODE, types from ISUPPORT CHANMODES=b,k,l,imnst: +b adds to a list,
    +k takes its argument on set and unset, +l on set only, +o/+v name a member, flag modes
    are kept as sorted letters. The event carries validated changes; applying them is exact."""
    state = network()
    if setup:
        assert state.apply(mode(b"#chan", setup[0], *setup[1:]))
    assert state.apply(mode(b"#chan", changes, *args))
    assert _mode_view(chan(state)) == expected


@pytest.mark.parametrize(
    ("changes", "args"),
    [
        (b"+n", ()),
        (b"-m", ()),
        (b"+o", (b"alice",)),
        (b"-v", (b"bob",)),
        (b"+o", (b"carol",)),  # not a member
        (b"+o", (b"nobody",)),
        (b"-k", (b"*",)),
        (b"-l", ()),
        (b"-b", (b"never!*@*",)),
    ],
)
def test_mode_event_that_changes_nothing_returns_false(
    changes: bytes, args: tuple[bytes, ...]
) -> None:
    """``apply`` returns False when the event changed nothing, e.g. +n on a +n channel."""
    state = network()
    before = describe(state)
    assert state.apply(mode(b"#chan", changes, *args)) is False
    assert describe(state) == before


def test_ban_list_keeps_order_and_no_duplicates() -> None:
    """RPL_BANLIST (367) lists masks in the order they were set; a mask set twice is listed
    once."""
    state = network()
    c = chan(state)
    apply_mode_changes(state, c, b"+bbb", (b"a!*@*", b"b!*@*", b"A!*@*"), b"op!o@h", 5000)
    assert c.bans == (Entry(b"a!*@*", b"op!o@h", 5000), Entry(b"b!*@*", b"op!o@h", 5000))
    apply_mode_changes(state, c, b"-b", (b"A!*@*",))
    assert [e.mask for e in c.bans] == [b"b!*@*"], "removed up to case"


@pytest.mark.parametrize(
    ("modes", "password", "limit", "expected"),
    [
        (b"nt", b"", 0, (b"+nt",)),
        (b"", b"", 0, (b"+",)),
        (b"imnst", b"key", 0, (b"+imnstk", b"key")),
        (b"nt", b"", 10, (b"+ntl", b"10")),
        (b"nt", b"key", 10, (b"+ntkl", b"key", b"10")),
    ],
)
def test_channel_mode_string(
    modes: bytes, password: bytes, limit: int, expected: tuple[bytes, ...]
) -> None:
    """RFC 2812 §5.1, 324 RPL_CHANNELMODEIS "<channel> <mode> <mode params>": flag letters,
    then k and l with their arguments in the same order."""
    c = Channel(b"#c", 0)
    c.modes, c.password, c.limit = modes, password, limit
    assert c.mode_string() == expected


@pytest.mark.parametrize(
    ("flags", "prefix"), [(0, b""), (VOICE, b"+"), (OP, b"@"), (OP | VOICE, b"@")]
)
def test_prefix_of(flags: int, prefix: bytes) -> None:
    """Modern IRC "Channel membership prefixes": NAMES shows the highest prefix, @ above +."""
    assert prefix_of(flags) == prefix


# -- away, user modes, invites ---------------------------------------------------------------------


def test_away_sets_and_clears() -> None:
    """RFC 2812 §4.1 AWAY: with a message the user is away, without one it is back."""
    state = network()
    assert state.apply(away(BOB, b"lunch"))
    assert state.users[BOB].away == b"lunch"
    assert state.apply(away(BOB, b""))
    assert state.users[BOB].away == b""


def test_user_modes_and_the_invisible_count() -> None:
    """RFC 2812 §3.1.5 user modes; LUSERS 251 counts "invisible" users, kept as events apply:
    +i counts once, other modes do not count, -i uncounts."""
    state = network()
    assert state.apply(umode(ALICE, b"i", b"+i"))
    assert state.apply(umode(BOB, b"iw", b"+iw"))
    assert state.invisible == 2
    assert state.apply(umode(BOB, b"w", b"-i"))
    assert state.invisible == 1
    assert state.apply(umode(CAROL, b"w", b"+w"))
    assert state.invisible == 1
    assert state.users[ALICE].modes == b"i"
    assert state.apply(umode(ALICE, b"", b"-i"))
    assert state.invisible == 0


def test_oper_gives_plus_o_and_privileges_and_counts() -> None:
    """Modern IRC "Oper User Mode": E_OPER gives +o (kept among the sorted user modes), the
    block's name and privileges; LUSERS 252 counts operators as events apply."""
    state = network()
    assert state.apply(umode(ALICE, b"iw", b"+iw"))
    assert state.apply(oper(ALICE, b"admin", ("kill", "see")))
    alice = state.users[ALICE]
    assert (alice.modes, alice.oper, alice.privileges) == (b"iow", b"admin", {"kill", "see"})
    assert state.opers == 1
    assert state.apply(oper(ALICE, b"helper", ("wallops",)))  # opered again, another block
    assert (alice.oper, alice.privileges, state.opers) == (b"helper", {"wallops"}, 1)
    assert state.apply(oper(BOB))
    assert state.opers == 2


def test_minus_o_drops_the_privileges() -> None:
    """RFC 2812 §3.1.5: a user may deop itself; an E_UMODE without "o" takes the privileges
    too. One that keeps "o" (+i on an operator) keeps them."""
    state = build(intro(ALICE, b"alice"), oper(ALICE))
    assert state.apply(umode(ALICE, b"io", b"+i"))
    assert state.users[ALICE].privileges == {"kill"}
    assert state.apply(umode(ALICE, b"i", b"-o"))
    alice = state.users[ALICE]
    assert (alice.modes, alice.oper, alice.privileges, state.opers) == (b"i", b"", set(), 0)


def test_an_operator_that_leaves_is_uncounted() -> None:
    """A quit or a kill of an operator takes it off LUSERS' count."""
    state = build(intro(ALICE, b"alice"), intro(BOB, b"bob"), oper(ALICE), oper(BOB))
    assert state.apply(quit_(ALICE))
    assert state.opers == 1
    assert state.apply(kill(BOB, BOB))
    assert state.opers == 0


def test_kill_removes_the_target_like_a_quit() -> None:
    """Modern IRC KILL: the victim leaves the network as if it quit: every channel, its nick,
    the invisible count; the killer stays."""
    state = network()
    assert state.apply(umode(BOB, b"i", b"+i"))
    killed = network()
    assert killed.apply(umode(BOB, b"i", b"+i"))
    assert state.apply(quit_(BOB))
    assert killed.apply(kill(ALICE, BOB))
    assert describe(killed) == describe(state)
    assert ALICE in killed.users and killed.invisible == 0


def test_invite_is_recorded_until_the_join() -> None:
    """RFC 2812 §3.2.7 INVITE: an invitation lets its target into a +i channel; it is used up
    when the target joins."""
    state = network()
    assert state.apply(invite(CAROL, b"#CHAN"))
    assert chan(state).invites == {CAROL}
    assert state.apply(join(CAROL, b"#chan"))
    assert chan(state).invites == set()


# -- K-lines (server bans) -------------------------------------------------------------------------


def test_a_kline_is_kept_by_its_folded_mask() -> None:
    """E_KLINE makes a ban network state, with its setter, reason, set time and expiry (ms),
    under its mask folded (``~Bob@HOST`` and ``~bob@host`` are one K-line); each change
    moves ``klines_changed``, which tells the file's keeper to rewrite it."""
    state = State()
    assert state.apply(kline(b"~Bob@10.0.0.*", expires=T0 + 60_000))
    assert state.klines == {
        fold(b"~bob@10.0.0.*"): KLine(b"~Bob@10.0.0.*", b"alice", b"spam", T0, T0 + 60_000)
    }
    assert state.klines_changed == 1
    assert state.apply(kline(b"~BOB@10.0.0.*", reason=b"again"))  # replaced: now permanent
    assert list(state.klines.values()) == [KLine(b"~BOB@10.0.0.*", b"alice", b"again", T0, 0)]
    assert state.klines_changed == 2
    assert state.apply(unkline(b"~bob@10.0.0.*"))
    assert state.klines == {} and state.klines_changed == 3
    assert state.apply(unkline(b"~bob@10.0.0.*")) is False
    assert state.klines_changed == 3


def test_a_kline_removes_its_victims_like_quits() -> None:
    """The users a K-line matched leave the network in the same event, as if each quit: their
    channels, nicks and counts, and a WHOWAS entry each; the others stay."""
    state, quit_twice = network(), network()
    assert state.apply(umode(BOB, b"i", b"+i"))
    assert quit_twice.apply(umode(BOB, b"i", b"+i"))
    assert state.apply(kline(b"~*@10.0.0.2", (BOB, CAROL)))
    assert quit_twice.apply(quit_(BOB)) and quit_twice.apply(quit_(CAROL))
    expected = describe(quit_twice)
    assert describe(state) == {**expected, "klines": state.klines}
    assert list(state.users) == [ALICE] and state.invisible == 0
    assert [e.nick for e in state.whowas_of(b"bob")] == [b"Bob"]


def test_expired_klines_are_ignored_and_forgotten_as_kline_events_apply() -> None:
    """An expired K-line is ignored everywhere (``active``, ``active_klines``) and forgotten
    when a later K-line event applies, at that event's time: every replica forgets the same
    ones at the same point of the order. One already expired when decided is never kept."""
    state = build(
        kline(b"*@10.0.0.1", expires=T0 + 1000),
        kline(b"*@10.0.0.2", time=T0 + 5),
        kline(b"*@10.0.0.3", expires=T0 + 5000, time=T0 + 10),
    )
    assert [k.mask for k in state.active_klines(T0 + 999)] == [
        b"*@10.0.0.1",
        b"*@10.0.0.2",
        b"*@10.0.0.3",
    ]
    assert [k.mask for k in state.active_klines(T0 + 1000)] == [b"*@10.0.0.2", b"*@10.0.0.3"]
    assert len(state.klines) == 3  # ignored, not yet forgotten
    assert state.apply(unkline(b"*@nowhere", time=T0 + 1000))  # it forgot one: a change
    assert sorted(state.klines) == [b"*@10.0.0.2", b"*@10.0.0.3"]
    assert state.apply(kline(b"*@10.0.0.4", expires=T0 + 6000, time=T0 + 6000)) is True
    assert sorted(state.klines) == [b"*@10.0.0.2"]  # the new one was expired already


def test_klines_survive_a_snapshot() -> None:
    """A worker that starts learns the K-lines from the hub's snapshot (STATS k answers from
    its replica)."""
    original = build(kline(b"*@10.0.0.9", expires=T0 + 9000), kline(b"~x@*", time=T0 + 1))
    copy = State()
    copy.load_snapshot(marshal.loads(marshal.dumps(original.snapshot())))
    assert copy.klines == original.klines
    assert copy.klines_changed == 1


# -- WHOWAS history (RFC 2812 §3.6.3) --------------------------------------------------------------


def was(nick: bytes, uid: int, time: int = T0) -> WhowasEntry:
    """The entry ``intro(uid, ...)``'s user leaves when it gives up ``nick`` at ``time``."""
    return WhowasEntry(nick, b"~" + nick.lower(), b"10.0.0.%d" % uid, b"Real", time)


def test_a_nick_change_and_a_quit_are_remembered() -> None:
    """RFC 2812 §3.6.3: WHOWAS answers "about a nickname which no longer exists. This may
    either be due to a nickname change or the user leaving IRC": E_NICK keeps the old nick
    (with the user's username, host and realname, and the event's time), E_QUIT the last."""
    state = network()
    state.apply(nick(BOB, b"robert", T0 + 1))
    state.apply(quit_(BOB, time=T0 + 2))
    old = WhowasEntry(b"Bob", b"~bob", b"10.0.0.2", b"Real", T0 + 1)
    assert state.whowas_of(b"BOB") == [old]  # looked up under rfc1459 folding
    assert state.whowas_of(b"robert") == [old._replace(nick=b"robert", time=T0 + 2)]
    assert state.whowas_of(b"alice") == []


def test_a_kill_is_remembered_too() -> None:
    """A user an operator KILLs leaves the network as one that quits: its nick is history."""
    state = network()
    assert state.apply(kill(ALICE, BOB))
    assert [e.nick for e in state.whowas_of(b"bob")] == [b"Bob"]


def test_newest_entry_first() -> None:
    """RFC 2812 §3.6.3: "The history is searched backward, returning the most recent entry
    first"."""
    state = build(intro(ALICE, b"x"), quit_(ALICE, time=T0 + 1))
    state.apply(intro(BOB, b"X"))
    state.apply(nick(BOB, b"y", T0 + 2))
    assert [e.time for e in state.whowas_of(b"x")] == [T0 + 2, T0 + 1]
    assert [e.nick for e in state.whowas_of(b"x")] == [b"X", b"x"]


def test_a_change_of_case_only_is_not_history() -> None:
    """The nick still exists after ``Bob`` becomes ``BOB`` (rfc1459 folding): WHOWAS is for
    nicks that no longer do."""
    state = network()
    assert state.apply(nick(BOB, b"BOB"))
    assert state.whowas == {}


def test_the_history_is_bounded_oldest_first() -> None:
    """``whowas_size`` entries in all, whatever the nicks: the oldest goes first, and a nick
    whose last entry went is no longer indexed."""
    state = State()
    state.whowas_size = 3
    for i in range(5):
        state.apply(intro(10 + i, b"n%d" % (i % 2)))
        state.apply(quit_(10 + i, time=T0 + i))
    assert [e.time for e in state.whowas_of(b"n0")] == [T0 + 4, T0 + 2]
    assert [e.time for e in state.whowas_of(b"n1")] == [T0 + 3]
    state.set_whowas_size(1)  # a reload that lowers it trims at once
    assert state.whowas == {b"n0": [was(b"n0", 14, T0 + 4)]}
    state.set_whowas_size(0)
    assert state.whowas == {}
    state.apply(intro(20, b"n9"))
    state.apply(quit_(20))
    assert state.whowas_of(b"n9") == []


def test_merge_whowas_is_a_union_in_time_order() -> None:
    """After a hub restart the hub merges each replica's history: what it lacks is added, in
    time order (entries of one millisecond keep their order), nothing twice."""
    state = State()
    a, b, c = was(b"a", 1, T0), was(b"b", 2, T0 + 5), was(b"c", 3, T0 + 5)
    state.merge_whowas((tuple(a), tuple(c)))
    state.merge_whowas((tuple(a), tuple(b), tuple(c)))
    assert state.snapshot()[3] == (tuple(a), tuple(c), tuple(b))
    assert state.whowas_of(b"b") == [b]


# -- command counts (STATS m) ----------------------------------------------------------------------


def test_command_counts_are_each_workers_totals() -> None:
    """E_COUNTS carries one worker's totals: the larger count wins, command by command, so a
    report applied again or an older one after a newer one (a replay after a hub restart)
    changes nothing; the whole server's counts are the sum over workers, one worker's
    live counts standing in for its last report when given."""
    state = build(counts(1, PRIVMSG=5, JOIN=1), counts(2, PRIVMSG=2))
    assert state.apply(counts(1, PRIVMSG=4, JOIN=1)) is False
    assert state.apply(counts(1, PRIVMSG=6)) is True
    assert state.apply(counts(3)) is False
    assert state.command_counts == {1: {b"PRIVMSG": 6, b"JOIN": 1}, 2: {b"PRIVMSG": 2}}
    assert state.total_counts() == {b"PRIVMSG": 8, b"JOIN": 1}
    assert state.total_counts((2, {b"PRIVMSG": 3, b"WHO": 1})) == {
        b"PRIVMSG": 9,
        b"JOIN": 1,
        b"WHO": 1,
    }


# -- idempotence: replay after a hub restart -------------------------------------------------------

_REPEATED = [
    pytest.param(intro(DAVE, b"dave"), id="intro"),
    pytest.param(nick(BOB, b"robert"), id="nick"),
    pytest.param(join(CAROL, b"#chan"), id="join"),
    pytest.param(join(CAROL, b"#new", OP), id="join-create"),
    pytest.param(part(BOB, b"#chan"), id="part"),
    pytest.param(kick(ALICE, b"#chan", BOB), id="kick"),
    pytest.param(quit_(BOB), id="quit"),
    pytest.param(topic(b"#chan", b"t"), id="topic"),
    pytest.param(mode(b"#chan", b"+imv-t", b"bob"), id="mode"),
    pytest.param(mode(b"#chan", b"+klb", b"key", b"3", b"x!*@*"), id="mode-args"),
    pytest.param(umode(BOB, b"i", b"+i"), id="umode"),
    pytest.param(away(BOB, b"lunch"), id="away"),
    pytest.param(invite(CAROL, b"#chan"), id="invite"),
    pytest.param(oper(BOB), id="oper"),
    pytest.param(kill(ALICE, BOB), id="kill"),
    pytest.param(counts(7, PRIVMSG=3), id="counts"),
    pytest.param(kline(b"~bob@*", (BOB,), expires=T0 + 1), id="kline"),
]


@pytest.mark.parametrize("event", _REPEATED)
def test_applying_an_event_twice_changes_nothing_the_second_time(event: Record) -> None:
    """state.py: "Returns False when it changed nothing (events are idempotent, so a replayed
    event after a resync is harmless)": the second application of the same event leaves the
    state as it was and returns False."""
    state = network()
    assert state.apply(event) is True
    after_once = describe(state)
    assert state.apply(event) is False
    assert describe(state) == after_once


@pytest.mark.parametrize("event", [r.values[0] for r in _REPEATED])
def test_applying_an_event_twice_leaves_the_same_state(event: Record) -> None:
    """Whatever ``apply`` returns, applying an event a second time must leave the state as the
    first application left it (a replay must not corrupt a replica)."""
    state = network()
    state.apply(event)
    after_once = describe(state)
    state.apply(event)
    assert describe(state) == after_once


# -- snapshots -------------------------------------------------------------------------------------


def rich_network() -> State:
    """A network with something in every field a snapshot must carry."""
    state = network()
    for event in (
        intro(DAVE, b"Dave[x]", 2),
        intro(5, b"eve", 2),
        intro(6, b"gone", 2),
        quit_(6),  # max_users stays 5; WHOWAS keeps "gone"
        nick(5, b"eve2"),  # WHOWAS keeps "eve"
        nick(5, b"eve"),  # ... and "eve2"
        join(CAROL, b"#chan", VOICE),
        join(DAVE, b"#chan"),
        join(DAVE, b"&Other", OP),
        join(BOB, b"&other"),
        topic(b"#chan", b"the topic", b"alice!~alice@10.0.0.1", 1234),
        mode(b"#chan", b"+imklbb", b"key", b"10", b"*!*@bad", b"bob!*@*"),
        mode(b"&other", b"-t+v", b"bob"),
        invite(5, b"#chan"),
        away(CAROL, b"away for now"),
        umode(DAVE, b"iw", b"+iw"),
        umode(5, b"i", b"+i"),
        oper(5, b"admin", ("kill", "see")),
        counts(1, PRIVMSG=10, JOIN=3),
        counts(2, WHO=1),
        kline(b"~spam@192.0.2.*", expires=T0 + 3_600_000),
        kline(b"*@198.51.100.7", uid=0),
    ):
        assert state.apply(event), event
    return state


def test_snapshot_is_plain_marshal_data() -> None:
    """A snapshot crosses the bus inside a B_SNAPSHOT/B_HELLO frame: it must be built of
    plain tuples, bytes and ints (and the operators' privileges, named by strings) that
    marshal writes and reads back unchanged."""
    snap = rich_network().snapshot()
    assert marshal.loads(marshal.dumps(snap)) == snap

    def plain(value: object) -> bool:
        if isinstance(value, tuple):
            return type(value) is tuple and all(plain(v) for v in value)
        return type(value) in (bytes, int, str)

    assert plain(snap)


def test_snapshot_round_trip_gives_an_equal_state() -> None:
    """A worker that starts loads the hub's snapshot: after ``load_snapshot`` (through
    marshal, as over the bus) it holds the same users, nicks, channels, members with their
    flags, modes, key, limit, bans, invites, topics, away messages, user modes, invisible
    count, operators with their privileges, member counts per worker, peak user count, WHOWAS
    history and command counts."""
    original = rich_network()
    copy = State()
    copy.load_snapshot(marshal.loads(marshal.dumps(original.snapshot())))
    assert describe(copy) == describe(original)
    assert copy.snapshot() == original.snapshot()


def test_load_snapshot_replaces_everything_but_local() -> None:
    """state.py: load_snapshot "replace[s] everything with ``snap`` (keeps ``local``, which
    only its worker knows)": users and channels not in the snapshot are gone, and a local
    client named by the snapshot is back in its channels' fan-out lists."""
    replica = build(intro(77, b"stale"), join(77, b"#stale", OP), umode(77, b"i"))
    client = object()
    replica.local[BOB] = client
    original = rich_network()
    replica.load_snapshot(original.snapshot())
    assert describe(replica) == describe(original)
    assert replica.local == {BOB: client}
    assert chan(replica).local == {BOB: client}
    assert chan(replica, b"&other").local == {BOB: client}


def test_load_snapshot_trims_the_history_to_its_own_bound() -> None:
    """A worker whose ``whowas_size`` is lower than the snapshot's history keeps the newest
    entries only."""
    original = rich_network()
    copy = State()
    copy.whowas_size = 1
    copy.load_snapshot(original.snapshot())
    assert [e.nick for es in copy.whowas.values() for e in es] == [b"eve2"]


def test_load_snapshot_keeps_the_larger_peak() -> None:
    """RPL_GLOBALUSERS' maximum: the peak carried by the snapshot is kept, and is never below
    the users the snapshot holds."""
    state = State()
    state.load_snapshot(((), (), 42, (), (), (), (), (), ()))
    assert state.max_users == 42
    users = tuple(
        (uid, b"u%d" % uid, b"u", b"h", b"r", 0, 0, b"", b"", b"", (), b"h", b"", b"")
        for uid in range(1, 4)
    )
    state.load_snapshot((users, (), 1, (), (), (), (), (), ()))
    assert state.max_users == 3


def test_user_is_a_plain_record() -> None:
    """``User.mask`` is RFC 2812 §2.3.1's prefix ``nick!user@host``; ``rename`` keeps the
    folded key in step with the nick."""
    user = User(1, b"Nick[1]", b"~u", b"host", b"Real Name", 0, 0)
    assert user.mask == b"Nick[1]!~u@host"
    assert user.key == b"nick{1}"
    user.rename(b"Other")
    assert (user.nick, user.key, user.mask) == (b"Other", b"other", b"Other!~u@host")


def test_certificate_fingerprints_survive_a_snapshot() -> None:
    """CertFP (issue 13): a user's TLS certificate fingerprint (E_INTRO) and an account's
    fingerprints (E_ACCOUNTCERTS) are in the snapshot a starting worker loads (and a new hub
    merges); a change of an unknown account's is ignored, and one that changes nothing says
    so."""
    from fastchat.server.network.records import EAccount, EAccountCerts

    fp = b"ab" * 32
    state = build(
        make(EIntro, ALICE, b"alice", b"~a", b"h", b"Real", 0, fp, T0),
        intro(BOB, b"bob"),
        make(EAccount, b"Alice", b"hash", b"", b"", T0),
    )
    assert state.apply(make(EAccountCerts, b"alice", (fp,), T0))
    assert not state.apply(make(EAccountCerts, b"ALICE", (fp,), T0))
    assert not state.apply(make(EAccountCerts, b"nobody", (fp,), T0))
    copy = State()
    copy.load_snapshot(marshal.loads(marshal.dumps(state.snapshot())))
    assert copy.users[ALICE].certfp == fp and copy.users[BOB].certfp == b""
    assert copy.accounts[b"alice"].certfps == (fp,)
    assert copy.account_by_certfp(fp) is copy.accounts[b"alice"]
    assert copy.account_by_certfp(b"cd" * 32) is None and copy.account_by_certfp(b"") is None


def test_a_users_rare_fields_are_made_only_when_one_changes() -> None:
    """away, account, certfp, ip, oper and privileges read as they start while the user has
    no :class:`UserRare` (every worker holds every user: most never change them); the first
    change makes it, and the address stays the one the user connected from after a CHGHOST."""
    user = User(ALICE, b"alice", b"~alice", b"10.0.0.1", b"Real", 0, 1)
    user.away, user.account, user.certfp, user.oper = b"", None, b"", b""
    user.ip = b"10.0.0.1"
    assert user._rare is None
    assert (user.away, user.account, user.certfp, user.ip, user.oper) == (
        b"",
        None,
        b"",
        b"10.0.0.1",
        b"",
    )
    assert user.privileges == frozenset()
    user.away = b"lunch"
    assert user._rare is not None and user.away == b"lunch"
    state = build(intro(BOB, b"bob"))
    state.apply(make(EChghost, ALICE, BOB, b"~b", b"cloak.example", T0))
    bob = state.users[BOB]
    assert (bob.host, bob.ip, bob.away) == (b"cloak.example", b"10.0.0.2", b"")
