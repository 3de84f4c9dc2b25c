"""IRCv3 draft/metadata-3 (METADATA) in the pure core, at one and two workers: SET, GET,
LIST, CLEAR on oneself and on a channel, who may (oneself; a channel's operators) and who
may see (a channel's members), subscriptions and what a subscriber is told (on the other
worker too), the batch of a JOIN, WHOIS 760, the limits and FAILs, and the table's end
with its owner (a quit, a channel emptied) and across a snapshot."""

from __future__ import annotations

import socket

import pytest

from fastchat.server.config import Config
from fastchat.server.network import metadata
from fastchat.server.network.records import E_METADATA, EMetadata, make
from fastchat.server.network.state import State
from fastchat.server.runtime.hub import Hub
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
CAPS = ("draft/metadata-3",)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def pair(net: FakeNet, join: bool = True) -> tuple[FakeClient, FakeClient]:
    """foo (worker 0) and bar (the last worker), both with the capability, both on #chan
    (foo its operator) if ``join``."""
    foo = net.negotiated(0, "foo", *CAPS)
    bar = net.negotiated(net.last, "bar", *CAPS)
    if join:
        foo.send("JOIN #chan")
        bar.send("JOIN #chan")
        foo.lines()
        bar.lines()
    return foo, bar


def test_set_get_list_and_unset_oneself(net: FakeNet) -> None:
    foo, bar = pair(net)
    foo.send("METADATA * SET display-name :Foo The First")
    assert foo.lines() == [f"{SRV} 761 foo foo display-name * :Foo The First"]
    assert bar.lines() == []  # not subscribed
    bar.send("METADATA FOO GET display-name avatar")
    assert bar.lines() == [
        f"{SRV} 761 bar foo display-name * :Foo The First",
        f"{SRV} 766 bar foo avatar :Key is not set",
    ]
    foo.send("METADATA foo SET avatar :https://example.org/a.png", "METADATA * LIST")
    assert foo.lines()[1:] == [
        f"{SRV} 761 foo foo display-name * :Foo The First",
        f"{SRV} 761 foo foo avatar * :https://example.org/a.png",
    ]
    foo.send("METADATA * SET display-name")
    assert foo.lines() == [f"{SRV} 766 foo foo display-name :Key deleted"]
    for core in net.cores:
        assert core.state.metadata.of(foo.client.uid) == {b"avatar": b"https://example.org/a.png"}


def test_channels_are_set_by_operators_and_seen_by_members(net: FakeNet) -> None:
    foo, bar = pair(net)
    bar.send("METADATA #chan SET display-name :Sharp")
    assert bar.lines() == [
        f"{SRV} FAIL METADATA KEY_NO_PERMISSION #chan display-name "
        ":You do not have permission to change that"
    ]
    foo.send("METADATA #CHAN SET display-name :Hash Channel")
    assert foo.lines() == [f"{SRV} 761 foo #chan display-name * :Hash Channel"]
    bar.send("METADATA #chan GET display-name")
    assert bar.lines() == [f"{SRV} 761 bar #chan display-name * :Hash Channel"]
    out = net.negotiated(0, "out", *CAPS)
    out.send("METADATA #chan LIST", "METADATA nobody LIST", "METADATA bar SET x :y")
    assert out.lines() == [
        f"{SRV} FAIL METADATA KEY_NO_PERMISSION #chan * :You do not have permission to see that",
        f"{SRV} FAIL METADATA INVALID_TARGET nobody :Invalid metadata target",
        f"{SRV} FAIL METADATA KEY_NO_PERMISSION bar x :You do not have permission to change that",
    ]
    foo.send("METADATA #chan SET avatar :a", "METADATA #chan CLEAR")
    assert foo.lines()[1:] == [
        f"{SRV} 766 foo #chan display-name :Metadata value cleared",
        f"{SRV} 766 foo #chan avatar :Metadata value cleared",
    ]
    foo.send("PART #chan", "JOIN #chan")  # a channel's metadata ends with the channel
    bar.send("PART #chan")
    foo.send("METADATA #chan SET a :1", "PART #chan")
    for core in net.cores:
        assert core.state.metadata.by_owner == {}


def test_subscribers_are_told_on_any_worker(net: FakeNet) -> None:
    foo, bar = pair(net, join=False)
    bar.send("METADATA * SUB display-name avatar Avatar", "METADATA * SUBS")
    assert bar.lines() == [
        f"{SRV} 770 bar display-name :avatar",
        f"{SRV} 772 bar avatar :display-name",
    ]
    foo.send("METADATA * SET display-name :Foo")
    assert bar.lines() == []  # no channel shared: not told
    foo.send("JOIN #chan")
    bar.send("JOIN #chan")  # the batch of a JOIN: foo's value (bar has none)
    got = [line for line in bar.lines() if " 761 " in line]
    assert got == [f"{SRV} 761 * foo display-name * :Foo"]
    foo.send("METADATA * SET display-name :Foo Two", "METADATA * SET homepage :x")
    assert bar.lines() == [f"{SRV} 761 * foo display-name * :Foo Two"]  # not homepage
    foo.send("METADATA #chan SET avatar :pic", "METADATA * SET display-name")
    assert bar.lines() == [
        f"{SRV} 761 * #chan avatar * :pic",
        f"{SRV} 766 * foo display-name :Key deleted",
    ]
    bar.send("METADATA * UNSUB avatar", "METADATA #chan SYNC")
    assert bar.lines() == [f"{SRV} 771 bar :avatar"]  # SYNC: nothing subscribed is set
    foo.send("METADATA #chan SET avatar :pic2")
    assert bar.lines() == []


def test_whois_shows_the_keys(net: FakeNet) -> None:
    foo, bar = pair(net)
    foo.send("METADATA * SET display-name :Foo The First")
    bar.send("WHOIS foo")
    assert f"{SRV} 760 bar foo display-name * :Foo The First" in bar.lines()
    plain = net.user("plain", net.last)  # without the capability: no 760
    plain.send("WHOIS foo")
    assert not [line for line in plain.lines() if " 760 " in line]


def test_refusals_and_limits(net: FakeNet) -> None:
    foo, _ = pair(net)
    foo.send(
        "METADATA * SET Bad!Key :x",
        "METADATA * SET k :" + "x" * (metadata.MAX_VALUE_BYTES + 1),
        "METADATA * FROB",
        "METADATA * GET",
    )
    assert foo.lines() == [
        f"{SRV} FAIL METADATA INVALID_KEY bad!key :Invalid key name",
        f"{SRV} FAIL METADATA INVALID_VALUE k :Value is too long",
        f"{SRV} FAIL METADATA INVALID_PARAMS FROB :Invalid subcommand",
        f"{SRV} 461 foo METADATA :Not enough parameters",
    ]
    foo.send(*(f"METADATA * SET k{n} :v" for n in range(metadata.MAX_KEYS + 1)))
    assert foo.lines()[-1] == (
        f"{SRV} FAIL METADATA LIMIT_REACHED foo {metadata.MAX_KEYS} :Too many metadata keys"
    )
    keys = " ".join(f"s{n}" for n in range(metadata.MAX_SUBS + 2))
    foo.send(f"METADATA * SUB {keys}")
    got = foo.lines()
    assert got[0] == (
        f"{SRV} FAIL METADATA LIMIT_REACHED s{metadata.MAX_SUBS} {metadata.MAX_SUBS} "
        ":Too many subscriptions"
    )
    assert sum(len(line.split(" ")) - 3 for line in got[1:]) == metadata.MAX_SUBS
    plain = net.user("plain")
    plain.send("METADATA * LIST")
    assert plain.lines() == [f"{SRV} 421 plain METADATA :Unknown command"]


def test_a_users_metadata_ends_when_it_quits(net: FakeNet) -> None:
    foo, _ = pair(net)
    foo.send("METADATA * SET display-name :Foo", "QUIT")
    foo.core.connection_lost(foo.client, b"Client quit", net.now)
    net.pump()
    for core in net.cores:
        assert foo.client.uid not in core.state.metadata.by_owner


def test_metadata_crosses_a_snapshot() -> None:
    state = State()
    state.apply(make(EMetadata, 0, 0, b"#c", b"k", b"v", 0))  # no such channel: nothing
    assert state.metadata.rows() == ()
    state.metadata.set(5, b"avatar", b"x")
    state.metadata.set(b"#c", b"topic-url", b"y")
    copy = State()
    copy.load_snapshot(state.snapshot())
    assert copy.metadata.rows() == state.metadata.rows()


def test_a_new_hub_restores_metadata_from_a_replica() -> None:
    """After a hub crash the new hub merges a worker's replica: a value it lacks (a user's,
    a channel's) comes back as an E_METADATA that answers nobody (uid 0); one it holds
    already changes nothing."""
    net = FakeNet(workers=1, autojoin=())
    foo = net.negotiated(0, "foo", *CAPS)
    foo.send("JOIN #chan", "METADATA * SET avatar :a.png", "METADATA #chan SET url :x")
    replica = net.cores[0].state.snapshot()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=1), listener, None)
        hub.out[0] = []
        hub._merge(0, replica, set(net.cores[0].state.users))
        back = [r for r in hub.out[0] if r[0] == E_METADATA]
        assert [(r[1], r[2], r[3], r[4], r[5]) for r in back] == [
            (0, foo.client.uid, b"", b"avatar", b"a.png"),
            (0, 0, b"#chan", b"url", b"x"),
        ]
        assert hub.state.metadata.rows() == net.cores[0].state.metadata.rows()
        hub._merge(0, replica, set(net.cores[0].state.users))
        assert [r for r in hub.out[0] if r[0] == E_METADATA] == back
