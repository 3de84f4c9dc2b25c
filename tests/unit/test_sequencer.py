"""Unit tests for the sequencer, the one place network-wide rules are decided
(``fastchat.server.network.sequencer``).

The sequencer is driven directly: requests built with ``make(RJoin, ...)`` go to
``Sequencer.handle(origin, request, now_ms)`` and a recording router keeps what it decides.
The router applies every event to the sequencer's state (as the hub's and a worker's routers
do), and checks every record it is handed: a plain tuple, as long as its kind's schema in
SCHEMAS, marshal-able, and stamped with the decision's millisecond time as its last field.

Spec areas: RFC 2812 §3.1 (registration, NICK), §3.2 (JOIN, PART, MODE, TOPIC, INVITE, KICK),
§3.3 (PRIVMSG, NOTICE), §5 (numeric replies), and Modern IRC "Channel modes" and "Operators"
(OPER, KILL, WALLOPS, overrides).
"""

from __future__ import annotations

import marshal
import random
from typing import Any

import pytest

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.irc.message import MAX_LINE
from fastchat.server.config import Config
from fastchat.server.network.access import Entry as ListEntry
from fastchat.server.network.access import mask_matches, normalise_mask
from fastchat.server.network.records import (
    D_CHAN,
    D_DONE,
    D_KILL,
    D_NOTICE,
    D_OVERRIDE,
    D_REPLY,
    D_USER,
    D_WALLOPS,
    E_INTRO,
    E_INVITE,
    E_JOIN,
    E_MODE,
    E_TOPIC,
    OP,
    SCHEMAS,
    STATE_EVENTS,
    VOICE,
    DKill,
    DReply,
    DUser,
    EAway,
    ECounts,
    EIntro,
    EInvite,
    EJoin,
    EKick,
    EKill,
    EKline,
    ENick,
    EOper,
    EPart,
    EQuit,
    ETopic,
    EUmode,
    EUnkline,
    RAway,
    RChanMsg,
    RCounts,
    Record,
    RInvite,
    RJoin,
    RKick,
    RKill,
    RKline,
    RMode,
    RNick,
    ROper,
    RPart,
    RQuit,
    RRegister,
    RSync,
    RTopic,
    RUmode,
    RUnkline,
    RUserMsg,
    RWallops,
    make,
)
from fastchat.server.network.sequencer import (
    MAX_MODE_CHANGES,
    Sequencer,
    kline_mask_problem,
    kline_matches,
    may_speak,
    message_refusal,
)
from fastchat.server.network.state import Channel, State, User

NOW = 1_700_000_000_456  # ms
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
#: Each user's worker slot (its requests' origin): alice on 0, bob on 1, carol and dave on 2.
WORKER = {ALICE: 0, BOB: 1, CAROL: 2, DAVE: 2}
NICK = {ALICE: b"alice", BOB: b"Bob", CAROL: b"carol", DAVE: b"dave"}

Entry = tuple[str, Any, Record]  # ("event", None, ev) | ("channel", key, d) | ("worker", slot, d)


class RecordingRouter:
    """A :class:`~fastchat.server.network.sequencer.Router` that keeps everything, in order,
    and checks every record against its schema."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.now = 0  # the time the current decision must carry
        self.log: list[Entry] = []

    def _check(self, record: Record) -> None:
        assert type(record) is tuple, record
        assert len(record) == len(SCHEMAS[record[0]]._fields), record
        assert record[-1] == self.now, record  # every decision is stamped with its time
        marshal.dumps(record)  # no NamedTuple or other stray object inside

    def event(self, event: Record) -> None:
        self._check(event)
        assert event[0] in STATE_EVENTS
        self.state.apply(event)
        self.log.append(("event", None, event))

    def to_channel(self, chan: Channel, record: Record) -> None:
        self._check(record)
        assert record[0] == D_CHAN
        self.log.append(("channel", chan.key, record))

    def to_worker(self, worker: int, record: Record) -> None:
        self._check(record)
        assert record[0] in (D_USER, D_REPLY, D_DONE, D_KILL, D_WALLOPS, D_OVERRIDE, D_NOTICE)
        if record[0] == D_REPLY:
            assert all(type(p) is bytes for p in record[3]), record
        self.log.append(("worker", worker, record))


class Net:
    """A sequencer, its authoritative state and a recording router."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("autojoin", ())
        self.config = Config(**config)
        self.state = State()
        self.router = RecordingRouter(self.state)
        self.sequencer = Sequencer(self.state, self.config, self.router)

    def handle(self, request: Record, origin: int | None = None, now: int = NOW) -> list[Entry]:
        """Decide one request (from its user's worker unless told) and return what came out."""
        start = len(self.router.log)
        self.router.now = now
        if origin is None:
            origin = WORKER.get(request[1], 0)
        self.sequencer.handle(origin, request, now)
        return self.router.log[start:]

    def batch(self, requests: list[Record], origin: int, now: int = NOW) -> list[Entry]:
        start = len(self.router.log)
        self.router.now = now
        self.sequencer.handle_batch(origin, requests, now)
        return self.router.log[start:]

    # -- shorthands that must succeed ---------------------------------------------------------
    def register(self, uid: int, nick: bytes | None = None) -> None:
        nick = nick if nick is not None else NICK[uid]
        out = self.handle(make(RRegister, uid, nick, b"~" + nick.lower(), b"host", b"Real"))
        assert any(e[2][0] == E_INTRO for e in out), out

    def join(self, uid: int, channel: bytes, key: bytes = b"") -> None:
        out = self.handle(make(RJoin, uid, channel, key))
        assert any(e[2][0] == E_JOIN for e in out), out

    def mode(self, uid: int, channel: bytes, modes: bytes, *args: bytes) -> list[Entry]:
        return self.handle(make(RMode, uid, channel, modes, args))

    def chan(self, name: bytes = b"#chan") -> Channel:
        found = self.state.channel(name)
        assert found is not None
        return found


def events(out: list[Entry]) -> list[Record]:
    return [record for kind, _, record in out if kind == "event"]


def replies(out: list[Entry]) -> list[tuple[int, bytes, tuple[bytes, ...]]]:
    """(uid, numeric, params) of every D_REPLY, in order."""
    return [(r[1], r[2], r[3]) for kind, _, r in out if kind == "worker" and r[0] == D_REPLY]


def numerics(out: list[Entry]) -> list[bytes]:
    return [numeric for _, numeric, _ in replies(out)]


def dones(out: list[Entry]) -> list[tuple[int, int]]:
    """(worker, uid) of every D_DONE."""
    return [(w, r[1]) for kind, w, r in out if kind == "worker" and r[0] == D_DONE]


def network(**config: Any) -> Net:
    """alice (worker 0) created #Chan and is its operator; Bob (worker 1) joined it; carol
    (worker 2) is on no channel."""
    net = Net(**config)
    for uid in (ALICE, BOB, CAROL):
        net.register(uid)
    net.join(ALICE, b"#Chan")
    net.join(BOB, b"#chan")
    return net


def line(uid: int, command: bytes, target: bytes, text: bytes = b"hi") -> bytes:
    """A PRIVMSG/NOTICE as the sender's worker formats it once for every recipient."""
    nick = NICK[uid]
    return b":%s!~%s@host %s %s :%s\r\n" % (nick, nick.lower(), command, target, text)


def chanmsg(uid: int, target: bytes, notice: bool = False, doubted: bool = False) -> Record:
    command = b"NOTICE" if notice else b"PRIVMSG"
    return make(RChanMsg, uid, fold(target), line(uid, command, target), notice, doubted, 0, b"", 0)


def usermsg(uid: int, target: bytes, notice: bool = False, doubted: bool = False) -> Record:
    command = b"NOTICE" if notice else b"PRIVMSG"
    return make(
        RUserMsg, uid, fold(target), line(uid, command, target), notice, doubted, False, 0, b"", 0
    )


# -- registration (RFC 2812 §3.1) ------------------------------------------------------------------


def test_register_introduces_the_user_at_the_decision_time() -> None:
    """RFC 2812 §3.1: a connection that gave NICK and USER is registered; the sequencer
    introduces it to every worker with the time of its decision (ms), which is its signon."""
    net = Net()
    out = net.handle(make(RRegister, ALICE, b"Alice", b"~alice", b"host", b"Real"), origin=5)
    assert out == [
        ("event", None, make(EIntro, ALICE, b"Alice", b"~alice", b"host", b"Real", 5, b"", NOW)),
        ("worker", 5, (D_DONE, ALICE, NOW)),
    ]
    assert net.state.users[ALICE].signon == NOW // 1000
    assert net.state.users[ALICE].worker == 5


def test_autojoin_is_decided_in_the_same_step() -> None:
    """sequencer.py: "Autojoin is part of registration, decided in the same step": the
    config's channels are joined between the E_INTRO and the D_DONE, at the same time; the
    first user creates them (and is their operator), later ones join them."""
    net = Net(autojoin=(b"#lobby", b"#Help"))
    out = net.handle(make(RRegister, ALICE, b"alice", b"~a", b"h", b"r"))
    assert [e[2] for e in out] == [
        make(EIntro, ALICE, b"alice", b"~a", b"h", b"r", 0, b"", NOW),
        make(EJoin, ALICE, b"#lobby", OP, NOW // 1000, (), NOW),
        make(EJoin, ALICE, b"#Help", OP, NOW // 1000, (), NOW),
        (D_DONE, ALICE, NOW),
    ]
    out = net.handle(make(RRegister, BOB, b"bob", b"~b", b"h", b"r"), now=NOW + 5000)
    assert events(out)[1:] == [
        make(EJoin, BOB, b"#lobby", 0, NOW // 1000, (), NOW + 5000),
        make(EJoin, BOB, b"#Help", 0, NOW // 1000, (), NOW + 5000),
    ]


def test_autojoin_refused_leaves_the_user_registered() -> None:
    """An autojoin channel the user may not enter (here +i) is refused with its numeric, as a
    JOIN would be; the registration itself stands."""
    net = Net(autojoin=(b"#lobby",))
    net.register(ALICE)
    net.mode(ALICE, b"#lobby", b"+i")
    out = net.handle(make(RRegister, BOB, b"bob", b"~b", b"h", b"r"))
    assert [e[0] for e in events(out)] == [E_INTRO]
    assert numerics(out) == [N.ERR_INVITEONLYCHAN]
    assert dones(out) == [(1, BOB)]


@pytest.mark.parametrize(
    ("taken", "wanted"),
    [(b"alice", b"alice"), (b"alice", b"ALICE"), (b"[ann]", b"{Ann}"), (b"a\\b", b"A|B")],
)
def test_register_with_a_taken_nick_gets_433(taken: bytes, wanted: bytes) -> None:
    """RFC 2812 §3.1.2: "433 ERR_NICKNAMEINUSE <nick> :Nickname is already in use", with
    nicks compared under rfc1459 case mapping (RFC 2812 §2.2); nobody is introduced."""
    net = Net()
    net.register(ALICE, taken)
    out = net.handle(make(RRegister, BOB, wanted, b"~b", b"h", b"r"))
    assert out == [
        (
            "worker",
            1,
            (D_REPLY, BOB, N.ERR_NICKNAMEINUSE, (wanted, b"Nickname is already in use"), NOW),
        ),
        ("worker", 1, (D_DONE, BOB, NOW)),
    ]
    assert BOB not in net.state.users


def test_a_second_register_of_the_same_uid_is_ignored() -> None:
    """A registration resent after a hub restart (already merged from a replica) decides
    nothing: no second E_INTRO, no 433 against itself; only its D_DONE."""
    net = Net(autojoin=(b"#lobby",))
    request = make(RRegister, ALICE, b"alice", b"~a", b"h", b"r")
    net.handle(request)
    assert net.handle(request) == [("worker", 0, (D_DONE, ALICE, NOW))]


# -- D_DONE: the barrier of every request but an approved message ----------------------------------

_NON_MESSAGE_REQUESTS = [
    pytest.param(make(RRegister, DAVE, b"dave", b"~d", b"h", b"r"), id="register"),
    pytest.param(make(RRegister, DAVE, b"ALICE", b"~d", b"h", b"r"), id="register-433"),
    pytest.param(make(RNick, BOB, b"robert"), id="nick"),
    pytest.param(make(RNick, BOB, b"alice"), id="nick-433"),
    pytest.param(make(RJoin, CAROL, b"#chan", b""), id="join"),
    pytest.param(make(RJoin, CAROL, b"#new", b""), id="join-create"),
    pytest.param(make(RPart, BOB, b"#chan", b"bye"), id="part"),
    pytest.param(make(RPart, CAROL, b"#chan", b"bye"), id="part-442"),
    pytest.param(make(RQuit, BOB, b"bye"), id="quit"),
    pytest.param(make(RTopic, ALICE, b"#chan", b"t"), id="topic"),
    pytest.param(make(RTopic, BOB, b"#chan", b"t"), id="topic-482"),
    pytest.param(make(RMode, ALICE, b"#chan", b"+m", ()), id="mode"),
    pytest.param(make(RMode, ALICE, b"#chan", b"+n", ()), id="mode-noop"),
    pytest.param(make(RKick, ALICE, b"#chan", b"bob", b"out"), id="kick"),
    pytest.param(make(RAway, BOB, b"lunch"), id="away"),
    pytest.param(make(RInvite, ALICE, b"carol", b"#chan"), id="invite"),
    pytest.param(make(RInvite, ALICE, b"nobody", b"#chan"), id="invite-401"),
    pytest.param(make(RSync, BOB), id="sync"),
    pytest.param(make(RUmode, BOB, b"i", b"+i"), id="umode"),
    pytest.param(make(RKline, ALICE, b"~bob@*", 0, b"r"), id="kline-481"),
    pytest.param(make(RUnkline, ALICE, b"~bob@*"), id="unkline-481"),
]


@pytest.mark.parametrize("request_", _NON_MESSAGE_REQUESTS)
def test_every_non_message_request_ends_with_one_d_done(request_: Record) -> None:
    """sequencer.py: "Every request except a message is answered with D_DONE to its origin,
    after whatever it caused": exactly one D_DONE, for the requester, last."""
    net = network()
    origin = WORKER[request_[1]]
    out = net.handle(request_)
    assert dones(out) == [(origin, request_[1])]
    assert out[-1] == ("worker", origin, (D_DONE, request_[1], NOW))


@pytest.mark.parametrize(
    ("request_", "done"),
    [
        (chanmsg(ALICE, b"#chan"), False),
        (chanmsg(ALICE, b"#chan", doubted=True), True),
        (chanmsg(CAROL, b"#chan", doubted=True), True),  # refused (+n)
        (chanmsg(CAROL, b"#chan", notice=True, doubted=True), True),
        (usermsg(ALICE, b"bob"), False),
        (usermsg(ALICE, b"nobody", doubted=True), True),
        (usermsg(ALICE, b"nobody", notice=True, doubted=True), True),
    ],
    ids=[
        "approved",
        "doubted-approved",
        "doubted-refused",
        "doubted-notice",
        "user",
        "user-doubted",
        "user-notice-doubted",
    ],
)
def test_a_message_gets_d_done_only_when_doubted(request_: Record, done: bool) -> None:
    """sequencer.py: a message is not answered with D_DONE (the hot path has no barrier),
    except one "the worker doubted (its last field), which it sent under the client's
    barrier"; that D_DONE comes last."""
    net = network()
    out = net.handle(request_)
    assert dones(out) == ([(WORKER[request_[1]], request_[1])] if done else [])
    if done:
        assert out[-1][2][0] == D_DONE


def test_command_counts_become_network_state_without_d_done() -> None:
    """STATS m: a worker's report of its command counts becomes an E_COUNTS for every worker
    (its totals, so replicas can sum the whole server); it is no client's request, so no
    D_DONE answers it."""
    net = network()
    counts = {b"PRIVMSG": 7, b"JOIN": 2}
    out = net.handle(make(RCounts, 5, counts), origin=2)
    assert out == [("event", None, make(ECounts, 5, counts, NOW))]
    assert net.state.command_counts == {5: counts}


def test_sync_decides_nothing() -> None:
    """A read barrier "decides nothing; its D_DONE comes back after every event the sequencer
    decided before it"."""
    net = network()
    assert net.handle(make(RSync, CAROL)) == [("worker", 2, (D_DONE, CAROL, NOW))]


# -- nicks, quit, away, user modes (RFC 2812 §3.1, §4.1) -------------------------------------------


def test_nick_change() -> None:
    """RFC 2812 §3.1.2 NICK: a free nick is taken at once, by an E_NICK to every worker."""
    net = network()
    out = net.handle(make(RNick, BOB, b"Robert"))
    assert events(out) == [make(ENick, BOB, b"Robert", NOW)]
    assert net.state.user_by_nick(b"robert") is net.state.users[BOB]


@pytest.mark.parametrize("wanted", [b"alice", b"ALICE", b"Alice"])
def test_nick_collision_is_case_insensitive(wanted: bytes) -> None:
    """RFC 2812 §3.1.2 and §2.2: 433 ERR_NICKNAMEINUSE when another user holds the nick in
    any case; nothing changes."""
    net = network()
    out = net.handle(make(RNick, BOB, wanted))
    assert events(out) == []
    assert replies(out) == [(BOB, N.ERR_NICKNAMEINUSE, (wanted, b"Nickname is already in use"))]


def test_nick_change_of_case_only_is_allowed() -> None:
    """A user may change the case of its own nick (the nick is "in use" only by itself)."""
    net = network()
    assert events(net.handle(make(RNick, BOB, b"BOB"))) == [make(ENick, BOB, b"BOB", NOW)]


def test_nick_unchanged_decides_nothing() -> None:
    """NICK to the very same nick is no change: no event, only the D_DONE."""
    net = network()
    assert net.handle(make(RNick, BOB, b"Bob")) == [("worker", 1, (D_DONE, BOB, NOW))]


def test_quit_away_umode_become_events() -> None:
    """RFC 2812 §3.1.7 QUIT, §4.1 AWAY, §3.1.5 user MODE: each is a state change every
    worker applies; for a user no longer known, nothing is decided."""
    net = network()
    assert events(net.handle(make(RAway, BOB, b"lunch"))) == [make(EAway, BOB, b"lunch", NOW)]
    assert events(net.handle(make(RUmode, BOB, b"i", b"+i"))) == [
        make(EUmode, BOB, b"i", b"+i", NOW)
    ]
    assert events(net.handle(make(RQuit, BOB, b"bye"))) == [make(EQuit, BOB, b"bye", NOW)]
    for request in (make(RQuit, BOB, b"x"), make(RAway, BOB, b"x"), make(RUmode, BOB, b"", b"")):
        assert events(net.handle(request)) == []


# -- JOIN (RFC 2812 §3.2.1) ------------------------------------------------------------------------


def test_join_creates_the_channel_with_its_creator_as_operator() -> None:
    """RFC 2812 §3.2.1 / Modern IRC JOIN: the first to join a channel creates it and is its
    operator; the creation time (RPL_CREATIONTIME, seconds) is the decision's."""
    net = Net()
    net.register(ALICE)
    out = net.handle(make(RJoin, ALICE, b"#New[1]", b""), now=NOW + 1999)
    assert events(out) == [make(EJoin, ALICE, b"#New[1]", OP, (NOW + 1999) // 1000, (), NOW + 1999)]
    assert net.chan(b"#new{1}").created == (NOW + 1999) // 1000


def test_join_an_existing_channel() -> None:
    """A later joiner has no flags and the channel keeps its name and creation time."""
    net = network()
    out = net.handle(make(RJoin, CAROL, b"#CHAN", b""), now=NOW + 60_000)
    assert events(out) == [make(EJoin, CAROL, b"#Chan", 0, NOW // 1000, (), NOW + 60_000)]


def test_join_a_channel_already_joined_decides_nothing() -> None:
    """RFC 2812 §3.2.1: joining a channel one is on has no effect."""
    net = network()
    assert events(net.handle(make(RJoin, BOB, b"#chan", b""))) == []


@pytest.mark.parametrize(
    ("modes", "args", "key", "numeric"),
    [
        (b"+i", (), b"", N.ERR_INVITEONLYCHAN),
        (b"+k", (b"secret",), b"", N.ERR_BADCHANNELKEY),
        (b"+k", (b"secret",), b"Secret", N.ERR_BADCHANNELKEY),
        (b"+l", (b"2",), b"", N.ERR_CHANNELISFULL),
        (b"+b", (b"carol",), b"", N.ERR_BANNEDFROMCHAN),
        (b"+b", (b"*!*@HOST",), b"", N.ERR_BANNEDFROMCHAN),
        (b"+b", (b"CAR*!~car?l@*",), b"", N.ERR_BANNEDFROMCHAN),
    ],
    ids=["+i", "+k-none", "+k-wrong", "+l", "+b-nick", "+b-host", "+b-wildcards"],
)
def test_join_refusals(modes: bytes, args: tuple[bytes, ...], key: bytes, numeric: bytes) -> None:
    """RFC 2812 §3.2.1 JOIN and §5.2: 473 ERR_INVITEONLYCHAN, 475 ERR_BADCHANNELKEY, 471
    ERR_CHANNELISFULL, 474 ERR_BANNEDFROMCHAN, each "<channel> :Cannot join channel (+x)"."""
    net = network()
    assert events(net.mode(ALICE, b"#chan", modes, *args))
    out = net.handle(make(RJoin, CAROL, b"#chan", key))
    assert events(out) == []
    assert len(replies(out)) == 1
    uid, got, params = replies(out)[0]
    assert (uid, got, params[0]) == (CAROL, numeric, b"#Chan")
    assert params[1] == b"Cannot join channel (+%s)" % modes[1:]


@pytest.mark.parametrize(
    ("modes", "args", "key"),
    [
        (b"+k", (b"secret",), b"secret"),
        (b"+l", (b"3",), b""),
        (b"+b", (b"bob!*@*",), b""),
        (b"+b", (b"*!*@otherhost",), b""),
    ],
    ids=["+k-right", "+l-room", "+b-other-nick", "+b-other-host"],
)
def test_join_allowed_despite_modes(modes: bytes, args: tuple[bytes, ...], key: bytes) -> None:
    """The right key opens a +k channel; a +l channel with room and a ban that does not
    match the joiner do not refuse it."""
    net = network()
    net.mode(ALICE, b"#chan", modes, *args)
    out = net.handle(make(RJoin, CAROL, b"#chan", key))
    assert [e[0] for e in events(out)] == [E_JOIN]


@pytest.mark.parametrize(
    ("modes", "args"),
    [(b"+i", ()), (b"+l", (b"2",)), (b"+b", (b"carol",)), (b"+ilb", (b"1", b"*!*@*"))],
    ids=["+i", "+l", "+b", "+ilb"],
)
def test_invite_overrides_invite_only_limit_and_ban(modes: bytes, args: tuple[bytes, ...]) -> None:
    """RFC 2812 §3.2.7 INVITE lets its target into a +i channel; fastchat lets an invitation
    through +l and +b too (as the sequencer's ``_join_refusal`` says); the join uses it up."""
    net = network()
    net.mode(ALICE, b"#chan", modes, *args)
    net.handle(make(RInvite, ALICE, b"carol", b"#chan"))
    out = net.handle(make(RJoin, CAROL, b"#chan", b""))
    assert [e[0] for e in events(out)] == [E_JOIN]
    assert net.chan().invites == set()


def test_invite_does_not_override_the_key() -> None:
    """An invitation is not the key: a +k channel still wants it (475)."""
    net = network()
    net.mode(ALICE, b"#chan", b"+k", b"secret")
    net.handle(make(RInvite, ALICE, b"carol", b"#chan"))
    assert numerics(net.handle(make(RJoin, CAROL, b"#chan", b""))) == [N.ERR_BADCHANNELKEY]


@pytest.mark.parametrize("existing", [False, True], ids=["new-channel", "existing-channel"])
def test_too_many_channels(existing: bool) -> None:
    """RFC 2812 §3.2.1: "405 ERR_TOOMANYCHANNELS <channel name> :You have joined too many
    channels" once the user is on ``max_channels`` (ISUPPORT CHANLIMIT)."""
    net = network(max_channels=2)
    net.join(CAROL, b"#one")
    net.join(CAROL, b"#two")
    out = net.handle(make(RJoin, CAROL, b"#chan" if existing else b"#Three", b""))
    assert events(out) == []
    name = b"#Chan" if existing else b"#Three"
    assert replies(out) == [
        (CAROL, N.ERR_TOOMANYCHANNELS, (name, b"You have joined too many channels"))
    ]


# -- PART (RFC 2812 §3.2.2) ------------------------------------------------------------------------


def test_part() -> None:
    """RFC 2812 §3.2.2 PART: the member leaves, with its reason; the event names the channel
    by its folded key."""
    net = network()
    out = net.handle(make(RPart, BOB, b"#CHAN", b"see you"))
    assert events(out) == [make(EPart, BOB, b"#chan", b"see you", NOW)]
    assert BOB not in net.chan().members


@pytest.mark.parametrize(
    ("channel", "numeric", "params"),
    [
        (b"#Nowhere", N.ERR_NOSUCHCHANNEL, (b"#Nowhere", b"No such channel")),
        (b"#CHAN", N.ERR_NOTONCHANNEL, (b"#Chan", b"You're not on that channel")),
    ],
    ids=["403", "442"],
)
def test_part_refusals(channel: bytes, numeric: bytes, params: tuple[bytes, ...]) -> None:
    """RFC 2812 §3.2.2: "403 ERR_NOSUCHCHANNEL <channel name> :No such channel" and "442
    ERR_NOTONCHANNEL <channel> :You're not on that channel"."""
    net = network()
    out = net.handle(make(RPart, CAROL, channel, b""))
    assert events(out) == []
    assert replies(out) == [(CAROL, numeric, params)]


# -- TOPIC (RFC 2812 §3.2.4) -----------------------------------------------------------------------


def test_topic_by_operator_on_plus_t() -> None:
    """RFC 2812 §3.2.4 TOPIC: on a +t channel an operator sets the topic; the setter's mask
    and the time (seconds) go with it, for RPL_TOPICWHOTIME."""
    net = network()
    out = net.handle(make(RTopic, ALICE, b"#chan", b"news"))
    assert events(out) == [
        make(ETopic, ALICE, b"#chan", b"news", b"alice!~alice@host", NOW // 1000, NOW)
    ]


def test_topic_on_plus_t_needs_operator() -> None:
    """RFC 2812 §3.2.4 / §5.2: "482 ERR_CHANOPRIVSNEEDED <channel> :You're not channel
    operator" for a member without op on a +t channel."""
    net = network()
    out = net.handle(make(RTopic, BOB, b"#chan", b"mine"))
    assert events(out) == []
    assert replies(out) == [
        (BOB, N.ERR_CHANOPRIVSNEEDED, (b"#Chan", b"You're not channel operator"))
    ]


def test_topic_without_plus_t_is_anyone_s() -> None:
    """Modern IRC "Protected Topic" (+t): without it, any member may set the topic."""
    net = network()
    net.mode(ALICE, b"#chan", b"-t")
    out = net.handle(make(RTopic, BOB, b"#chan", b"mine"))
    assert ETopic._make(events(out)[0]).topic == b"mine"


def test_topic_is_cut_to_topiclen() -> None:
    """ISUPPORT TOPICLEN: a longer topic is cut to the configured length."""
    net = network(topiclen=10)
    out = net.handle(make(RTopic, ALICE, b"#chan", b"0123456789abcdef"))
    assert ETopic._make(events(out)[0]).topic == b"0123456789"


def test_topic_by_a_non_member() -> None:
    """RFC 2812 §3.2.4: a non-member gets 442 ERR_NOTONCHANNEL."""
    net = network()
    assert numerics(net.handle(make(RTopic, CAROL, b"#chan", b"x"))) == [N.ERR_NOTONCHANNEL]


# -- KICK (RFC 2812 §3.2.8) ------------------------------------------------------------------------


def test_kick() -> None:
    """RFC 2812 §3.2.8 KICK: an operator removes a member; the event names the target by
    uid, the channel by its folded key."""
    net = network()
    out = net.handle(make(RKick, ALICE, b"#CHAN", b"BOB", b"behave"))
    assert events(out) == [make(EKick, ALICE, b"#chan", BOB, b"behave", NOW)]
    assert BOB not in net.chan().members


def test_kick_needs_operator() -> None:
    """RFC 2812 §3.2.8: 482 ERR_CHANOPRIVSNEEDED for a member without op."""
    net = network()
    out = net.handle(make(RKick, BOB, b"#chan", b"alice", b""))
    assert events(out) == []
    assert numerics(out) == [N.ERR_CHANOPRIVSNEEDED]


@pytest.mark.parametrize("target", [b"carol", b"nobody"])
def test_kick_of_a_non_member_gets_441(target: bytes) -> None:
    """RFC 2812 §3.2.8: "441 ERR_USERNOTINCHANNEL <nick> <channel> :They aren't on that
    channel"."""
    net = network()
    out = net.handle(make(RKick, ALICE, b"#chan", target, b""))
    assert events(out) == []
    assert replies(out) == [
        (ALICE, N.ERR_USERNOTINCHANNEL, (target, b"#Chan", b"They aren't on that channel"))
    ]


def test_kick_by_a_non_member_gets_442() -> None:
    """RFC 2812 §3.2.8: 442 ERR_NOTONCHANNEL for a kicker not on the channel."""
    net = network()
    assert numerics(net.handle(make(RKick, CAROL, b"#chan", b"bob", b""))) == [N.ERR_NOTONCHANNEL]


def test_kick_reason_is_cut_to_kicklen() -> None:
    """ISUPPORT KICKLEN: a longer reason is cut to the configured length."""
    net = network(kicklen=5)
    out = net.handle(make(RKick, ALICE, b"#chan", b"bob", b"because I said so"))
    assert EKick._make(events(out)[0]).reason == b"becau"


# -- INVITE (RFC 2812 §3.2.7) ----------------------------------------------------------------------


def test_invite() -> None:
    """RFC 2812 §3.2.7 INVITE: a member invites a user to the channel; the event names the
    target by uid."""
    net = network()
    out = net.handle(make(RInvite, BOB, b"CAROL", b"#chan"))
    assert events(out) == [make(EInvite, BOB, CAROL, b"#chan", NOW)]
    assert net.chan().invites == {CAROL}


@pytest.mark.parametrize(
    ("uid", "target", "channel", "mode", "numeric", "params"),
    [
        (BOB, b"nobody", b"#chan", b"", N.ERR_NOSUCHNICK, (b"nobody", b"No such nick/channel")),
        (
            BOB,
            b"ALICE",
            b"#chan",
            b"",
            N.ERR_USERONCHANNEL,
            (b"alice", b"#Chan", b"is already on channel"),
        ),
        (
            BOB,
            b"carol",
            b"#chan",
            b"+i",
            N.ERR_CHANOPRIVSNEEDED,
            (b"#Chan", b"You're not channel operator"),
        ),
        (
            CAROL,
            b"bob",
            b"#chan",
            b"",
            N.ERR_NOTONCHANNEL,
            (b"#Chan", b"You're not on that channel"),
        ),
        (BOB, b"carol", b"#none", b"", N.ERR_NOSUCHCHANNEL, (b"#none", b"No such channel")),
    ],
    ids=["401", "443", "482", "442", "403"],
)
def test_invite_refusals(
    uid: int, target: bytes, channel: bytes, mode: bytes, numeric: bytes, params: tuple[bytes, ...]
) -> None:
    """RFC 2812 §3.2.7: 401 ERR_NOSUCHNICK, "443 ERR_USERONCHANNEL <user> <channel> :is
    already on channel", 482 on a +i channel for a non-operator, 442 for an inviter not on
    the channel."""
    net = network()
    if mode:
        net.mode(ALICE, b"#chan", mode)
    out = net.handle(make(RInvite, uid, target, channel))
    assert events(out) == []
    assert replies(out) == [(uid, numeric, params)]


def test_operator_may_invite_to_invite_only() -> None:
    """RFC 2812 §3.2.7: "if the channel has the invite-only flag set, only channel
    operators may issue INVITE command"."""
    net = network()
    net.mode(ALICE, b"#chan", b"+i")
    assert events(net.handle(make(RInvite, ALICE, b"carol", b"#chan")))


# -- MODE (RFC 2812 §3.2.3) ------------------------------------------------------------------------


def mode_event(out: list[Entry]) -> tuple[bytes, tuple[bytes, ...]] | None:
    """The (modes, args) of the one E_MODE among ``out``, or None."""
    found = [e for e in events(out) if e[0] == E_MODE]
    assert len(found) <= 1
    return (found[0][3], found[0][4]) if found else None


@pytest.mark.parametrize(
    ("modes", "args", "expected"),
    [
        (b"+m", (), (b"+m", ())),
        (b"-t", (), (b"-t", ())),
        (b"+ms-t", (), (b"+ms-t", ())),
        (b"+k", (b"key",), (b"+k", (b"key",))),
        (b"+l", (b"10",), (b"+l", (b"10",))),
        (b"+l", (b"007",), (b"+l", (b"7",))),
        (b"+v", (b"BOB",), (b"+v", (b"Bob",))),
        (b"+o", (b"bob",), (b"+o", (b"Bob",))),
        (b"+b", (b"Nick",), (b"+b", (b"Nick!*@*",))),
        (b"+b", (b"user@host",), (b"+b", (b"*!user@host",))),
        (b"+b", (b"n!u",), (b"+b", (b"n!u@*",))),
        (b"+b", (b"*!*@h",), (b"+b", (b"*!*@h",))),
        (b"+xm", (), (b"+m", ())),
        (b"+l", (), None),  # +l without its argument is ignored
        (b"+o", (), None),
        (b"+k", (b"a,b",), None),
    ],
)
def test_mode_changes_by_an_operator(
    modes: bytes, args: tuple[bytes, ...], expected: tuple[bytes, tuple[bytes, ...]] | None
) -> None:
    """RFC 2812 §3.2.3 MODE with ISUPPORT CHANMODES=b,k,l,imnst and PREFIX=(ov): each change
    is validated; the event carries the effective changes and their arguments, normalised
    (a +b mask completed to nick!user@host, a +l number in decimal, a member by its nick)."""
    net = network()
    assert mode_event(net.mode(ALICE, b"#chan", modes, *args)) == expected


@pytest.mark.parametrize(
    ("setup", "modes", "args"),
    [
        ((), b"+n", ()),
        ((), b"+t", ()),
        ((), b"-m", ()),
        ((), b"+o", (b"alice",)),
        ((), b"-v", (b"bob",)),
        ((), b"-k", ()),
        ((), b"-l", ()),
        ((), b"-b", (b"x!*@*",)),
        ((b"+b", b"x!*@*"), b"+b", (b"x",)),
        ((b"+m",), b"+m", ()),
    ],
)
def test_mode_no_op_changes_are_dropped(
    setup: tuple[bytes, ...], modes: bytes, args: tuple[bytes, ...]
) -> None:
    """sequencer.py, ``_mode``: "validate each change, emit only the effective ones": a change
    that would not change the channel (setting a mode already set, removing one not set) is
    dropped, and with nothing left no event is decided."""
    net = network()
    if setup:
        net.mode(ALICE, b"#chan", setup[0], *setup[1:])
    assert mode_event(net.mode(ALICE, b"#chan", modes, *args)) is None


@pytest.mark.parametrize(
    ("setup", "modes", "args"),
    [
        ((b"+l", b"5"), b"+l", (b"5",)),
        ((b"+k", b"key"), b"+k", (b"key",)),
    ],
    ids=["same-limit", "same-key"],
)
def test_mode_setting_the_same_value_is_dropped(
    setup: tuple[bytes, ...], modes: bytes, args: tuple[bytes, ...]
) -> None:
    """sequencer.py, ``_mode``: "emit only the effective ones": +l with the current limit or
    +k with the current key changes nothing, so it should be dropped as +n on a +n channel
    is."""
    net = network()
    net.mode(ALICE, b"#chan", setup[0], *setup[1:])
    assert mode_event(net.mode(ALICE, b"#chan", modes, *args)) is None


@pytest.mark.parametrize(
    ("modes", "args"),
    [
        (b"+o-o", (b"bob", b"bob")),
        (b"+v-v", (b"bob", b"bob")),
        (b"+k-k", (b"key", b"key")),
        (b"+b-b", (b"x!*@*", b"x!*@*")),
        (b"+l-l", (b"5",)),
    ],
)
def test_mode_changes_apply_in_order(modes: bytes, args: tuple[bytes, ...]) -> None:
    """RFC 2812 §3.2.3: the changes of one MODE take effect in the order given, so setting a
    mode and unsetting it in one request leaves the channel as it was."""
    net = network()
    before = (net.chan().modes, net.chan().password, net.chan().limit, list(net.chan().bans))
    members = dict(net.chan().members)
    net.mode(ALICE, b"#chan", modes, *args)
    c = net.chan()
    assert (c.modes, c.password, c.limit, list(c.bans)) == before
    assert c.members == members


def test_mode_unknown_letter_gets_472_and_the_rest_applies() -> None:
    """RFC 2812 §3.2.3 / §5.2: "472 ERR_UNKNOWNMODE <char> :is unknown mode char to me"; the
    known changes of the same request still apply."""
    net = network()
    out = net.mode(ALICE, b"#chan", b"+zm-y")
    assert replies(out) == [
        (ALICE, N.ERR_UNKNOWNMODE, (b"z", b"is unknown mode char to me")),
        (ALICE, N.ERR_UNKNOWNMODE, (b"y", b"is unknown mode char to me")),
    ]
    assert mode_event(out) == (b"+m", ())


def test_mode_change_needs_operator() -> None:
    """RFC 2812 §3.2.3 / §5.2: a member without op gets 482 ERR_CHANOPRIVSNEEDED, once, and
    nothing changes."""
    net = network()
    out = net.mode(BOB, b"#chan", b"+mi")
    assert events(out) == []
    assert numerics(out) == [N.ERR_CHANOPRIVSNEEDED]


def test_mode_by_a_non_member_gets_442() -> None:
    """RFC 2812 §3.2.3: changing the modes of a channel one is not on: 442."""
    net = network()
    assert numerics(net.mode(CAROL, b"#chan", b"+m")) == [N.ERR_NOTONCHANNEL]


def test_mode_at_most_max_mode_changes() -> None:
    """ISUPPORT MODES: at most MAX_MODE_CHANGES (6) changes with a parameter per MODE
    command; fastchat applies the first six changes of any kind and ignores the rest."""
    net = network()
    assert MAX_MODE_CHANGES == 6
    out = net.mode(ALICE, b"#chan", b"+imsklvb", b"key", b"5", b"bob", b"x!*@*")
    assert mode_event(out) == (b"+imsklv", (b"key", b"5", b"Bob"))


@pytest.mark.parametrize("limit", [b"0", b"-1", b"abc", b"", b"1.5", b"+3"])
def test_mode_bad_limit_is_ignored(limit: bytes) -> None:
    """Modern IRC "Client Limit" (+l): the parameter is a positive integer; anything else is
    ignored (no event, no error)."""
    net = network()
    out = net.mode(ALICE, b"#chan", b"+l", limit)
    assert mode_event(out) is None
    assert replies(out) == []


def test_mode_minus_k_without_argument() -> None:
    """RFC 2812 §3.2.3 gives -k a parameter; a client that omits it still removes the key,
    and the event carries ``*`` so every replica consumes one argument for it."""
    net = network()
    net.mode(ALICE, b"#chan", b"+k", b"key")
    assert mode_event(net.mode(ALICE, b"#chan", b"-k")) == (b"-k", (b"*",))
    assert net.chan().password == b""


@pytest.mark.parametrize(
    ("target", "numeric"),
    [(b"nobody", N.ERR_NOSUCHNICK), (b"carol", N.ERR_USERNOTINCHANNEL)],
)
def test_mode_op_of_a_non_member(target: bytes, numeric: bytes) -> None:
    """RFC 2812 §3.2.3: +o/+v name a nick: 401 ERR_NOSUCHNICK if there is none, 441
    ERR_USERNOTINCHANNEL if it is not on the channel."""
    net = network()
    out = net.mode(ALICE, b"#chan", b"+o", target)
    assert mode_event(out) is None
    assert numerics(out) == [numeric]


def test_mode_b_without_argument_lists_the_bans() -> None:
    """RFC 2812 §3.2.3 / §5.1, Modern IRC: "MODE #chan +b" lists the bans, one "367
    RPL_BANLIST <channel> <banmask> [<who> <set-ts>]" each, then "368 RPL_ENDOFBANLIST"; any
    member may ask."""
    net = network()
    net.mode(ALICE, b"#chan", b"+bb", b"a", b"b")
    out = net.mode(BOB, b"#chan", b"+b")
    ts = b"%d" % (NOW // 1000)
    assert replies(out) == [
        (BOB, N.RPL_BANLIST, (b"#Chan", b"a!*@*", b"alice!~alice@host", ts)),
        (BOB, N.RPL_BANLIST, (b"#Chan", b"b!*@*", b"alice!~alice@host", ts)),
        (BOB, N.RPL_ENDOFBANLIST, (b"#Chan", b"End of channel ban list")),
    ]
    assert events(out) == []


def _mode_line(user: User, chan: Channel, modes: bytes, args: tuple[bytes, ...]) -> bytes:
    """The MODE line a worker sends every member (as the engine formats E_MODE)."""
    tail = b"".join(b" " + a for a in args[:-1]) + (b" :" + args[-1] if args else b"")
    return b":%s MODE %s %s%s\r\n" % (user.mask, chan.name, modes, tail)


@pytest.mark.parametrize("size", [10, 100, 250, 450, 600])
def test_mode_line_fits_in_512_bytes(size: int) -> None:
    """RFC 2812 §2.3: messages "SHALL NOT exceed 512 characters in length" (CR LF included):
    a change whose argument would overflow the MODE line every member gets is ignored, and
    a shorter one after it is still applied."""
    net = network()
    masks = [b"*!*@" + bytes([97 + i]) * size for i in range(4)]
    out = net.mode(ALICE, b"#chan", b"+bbbbb", *masks, b"s!*@*")
    found = mode_event(out)
    assert found is not None
    modes, args = found
    assert len(_mode_line(net.state.users[ALICE], net.chan(), modes, args)) <= MAX_LINE
    assert args[-1] == b"s!*@*"


# -- PRIVMSG / NOTICE (RFC 2812 §3.3) --------------------------------------------------------------


def test_approved_channel_message_is_delivered_to_the_channel() -> None:
    """RFC 2812 §3.3.1: a message to a channel goes to its members: one D_CHAN for the
    channel with the sender and the line formatted once, stamped with the decision's ms."""
    net = network()
    request = chanmsg(ALICE, b"#Chan")
    assert net.handle(request) == [
        ("channel", b"#chan", (D_CHAN, b"#chan", ALICE, request[3], 0, b"", 0, NOW)),
    ]


@pytest.mark.parametrize(
    ("setup", "sender"),
    [
        ((), CAROL),  # +n: not a member
        ((b"+m",), BOB),  # +m: no voice
        ((b"+b", b"bob"), BOB),  # banned member
        ((b"-n+b", b"carol"), CAROL),  # banned outsider on a -n channel
    ],
    ids=["+n", "+m", "+b", "-n+b"],
)
@pytest.mark.parametrize("notice", [False, True], ids=["privmsg", "notice"])
def test_channel_message_refusals(setup: tuple[bytes, ...], sender: int, notice: bool) -> None:
    """RFC 2812 §3.3.1: "404 ERR_CANNOTSENDTOCHAN <channel name> :Cannot send to channel"
    for +n, +m and bans; RFC 2812 §3.3.2: "automatic replies MUST NEVER be sent in response
    to a NOTICE message", so a refused NOTICE is dropped silently."""
    net = network()
    if setup:
        net.mode(ALICE, b"#chan", setup[0], *setup[1:])
    out = net.handle(chanmsg(sender, b"#chan", notice=notice, doubted=True))
    assert [kind for kind, _, _ in out if kind == "channel"] == []
    expected = (
        [] if notice else [(sender, N.ERR_CANNOTSENDTOCHAN, (b"#Chan", b"Cannot send to channel"))]
    )
    assert replies(out) == expected


@pytest.mark.parametrize("flag", [b"+v", b"+o"])
def test_voice_or_op_speaks_through_moderation_and_bans(flag: bytes) -> None:
    """Modern IRC "Moderated" (+m) and "Ban": members with voice or op may still speak."""
    net = network()
    net.mode(ALICE, b"#chan", b"+mb" + flag[1:], b"bob", b"bob")
    out = net.handle(chanmsg(BOB, b"#chan"))
    assert [kind for kind, _, _ in out] == ["channel"]


def test_refused_message_that_was_not_doubted_still_gets_its_404() -> None:
    """A message the worker approved but a change decided just before forbids (the race the
    sequencer settles): 404 to the sender, no delivery, and no D_DONE (nobody waits)."""
    net = network()
    net.mode(ALICE, b"#chan", b"+m")
    out = net.handle(chanmsg(BOB, b"#chan"))
    assert numerics(out) == [N.ERR_CANNOTSENDTOCHAN]
    assert dones(out) == []


def test_message_to_a_channel_that_is_gone_gets_403() -> None:
    """RFC 2812 §3.3.1 / §5.2: 403 ERR_NOSUCHCHANNEL naming the target as the sender wrote
    it."""
    net = network()
    out = net.handle(chanmsg(CAROL, b"#Gone", doubted=True))
    assert replies(out) == [(CAROL, N.ERR_NOSUCHCHANNEL, (b"#Gone", b"No such channel"))]


def test_user_message_goes_to_the_target_s_worker() -> None:
    """RFC 2812 §3.3.1: a message to a nick is delivered to that user alone: one D_USER to
    the worker holding it."""
    net = network()
    request = usermsg(ALICE, b"CAROL")
    delivery = make(DUser, CAROL, ALICE, request[3], 0, b"", 0, NOW)
    assert net.handle(request) == [("worker", 2, delivery)]


@pytest.mark.parametrize("notice", [False, True], ids=["privmsg", "notice"])
def test_user_message_to_an_unknown_nick(notice: bool) -> None:
    """RFC 2812 §3.3.1: "401 ERR_NOSUCHNICK <nickname> :No such nick/channel", with the
    nick as written; none for a NOTICE (RFC 2812 §3.3.2)."""
    net = network()
    out = net.handle(usermsg(ALICE, b"Nobody", notice=notice, doubted=True))
    expected = [] if notice else [(ALICE, N.ERR_NOSUCHNICK, (b"Nobody", b"No such nick/channel"))]
    assert replies(out) == expected
    assert [e for e in out if e[2][0] == D_USER] == []


@pytest.mark.parametrize("notice", [False, True], ids=["privmsg", "notice"])
def test_rpl_away_is_decided_by_the_sequencer(notice: bool) -> None:
    """RFC 2812 §4.1 AWAY: "301 RPL_AWAY <nick> :<away message>" answers a PRIVMSG to an away
    user (the message is still delivered); never a NOTICE. The sequencer decides it from its
    own state, which no replica can be behind."""
    net = network()
    net.handle(make(RAway, CAROL, b"gone fishing"))
    out = net.handle(usermsg(ALICE, b"carol", notice=notice))
    assert out[0][2][0] == D_USER
    expected = [] if notice else [(ALICE, N.RPL_AWAY, (b"carol", b"gone fishing"))]
    assert replies(out) == expected


# -- operators (Modern IRC "Operators": OPER, KILL, WALLOPS, overrides) -----------------------------

ALL = ("kill", "override", "see", "wallops")


def opered(uid: int, privileges: tuple[str, ...] = ALL, net: Net | None = None) -> Net:
    """``network()`` (or ``net``) with ``uid`` an operator of the block "admin"."""
    net = net if net is not None else network()
    net.handle(make(ROper, uid, b"admin", privileges))
    return net


def overrides(out: list[Entry]) -> list[tuple[int, int, bytes]]:
    """(worker, uid, action) of every D_OVERRIDE."""
    return [(w, r[1], r[2]) for kind, w, r in out if kind == "worker" and r[0] == D_OVERRIDE]


def test_oper_becomes_network_state() -> None:
    """The worker checked the password; the sequencer makes +o and the privileges an event
    every worker applies (its ``answer`` asks the operator's worker for 381 and MODE +o)."""
    net = network()
    out = net.handle(make(ROper, CAROL, b"admin", ("kill", "see")))
    assert out == [
        ("event", None, make(EOper, CAROL, b"admin", ("kill", "see"), True, NOW)),
        ("worker", 2, (D_DONE, CAROL, NOW)),
    ]
    assert net.state.users[CAROL].modes == b"o" and net.state.opers == 1


def test_umode_request_cannot_add_o() -> None:
    """RFC 2812 §3.1.5: only OPER gives +o. An R_UMODE that would add it (no worker sends one)
    is refused whole; one that keeps or drops an existing +o is applied."""
    net = network()
    out = net.handle(make(RUmode, BOB, b"io", b"+io"))
    assert events(out) == [] and dones(out) == [(1, BOB)]
    opered(BOB, net=net)
    assert events(net.handle(make(RUmode, BOB, b"io", b"+i"))) == [
        make(EUmode, BOB, b"io", b"+i", NOW)
    ]
    net.handle(make(RUmode, BOB, b"i", b"-o"))
    assert net.state.users[BOB].privileges == frozenset() and net.state.opers == 0


def test_kill_is_an_event_for_every_worker() -> None:
    """Modern IRC KILL, decided here whatever worker the victim is on: an E_KILL naming killer,
    victim (by uid) and comment; the victim leaves the state."""
    net = opered(ALICE)
    out = net.handle(make(RKill, ALICE, b"BOB", b"flooding"))
    assert out == [
        ("event", None, make(EKill, ALICE, BOB, b"flooding", NOW)),
        ("worker", 0, (D_DONE, ALICE, NOW)),
    ]
    assert BOB not in net.state.users and BOB not in net.chan().members


def test_kill_of_nobody_gets_401() -> None:
    net = opered(ALICE)
    out = net.handle(make(RKill, ALICE, b"nobody", b"x"))
    assert events(out) == []
    assert replies(out) == [(ALICE, N.ERR_NOSUCHNICK, (b"nobody", b"No such nick/channel"))]


@pytest.mark.parametrize("privileges", [None, ("wallops",)], ids=["user", "no-kill"])
def test_kill_needs_the_privilege_in_the_state(privileges: tuple[str, ...] | None) -> None:
    """The sequencer checks the authoritative privileges too (a -o decided after the worker
    looked): 481 ERR_NOPRIVILEGES, nobody killed."""
    net = network() if privileges is None else opered(ALICE, privileges)
    out = net.handle(make(RKill, ALICE, b"bob", b"x"))
    assert events(out) == [] and numerics(out) == [N.ERR_NOPRIVILEGES]


def test_wallops_goes_to_each_worker_holding_a_plus_w_user() -> None:
    """RFC 2812 §4.7 WALLOPS: one D_WALLOPS per worker that holds a user with +w (bob on 1,
    carol and dave on 2), none to a worker without one (alice's, 0)."""
    net = opered(ALICE)
    net.register(DAVE)
    for uid in (BOB, CAROL, DAVE):
        net.handle(make(RUmode, uid, b"w", b"+w"))
    wallops_line = b":alice!~alice@host WALLOPS :hi\r\n"
    out = net.handle(make(RWallops, ALICE, wallops_line))
    assert [(w, r) for kind, w, r in out if r[0] == D_WALLOPS] == [
        (1, (D_WALLOPS, ALICE, wallops_line, NOW)),
        (2, (D_WALLOPS, ALICE, wallops_line, NOW)),
    ]


def test_wallops_needs_the_privilege_in_the_state() -> None:
    net = opered(ALICE, ("kill",))
    net.handle(make(RUmode, BOB, b"w", b"+w"))
    out = net.handle(make(RWallops, ALICE, b":alice!~alice@host WALLOPS :hi\r\n"))
    assert numerics(out) == [N.ERR_NOPRIVILEGES]
    assert not [r for _, _, r in out if r[0] == D_WALLOPS]


@pytest.mark.parametrize(
    ("modes", "args", "rule"),
    [(b"+i", (), b"+i"), (b"+k", (b"key",), b"+k"), (b"+l", (b"2",), b"+l"),
     (b"+b", (b"*!*@*",), b"+b")],
)  # fmt: skip
def test_override_joins_despite_the_rules(
    modes: bytes, args: tuple[bytes, ...], rule: bytes
) -> None:
    """An operator with ``override`` joins despite +i, +k, +l and +b, and its worker is told
    to log it (D_OVERRIDE); without the privilege the usual refusal stands."""
    net = network()
    net.mode(ALICE, b"#chan", modes, *args)
    opered(CAROL, ("kill",), net)
    assert events(net.handle(make(RJoin, CAROL, b"#chan", b""))) == []
    opered(CAROL, ALL, net)
    out = net.handle(make(RJoin, CAROL, b"#chan", b""))
    assert events(out) == [make(EJoin, CAROL, b"#Chan", 0, NOW // 1000, (), NOW)]
    assert overrides(out) == [(2, CAROL, b"JOIN #Chan despite " + rule)]


def test_override_does_not_pass_the_users_own_channel_limit() -> None:
    """CHANLIMIT is the user's limit, not a channel's rule: no override."""
    net = opered(CAROL, net=network(max_channels=1))
    net.join(CAROL, b"#mine")
    out = net.handle(make(RJoin, CAROL, b"#chan", b""))
    assert numerics(out) == [N.ERR_TOOMANYCHANNELS] and overrides(out) == []


def test_override_acts_as_a_channel_operator() -> None:
    """With ``override``, a member who is not a channel operator sets the topic of a +t
    channel, kicks, invites to a +i channel and changes modes; each is logged by its worker.
    A channel operator's own acts need no override."""
    net = opered(BOB)
    out = net.handle(make(RTopic, BOB, b"#chan", b"mine"))
    assert [e[0] for e in events(out)] == [E_TOPIC]
    assert overrides(out) == [(1, BOB, b"TOPIC #Chan (not a channel operator)")]
    out = net.mode(BOB, b"#chan", b"+im-t")
    assert mode_event(out) == (b"+im-t", ())
    assert overrides(out) == [(1, BOB, b"MODE #Chan +im-t (not a channel operator)")]
    out = net.handle(make(RInvite, BOB, b"carol", b"#chan"))
    assert [e[0] for e in events(out)] == [E_INVITE]
    assert overrides(out) == [(1, BOB, b"INVITE carol #Chan (not a channel operator)")]
    out = net.handle(make(RKick, BOB, b"#chan", b"alice", b"out"))
    assert events(out) == [make(EKick, BOB, b"#chan", ALICE, b"out", NOW)]
    assert overrides(out) == [(1, BOB, b"KICK #Chan alice (not a channel operator)")]
    out = net.mode(BOB, b"#chan", b"+o", b"bob")
    assert overrides(out) == [(1, BOB, b"MODE #Chan +o Bob (not a channel operator)")]
    out = net.mode(BOB, b"#chan", b"-m")
    assert mode_event(out) == (b"-m", ()) and overrides(out) == []


def test_override_of_modes_that_change_nothing_is_not_logged() -> None:
    """An override that changed nothing (``+n`` on a +n channel) is no act to log."""
    net = opered(BOB)
    out = net.mode(BOB, b"#chan", b"+n")
    assert mode_event(out) is None and overrides(out) == [] and numerics(out) == []


def test_mode_without_override_is_still_482() -> None:
    net = opered(BOB, ("kill",))
    out = net.mode(BOB, b"#chan", b"+m")
    assert mode_event(out) is None and numerics(out) == [N.ERR_CHANOPRIVSNEEDED]


# -- server bans (K-lines) -------------------------------------------------------------------------


def test_kline_is_one_event_stamped_now_with_its_victims() -> None:
    """KLINE, decided here whatever worker the victims are on: one E_KLINE with the mask as
    written, the setter's nick, the reason, the decision's time and the expiry counted from
    it (ms), and every user the mask matches (``*!`` + mask against nick!user@host, any
    case), who leaves the state in the same event."""
    net = opered(ALICE, ("kline",))
    out = net.handle(make(RKline, ALICE, b"~BOB@HOST", 5400, b"flooding"))
    assert out == [
        (
            "event",
            None,
            make(EKline, ALICE, b"~BOB@HOST", b"alice", b"flooding", NOW, NOW + 5_400_000,
                 (BOB,), NOW),
        ),
        ("worker", 0, (D_DONE, ALICE, NOW)),
    ]  # fmt: skip
    assert BOB not in net.state.users and BOB not in net.chan().members
    assert [k.mask for k in net.state.active_klines(NOW)] == [b"~BOB@HOST"]


def test_a_permanent_kline_and_one_that_matches_nobody() -> None:
    """Duration 0 is for good (expiry 0); a K-line that matches nobody is kept all the same."""
    net = opered(ALICE, ("kline",))
    out = net.handle(make(RKline, ALICE, b"*@192.0.2.*", 0, b"r"))
    assert events(out) == [make(EKline, ALICE, b"*@192.0.2.*", b"alice", b"r", NOW, 0, (), NOW)]
    assert len(net.state.users) == 3


@pytest.mark.parametrize("privileges", [None, ("kill",)], ids=["user", "no-kline"])
def test_kline_and_unkline_need_the_privilege_in_the_state(
    privileges: tuple[str, ...] | None,
) -> None:
    """The sequencer checks the authoritative privileges (the worker asked its replica, which
    may not have applied a -o yet): 481 ERR_NOPRIVILEGES, nothing banned or lifted."""
    net = opered(CAROL, ("kline",))
    net.handle(make(RKline, CAROL, b"~nobody@*", 0, b"r"))
    if privileges is not None:
        opered(ALICE, privileges, net)
    out = net.handle(make(RKline, ALICE, b"~bob@*", 0, b"r"))
    assert events(out) == [] and numerics(out) == [N.ERR_NOPRIVILEGES]
    out = net.handle(make(RUnkline, ALICE, b"~nobody@*"))
    assert events(out) == [] and numerics(out) == [N.ERR_NOPRIVILEGES]
    assert BOB in net.state.users and len(net.state.klines) == 1


def test_unkline_lifts_any_case_or_says_there_is_none() -> None:
    """UNKLINE: an E_UNKLINE naming the K-line's mask as it was set (looked up in any case);
    a mask with no K-line in force (never set, or expired) gets a NOTICE (D_NOTICE) for the
    operator's worker, and no event."""
    net = opered(ALICE, ("kline",))
    net.handle(make(RKline, ALICE, b"*@192.0.2.1", 0, b"r"))
    net.handle(make(RKline, ALICE, b"*@192.0.2.2", 60, b"r"))
    out = net.handle(make(RUnkline, ALICE, b"*@192.0.2.1"))
    assert events(out) == [make(EUnkline, ALICE, b"*@192.0.2.1", NOW)]
    for mask, now in ((b"*@192.0.2.1", NOW), (b"*@192.0.2.2", NOW + 60_000)):
        out = net.handle(make(RUnkline, ALICE, mask), now=now)
        assert events(out) == []
        assert [(w, r) for kind, w, r in out if r[0] == D_NOTICE] == [
            (0, (D_NOTICE, ALICE, b"*** UNKLINE: no K-line on " + mask, now))
        ]


def test_registration_matching_a_kline_gets_465_and_is_closed() -> None:
    """Modern IRC ERR_YOUREBANNEDCREEP (465), "You are banned from this server": a
    registration a K-line in force matches (by its username and host, whatever the nick) is
    refused with it, then closed (D_KILL with ``K-Lined: <reason>``); nobody sees it, no
    autojoin; its D_DONE still comes last."""
    net = opered(ALICE, ("kline",), network(autojoin=(b"#lobby",)))
    net.handle(make(RKline, ALICE, b"~dave@h*", 0, b"spam"))
    out = net.handle(make(RRegister, DAVE, b"newnick", b"~Dave", b"host", b"r"))
    assert out == [
        ("worker", 2, make(
            DReply, DAVE, N.ERR_YOUREBANNEDCREEP, (b"You are banned from this server (spam)",),
            NOW)),
        ("worker", 2, make(DKill, DAVE, b"K-Lined: spam", NOW)),
        ("worker", 2, (D_DONE, DAVE, NOW)),
    ]  # fmt: skip
    assert DAVE not in net.state.users and DAVE not in net.chan(b"#lobby").members


def test_an_expired_kline_refuses_nobody() -> None:
    """A timed K-line bans until its expiry (ms after the decision that set it), not after."""
    net = opered(ALICE, ("kline",))
    net.handle(make(RKline, ALICE, b"~dave@*", 60, b"spam"))
    register = make(RRegister, DAVE, b"dave", b"~dave", b"host", b"r")
    assert numerics(net.handle(register, now=NOW + 59_999)) == [N.ERR_YOUREBANNEDCREEP]
    assert [e[0] for e in events(net.handle(register, now=NOW + 60_000))] == [E_INTRO]


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        (b"~bob@10.0.0.*", None),
        (b"*@192.0.2.1", None),
        (b"bob*@*", None),
        (b"*@::1", None),
        (b"*@*", b"would match everyone"),
        (b"**@?*", b"would match everyone"),
        (b"~*@*.*", b"would match everyone"),
        (b"*@*:*", b"would match everyone"),
        (b"bob!*@*", b"names a nick: a K-line is user@host only"),
        (b"bob", b"is not a user@host mask"),
        (b"@host", b"is not a user@host mask"),
        (b"bob@", b"is not a user@host mask"),
        (b"a@b@c", b"is not a user@host mask"),
        (b"b[o]b@*", b"may hold only letters, digits, the wildcards * and ?, and - _ . ~ : @"),
        (b"b\xc3\xa9@*", b"may hold only letters, digits, the wildcards * and ?, and - _ . ~ : @"),
        (b"x" * 99 + b"@h", b"is longer than 100 bytes"),
    ],
)
def test_kline_mask_problem(mask: bytes, problem: bytes | None) -> None:
    """A K-line mask is ``user@host`` with wildcards and names somebody: a mask every user
    would match (its user part only wildcards and ``~``, its host only wildcards, dots and
    colons) is refused, as is anything a username and host cannot look like."""
    assert kline_mask_problem(mask) == problem


def test_kline_matches_user_at_host_whatever_the_nick() -> None:
    user = User(1, b"Nick", b"~Bob", b"10.0.0.2", b"r", 0, 0)
    assert kline_matches(b"~bob@10.0.0.?", user)
    assert kline_matches(b"*@10.0.*", user)
    assert not kline_matches(b"bob@*", user)  # without ident, every username has its ~
    assert not kline_matches(b"*@10.0.0.20", user)


# -- handle_batch is handle, faster ----------------------------------------------------------------

_CHANNELS = [b"#a", b"#B", b"#chan", b"#d", b"#e", b"#f"]
_NICKS = [b"alice", b"Bob", b"carol", b"dave", b"eve", b"frank"]
_MODES = b"+m -m +i -i +n -n +k -k +l -l +o -o +v +b -b".split()
#: How often each kind of request comes, roughly as in real traffic.
_WEIGHTS = {"chanmsg": 40, "usermsg": 8, "register": 8, "join": 15, "mode": 15, "nick": 3}
_WEIGHTS |= {"part": 3, "topic": 4, "kick": 3, "invite": 3, "away": 3, "umode": 3, "sync": 2}
_WEIGHTS |= {"quit": 1}


def _random_request(rng: random.Random, uid: int, state: State) -> Record:
    """One request from ``uid``, weighted roughly as traffic is: mostly channel messages,
    then joins and mode changes, rarely a quit; mostly about a channel the user is on (as
    ``state`` says), so that requests are often allowed."""
    user = state.users.get(uid)
    if user is not None and user.channels and rng.random() < 0.7:
        chan = rng.choice(user.channels).name
    else:
        chan = rng.choice(_CHANNELS)
    nick = rng.choice(_NICKS)
    notice = rng.random() < 0.2
    doubted = rng.random() < 0.3
    kind = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
    if kind == "chanmsg":
        line = b":x PRIVMSG %s :hi" % chan
        return make(RChanMsg, uid, fold(chan), line, notice, doubted, 0, b"", 0)
    if kind == "usermsg":
        line = b":x PRIVMSG %s :hi" % nick
        return make(RUserMsg, uid, fold(nick), line, notice, doubted, False, 0, b"", 0)
    if kind == "register":
        return make(RRegister, uid, nick, b"~u", b"host", b"Real")
    if kind == "join":
        return make(RJoin, uid, chan, rng.choice([b"", b"key"]))
    if kind == "mode":
        arg = rng.choice([nick, b"key", b"2", b"*!*@host"])
        return make(RMode, uid, chan, rng.choice(_MODES), (arg,))
    if kind == "nick":
        return make(RNick, uid, nick.upper())
    if kind == "part":
        return make(RPart, uid, chan, b"bye")
    if kind == "topic":
        return make(RTopic, uid, chan, b"topic %d" % rng.randint(0, 9))
    if kind == "kick":
        return make(RKick, uid, chan, nick, b"out")
    if kind == "invite":
        return make(RInvite, uid, nick, chan)
    if kind == "away":
        return make(RAway, uid, rng.choice([b"", b"away"]))
    if kind == "umode":
        return make(RUmode, uid, rng.choice([b"", b"i"]), b"")
    if kind == "sync":
        return make(RSync, uid)
    return make(RQuit, uid, b"bye")


@pytest.mark.parametrize("seed", range(8))
def test_handle_batch_decides_as_handle_does(seed: int) -> None:
    """sequencer.py, ``handle_batch``: the hot path for approved channel messages "without
    the per-request dispatch"; whatever it shortcuts, a batch must be decided exactly as the
    same requests one by one through ``handle``: same records in the same order, same
    state. Batches come from four workers, each with the requests of its own users."""
    rng = random.Random(seed)
    one_by_one, batched = Net(autojoin=(b"#chan",)), Net(autojoin=(b"#chan",))
    for turn in range(150):
        origin = rng.randrange(4)
        uids = [uid for uid in range(1, 13) if uid % 4 == origin]
        batch = [
            _random_request(rng, rng.choice(uids), one_by_one.state)
            for _ in range(rng.randint(1, 15))
        ]
        now = NOW + turn * 1000
        for request in batch:
            one_by_one.handle(request, origin=origin, now=now)
        batched.batch(batch, origin, now)
    assert batched.router.log == one_by_one.router.log
    assert batched.state.snapshot() == one_by_one.state.snapshot()
    kinds = {record[0] for _, _, record in batched.router.log}
    assert {D_CHAN, E_MODE, E_JOIN, D_REPLY} <= kinds  # the hot path and the general one ran


# -- the rules, called directly --------------------------------------------------------------------


def _user(nick: bytes = b"BadGuy", username: bytes = b"~bad", host: bytes = b"10.0.0.1") -> User:
    return User(9, nick, username, host, b"Real", 0, 0)


@pytest.mark.parametrize(
    ("mask", "user", "matches"),
    [
        (b"*!*@*", _user(), True),
        (b"Bad*!*@*", _user(b"badguy"), True),
        (b"BADGUY!~BAD@10.0.0.1", _user(), True),
        (b"*!*@10.0.0.*", _user(), True),
        (b"*!*@10.0.0.?", _user(), True),
        (b"*!*@10.0.0.??", _user(), False),
        (b"[x]!*@*", _user(b"{X}"), True),  # rfc1459 folding applies to masks too
        (b"a\\b!*@*", _user(b"A|B"), True),
        (b"a.b!*@*", _user(b"axb"), False),  # '.' is literal, not a regex wildcard
        (b"a+!*@*", _user(b"aa"), False),
        (b"good*!*@*", _user(), False),
        (b"badguy", _user(), False),  # a mask is matched whole: complete it first
        (b"*!*@10.0.0.1*", _user(host=b"10.0.0.12"), True),
        (b"*!*@host", _user(host=b"host.evil"), False),
    ],
)
def test_mask_matches(mask: bytes, user: User, matches: bool) -> None:
    """RFC 2812 §3.2.3 ban masks (and RFC 2812 §2.5 wildcards): ``*`` any run, ``?`` one
    character, everything else literal, compared under the rfc1459 case mapping, against the
    whole of ``nick!user@host``."""
    assert mask_matches(mask, user) is matches


@pytest.mark.parametrize(
    ("mask", "normalised"),
    [
        (b"nick", b"nick!*@*"),
        (b"*", b"*!*@*"),
        (b"user@host", b"*!user@host"),
        (b"nick!user", b"nick!user@*"),
        (b"nick!user@host", b"nick!user@host"),
        (b"*!*@*", b"*!*@*"),
    ],
)
def test_normalise_mask(mask: bytes, normalised: bytes) -> None:
    """Modern IRC "Ban Channel Mode": a partial mask is completed to ``nick!user@host`` with
    ``*`` for what is missing, so the ban list shows what is matched."""
    assert normalise_mask(mask) == normalised


def _speak_state(modes: bytes, bans: tuple[bytes, ...], flags: int | None) -> tuple[State, Channel]:
    net = network()
    c = net.chan()
    c.modes = modes
    c.bans = tuple(ListEntry(mask, b"", 0) for mask in bans)
    if flags is None:
        c.members.pop(BOB)
    else:
        c.members[BOB] = flags
    return net.state, c


@pytest.mark.parametrize(
    ("modes", "bans", "flags", "allowed"),
    [
        (b"nt", (), 0, True),
        (b"nt", (), None, False),  # +n: outsiders may not
        (b"t", (), None, True),
        (b"mnt", (), 0, False),
        (b"mnt", (), VOICE, True),
        (b"mnt", (), OP, True),
        (b"mt", (), None, False),  # +m silences outsiders too
        (b"nt", (b"bob!*@*",), 0, False),
        (b"nt", (b"BOB!*@*",), VOICE, True),
        (b"nt", (b"other!*@*",), 0, True),
        (b"t", (b"*!*@host",), None, False),
    ],
)
def test_may_speak(modes: bytes, bans: tuple[bytes, ...], flags: int | None, allowed: bool) -> None:
    """RFC 2812 §3.3.1 / Modern IRC channel modes: "+n keeps out non-members; +m silences
    members without voice or op; a ban silences members without voice or op"."""
    state, c = _speak_state(modes, bans, flags)
    assert may_speak(state, c, BOB) is allowed


def test_message_refusal() -> None:
    """The shared rule, asked by worker and sequencer alike: 403 for a channel that does not
    exist (named as written), 404 naming the channel as created, 401 for an unknown nick,
    None when the message may go."""
    net = network()
    state = net.state
    assert message_refusal(state, BOB, b"#chan", b"#CHAN", True) is None
    assert message_refusal(state, CAROL, b"#chan", b"#CHAN", True) == (
        N.ERR_CANNOTSENDTOCHAN,
        b"#Chan",
        b"Cannot send to channel",
    )
    assert message_refusal(state, BOB, b"#none", b"#None", True) == (
        N.ERR_NOSUCHCHANNEL,
        b"#None",
        b"No such channel",
    )
    assert message_refusal(state, BOB, b"carol", b"Carol", False) is None
    assert message_refusal(state, BOB, b"nobody", b"NoBody", False) == (
        N.ERR_NOSUCHNICK,
        b"NoBody",
        b"No such nick/channel",
    )
