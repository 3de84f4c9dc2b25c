"""IRCv3 draft/pre-away, through worker cores at one and two workers: AWAY before the
registration completes (only with the capability), carried by the registration, so the user
is away in every replica from its first moment, and those that share its autojoin channel
with away-notify see its AWAY right after its JOIN."""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet

SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)  # the default lobby


def test_away_before_registering(net: FakeNet) -> None:
    watcher = net.negotiated(0, "watcher", "away-notify")
    c = net.connect(net.last)
    c.send("CAP LS 302", "CAP REQ :draft/pre-away", "AWAY", "AWAY *")
    assert c.lines()[-1] == f"{SRV} 305 * :You are no longer marked as being away"
    c.send("NICK bg", "USER bg 0 * :bg", "CAP END")
    got = c.lines()
    assert f"{SRV} 306 bg :You have been marked as being away" in got
    for core in net.cores:
        assert core.state.user_by_nick(b"bg").away == b"*"
    host = f"10.0.0.{net.last + 1}"
    assert watcher.lines() == [f":bg!~bg@{host} JOIN #lobby", f":bg!~bg@{host} AWAY :*"]


def test_not_without_the_capability(net: FakeNet) -> None:
    c = net.connect(0)
    c.send("AWAY :lunch")
    assert c.lines() == [f"{SRV} 451 * :You have not registered"]
    c.send("NICK plain", "USER plain 0 * :p")
    c.lines()
    assert net.cores[0].state.user_by_nick(b"plain").away == b""
