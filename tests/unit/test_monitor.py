"""IRCv3 MONITOR (https://ircv3.net/specs/extensions/monitor) through the sans-I/O core, at one
worker (the sequencer in the worker) and at two (an in-memory hub), with the watcher on
worker 0 and the nicks it watches on the other worker when there are two: the watcher's
worker hears of a sign-on, nick change, quit, kill or K-line elsewhere from the events it
applies. FakeNet's clients connect from 10.0.0.<worker + 1> as ``~<nick>``; nobody is joined
to a channel on registration, so no line but MONITOR's reaches the watcher.
"""

from __future__ import annotations

import pytest

from fastchat.irc.message import MAX_LINE
from fastchat.server.commands.monitor import extended_watchers
from fastchat.server.config import OperBlock
from fastchat.server.passwords import hash_password
from tests.unit.fakenet import FakeNet

S = ":fastchat.local"
OPERS = (
    OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"kill", "kline"})),
)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=(), opers=OPERS)


def mask(net: FakeNet, nick: str, user: str | None = None) -> str:
    """``nick!~user@host`` of a FakeNet user registered (as ``user``) on the last worker."""
    return f"{nick}!~{user or nick}@10.0.0.{net.last + 1}"


# -- ISUPPORT --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "token"), [(100, "MONITOR=100"), (3, "MONITOR=3"), (0, "MONITOR")]
)
def test_isupport_announces_the_limit(limit: int, token: str) -> None:
    """The spec: "Support of this specification is indicated by the MONITOR token in
    RPL_ISUPPORT ... If no parameter is specified, there is no limit" (``max_monitor`` 0)."""
    net = FakeNet(max_monitor=limit)
    c = net.connect(0)
    c.send("NICK ann", "USER ann 0 * :Ann")
    tokens = [w for line in c.lines() if " 005 " in line for w in line.split()]
    assert token in tokens


# -- notifications ---------------------------------------------------------------------------


def test_a_nick_that_signs_on_and_off_elsewhere(net: FakeNet) -> None:
    """``MONITOR +`` answers 731 for an offline target; when it signs on, on whichever worker,
    730 ``nick!user@host`` (the spec: "The server MAY send a hostmask"); when it quits, 731.
    Notifications are addressed to ``*`` ("the server may send "*" instead of the nick"),
    so every watcher gets the same bytes."""
    ann = net.user("ann")
    ann.send("MONITOR + bob")
    assert ann.lines() == [f"{S} 731 ann :bob"]
    bob = net.user("bob", net.last)
    assert ann.lines() == [f"{S} 730 * :{mask(net, 'bob')}"]
    bob.send("QUIT :bye")
    assert ann.lines() == [f"{S} 731 * :bob"]


def test_online_and_offline_targets_answered_at_once(net: FakeNet) -> None:
    """The spec: RPL_MONONLINE for the targets being added that are online, RPL_MONOFFLINE for
    the others; online ones as their nick is written now, offline ones as the client wrote
    them. A target named twice is reported once."""
    net.user("Bob", net.last)
    ann = net.user("ann")
    ann.send("MONITOR + bob,Cy,BOB")
    assert ann.lines() == [f"{S} 730 ann :{mask(net, 'Bob')}", f"{S} 731 ann :Cy"]


def test_a_nick_change_is_the_old_nick_leaving_and_the_new_arriving(net: FakeNet) -> None:
    """A nick change: 731 for the old nick (as it was written), 730 for the new one; a change
    of case only changes no monitored nick, so nothing is sent (Ergo, irctest)."""
    ann = net.user("ann")
    ann.send("MONITOR + qux,bob")
    ann.lines()
    bob = net.user("bob", net.last)
    ann.lines()
    bob.send("NICK qux")
    assert ann.lines() == [f"{S} 731 * :bob", f"{S} 730 * :{mask(net, 'qux', 'bob')}"]
    bob.send("NICK QUX")
    assert ann.lines() == []
    bob.send("NICK other")
    assert ann.lines() == [f"{S} 731 * :QUX"]


def test_a_kill_and_a_k_line_take_the_nick_offline(net: FakeNet) -> None:
    """A user killed or K-lined leaves the network as a quit does: 731 to its watchers."""
    ann = net.user("ann")
    oper = net.user("ada")
    oper.send("OPER admin secret")
    oper.lines()
    net.user("bob", net.last)
    net.user("cy", net.last)
    ann.send("MONITOR + bob,cy")
    ann.lines()
    oper.send("KILL bob :spam")
    assert ann.lines() == [f"{S} 731 * :bob"]
    oper.send("KLINE ~cy@* :spam")
    assert ann.lines() == [f"{S} 731 * :cy"]


def test_watchers_on_both_workers_and_one_removes(net: FakeNet) -> None:
    """Each worker notifies its own watchers; ``MONITOR -`` answers nothing and stops the
    notifications for that client only."""
    ann = net.user("ann")
    dee = net.user("dee", net.last)
    for c in (ann, dee):
        c.send("MONITOR + qux")
        c.lines()
    dee.send("MONITOR - QUX")
    assert dee.lines() == []
    net.user("qux", net.last)
    assert ann.lines() == [f"{S} 730 * :{mask(net, 'qux')}"]
    assert dee.lines() == []


def test_the_monitor_answer_is_current_across_workers() -> None:
    """The read barrier: ``MONITOR +`` answers from the replica only once it has applied
    everything the sequencer decided before the query. Here bob's sign-on on worker 1 is
    decided (bob has his 001) while worker 0 has not applied it yet: the answer still says
    bob is online. And when the query is decided first, the 731 answer is followed by the
    730 notification: either way the watcher's story is whole."""
    net = FakeNet(workers=2, autojoin=())
    ann = net.user("ann")
    bob = net.connect(1)
    bob.send("NICK bob", "USER bob 0 * :Bob", pump=False)
    core = net.cores[1]
    while core.outbox or net.queues[1]:  # worker 1 and the hub only
        batch, core.outbox = core.outbox, []
        for request in batch:
            net.sequencer.handle(1, request, int(net.now * 1000))
        records, net.queues[1] = net.queues[1], []
        core.apply_batch(records, net.now)
    assert any(b" 001 bob " in chunk for chunk in bob.client.pending)  # (lines() would pump)
    assert net.cores[0].state.user_by_nick(b"bob") is None  # worker 0 is behind
    ann.send("MONITOR + bob")
    assert ann.lines() == [f"{S} 730 ann :bob!~bob@10.0.0.2"]

    net = FakeNet(workers=2, autojoin=())
    ann = net.user("ann")
    bob = net.connect(1)
    ann.send("MONITOR + bob", pump=False)
    bob.send("NICK bob", "USER bob 0 * :Bob", pump=False)
    net.pump(order=[0, 1])
    assert ann.lines() == [f"{S} 731 ann :bob", f"{S} 730 * :bob!~bob@10.0.0.2"]


# -- the list ------------------------------------------------------------------------------


def test_list_status_and_clear(net: FakeNet) -> None:
    """``L``: 732 with the nicks as the client wrote them, then 733; ``S``: 730 for the
    online ones, 731 for the others; ``C`` "Clears the list ... No output will be returned";
    an empty list is just 733."""
    net.user("bob", net.last)
    ann = net.user("ann")
    ann.send("MONITOR + Bob,cy")
    ann.lines()
    ann.send("MONITOR L", "MONITOR S")
    assert ann.lines() == [
        f"{S} 732 ann :Bob,cy",
        f"{S} 733 ann :End of MONITOR list",
        f"{S} 730 ann :{mask(net, 'bob')}",
        f"{S} 731 ann :cy",
    ]
    ann.send("MONITOR C", "MONITOR L", "MONITOR S")
    assert ann.lines() == [f"{S} 733 ann :End of MONITOR list"]
    net.user("cy", net.last)
    assert ann.lines() == []


def test_a_watchers_departure_forgets_its_list(net: FakeNet) -> None:
    """A watcher that quits, drops or is killed leaves no list behind on its worker."""
    core = net.cores[0]
    oper = net.user("ada", net.last)
    oper.send("OPER admin secret")
    for how in ("quit", "drop", "kill"):
        ann = net.user("ann")
        ann.send("MONITOR + bob,cy,ann")
        assert core.monitors.lists and core.monitors.watchers
        if how == "quit":
            ann.send("QUIT")
        elif how == "drop":
            core.disconnect(ann.client, b"Connection reset by peer", flush=False)
            net.pump()
        else:
            oper.send("KILL ann :bye")
        assert core.monitors.lists == {} and core.monitors.watchers == {}, how


# -- bad input ------------------------------------------------------------------------------


def test_a_full_list(net: FakeNet) -> None:
    """734 ``<limit> <targets> :Monitor list is full.``, "the list of targets, as the client
    sent them, that cannot be added": the rest from the first that did not fit, as Charybdis
    does; those before it are added and answered. Targets already on the list take no room."""
    net = FakeNet(workers=len(net.cores), autojoin=(), max_monitor=3)
    ann = net.user("ann")
    ann.send("MONITOR + a1,a2")
    ann.lines()
    ann.send("MONITOR + A1,b1,c1,*bad,d1")
    assert ann.lines() == [
        f"{S} 734 ann 3 c1,*bad,d1 :Monitor list is full.",
        f"{S} 731 ann :A1,b1",
    ]
    ann.send("MONITOR + b1", "MONITOR + e1")
    assert ann.lines() == [f"{S} 731 ann :b1", f"{S} 734 ann 3 e1 :Monitor list is full."]
    ann.send("MONITOR L")
    assert ann.lines()[0] == f"{S} 732 ann :a1,a2,b1"


def test_no_limit() -> None:
    """``max_monitor`` 0: no limit (a bare MONITOR token)."""
    net = FakeNet(autojoin=(), max_monitor=0)
    ann = net.user("ann")
    for i in range(3):
        ann.send("MONITOR + " + ",".join(f"n{i}x{j}" for j in range(60)))
    ann.lines()
    assert len(net.cores[0].monitors.lists[ann.client.uid]) == 180


def test_invalid_nicks_are_ignored(net: FakeNet) -> None:
    """The spec: "'target' MUST be a valid nick", and MONITOR "disallow[s] subscription to
    hostmasks": masks, channels and other non-nicks are left out without a reply (as
    Charybdis); nobody who connects later is reported for them."""
    ann = net.user("ann")
    ann.send("MONITOR + *!~bob@*,#chan,9lives,,bob!x@y")
    ann.send("MONITOR + ok,*!*@*")
    assert ann.lines() == [f"{S} 731 ann :ok"]
    net.user("bob", net.last)
    assert ann.lines() == []


def test_overlong_lists_are_split_and_cut(net: FakeNet) -> None:
    """The spec: target lists are "limited only by the buffer size of 512 chars": a long
    answer is as many 731 (or 732) lines as 512 bytes need, every target once; a 734's
    targets are cut at a comma so that it fits too."""
    net = FakeNet(workers=len(net.cores), autojoin=(), max_monitor=200)
    ann = net.user("ann")
    nicks = [f"nick{i:03d}xyzzy" for i in range(150)]
    for i in range(0, 150, 30):  # lines a client may send: each under 512 bytes
        ann.send("MONITOR + " + ",".join(nicks[i : i + 30]))
    ann.send("MONITOR S", "MONITOR L")
    got = ann.raw_lines()
    assert all(len(line) + 2 <= MAX_LINE for line in got)
    offline = [line for line in got if b" 731 " in line]
    listed = [line for line in got if b" 732 " in line]
    assert len(offline) > 5 + 1  # five answers, then S: more than one line
    seen = [n.decode() for line in offline[5:] for n in line.split(b" :", 1)[1].split(b",")]
    assert seen == nicks
    assert [n.decode() for line in listed for n in line.split(b" :", 1)[1].split(b",")] == nicks
    # a 30-byte nick and a long server name: the targets the client sent no longer fit
    name = "irc.a-rather-long-server-name.example"
    net = FakeNet(workers=len(net.cores), autojoin=(), max_monitor=1, server_name=name.encode())
    nick = "a" * 30
    ann = net.user(nick)
    long_targets = ",".join(f"n{i:02d}ab{'x' * 20}" for i in range(18))
    ann.send("MONITOR + " + long_targets)
    (full, answer) = ann.raw_lines()
    assert full.startswith(f":{name} 734 {nick} 1 n01ab".encode())
    assert full.endswith(b" :Monitor list is full.") and len(full) + 2 <= MAX_LINE
    cut = full.split(b" ")[4].decode()
    assert long_targets.split(",", 1)[1].startswith(cut + ",")
    assert answer == f":{name} 731 {nick} :n00ab{'x' * 20}".encode()


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("MONITOR", "461 ann MONITOR :Not enough parameters"),
        ("MONITOR +", "461 ann MONITOR :Not enough parameters"),
        ("MONITOR - :", "461 ann MONITOR :Not enough parameters"),
        ("MONITOR X bob", "400 ann MONITOR X :Unknown subcommand"),
    ],
)
def test_bad_commands(net: FakeNet, line: str, reply: str) -> None:
    ann = net.user("ann")
    ann.send(line)
    assert ann.lines() == [f"{S} {reply}"]


def test_modifiers_in_either_case(net: FakeNet) -> None:
    ann = net.user("ann")
    ann.send("MONITOR + bob", "MONITOR l", "MONITOR c", "MONITOR s")
    assert ann.lines() == [
        f"{S} 731 ann :bob",
        f"{S} 732 ann :bob",
        f"{S} 733 ann :End of MONITOR list",
    ]


# -- extended-monitor ------------------------------------------------------------------------


def test_extended_watchers(net: FakeNet) -> None:
    """IRCv3 extended-monitor: who of this worker's watchers gets a monitored user's
    state-change notification of some capability (server-time stands in for away-notify
    here): those that negotiated both extended-monitor and it, and watch the user's nick."""
    both = net.negotiated(0, "both", "extended-monitor", "server-time")
    ext = net.negotiated(0, "ext", "extended-monitor")
    plain = net.negotiated(0, "plain", "server-time")
    for c in (both, ext, plain):
        c.send("MONITOR + bob")
    net.negotiated(net.last, "bob")
    core = net.cores[0]
    bob = core.state.user_by_nick(b"bob")
    assert bob is not None
    bit = core.caps.bit(b"server-time")
    assert extended_watchers(core, bob, bit) == [both.client]
    both.send("MONITOR - bob")
    assert extended_watchers(core, bob, bit) == []


# -- labeled-response --------------------------------------------------------------------------


def test_labeled_monitor_replies_and_notices_beside_them() -> None:
    """IRCv3 labeled-response: the answer to a labeled ``MONITOR +`` carries the label, a
    ``MONITOR -`` that answers nothing gets an ACK; a notification that arrives while the
    watcher's labeled command is open (here a JOIN waiting for the sequencer, while the
    watched nick's sign-on elsewhere, decided first, reaches the watcher's worker) is no part
    of that reply: it goes out unlabeled, before the labeled batch."""
    net = FakeNet(workers=2, autojoin=())
    ann = net.negotiated(0, "ann", "batch", "labeled-response")
    ann.send("@label=a MONITOR + bob", "@label=b MONITOR - nobody")
    assert ann.lines() == [
        "@label=a :fastchat.local 731 ann :bob",
        "@label=b :fastchat.local ACK",
    ]
    bob = net.connect(1)
    bob.send("NICK bob", "USER bob 0 * :Bob", pump=False)
    core = net.cores[1]
    while core.outbox or net.queues[1]:  # bob signs on; worker 0 has not applied it yet
        batch, core.outbox = core.outbox, []
        for request in batch:
            net.sequencer.handle(1, request, int(net.now * 1000))
        records, net.queues[1] = net.queues[1], []
        core.apply_batch(records, net.now)
    ann.send("@label=c JOIN #x")
    got = ann.lines()
    assert got[0] == f"{S} 730 * :bob!~bob@10.0.0.2"
    assert got[1].startswith("@label=c :fastchat.local BATCH +")
    assert all(" 730 " not in line for line in got[1:])


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_extended_monitor_gets_away_setname_and_chghost_of_watched_nicks(workers: int) -> None:
    """IRCv3 extended-monitor: a watcher that shares no channel with the watched user gets
    its AWAY (with away-notify), SETNAME (with setname) and CHGHOST (with chghost), once,
    wherever the user is; a watcher without extended-monitor gets none of them."""
    oper = OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"chghost"}))
    net = FakeNet(workers=workers, opers=(oper,), autojoin=())
    caps = ("away-notify", "setname", "chghost")
    ext = net.negotiated(0, "ext", "extended-monitor", *caps)
    plain = net.negotiated(0, "plain", *caps)
    for c in (ext, plain):
        c.send("MONITOR + bob")
    bob = net.negotiated(net.last, "bob")
    op = net.user("op", net.last)
    op.send("OPER admin secret")
    for c in (ext, plain):
        c.lines()
    bob.send("AWAY :lunch", "SETNAME :Robert")
    op.send("CHGHOST bob robert example.org")
    old = mask(net, "bob")
    assert ext.lines() == [
        f":{old} AWAY :lunch",
        f":{old} SETNAME :Robert",
        f":{old} CHGHOST robert example.org",
    ]
    assert plain.lines() == []
