"""IRCv3 ``away-notify`` (https://ircv3.net/specs/extensions/away-notify) through worker
cores at one and two workers: "clients will be sent an AWAY message when a user sharing a
channel with them sets, changes or removes their away state, as well as when a user joins
and has an away message set".
"""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet

SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_away_changes_reach_channel_peers_that_asked(net: FakeNet) -> None:
    """Set, changed, removed: ``AWAY :message`` and bare ``AWAY``, to peers with the
    capability only; the user itself gets its numerics, even if it negotiated it; someone
    who shares no channel hears nothing."""
    ann = net.negotiated(0, "ann", "away-notify")
    bob = net.negotiated(net.last, "bob", "away-notify")
    cat = net.negotiated(net.last, "cat")
    out = net.negotiated(0, "out", "away-notify")
    for c in (ann, bob, cat):
        c.send("JOIN #c")
    for c in (ann, bob, cat, out):
        c.lines()
    bob_mask = f"bob!~bob@10.0.0.{net.last + 1}"
    bob.send("AWAY :lunch")
    bob.send("AWAY :still lunch")
    bob.send("AWAY")
    assert ann.lines() == [
        f":{bob_mask} AWAY :lunch",
        f":{bob_mask} AWAY :still lunch",
        f":{bob_mask} AWAY",
    ]
    assert bob.lines() == [
        f"{SRV} 306 bob :You have been marked as being away",
        f"{SRV} 306 bob :You have been marked as being away",
        f"{SRV} 305 bob :You are no longer marked as being away",
    ]
    assert cat.lines() == []
    assert out.lines() == []


def test_no_line_when_nothing_changed(net: FakeNet) -> None:
    """Only a change is told: AWAY when not away, or the same message again, is not one."""
    ann = net.negotiated(0, "ann", "away-notify")
    bob = net.negotiated(net.last, "bob")
    for c in (ann, bob):
        c.send("JOIN #c")
        c.lines()
    ann.lines()
    bob.send("AWAY")
    bob.send("AWAY :x")
    bob.send("AWAY :x")
    assert ann.lines() == [f":bob!~bob@10.0.0.{net.last + 1} AWAY :x"]


def test_an_away_user_joining_is_followed_by_its_away(net: FakeNet) -> None:
    """The AWAY comes right after the JOIN, to members that asked; the joining user does not
    get its own."""
    ann = net.negotiated(0, "ann", "away-notify")
    cat = net.negotiated(0, "cat")
    ann.send("JOIN #c")
    cat.send("JOIN #c")
    ann.lines()
    cat.lines()
    bob = net.negotiated(net.last, "bob", "away-notify")
    bob.send("AWAY :gone fishing")
    bob.lines()
    bob.send("JOIN #c")
    bob_mask = f"bob!~bob@10.0.0.{net.last + 1}"
    assert ann.lines() == [f":{bob_mask} JOIN #c", f":{bob_mask} AWAY :gone fishing"]
    assert cat.lines() == [f":{bob_mask} JOIN #c"]
    assert not [line for line in bob.lines() if " AWAY" in line]


def test_away_lines_carry_the_decisions_time(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", "away-notify", "server-time")
    bob = net.negotiated(net.last, "bob")
    for c in (ann, bob):
        c.send("JOIN #c")
        c.lines()
    ann.lines()
    bob.send("AWAY :brb")
    (line,) = ann.raw_lines()
    assert line.startswith(b"@time=") and line.endswith(b" AWAY :brb")
