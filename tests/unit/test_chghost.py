"""IRCv3 ``chghost`` (https://ircv3.net/specs/extensions/chghost) and the operator command
that changes a host, ``CHGHOST <nick> [<user>] <host>``, through worker cores at one and two
workers: decided by the sequencer; ``:nick!old@old CHGHOST user host`` to channel peers (and
the user) that negotiated it; the spec's QUIT/JOIN/MODE fallback to the other peers.
"""

from __future__ import annotations

import pytest

from fastchat.server.commands.operators import host_problem, username_problem
from fastchat.server.config import OperBlock
from fastchat.server.passwords import hash_password
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
OPERS = (
    OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"chghost"})),
    OperBlock(b"killer", hash_password(b"kill", n=16), (b"*@*",), frozenset({"kill"})),
)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, opers=OPERS, autojoin=())


def _oper(net: FakeNet, worker: int = 0, block: str = "admin", pw: str = "secret") -> FakeClient:
    op = net.user("op", worker)
    op.send(f"OPER {block} {pw}")
    op.lines()
    return op


def test_peers_with_the_capability_get_chghost(net: FakeNet) -> None:
    """ "servers MUST send the CHGHOST message to other clients who share channels with the
    target client and who have enabled the chghost capability. Servers SHOULD also send the
    CHGHOST message to the client whose own username or host changed" """
    op = _oper(net, net.last)
    ann = net.negotiated(0, "ann", "chghost")
    bob = net.negotiated(net.last, "bob", "chghost")
    for c in (ann, bob):
        c.send("JOIN #c")
    ann.lines()
    bob.lines()
    op.send("CHGHOST ann virtual users/ann")
    assert ann.lines() == [":ann!~ann@10.0.0.1 CHGHOST virtual users/ann"]
    assert bob.lines() == [":ann!~ann@10.0.0.1 CHGHOST virtual users/ann"]
    assert op.lines() == [
        f"{SRV} NOTICE op :*** CHGHOST: ann!~ann@10.0.0.1 is now ann!virtual@users/ann"
    ]


def test_the_new_mask_is_everywhere(net: FakeNet) -> None:
    """Network state on every replica (WHOIS), and the user's own messages carry it from now
    on (its worker's cached prefix)."""
    op = _oper(net, net.last)
    ann = net.negotiated(0, "ann")
    bob = net.negotiated(net.last, "bob")
    for c in (ann, bob):
        c.send("JOIN #c")
    op.send("CHGHOST ann cloaked.example")
    ann.lines()
    bob.lines()
    ann.send("PRIVMSG #c :hi")
    assert bob.lines() == [":ann!~ann@cloaked.example PRIVMSG #c :hi"]
    bob.send("WHOIS ann")
    assert f"{SRV} 311 bob ann ~ann cloaked.example * :ann" in bob.lines()


def test_peers_without_it_get_the_fallback(net: FakeNet) -> None:
    """ "servers SHOULD send fallback messages to simulate the client reconnecting ... the
    simulated events SHOULD include appropriate QUIT, JOIN and MODE commands": the QUIT once,
    then for each shared channel the JOIN (extended for those that asked), the MODE that
    gives back the user's prefixes, and its AWAY for those with away-notify. The user itself,
    without the capability, is sent nothing."""
    op = _oper(net, net.last)
    ann = net.negotiated(0, "ann")
    plain = net.negotiated(net.last, "plain")
    fancy = net.negotiated(net.last, "fancy", "extended-join", "away-notify")
    ann.send("JOIN #a", "JOIN #b", "MODE #b +v ann", "AWAY :away")
    for c in (plain, fancy):
        c.send("JOIN #a", "JOIN #b")
    for c in (ann, plain, fancy):
        c.lines()
    op.send("CHGHOST ann users/ann")
    assert ann.lines() == []
    assert plain.lines() == [
        ":ann!~ann@10.0.0.1 QUIT :Changing hostname",
        ":ann!~ann@users/ann JOIN #a",
        f"{SRV} MODE #a +o :ann",
        ":ann!~ann@users/ann JOIN #b",
        f"{SRV} MODE #b +ov ann :ann",
    ]
    assert fancy.lines() == [
        ":ann!~ann@10.0.0.1 QUIT :Changing hostname",
        ":ann!~ann@users/ann JOIN #a * :ann",
        f"{SRV} MODE #a +o :ann",
        ":ann!~ann@users/ann AWAY :away",
        ":ann!~ann@users/ann JOIN #b * :ann",
        f"{SRV} MODE #b +ov ann :ann",
        ":ann!~ann@users/ann AWAY :away",
    ]


def test_the_host_alone_keeps_the_username(net: FakeNet) -> None:
    """``CHGHOST <nick> <host>``, as InspIRCd and UnrealIRCd have it."""
    op = _oper(net)
    ann = net.negotiated(net.last, "ann", "chghost")
    op.send("CHGHOST ann first.example")
    op.send("CHGHOST ann ident second.example")
    op.send("CHGHOST ann third.example")
    ip = f"10.0.0.{net.last + 1}"
    assert ann.lines() == [
        f":ann!~ann@{ip} CHGHOST ~ann first.example",
        ":ann!~ann@first.example CHGHOST ident second.example",
        ":ann!ident@second.example CHGHOST ident third.example",
    ]


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("CHGHOST ann a@b", "FAIL CHGHOST INVALID_HOST a@b :Host may hold only letters"),
        ("CHGHOST ann :::1", "FAIL CHGHOST INVALID_HOST ::1 :Host may not start with :"),
        ("CHGHOST ann " + "h" * 65, "FAIL CHGHOST INVALID_HOST " + "h" * 65 + " :Host must be"),
        ("CHGHOST ann a!b host", "FAIL CHGHOST INVALID_USERNAME a!b :Username may hold"),
        ("CHGHOST ann " + "u" * 19 + " host", "FAIL CHGHOST INVALID_USERNAME"),
        ("CHGHOST ann ~ host", "FAIL CHGHOST INVALID_USERNAME ~ :Username must be"),
        ("CHGHOST nobody host", "401 op nobody :No such nick/channel"),
        ("CHGHOST ann", "461 op CHGHOST :Not enough parameters"),
    ],
)
def test_refusals(net: FakeNet, line: str, answer: str) -> None:
    """A host or username that could not be one is a FAIL (IRCv3 standard replies); nobody
    by that nick, 401; too few parameters, 461. Nothing changes."""
    op = _oper(net)
    ann = net.negotiated(net.last, "ann", "chghost")
    op.send(line)
    (got,) = op.lines()
    assert got.startswith(f"{SRV} {answer}")
    assert ann.lines() == []


def test_no_change_is_said_so(net: FakeNet) -> None:
    op = _oper(net)
    ann = net.negotiated(net.last, "ann", "chghost")
    ip = f"10.0.0.{net.last + 1}"
    op.send(f"CHGHOST ann ~ann {ip}")
    assert op.lines() == [f"{SRV} NOTICE op :*** CHGHOST: ann is already ann!~ann@{ip}"]
    assert ann.lines() == []


def test_needs_the_privilege(net: FakeNet) -> None:
    """ERR_NOPRIVILEGES for a user, and for an operator without ``chghost``."""
    ann = net.negotiated(net.last, "ann", "chghost")
    user = net.user("usr")
    user.send("CHGHOST ann host")
    assert user.lines() == [f"{SRV} 481 usr :Permission Denied- You're not an IRC operator"]
    op = _oper(net, 0, "killer", "kill")
    op.send("CHGHOST ann host")
    assert op.lines() == [f"{SRV} 481 op :Permission Denied- You're not an IRC operator"]
    assert ann.lines() == []


def test_checks() -> None:
    assert host_problem(b"users/ada") is None
    assert host_problem(b"2001:db8::1") is None
    assert host_problem(b"") is not None
    assert host_problem(b":x") is not None
    assert username_problem(b"~ada") is None
    assert username_problem(b"ada.b-c_d") is None
    assert username_problem(b"~") is not None
    assert username_problem(b"a~b") is not None
