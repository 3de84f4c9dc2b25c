"""Server bans (K-lines) through the sans-I/O core: KLINE and UNKLINE from an operator, decided
by the sequencer, enforced on the users a K-line matches (on every worker, at once) and at
registration, listed by STATS k, and logged with who did what.

Every transcript runs at one worker (the sequencer in the worker) and at two (an in-memory
hub), with the users that matter on the other worker than the operator. FakeNet's clients
connect from 10.0.0.<worker + 1>, and their usernames are ``~<nick>`` (no ident), so a
K-line names a user as ``~nick@*``. Nobody is joined to a channel on registration.

Spec: Modern IRC ERR_YOUREBANNEDCREEP (465), STATS ``k`` with RPL_STATSKLINE (216) and
RPL_ENDOFSTATS (219), ERR_NOPRIVILEGES (481); the command as InspIRCd has it (KLINE <mask>
[<duration> :<reason>]) and UNKLINE as Solanum and ircd-hybrid have it.
"""

from __future__ import annotations

import logging
import re
import socket
import time

import pytest

from fastchat.irc.casemap import fold
from fastchat.server.commands.operators import parse_duration
from fastchat.server.config import Config, OperBlock
from fastchat.server.network.records import E_KLINE, EKline, make
from fastchat.server.network.state import KLine
from fastchat.server.passwords import hash_password
from fastchat.server.render.dates import duration
from fastchat.server.runtime.hub import Hub
from tests.unit.fakenet import FakeClient, FakeNet

OPERS = (
    OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"kline", "kill"})),
    OperBlock(b"helper", hash_password(b"help", n=16), (b"*@*",), frozenset({"wallops"})),
)
SRV = ":fastchat.local"
USAGE = "Usage: KLINE <user@host> [<duration> [:<reason>]]"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, opers=OPERS, autojoin=())


def operator(
    net: FakeNet, nick: str = "ada", block: str = "admin", password: str = "secret"
) -> FakeClient:
    c = net.user(nick)
    c.send(f"OPER {block} {password}")
    assert any(" 381 " in line for line in c.lines())
    return c


def arrive(net: FakeNet, nick: str, username: str, worker: int = 0) -> FakeClient:
    """A connection that tries to register as ``nick`` with ``username``."""
    c = net.connect(worker)
    c.send(f"NICK {nick}", f"USER {username} 0 * :Real {nick}")
    return c


def host(worker: int) -> str:
    return f"10.0.0.{worker + 1}"


# -- KLINE removes whoever it matches, on every worker -----------------------------------------


def test_kline_removes_matching_users_on_every_worker(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """A K-line takes effect at once on the users it matches, wherever they are: each gets
    465 ERR_YOUREBANNEDCREEP and ERROR and is closed; whoever shares a channel with one sees
    ``QUIT :K-Lined: <reason>``; its nick is free and in WHOWAS. The operator gets a NOTICE
    saying what was done, and its worker logs it with who did it."""
    ada = operator(net)
    bob = net.user("bob", net.last)
    carol, dave = net.user("carol"), net.user("dave", net.last)
    for c in (bob, carol, dave):
        c.send("JOIN #c")
    for c in (bob, carol, dave):
        c.lines()
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("KLINE ~bob@* 1h30m :spamming")
    assert ada.lines() == [
        f"{SRV} NOTICE ada :*** Added K-line on ~bob@* (for 1h30m): spamming; removed: bob"
    ]
    bob_host = host(net.last)
    assert bob.lines() == [
        f"{SRV} 465 bob :You are banned from this server (spamming)",
        f"ERROR :Closing link: (~bob@{bob_host}) [K-Lined: spamming]",
    ]
    assert bob.client.closed
    quit_line = f":bob!~bob@{bob_host} QUIT :K-Lined: spamming"
    assert carol.lines() == [quit_line] and dave.lines() == [quit_line]
    for core in net.cores:
        assert core.state.user_by_nick(b"bob") is None
        (line,) = core.state.klines.values()
        assert (line.mask, line.setter, line.reason) == (b"~bob@*", b"ada", b"spamming")
        assert line.expires - line.set_at == 5_400_000
    carol.send("WHOWAS bob")
    assert carol.lines()[0].startswith(f"{SRV} 314 carol bob ~bob {bob_host} ")
    assert re.search(
        r"operator ada!~ada@10\.0\.0\.1: KLINE: Added K-line on ~bob@\* \(for 1h30m\): "
        r"spamming; removed: bob \(from 10\.0\.0\.1, connection 0x[0-9a-f]+\)",
        caplog.text,
    )


def test_kline_removes_every_user_it_matches_and_nobody_else(net: FakeNet) -> None:
    """One K-line may match several users: each leaves, in one decision; a member of their
    channel sees each quit once; users it does not match stay, on every worker."""
    ada = operator(net)
    carol = net.user("carol")
    eve, eli = net.user("eve", net.last), net.user("eli", net.last)
    for c in (carol, eve, eli):
        c.send("JOIN #c")
    for c in (carol, eve, eli):
        c.lines()
    ada.send("KLINE ~e*@* 10m :go away")
    assert ada.lines() == [
        f"{SRV} NOTICE ada :*** Added K-line on ~e*@* (for 10m): go away; removed: eve, eli"
    ]
    h = host(net.last)
    assert carol.lines() == [
        f":eve!~eve@{h} QUIT :K-Lined: go away",
        f":eli!~eli@{h} QUIT :K-Lined: go away",
    ]
    assert eve.client.closed and eli.client.closed
    for v in (eve, eli):  # one victim is not shown the other's quit: both are leaving
        assert not [line for line in v.lines() if " QUIT " in line]
    for core in net.cores:
        assert sorted(u.nick for u in core.state.users.values()) == [b"ada", b"carol"]


# -- at registration -------------------------------------------------------------------------------


def test_a_registration_it_matches_gets_465_and_error(net: FakeNet) -> None:
    """Modern IRC ERR_YOUREBANNEDCREEP: "the client ... is banned from the server": a
    connection a K-line in force matches, on any worker, by username and host whatever its
    nick (and in any case), gets 465 and ERROR and is closed; nobody sees it. A connection
    the K-line does not match registers as usual."""
    ada = operator(net)
    ada.send("KLINE ~Mallory@* 0 :not welcome")
    ada.lines()
    for worker in range(len(net.cores)):
        c = arrive(net, f"m{worker}", "MALLORY", worker)
        assert c.lines() == [
            f"{SRV} 465 m{worker} :You are banned from this server (not welcome)",
            f"ERROR :Closing link: (~MALLORY@{host(worker)}) [K-Lined: not welcome]",
        ]
        assert c.client.closed and c.client.user is None
    for core in net.cores:
        assert core.state.user_by_nick(b"m0") is None
    fine = arrive(net, "mal", "mal", net.last)
    assert " 001 mal " in fine.lines()[0]


def test_unkline_lets_them_in_again(net: FakeNet, caplog: pytest.LogCaptureFixture) -> None:
    """UNKLINE (any case) lifts the K-line on every worker: the next registration it matched
    is welcome. The operator gets a NOTICE naming who set it and why; an UNKLINE of a mask
    with no K-line gets a NOTICE saying so. Both are logged."""
    ada = operator(net)
    ada.send("KLINE ~mal@* 0 :bye")
    ada.lines()
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("UNKLINE ~MAL@*")
        assert ada.lines() == [f"{SRV} NOTICE ada :*** Removed K-line on ~mal@* (set by ada: bye)"]
        ada.send("UNKLINE ~mal@*")
        assert ada.lines() == [f"{SRV} NOTICE ada :*** UNKLINE: no K-line on ~mal@*"]
    for core in net.cores:
        assert core.state.klines == {}
    c = arrive(net, "mal", "mal", net.last)
    assert " 001 mal " in c.lines()[0]
    assert "operator ada!~ada@10.0.0.1: UNKLINE: Removed K-line on ~mal@* (set by ada: bye)" in (
        caplog.text
    )
    assert "operator ada!~ada@10.0.0.1: UNKLINE: no K-line on ~mal@*" in caplog.text


def test_an_expired_kline_is_ignored(net: FakeNet) -> None:
    """A timed K-line bans until it expires, counted from the sequencer's decision; then a
    registration it matched is welcome, STATS k no longer lists it, and UNKLINE finds none."""
    ada = operator(net)
    ada.send("KLINE ~mal@* 60 :one minute")
    ada.lines()
    net.now += 59
    assert " 465 " in arrive(net, "mal", "mal", net.last).lines()[0]
    net.now += 1
    assert " 001 " in arrive(net, "mal", "mal", net.last).lines()[0]
    ada.send("STATS k")
    assert ada.lines() == [f"{SRV} 219 ada k :End of /STATS report"]
    ada.send("UNKLINE ~mal@*")
    assert ada.lines() == [f"{SRV} NOTICE ada :*** UNKLINE: no K-line on ~mal@*"]


def test_kline_again_replaces_it(net: FakeNet) -> None:
    """A KLINE of a mask that has one replaces it: the new duration and reason."""
    ada = operator(net)
    ada.send("KLINE ~mal@* 1d :first")
    ada.send("KLINE ~MAL@* 2h :second")
    assert ada.lines()[-1] == (
        f"{SRV} NOTICE ada :*** Replaced K-line on ~MAL@* (for 2h): second; removed: nobody"
    )
    for core in net.cores:
        (line,) = core.state.klines.values()
        assert (line.mask, line.reason, line.expires - line.set_at) == (
            b"~MAL@*",
            b"second",
            7_200_000,
        )


# -- who may, and what is refused ------------------------------------------------------------------


def test_kline_and_unkline_need_the_kline_privilege(net: FakeNet) -> None:
    """ERR_NOPRIVILEGES for a user, and for an operator whose block lacks ``kline``."""
    bob = net.user("bob", net.last)
    ada = net.user("ada")
    for attempt in ("KLINE ~bob@*", "UNKLINE ~bob@*"):
        ada.send(attempt)
        assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    helper = operator(net, "helper", "helper", "help")
    helper.send("KLINE ~bob@*")
    assert helper.lines() == [f"{SRV} 481 helper :Permission Denied- You're not an IRC operator"]
    assert not bob.client.closed
    for core in net.cores:
        assert core.state.klines == {}


def test_the_sequencer_checks_the_privilege_again(net: FakeNet) -> None:
    """The dispatcher looks at the worker's copy of the privileges; the sequencer decides on
    its own state (a MODE -o may have been decided in between). A worker copy that says
    ``kline`` while the network does not gets 481 from the sequencer, and nothing is
    banned."""
    bob = net.user("bob", net.last)
    ada = net.user("ada")
    ada.client.privileges = frozenset({"kline"})  # a stale copy
    ada.send("KLINE ~bob@* 0 :x")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    assert not bob.client.closed
    for core in net.cores:
        assert core.state.klines == {}


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("KLINE *@*", "K-line mask *@* would match everyone"),
        ("KLINE ~*@*.*", "K-line mask ~*@*.* would match everyone"),
        ("KLINE bob", "K-line mask bob is not a user@host mask"),
        ("KLINE bob!~bob@*", "K-line mask bob!~bob@* names a nick: a K-line is user@host only"),
        ("KLINE ~ada@*", "K-line mask ~ada@* would match you"),
        ("KLINE *@10.0.0.1", "K-line mask *@10.0.0.1 would match you"),
        (
            "KLINE ~bob@* soon :x",
            "soon is no duration (0 for permanent, seconds, or e.g. 30m, 2h, 1d, 1h30m; ten"
            " years at most)",
        ),
        ("KLINE ~bob@* 3651d", "3651d is no duration (0 for permanent, seconds, or e.g. 30m,"
         " 2h, 1d, 1h30m; ten years at most)"),
    ],
)  # fmt: skip
def test_a_kline_that_cannot_be_is_refused_with_a_notice(
    net: FakeNet, caplog: pytest.LogCaptureFixture, command: str, why: str
) -> None:
    """A malformed mask, one that would match everyone (``*@*``) or the operator itself, or
    a duration that is none: a NOTICE saying why and how to write it; nothing is decided,
    and the attempt is logged as a warning."""
    ada = operator(net)
    bob = net.user("bob", net.last)
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send(command)
    assert ada.lines() == [f"{SRV} NOTICE ada :*** KLINE refused: {why}. {USAGE}"]
    assert not bob.client.closed
    for core in net.cores:
        assert core.state.klines == {}
    (record,) = [r for r in caplog.records if "KLINE refused" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"operator ada!~ada@10.0.0.1: KLINE refused: {why}")


def test_kline_defaults_and_the_reason_is_held_to_fit(net: FakeNet) -> None:
    """No duration: permanent; no reason: "No reason given". A long reason is cut so that
    the victims' QUIT and ERROR lines stay within 512 bytes (RFC 1459 §2.3)."""
    ada = operator(net)
    bob = net.user("bob", net.last)
    carol = net.user("carol")
    for c in (bob, carol):
        c.send("JOIN #c")
    carol.lines()
    ada.send("KLINE ~nobody@*")
    assert ada.lines() == [
        f"{SRV} NOTICE ada :*** Added K-line on ~nobody@* (permanent): No reason given;"
        " removed: nobody"
    ]
    ada.send("KLINE ~bob@* 0 :" + "é" * 240)  # the whole line within 512 bytes
    got = carol.raw_lines() + bob.raw_lines() + ada.raw_lines()
    assert all(len(line) + 2 <= 512 for line in got)
    (quit_line,) = [line for line in got if b" QUIT " in line]
    assert len(quit_line.split(b" :", 1)[1]) <= 255
    quit_line.decode()  # cut between characters, never inside one
    for core in net.cores:
        assert core.state.klines[fold(b"~nobody@*")].expires == 0


def test_a_reason_without_a_duration_is_a_permanent_kline(net: FakeNet) -> None:
    """``KLINE <mask> :<reason>``, as operators usually type it: a second parameter that does
    not start with a digit is the reason, and the K-line is for good."""
    ada = operator(net)
    ada.send("KLINE ~nobody@* :spamming the lobby")
    assert ada.lines() == [
        f"{SRV} NOTICE ada :*** Added K-line on ~nobody@* (permanent): spamming the lobby;"
        " removed: nobody"
    ]
    for core in net.cores:
        kline = core.state.klines[fold(b"~nobody@*")]
        assert (kline.expires, kline.reason) == (0, b"spamming the lobby")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("0", 0), ("90", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     ("1W", 604800), ("1d2h3m4s", 93784), ("30m1h", 5400)],
)  # fmt: skip
def test_durations(written: str, seconds: int) -> None:
    """KLINE's <duration>: seconds, or counts of w, d, h, m, s (any case, any order); the
    notice shows it back, largest unit first."""
    assert parse_duration(written.encode()) == seconds
    if seconds:
        assert parse_duration(duration(seconds)) == seconds


@pytest.mark.parametrize("written", ["", "h", "1h30", "-5", "1.5h", "1y", "1 h", "3651d"])
def test_not_durations(written: str) -> None:
    assert parse_duration(written.encode()) is None


# -- STATS k ---------------------------------------------------------------------------------------


def test_stats_k_lists_the_klines_in_force_to_operators(net: FakeNet) -> None:
    """Modern IRC STATS ``k``: "returns a list of banned username/hostname combinations";
    each as InspIRCd's RPL_STATSKLINE, ``<mask> <set time> <duration> <setter> :<reason>``
    (seconds; duration 0: permanent), oldest first, then RPL_ENDOFSTATS. Asked from
    another worker than the one the K-lines were set from, by any operator (whatever its
    privileges); anyone else gets 481 ERR_NOPRIVILEGES alone, as from InspIRCd."""
    ada = operator(net)
    ada.send("KLINE ~bob@* 1h :spamming")
    net.now += 2
    ada.send("KLINE *@192.0.2.* 0 :a bad network")
    ada.lines()
    set_at = int(net.now) - 2
    watcher = net.user("watcher", net.last)
    watcher.send("STATS k")
    assert watcher.lines() == [f"{SRV} 481 watcher :Permission Denied- You're not an IRC operator"]
    watcher.send("OPER helper help")
    watcher.lines()
    watcher.send("STATS k")
    assert watcher.lines() == [
        f"{SRV} 216 watcher ~bob@* {set_at} 3600 ada :spamming",
        f"{SRV} 216 watcher *@192.0.2.* {set_at + 2} 0 ada :a bad network",
        f"{SRV} 219 watcher k :End of /STATS report",
    ]


# -- across processes: snapshots and hub restarts --------------------------------------------------


def test_a_worker_that_starts_later_knows_the_klines() -> None:
    """A worker that starts loads the hub's snapshot, K-lines included: STATS k from it lists
    them."""
    net = FakeNet(workers=2, opers=OPERS, autojoin=())
    ada = operator(net)
    ada.send("KLINE ~bob@* 0 :x")
    late = FakeNet(workers=1, opers=OPERS, autojoin=())
    late.cores[0].load_snapshot(net.state.snapshot())
    assert late.cores[0].state.klines == net.state.klines != {}


def test_a_new_hub_restores_the_klines_from_the_replicas() -> None:
    """After a hub crash the new hub merges the workers' replicas: a K-line it lacks comes
    back as an E_KLINE that removes nobody and shows nobody anything (uid 0); one it holds
    in the same form changes nothing; an expired one is not restored."""
    net = FakeNet(workers=1, opers=OPERS, autojoin=())
    net.now = time.time() - 10  # the hub merges at its own clock: the short one is over
    ada = operator(net)
    ada.send("KLINE ~bob@* 1h :spam")
    ada.send("KLINE ~eve@* 1 :short")
    replica = net.cores[0].state.snapshot()
    (kept,) = [k for k in net.cores[0].state.klines.values() if k.reason == b"spam"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=1), listener, None)
        hub.out[0] = []
        hub._merge(0, replica, set(net.cores[0].state.users))
        restored = [r for r in hub.out[0] if r[0] == E_KLINE]
        assert restored == [make(EKline, 0, *kept, (), restored[0][-1])]
        assert list(hub.state.klines.values()) == [kept]
        hub._merge(0, replica, set(net.cores[0].state.users))
        assert [r for r in hub.out[0] if r[0] == E_KLINE] == restored


def test_klines_survive_the_hub_merge_when_a_newer_one_is_known() -> None:
    """The merge keeps the K-line set last when the hub and a replica disagree."""
    older = KLine(b"~bob@*", b"ada", b"old", 1_000, 0)
    newer = older._replace(reason=b"new", set_at=2_000)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=1), listener, None)
        hub.out[0] = []
        hub.state.apply(make(EKline, 0, *newer, (), 3_000))
        hub._merge(0, ((), (), 0, (), (), (tuple(older),), (), (), ()), set())
        assert list(hub.state.klines.values()) == [newer]
