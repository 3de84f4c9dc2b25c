"""IRCv3 ``userhost-in-names`` (https://ircv3.net/specs/extensions/userhost-in-names), through
worker cores at one and two workers: NAMES (353), the NAMES command's and the burst that
answers JOIN, shows each member as ``nick!user@host`` to a client that negotiated it; a client
that did not sees nicks, as before. Lines stay within 512 bytes.
"""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_names_shows_userhost(net: FakeNet) -> None:
    """ "the server MUST send the full nickmask (nick!user@host) of each user in the
    RPL_NAMREPLY" to a client that negotiated it; others get nicks."""
    uhn = net.negotiated(len(net.cores) - 1, "uhn", "userhost-in-names")
    plain = net.negotiated(0, "plain")
    plain.send("JOIN #c")
    uhn.send("JOIN #c")
    plain.lines()
    uhn.lines()
    host = f"10.0.0.{len(net.cores)}"
    uhn.send("NAMES #c")
    assert uhn.lines() == [
        f":fastchat.local 353 uhn = #c :@plain!~plain@10.0.0.1 uhn!~uhn@{host}",
        ":fastchat.local 366 uhn #c :End of /NAMES list.",
    ]
    plain.send("NAMES #c")
    assert plain.lines() == [
        ":fastchat.local 353 plain = #c :@plain uhn",
        ":fastchat.local 366 plain #c :End of /NAMES list.",
    ]


def test_join_burst_shows_userhost(net: FakeNet) -> None:
    """The NAMES sent on JOIN (RFC 2812 §3.2.1) follows the joining client's capabilities."""
    plain = net.negotiated(0, "plain")
    plain.send("JOIN #c")
    plain.lines()
    uhn = net.negotiated(len(net.cores) - 1, "uhn", "userhost-in-names")
    uhn.send("JOIN #c")
    host = f"10.0.0.{len(net.cores)}"
    assert uhn.lines() == [
        f":uhn!~uhn@{host} JOIN #c",
        f":fastchat.local 353 uhn = #c :@plain!~plain@10.0.0.1 uhn!~uhn@{host}",
        ":fastchat.local 366 uhn #c :End of /NAMES list.",
    ]
    other = net.negotiated(len(net.cores) - 1, "other")
    other.send("JOIN #c")
    assert other.lines()[1] == ":fastchat.local 353 other = #c :@plain uhn other"


def test_with_multi_prefix(net: FakeNet) -> None:
    """Both at once: every prefix, then the full mask (``@+nick!user@host``)."""
    both = net.negotiated(len(net.cores) - 1, "both", "multi-prefix", "userhost-in-names")
    both.send("JOIN #c", "MODE #c +v both")
    both.lines()
    both.send("NAMES #c")
    host = f"10.0.0.{len(net.cores)}"
    assert both.lines()[0] == f":fastchat.local 353 both = #c :@+both!~both@{host}"


def test_names_lines_stay_within_512_bytes(net: FakeNet) -> None:
    """Masks are long: the 353s are split so that each line fits in 512 bytes (RFC 1459
    §2.3), and every member is listed once."""
    uhn = net.negotiated(0, "uhn", "userhost-in-names", "multi-prefix")
    uhn.send("JOIN #c")
    members = [f"m{i:02d}" + "x" * 20 for i in range(40)]
    for i, nick in enumerate(members):
        c = net.negotiated(i % len(net.cores), nick)
        c.send("JOIN #c")
    uhn.lines()
    uhn.send("NAMES #c")
    replies = uhn.raw_lines()
    names = [r for r in replies if b" 353 " in r]
    assert len(names) > 1
    assert all(len(r) + 2 <= 512 for r in names)
    listed = b" ".join(r.split(b" :", 1)[1] for r in names).split()
    assert len(listed) == len(members) + 1
    assert {x.split(b"!")[0].lstrip(b"@+") for x in listed} == {
        n.encode() for n in [*members, "uhn"]
    }
    assert all(b"!~" in x and b"@10.0.0." in x for x in listed)
