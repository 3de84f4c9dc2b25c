"""IRCv3 ``setname`` (https://ircv3.net/specs/extensions/setname) through worker cores at one
and two workers: ``SETNAME :realname`` is decided by the sequencer (every replica's WHOIS
shows it), confirmed to its sender and shown to channel peers, each only if it negotiated
the capability; an invalid realname gets ``FAIL SETNAME INVALID_REALNAME``.
"""

from __future__ import annotations

import pytest

from fastchat.server.network.records import E_SETNAME, EIntro, ESetname, make
from fastchat.server.network.state import REALNAMELEN, State
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def _channel(net: FakeNet) -> tuple[FakeClient, FakeClient, FakeClient]:
    """``ann`` (setname, worker 0), ``bob`` (setname, the last worker) and ``cat`` (nothing,
    the last worker), all in #c, their output read."""
    ann = net.negotiated(0, "ann", "setname")
    bob = net.negotiated(net.last, "bob", "setname")
    cat = net.negotiated(net.last, "cat")
    for c in (ann, bob, cat):
        c.send("JOIN #c")
    for c in (ann, bob, cat):
        c.lines()
    return ann, bob, cat


def test_setname_confirmed_and_shown_to_peers_with_the_capability(net: FakeNet) -> None:
    """ "they MUST send the server-to-client version of the SETNAME message to all clients in
    common channels, as well as to the client from which it originated" ... "MUST NOT be sent
    to clients which do not have the setname capability negotiated" """
    ann, bob, cat = _channel(net)
    ann.send("SETNAME :Ann Other")
    assert ann.lines() == [":ann!~ann@10.0.0.1 SETNAME :Ann Other"]
    assert bob.lines() == [":ann!~ann@10.0.0.1 SETNAME :Ann Other"]
    assert cat.lines() == []


def test_the_new_realname_is_network_state(net: FakeNet) -> None:
    """Decided by the sequencer and applied by every replica: WHOIS and WHO from another
    worker show it at once."""
    ann, _bob, cat = _channel(net)
    ann.send("SETNAME :Ann Other")
    cat.send("WHOIS ann", "WHO ann")
    got = cat.lines()
    assert f"{SRV} 311 cat ann ~ann 10.0.0.1 * :Ann Other" in got
    assert f"{SRV} 352 cat * ~ann 10.0.0.1 fastchat.local ann H :0 Ann Other" in got


def test_without_the_capability_it_works_silently(net: FakeNet) -> None:
    """ "Servers advertising the setname capability MUST support usage of the command even
    while the capability is not negotiated" ... "SHOULD handle it silently (with no
    response)" """
    ann, bob, cat = _channel(net)
    cat.send("SETNAME :Cat Other")
    assert cat.lines() == []
    assert bob.lines() == [f":cat!~cat@10.0.0.{net.last + 1} SETNAME :Cat Other"]
    ann.send("WHOIS cat")
    assert f"{SRV} 311 ann cat ~cat 10.0.0.{net.last + 1} * :Cat Other" in ann.lines()


def test_several_parameters_are_one_realname(net: FakeNet) -> None:
    """What a client that sends ``/setname Jane Doe`` as a raw line means (as Ergo does)."""
    ann = net.negotiated(0, "ann", "setname")
    ann.send("SETNAME Jane Doe")
    assert ann.lines() == [":ann!~ann@10.0.0.1 SETNAME :Jane Doe"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("SETNAME :", "Realname is not valid: it is empty"),
        (
            "SETNAME :" + "x" * (REALNAMELEN + 1),
            f"Realname is not valid: longer than {REALNAMELEN} bytes (NAMELEN)",
        ),
    ],
    ids=["empty", "too-long"],
)
def test_an_invalid_realname_fails(net: FakeNet, line: str, why: str) -> None:
    """ "If the server rejects the realname as a result of a validation failure, it MUST send
    a FAIL message with the INVALID_REALNAME code"; nothing changes, nobody is told."""
    ann, bob, _cat = _channel(net)
    ann.send(line)
    assert ann.lines() == [f"{SRV} FAIL SETNAME INVALID_REALNAME :{why}"]
    assert bob.lines() == []
    bob.send("WHOIS ann")
    assert f"{SRV} 311 bob ann ~ann 10.0.0.1 * :ann" in bob.lines()


def test_the_longest_realname_is_namelen(net: FakeNet) -> None:
    """ISUPPORT announces the limit ("servers MUST provide a NAMELEN token"), and a realname
    of exactly that length is taken."""
    ann = net.connect(0)
    welcome = ann.register("ann")
    assert any(f" NAMELEN={REALNAMELEN} " in line for line in welcome)
    ann.send("SETNAME :" + "y" * REALNAMELEN, "WHOIS ann")
    assert f"{SRV} 311 ann ann ~ann 10.0.0.1 * :{'y' * REALNAMELEN}" in ann.lines()


def test_needs_a_parameter(net: FakeNet) -> None:
    ann = net.user("ann")
    ann.send("SETNAME")
    assert ann.lines() == [f"{SRV} 461 ann SETNAME :Not enough parameters"]


def test_setname_carries_the_decisions_time(net: FakeNet) -> None:
    """A relayed line: with server-time, the sequencer's time tag, the same for everyone."""
    ann = net.negotiated(0, "ann", "setname", "server-time")
    bob = net.negotiated(net.last, "bob", "setname", "server-time")
    for c in (ann, bob):
        c.send("JOIN #c")
        c.lines()
    ann.lines()
    ann.send("SETNAME :Timed")
    (mine,) = ann.raw_lines()
    assert mine.startswith(b"@time=") and mine.endswith(b" :ann!~ann@10.0.0.1 SETNAME :Timed")
    assert bob.raw_lines() == [mine]


def test_apply_is_idempotent() -> None:
    """State.apply: a replayed E_SETNAME changes nothing the second time."""
    state = State()
    state.apply(make(EIntro, 1, b"ann", b"~ann", b"h", b"Ann", 0, b"", 0))
    event = make(ESetname, 1, b"New", time=5)
    assert event[0] == E_SETNAME
    assert state.apply(event) is True
    assert state.apply(event) is False
    assert state.users[1].realname == b"New"
