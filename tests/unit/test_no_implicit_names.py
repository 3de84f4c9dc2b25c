"""IRCv3 ``no-implicit-names`` (https://ircv3.net/specs/extensions/no-implicit-names), through
worker cores at one and two workers: a client that negotiated it gets no 353/366 after its
JOIN ("servers MUST NOT send an implicit NAMES reply"), but its topic, its read marker, and
an explicit NAMES ("MUST reply ... as usual"); a client that did not gets them, as before."""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet

SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_join_without_names_unless_asked(net: FakeNet) -> None:
    plain = net.negotiated(0, "plain")
    plain.send("JOIN #c", "TOPIC #c :the topic")
    plain.lines()
    quiet = net.negotiated(net.last, "quiet", "no-implicit-names", "draft/read-marker")
    host = f"10.0.0.{net.last + 1}"
    quiet.send("JOIN #c")
    got = quiet.lines()
    assert got[0] == f":quiet!~quiet@{host} JOIN #c"
    assert [line.split(" ")[1] for line in got[1:]] == ["332", "333", "MARKREAD"]
    quiet.send("NAMES #c")
    assert quiet.lines() == [
        f"{SRV} 353 quiet = #c :@plain quiet",
        f"{SRV} 366 quiet #c :End of /NAMES list.",
    ]
    late = net.negotiated(net.last, "late")
    late.send("JOIN #c")
    assert [line.split(" ")[1] for line in late.lines()[1:]] == ["332", "333", "353", "366"]


def test_the_autojoin_too() -> None:
    net = FakeNet(workers=2)  # the default lobby
    c = net.connect(1)
    c.send("CAP LS 302", "CAP REQ :no-implicit-names", "NICK q", "USER q 0 * :q", "CAP END")
    got = c.lines()
    assert any(line.endswith(" JOIN #lobby") for line in got)
    assert not [line for line in got if " 353 " in line or " 366 " in line]
