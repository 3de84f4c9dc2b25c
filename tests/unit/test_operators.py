"""Operators through the sans-I/O core (``fastchat.server.commands.operators`` and where being
one shows): OPER and its password check off the loop, +o as network state (WHO, WHOIS,
LUSERS on every worker), ``MODE -o``, KILL and WALLOPS decided by the sequencer across
workers, the ``override`` and ``see`` privileges, rate limiting and the audit log.

Every transcript runs at one worker (the sequencer in the worker) and at two (an in-memory
hub, and each user on another worker than the operator where it matters). FakeNet runs the
password checks synchronously, as the worker's thread pool would; ``hold_checks`` keeps them
waiting to show the client's ordering barrier. Nobody is joined to a channel on registration,
so each transcript holds only what it is about. Hashes use a tiny scrypt cost (n=16) so the
tests stay fast; the check is the same code.

Spec: Modern IRC "OPER message", "KILL message", "WALLOPS message", "Oper User Mode",
RPL_YOUREOPER (381), RPL_WHOISOPERATOR (313), RPL_LUSEROP (252), ERR_PASSWDMISMATCH (464),
ERR_NOOPERHOST (491), ERR_NOPRIVILEGES (481); RFC 2812 §3.1.4, §3.1.5, §3.6.1, §4.7.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import socket
import threading

import pytest

from fastchat.server import passwords
from fastchat.server.config import Config, OperBlock
from fastchat.server.network.records import B_SNAPSHOT, D_WALLOPS, E_OPER, EOper, Record, make
from fastchat.server.passwords import hash_password
from fastchat.server.runtime.hub import Hub
from fastchat.server.runtime.worker import Worker
from tests.unit.fakenet import FakeClient, FakeNet

ALL = frozenset({"kill", "wallops", "override", "see"})
OPERS = (
    OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), ALL),
    OperBlock(b"helper", hash_password(b"help", n=16), (b"*@10.0.0.*",), frozenset({"wallops"})),
    OperBlock(b"remote", hash_password(b"far", n=16), (b"*@192.0.2.*",), ALL),
    OperBlock(b"named", hash_password(b"pw", n=16), (b"~boss@*",), ALL),
)
SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, opers=OPERS, autojoin=())


def oper_up(c: FakeClient, name: str = "admin", password: str = "secret") -> list[str]:
    c.send(f"OPER {name} {password}")
    return c.lines()


def find(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


# -- OPER --------------------------------------------------------------------------------------


def test_oper_success_gives_381_and_one_mode_line(net: FakeNet) -> None:
    """Modern IRC OPER: "the RPL_YOUREOPER message is sent to the user. The user will also
    receive a MODE message indicating their new user modes"; the privileges are the block's."""
    ada = net.user("ada")
    assert oper_up(ada) == [
        f"{SRV} 381 ada :You are now an IRC operator",
        ":ada MODE ada :+o",
    ]
    assert ada.client.privileges == ALL
    ada.send("MODE ada")
    assert ada.lines() == [f"{SRV} 221 ada :+o"]


def test_wrong_password_and_unknown_name_get_the_same_464(net: FakeNet) -> None:
    """Modern IRC: "If the client does not send the correct password for the given name, the
    server replies with an ERR_PASSWDMISMATCH message"; an unknown name gets the same answer,
    so the reply does not tell which names exist."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    ada.send("OPER admin wrong")
    bob.send("OPER nobody secret")
    assert ada.lines() == [f"{SRV} 464 ada :Password incorrect"]
    assert bob.lines() == [f"{SRV} 464 bob :Password incorrect"]
    assert ada.client.privileges == frozenset() == bob.client.privileges


def test_unknown_name_is_checked_against_a_configured_hash(net: FakeNet) -> None:
    """An unknown name costs a password check too (against a configured hash, its answer
    ignored), so the time taken does not tell which names exist either."""
    net.hold_checks = True
    ada = net.user("ada")
    ada.send("OPER nobody secret")
    (check,) = net.cores[0].offload.checks
    assert check.stored == OPERS[0].password and check.password == b"secret"
    net.hold_checks = False
    net.pump()
    assert ada.lines() == [f"{SRV} 464 ada :Password incorrect"]


def test_right_password_from_a_host_not_allowed_gets_491(net: FakeNet) -> None:
    """Modern IRC: "If the client is not connecting from a valid host for the given name, the
    server replies with an ERR_NOOPERHOST message". The masks are user@host: ``remote`` allows
    192.0.2.*; ``named`` allows only the username ~boss."""
    ada = net.user("ada")
    assert oper_up(ada, "remote", "far") == [f"{SRV} 491 ada :No O-lines for your host"]
    boss, bob = net.user("boss", net.last), net.user("bob")
    assert oper_up(bob, "named", "pw") == [f"{SRV} 491 bob :No O-lines for your host"]
    assert find(oper_up(boss, "named", "pw"), r" 381 boss ")
    helper = net.user("helper", net.last)
    assert find(oper_up(helper, "helper", "help"), r" 381 helper ")
    assert helper.client.privileges == frozenset({"wallops"})


def test_oper_needs_both_parameters(net: FakeNet) -> None:
    """Modern IRC: "Both parameters are required": 461 ERR_NEEDMOREPARAMS, no check run."""
    ada = net.user("ada")
    ada.send("OPER admin")
    assert ada.lines() == [f"{SRV} 461 ada OPER :Not enough parameters"]
    assert net.cores[0].offload.checks == []


def test_no_operators_configured() -> None:
    """With no ``[[oper]]`` block, every OPER is a 464, and nothing is hashed."""
    net = FakeNet(workers=1)
    ada = net.user("ada")
    net.hold_checks = True
    ada.send("OPER admin secret")
    assert net.cores[0].offload.checks == []
    assert ada.lines() == [f"{SRV} 464 ada :Password incorrect"]


def test_reoper_answers_381_without_a_second_mode_line(net: FakeNet) -> None:
    """Opering again (another block) answers 381 and takes the new block's privileges; the
    user was +o already, so there is no MODE change to show."""
    ada = net.user("ada")
    oper_up(ada)
    assert oper_up(ada, "helper", "help") == [f"{SRV} 381 ada :You are now an IRC operator"]
    assert ada.client.privileges == frozenset({"wallops"})
    for core in net.cores:
        found = core.state.user_by_nick(b"ada")
        assert found is not None and found.oper == b"helper"
        assert core.state.opers == 1


def test_lines_after_oper_wait_for_the_check(net: FakeNet) -> None:
    """The password check runs off the loop; meanwhile the client's next lines wait (its
    ordering barrier), so a KILL right after OPER in one write already has the privilege."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    net.hold_checks = True
    ada.send("OPER admin secret\r\nKILL bob :bye\r\nPING :after")
    assert ada.lines() == []
    assert len(net.cores[0].offload.checks) == 1
    assert not bob.client.closed
    net.hold_checks = False
    net.pump()
    got = ada.lines()
    assert got[:2] == [f"{SRV} 381 ada :You are now an IRC operator", ":ada MODE ada :+o"]
    assert got[-1] == f"{SRV} PONG fastchat.local :after"
    assert bob.client.closed


def test_a_client_gone_during_the_check_is_left_alone(net: FakeNet) -> None:
    """The answer of a check whose client has gone meanwhile changes nothing."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    net.hold_checks = True
    ada.send("OPER admin secret")
    ada.core.connection_lost(ada.client, b"Remote host closed the connection", net.now)
    net.hold_checks = False
    net.pump()
    bob.send("LUSERS")
    assert find(bob.lines(), r" 252 bob 0 :operator\(s\) online")


def test_quit_during_the_check_waits_for_it_then_closes(net: FakeNet) -> None:
    """A QUIT queued behind an OPER under way is processed once the check is done; the OPER
    still completes first, in order."""
    ada = net.user("ada")
    net.hold_checks = True
    ada.send("OPER admin secret\r\nQUIT :bye")
    net.hold_checks = False
    net.pump()
    got = ada.lines()
    assert got[0] == f"{SRV} 381 ada :You are now an IRC operator"
    assert got[-1].startswith("ERROR :Closing link: (~ada@10.0.0.1) [Quit: bye]")
    assert ada.client.closed


# -- failures: slowed and logged -------------------------------------------------------------


def test_failures_are_rate_limited_per_connection(net: FakeNet) -> None:
    """After the n-th failure in a row, OPER is answered 464 without a check for 2**(n-1)
    seconds (at most RETRY_CAP): even the right password is refused then. A connection from
    another address is not held back."""
    ada = net.user("ada")
    bob = net.connect(net.last, "bob", ip=b"10.0.0.9")  # another address
    bob.lines()
    for failures, wait in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        ada.send("OPER admin wrong")
        assert ada.lines() == [f"{SRV} 464 ada :Password incorrect"]
        assert ada.client.oper_failures == failures
        net.hold_checks = True
        ada.send("OPER admin secret")  # too soon: refused, unchecked
        assert ada.lines() == [f"{SRV} 464 ada :Password incorrect"]
        assert net.cores[0].offload.checks == []
        net.hold_checks = False
        assert find(oper_up(bob, "helper", "help"), r" 381 ")
        net.now += wait
    assert find(oper_up(ada), r" 381 ada ")
    assert ada.client.oper_failures == 0


def test_failures_are_rate_limited_per_address_too(net: FakeNet) -> None:
    """A guesser who reconnects for each try is slowed as much: the wait follows the
    address, and a connection from another address is not held back."""
    ada = net.connect(0, "ada", ip=b"192.0.2.7")
    ada.send("OPER admin wrong")
    assert ada.lines()[-1] == f"{SRV} 464 ada :Password incorrect"
    ada.send("QUIT")
    again = net.connect(0, "ada2", ip=b"192.0.2.7")
    again.lines()
    net.hold_checks = True
    again.send("OPER admin secret")  # too soon, from the same address: refused, unchecked
    assert again.lines() == [f"{SRV} 464 ada2 :Password incorrect"]
    assert net.cores[0].offload.checks == []
    net.hold_checks = False
    elsewhere = net.connect(0, "eve", ip=b"198.51.100.1")
    elsewhere.lines()
    assert find(oper_up(elsewhere), r" 381 eve ")
    net.now += 1.0
    assert find(oper_up(again), r" 381 ada2 ")
    assert b"192.0.2.7" not in net.cores[0].oper_backoff  # a success forgets the failures


def test_the_wait_is_capped() -> None:
    """The wait doubles up to a minute, not beyond."""
    net = FakeNet(workers=1, opers=OPERS)
    ada = net.user("ada")
    for _ in range(10):
        ada.send("OPER admin wrong")
        net.now = ada.client.oper_retry_at
    ada.send("OPER admin wrong")
    assert ada.client.oper_retry_at - net.now == 60.0


def test_failures_and_successes_are_logged(net: FakeNet, caplog: pytest.LogCaptureFixture) -> None:
    """Every failed OPER is logged (a warning) with who, from where and which name; so are an
    OPER refused while slowed down, and a success with the privileges gained."""
    ada = net.user("ada")
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("OPER admin wrong")
        ada.send("OPER admin secret")
        net.now += 1
        ada.send("OPER admin secret")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages[0][0] == logging.WARNING
    assert re.match(
        r"operator ada!~ada@10\.0\.0\.1: OPER 'admin' failed: wrong password \(1 in a row; next "
        r"check in 1 s at the earliest\) \(from 10\.0\.0\.1, connection 0x[0-9a-f]+\)$",
        messages[0][1],
    )
    assert messages[1][0] == logging.WARNING
    assert "OPER 'admin' refused unchecked: 1 failure(s) in a row" in messages[1][1]
    assert messages[2] == (
        logging.INFO,
        f"operator ada!~ada@10.0.0.1: OPER admin: now an operator (privileges: kill, override,"
        f" see, wallops) (from 10.0.0.1, connection {ada.client.uid:#x})",
    )


# -- +o is network state -----------------------------------------------------------------------


def test_operator_shows_in_whois_who_and_lusers_on_every_worker(net: FakeNet) -> None:
    """Modern IRC: 313 RPL_WHOISOPERATOR "indicates that the client with the nickname <nick> is
    an operator"; WHO flags carry "a literal asterisk character ... to indicate that the user
    is a server operator"; 252 RPL_LUSEROP counts them. Asked from the other worker."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    bob.send("LUSERS")
    assert find(bob.lines(), rf"^{SRV} 252 bob 0 :operator\(s\) online$")
    oper_up(ada)
    bob.send("WHOIS ada")
    assert find(bob.lines(), rf"^{SRV} 313 bob ada :is an IRC operator$")
    bob.send("WHO ada")
    assert find(bob.lines(), rf"^{SRV} 352 bob \* ~ada 10\.0\.0\.1 fastchat\.local ada H\* :0 ")
    ada.send("JOIN #c")
    bob.send("WHO #c")
    assert find(bob.lines(), r" 352 bob #c ~ada \S+ \S+ ada H\*@ :0 ")
    ada.send("AWAY :later")
    bob.send("WHO ada")
    assert find(bob.lines(), r" 352 bob \* ~ada \S+ \S+ ada G\* :0 ")
    bob.send("LUSERS")
    assert find(bob.lines(), rf"^{SRV} 252 bob 1 :operator\(s\) online$")
    bob.send("WHOIS bob")
    assert not find(bob.lines(), " 313 ")


def test_mode_minus_o_drops_the_privileges_everywhere(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """Modern IRC: "There is no restriction, however, on anyone 'deopping' themselves";
    ``MODE nick -o`` takes +o and the privileges on every worker, and is logged."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    oper_up(ada)
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("MODE ada -o")
    assert ada.lines() == [":ada MODE ada :-o"]
    assert "MODE -o: no longer an operator" in caplog.text
    assert ada.client.privileges == frozenset()
    for core in net.cores:
        found = core.state.user_by_nick(b"ada")
        assert found is not None and found.privileges == frozenset() and found.oper == b""
        assert core.state.opers == 0
    ada.send("KILL bob :x")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    bob.send("WHOIS ada")
    assert not find(bob.lines(), " 313 ")


def test_mode_plus_o_is_ignored(net: FakeNet) -> None:
    """RFC 2812 §3.1.5: "If a user attempts to make themselves an operator using the "+o" flag,
    the attempt should be ignored"; other letters of the same MODE still apply."""
    ada = net.user("ada")
    ada.send("MODE ada +o")
    assert ada.lines() == []
    ada.send("MODE ada +oi")
    assert ada.lines() == [":ada MODE ada :+i"]
    assert ada.client.privileges == frozenset()
    for core in net.cores:
        assert core.state.opers == 0


def test_other_modes_keep_the_operator(net: FakeNet) -> None:
    """+i and +w on an operator leave +o and the privileges as they were."""
    ada = net.user("ada")
    oper_up(ada)
    ada.send("MODE ada +iw")
    assert ada.lines() == [":ada MODE ada :+iw"]
    assert ada.client.privileges == ALL
    ada.send("MODE ada")
    assert ada.lines() == [f"{SRV} 221 ada :+iow"]


def test_a_quit_operator_is_no_longer_counted(net: FakeNet) -> None:
    ada, bob = net.user("ada"), net.user("bob", net.last)
    oper_up(ada)
    ada.send("QUIT")
    bob.send("LUSERS")
    assert find(bob.lines(), rf"^{SRV} 252 bob 0 :operator\(s\) online$")


def test_myinfo_lists_the_o_user_mode() -> None:
    """RFC 2812 §5.1 RPL_MYINFO names the user modes there are: +o is one now (and +B, IRCv3
    bot-mode)."""
    net = FakeNet(workers=1)
    got = net.connect(0).register("ada")
    assert find(got, rf"^{SRV} 004 ada fastchat\.local \S+ Biow ")


# -- KILL ----------------------------------------------------------------------------------------


def test_kill_across_workers(net: FakeNet, caplog: pytest.LogCaptureFixture) -> None:
    """Modern IRC KILL: "the client being killed receives the KILL message"; "The user being
    killed and every user sharing a channel with them receives a QUIT message", reason
    "Killed (<killer> (<reason>))"; "The user being killed then receives the ERROR message";
    its connection is closed. The victim on the other worker than the operator; the kill is
    logged at the operator's worker."""
    ada, bob, carol = net.user("ada"), net.user("bob", net.last), net.user("carol")
    for c in (ada, bob, carol):
        c.send("JOIN #c")
    oper_up(ada)
    for c in (ada, bob, carol):
        c.lines()
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("KILL bob :flooding")
    host = f"10.0.0.{net.last + 1}"
    quit_line = f":bob!~bob@{host} QUIT :Killed (ada (flooding))"
    assert ada.lines() == [quit_line]
    assert carol.lines() == [quit_line]
    assert bob.lines() == [
        ":ada!~ada@10.0.0.1 KILL bob :flooding",
        f"ERROR :Closing link: (~bob@{host}) [Killed (ada (flooding))]",
    ]
    assert bob.client.closed
    for core in net.cores:
        assert core.state.user_by_nick(b"bob") is None
    assert re.search(
        r"operator ada!~ada@10\.0\.0\.1: KILL bob!~bob@10\.0\.0\.\d \(flooding\)", caplog.text
    )
    carol.send("NICK bob")
    assert carol.lines() == [":carol!~carol@10.0.0.1 NICK :bob"]


def test_kill_unknown_nick_is_401(net: FakeNet) -> None:
    ada = net.user("ada")
    oper_up(ada)
    ada.send("KILL nobody :x")
    assert ada.lines() == [f"{SRV} 401 ada nobody :No such nick/channel"]


def test_kill_needs_the_kill_privilege(net: FakeNet) -> None:
    """ERR_NOPRIVILEGES for a user, and for an operator whose block lacks ``kill``."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    ada.send("KILL bob :x")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    oper_up(ada, "helper", "help")
    ada.send("KILL bob :x")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    assert not bob.client.closed


def test_kill_without_a_comment_and_of_oneself(net: FakeNet) -> None:
    """One argument is enough (as Ergo accepts); an operator may kill itself."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    oper_up(ada)
    ada.send("KILL bob")
    assert bob.lines()[-1].endswith("[Killed (ada (No reason given))]")
    ada.send("KILL ada :done")
    assert ada.lines()[-2:] == [
        ":ada!~ada@10.0.0.1 KILL ada :done",
        "ERROR :Closing link: (~ada@10.0.0.1) [Killed (ada (done))]",
    ]
    assert ada.client.closed
    for core in net.cores:
        assert core.state.opers == 0 and not core.state.users


# -- WALLOPS ------------------------------------------------------------------------------------


def test_wallops_reaches_plus_w_users_on_every_worker(net: FakeNet) -> None:
    """RFC 2812 §4.7: "send a message to all currently connected users who have set the 'w'
    user mode for themselves": users with +w on either worker get it, others do not, and the
    sender only with +w."""
    ada = net.user("ada")
    w0, w1 = net.user("w0"), net.user("w1", net.last)
    n0, n1 = net.user("n0"), net.user("n1", net.last)
    for c in (w0, w1):
        c.send(f"MODE {c.client.nick.decode()} +w")
        c.lines()
    oper_up(ada)
    ada.send("WALLOPS :maintenance at 10:00")
    line = ":ada!~ada@10.0.0.1 WALLOPS :maintenance at 10:00"
    assert w0.lines() == [line] and w1.lines() == [line]
    assert n0.lines() == [] and n1.lines() == [] and ada.lines() == []
    ada.send("MODE ada +w")
    ada.lines()
    ada.send("WALLOPS :again")
    assert ada.lines() == [":ada!~ada@10.0.0.1 WALLOPS :again"]


def test_wallops_only_goes_to_workers_with_a_plus_w_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sequencer sends one delivery per worker that holds a +w user, and none elsewhere."""
    net = FakeNet(workers=3, opers=OPERS, autojoin=())
    ada, w1 = net.user("ada"), net.user("w1", 1)
    net.user("n2", 2)
    w1.send("MODE w1 +w")
    w1.lines()
    oper_up(ada)
    to_worker = net.to_worker
    sent: list[int] = []

    def recording(worker: int, record: Record) -> None:
        if record[0] == D_WALLOPS:
            sent.append(worker)
        to_worker(worker, record)

    monkeypatch.setattr(net, "to_worker", recording)
    ada.send("WALLOPS :hi")
    assert sent == [1]
    assert w1.lines() == [":ada!~ada@10.0.0.1 WALLOPS :hi"]


def test_wallops_needs_the_privilege_and_text(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """Modern IRC WALLOPS: ERR_NOPRIVILEGES for a user; "The <text> SHOULD be non-empty":
    461 for an empty one; a WALLOPS sent is logged with its sender."""
    ada = net.user("ada")
    ada.send("WALLOPS :hi")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    oper_up(ada, "helper", "help")
    ada.send("WALLOPS :")
    assert ada.lines() == [f"{SRV} 461 ada WALLOPS :Not enough parameters"]
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("WALLOPS :hello all")
    assert "operator ada!~ada@10.0.0.1: WALLOPS hello all" in caplog.text


# -- overrides -----------------------------------------------------------------------------------


def channel(net: FakeNet, modes: str) -> tuple[FakeClient, FakeClient]:
    """A channel #c owned by ``owner`` (the other worker) with ``modes``, and an operator."""
    owner, ada = net.user("owner", net.last), net.user("ada")
    owner.send("JOIN #c", f"MODE #c {modes}")
    owner.lines()
    oper_up(ada)
    return owner, ada


@pytest.mark.parametrize(
    ("modes", "refused"),
    [("+i", "473"), ("+k key", "475"), ("+l 1", "471"), ("+b *!*@*", "474")],
    ids=["invite-only", "key", "limit", "ban"],
)
def test_override_joins_despite_channel_rules(
    net: FakeNet, caplog: pytest.LogCaptureFixture, modes: str, refused: str
) -> None:
    """With ``override`` an operator joins a channel that would refuse it (+i, +k, +l, +b),
    and the override is logged; without it, the usual refusal."""
    owner, ada = channel(net, modes)
    bob = net.user("bob")
    oper_up(bob, "helper", "help")
    bob.send("JOIN #c")
    assert find(bob.lines(), rf" {refused} bob #c ")
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("JOIN #c")
    assert find(ada.lines(), r"^:ada!~ada@10\.0\.0\.1 JOIN #c$")
    assert find(owner.lines(), r"^:ada!~ada@10\.0\.0\.1 JOIN #c$")
    rule = modes.split()[0]
    assert f"operator ada!~ada@10.0.0.1: override: JOIN #c despite {rule}" in caplog.text


def test_override_mode_topic_kick_invite_without_channel_op(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``override`` an operator on a channel changes its modes and topic, kicks and
    invites, without being a channel operator; each use is logged. A member without it gets
    482 ERR_CHANOPRIVSNEEDED."""
    owner, ada = channel(net, "+it")
    owner.send("INVITE ada #c")
    ada.send("JOIN #c")
    bob = net.user("bob")
    owner.send("INVITE bob #c")
    bob.send("JOIN #c")
    for c in (owner, ada, bob):
        c.lines()
    bob.send("TOPIC #c :mine")
    assert find(bob.lines(), r" 482 bob #c ")
    with caplog.at_level(logging.INFO, logger="fastchat.core"):
        ada.send("MODE #c +o-t ada")
        ada.send("MODE #c -o ada")
        ada.send("MODE #c +t")
        ada.send("TOPIC #c :set by an operator")
        ada.send("INVITE carol #c")
        ada.send("KICK #c bob :out")
    got = owner.lines()
    assert got == [
        ":ada!~ada@10.0.0.1 MODE #c +o-t :ada",
        ":ada!~ada@10.0.0.1 MODE #c -o :ada",
        ":ada!~ada@10.0.0.1 MODE #c +t",
        ":ada!~ada@10.0.0.1 TOPIC #c :set by an operator",
        ":ada!~ada@10.0.0.1 KICK #c bob :out",
    ]
    assert find(ada.lines(), r" 401 ada carol ")  # nobody to invite: no override needed
    overrides = [r.getMessage() for r in caplog.records if "override" in r.getMessage()]
    assert [m.split(": override: ")[1].split(" (from")[0] for m in overrides] == [
        "MODE #c +o-t ada (not a channel operator)",
        "MODE #c +t (not a channel operator)",
        "TOPIC #c (not a channel operator)",
        "KICK #c bob (not a channel operator)",
    ]


def test_no_override_without_the_privilege(net: FakeNet) -> None:
    """An operator whose block lacks ``override`` is held to the channel's rules."""
    owner = net.user("owner", net.last)
    owner.send("JOIN #c")
    helper = net.user("helper")
    oper_up(helper, "helper", "help")
    helper.send("JOIN #c")
    helper.lines()
    helper.send("MODE #c +m")
    assert find(helper.lines(), r" 482 helper #c ")


# -- see -------------------------------------------------------------------------------------------


def test_see_shows_invisible_users_and_secret_channels(net: FakeNet) -> None:
    """With ``see`` an operator finds invisible users (WHO by mask, WHO and NAMES of a
    channel it is not on) and secret channels (LIST, NAMES, WHOIS), which a user does not."""
    hidden = net.user("hidden", net.last)
    hidden.send("MODE hidden +i", "JOIN #secret", "MODE #secret +s")
    ada, bob = net.user("ada"), net.user("bob")
    oper_up(ada)
    for asker, sees in ((bob, False), (ada, True)):
        n = asker.client.nick.decode()
        asker.send("WHO hid*")
        assert bool(find(asker.lines(), rf" 352 {n} \* ~hidden ")) is sees
        asker.send("WHO #secret")
        assert bool(find(asker.lines(), rf" 352 {n} #secret ~hidden ")) is sees
        asker.send("NAMES #secret")
        assert bool(find(asker.lines(), rf" 353 {n} @ #secret :@hidden$")) is sees
        asker.send("LIST")
        assert bool(find(asker.lines(), rf" 322 {n} #secret 1 ")) is sees
        asker.send("WHOIS hidden")
        assert bool(find(asker.lines(), rf" 319 {n} hidden :@#secret$")) is sees


# -- across a hub restart ----------------------------------------------------------------------


def test_operator_survives_a_snapshot_on_its_worker() -> None:
    """A worker that loads a snapshot (a new hub's) keeps its operators' privileges: they are
    network state, carried by the snapshot."""
    net = FakeNet(workers=2, opers=OPERS, autojoin=())
    ada = net.user("ada")
    oper_up(ada)
    core = net.cores[0]
    ada.client.privileges = frozenset()
    core.apply((B_SNAPSHOT, net.state.snapshot(), {}))
    assert ada.client.privileges == ALL
    assert core.state.opers == 1


def test_a_new_hub_rebuilds_operators_from_the_replicas() -> None:
    """After a hub crash, the new hub merges the workers' replicas through ordinary events:
    an operator comes back with +o, its block and privileges (an E_OPER that asks no 381)."""
    net = FakeNet(workers=1, opers=OPERS, autojoin=())
    oper_up(net.user("ada"))
    net.user("bob").send("MODE bob +i")
    replica = net.cores[0].state.snapshot()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=1), listener, None)
        hub.out[0] = []
        hub._merge(0, replica, set(net.cores[0].state.users))
    ada = hub.state.user_by_nick(b"ada")
    assert ada is not None
    assert (ada.modes, ada.oper, ada.privileges) == (b"o", b"admin", ALL)
    assert hub.state.opers == 1 and hub.state.invisible == 1
    assert [r for r in hub.out[0] if r[0] == E_OPER] == [
        make(EOper, ada.uid, b"admin", tuple(sorted(ALL)), False, hub.out[0][-1][-1])
    ]


# -- the worker shell runs the check off its loop ------------------------------------------------


def test_worker_runs_the_check_on_its_pool_and_hands_the_answer_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STYLE.md "Blocking work is an effect": the worker's shell hands the core's password
    check to its thread pool (not the loop's thread), a finished check wakes the loop through
    the wakeup socketpair, and the loop gives the answer to the core, which finishes the OPER."""
    threads: list[str] = []
    verify = passwords.verify

    def recording(password: bytes, stored: str) -> bool:
        threads.append(threading.current_thread().name)
        return verify(password, stored)

    monkeypatch.setattr(passwords, "verify", recording)
    config = Config(workers=1, opers=OPERS, autojoin=(), flood_control=False)
    with socket.socket() as listener:
        worker = Worker(config, 0, 1, listener, None, None, None)
        try:
            core = worker.core
            client = core.connect(b"10.0.0.1", worker.now)
            core.data_received(client, b"NICK ada\r\nUSER ada 0 * :Ada\r\n", worker.now)
            core.end_turn()  # (NICK is a query too: at one worker it waits for the turn's end)
            client.pending.clear()
            core.data_received(client, b"OPER admin secret\r\nPING :after\r\n", worker.now)
            worker._flush_all()  # the effects of the turn: the check goes to the pool
            assert core.offload.checks == [] and len(worker.checking) == 1
            concurrent.futures.wait(list(worker.checking), timeout=10)
            assert worker._wake_r.recv(16)  # the loop was woken
            worker._finish_checks()
            assert worker.checking == {}
            core.end_turn()  # the PING after it waits for the end of the loop turn
            assert b"".join(client.pending).split(b"\r\n")[:3] == [
                b":fastchat.local 381 ada :You are now an IRC operator",
                b":ada MODE ada :+o",
                b":fastchat.local PONG fastchat.local :after",
            ]
            assert threads and threads[0].startswith("fastchat-passwords0")
            assert threads[0] != threading.current_thread().name
        finally:
            if worker.checker is not None:
                worker.checker.shutdown()
            worker._wake_r.close()
            worker._wake_w.close()
            worker.sel.close()


def test_a_long_kill_comment_keeps_the_lines_within_512_bytes(net: FakeNet) -> None:
    """RFC 1459 §2.3: no line over 512 bytes. The victim's quit reason is held to QUITLEN
    like a QUIT's, so its channels' QUIT and its own ERROR fit."""
    ada, bob = net.user("ada"), net.user("bob", net.last)
    for c in (ada, bob):
        c.send("JOIN #c")
    oper_up(ada)
    ada.lines()
    ada.send("KILL bob :" + "x" * 480)
    got = ada.raw_lines() + bob.raw_lines()
    assert all(len(line) + 2 <= 512 for line in got)
    (quit_line,) = [line for line in got if b" QUIT " in line]
    assert len(quit_line.split(b" :", 1)[1]) == 255
