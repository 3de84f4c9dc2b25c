"""REHASH and reloads in the pure core: who may ask, what the operator hears, and what a
reload may change (Modern IRC "REHASH"; issue 10)."""

from __future__ import annotations

import dataclasses

import pytest

from fastchat.server.config import Config, OperBlock, reloaded
from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def test_rehash_needs_the_rehash_privilege(net: FakeNet) -> None:
    """Modern IRC: "If the client is not an operator, ERR_NOPRIVILEGES is returned"; the file
    is not read."""
    alice = net.connect(len(net.cores) - 1, "alice")
    alice.lines()
    alice.send("REHASH")
    assert alice.lines() == [
        ":fastchat.local 481 alice :Permission Denied- You're not an IRC operator"
    ]
    assert not alice.core.offload.rehash_requests


def test_rehash_asks_the_shell_and_reports_success_and_restarts(net: FakeNet) -> None:
    """An operator's REHASH becomes a request to the shell (reading the file is I/O); on
    success 382 RPL_REHASHING names the file, and settings that change only at a restart are
    named in a notice."""
    alice = net.connect(len(net.cores) - 1, "alice")
    alice.client.privileges = frozenset({"rehash"})
    alice.lines()
    alice.send("REHASH")
    assert alice.core.offload.rehash_requests == [alice.client.uid]
    alice.core.offload.rehash_requests.clear()
    alice.core.offload.rehash_done(
        alice.client.uid, "/etc/fastchat.toml", None, ["workers", "port"]
    )
    assert alice.lines() == [
        ":fastchat.local 382 alice /etc/fastchat.toml :Rehashing",
        ":fastchat.local NOTICE alice :These settings change only at a restart: workers, port",
    ]


def test_a_failed_rehash_says_why(net: FakeNet) -> None:
    """A file that cannot be used keeps the old config, and the operator hears why."""
    alice = net.connect(0, "alice")
    alice.lines()
    alice.core.offload.rehash_done(alice.client.uid, "f.toml", "f.toml:3: unknown setting 'x'", [])
    assert alice.lines() == [
        ":fastchat.local NOTICE alice :REHASH failed, the old config stays: "
        "f.toml:3: unknown setting 'x'"
    ]


def test_reconfigure_changes_what_the_core_and_its_sequencer_decide(net: FakeNet) -> None:
    """After a reload, limits apply at once: NICKLEN here, and the sequencer's TOPICLEN."""
    alice = net.connect(0, "alice")
    alice.send("JOIN #c")
    alice.lines()
    new = dataclasses.replace(net.config, nicklen=5, topiclen=3)
    for core in net.cores:
        core.reconfigure(new)
    net.sequencer.config = new  # the hub's part (FakeNet plays the hub at 2 workers)
    alice.send("NICK toolong", "TOPIC #c :abcdef")
    assert alice.lines() == [
        ":fastchat.local 432 alice toolong :Erroneous nickname",
        ":alice!~alice@10.0.0.1 TOPIC #c :abc",
    ]


def test_reloaded_takes_what_may_change_live_and_names_the_rest() -> None:
    """``config.reloaded``: reloadable settings and the opers come from the file; the others
    stay, and their keys are reported as needing a restart."""
    # nothing listens here: these are Config values; network is one that needs a restart
    old = Config(network=b"OldNet", workers=4, nicklen=30)
    oper = OperBlock(b"admin", "scrypt$16384$8$1$c2FsdA$aGFzaA")
    new = Config(network=b"NewNet", workers=4, nicklen=20, motd=(b"new",), opers=(oper,))
    merged, restart = reloaded(old, new)
    assert (merged.network, merged.nicklen, merged.motd, merged.opers) == (
        b"OldNet",
        20,
        (b"new",),
        (oper,),
    )
    assert restart == ["network"]
