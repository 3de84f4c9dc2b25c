"""IRCv3 ``cap-notify`` (https://ircv3.net/specs/extensions/capability-negotiation#cap-notify)
and the capabilities the server offers, through worker cores at one and two workers.

"The cap-notify capability MUST be implicitly enabled if the client requests CAP LS with a
version of 302 or newer", and then "MAY NOT be disabled"; a client that did not ask for 302
may request it, and disable it. fastchat's offering never changes at run time, so no
``CAP NEW`` or ``CAP DEL`` is ever sent.
"""

from __future__ import annotations

import pytest

from fastchat.server.caps import CAPABILITIES, Capability, Registry
from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def test_cap_ls_302_lists_every_capability(net: FakeNet) -> None:
    """CAP LS lists every capability offered, with or without 302 (in name order; with 302
    over several lines, ``* :`` on all but the last, when one would be too long)."""
    for version in ("302", ""):
        c = net.connect(len(net.cores) - 1)
        c.send(f"CAP LS {version}".strip())
        got = c.lines()
        assert all(line.startswith(":fastchat.local CAP * LS ") for line in got)
        assert all(len(line) < 510 for line in got)
        assert all(line.split(" ", 4)[4].startswith("* :") for line in got[:-1])
        tokens = " ".join(line.split(":", 2)[2] for line in got).split()
        expected = CAPABILITIES.ls_tokens(302 if version else 0)
        assert tokens == [t.decode() for t in expected]
    names = [c.name for c in CAPABILITIES]
    assert names == sorted(names)  # name order: stable bits, a stable CAP LS
    assert {
        b"account-notify",
        b"account-tag",
        b"away-notify",
        b"batch",
        b"cap-notify",
        b"chghost",
        b"echo-message",
        b"extended-join",
        b"extended-monitor",
        b"invite-notify",
        b"labeled-response",
        b"message-tags",
        b"multi-prefix",
        b"server-time",
        b"setname",
        b"standard-replies",
        b"userhost-in-names",
    } <= set(names)


def test_cap_ls_302_enables_cap_notify(net: FakeNet) -> None:
    """Implicitly enabled by CAP LS 302 (so CAP LIST shows it: servers "MAY list" it), ACKed
    without side effects when requested, and a request to disable it is refused (NAK)."""
    c = net.connect(len(net.cores) - 1)
    c.send("CAP LS 302")
    c.lines()
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :cap-notify"]
    c.send("CAP REQ :cap-notify multi-prefix")
    assert c.lines() == [":fastchat.local CAP * ACK :cap-notify multi-prefix"]
    c.send("CAP REQ :-cap-notify")
    assert c.lines() == [":fastchat.local CAP * NAK :-cap-notify"]
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :cap-notify multi-prefix"]
    c.send("NICK n", "USER n 0 * :n", "CAP END")
    assert any(" 001 " in line for line in c.lines())
    c.send("CAP LS 302", "CAP LIST")
    assert c.lines()[-1] == ":fastchat.local CAP n LIST :cap-notify multi-prefix"


def test_cap_notify_without_302_is_requested(net: FakeNet) -> None:
    """A client that asked CAP LS without 302 has nothing enabled until it asks; then it may
    request cap-notify and disable it again."""
    c = net.connect(len(net.cores) - 1)
    c.send("CAP LS")
    c.lines()
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :"]
    c.send("CAP REQ :cap-notify")
    assert c.lines() == [":fastchat.local CAP * ACK :cap-notify"]
    c.send("CAP REQ :-cap-notify")
    assert c.lines() == [":fastchat.local CAP * ACK :-cap-notify"]
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :"]


def test_registry_implicit_302() -> None:
    """The registry keeps the bits of capabilities marked ``implicit_302``; a request that
    would disable a locked bit is refused as a whole."""
    reg = Registry([Capability(b"a"), Capability(b"b", implicit_302=True)])
    assert reg.implicit_302 == reg.bit(b"b")
    both = reg.bit(b"a") | reg.bit(b"b")
    assert reg.request(both, [b"-b"]) == reg.bit(b"a")
    assert reg.request(both, [b"-b"], locked=reg.implicit_302) is None
    assert reg.request(both, [b"-a"], locked=reg.implicit_302) == reg.bit(b"b")
