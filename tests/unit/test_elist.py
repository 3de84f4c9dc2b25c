"""LIST's searches, ISUPPORT ELIST=CMNTU (commands/elist.py): masks, user counts, creation
and topic times, at one worker and across two (each answers from its own replica)."""

from __future__ import annotations

import pytest

from fastchat.irc.casemap import fold
from fastchat.server.commands import elist
from fastchat.server.network.access import mask_regex
from fastchat.server.render.replies import isupport_tokens
from tests.unit.fakenet import FakeClient, FakeNet


def listed(c: FakeClient, terms: str = "") -> list[str]:
    """The channels a LIST answers ``c`` with, in the order given."""
    c.send(f"LIST {terms}".rstrip())
    lines = c.lines()
    assert " 321 " in lines[0] and " 323 " in lines[-1], lines
    return [line.split()[3] for line in lines if " 322 " in line]


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    net = FakeNet(workers=request.param, autojoin=())
    ann = net.user("ann", 0)
    bob = net.user("bob", net.last)
    ann.send("JOIN #chan1", "JOIN #chan2", "JOIN #Other")
    bob.send("JOIN #chan2")
    ann.lines()
    bob.lines()
    return net


def test_isupport_says_what_list_takes() -> None:
    assert b"ELIST=" + elist.ELIST in isupport_tokens(FakeNet().config)


def test_masks_and_not_masks(net: FakeNet) -> None:
    c = net.user("cat", net.last)
    assert sorted(listed(c, "*an1")) == ["#chan1"]
    assert sorted(listed(c, "#C*N2")) == ["#chan2"], "masks fold as names do"
    assert sorted(listed(c, "#ch*")) == ["#chan1", "#chan2"]
    assert listed(c, "*an3") == []
    assert sorted(listed(c, "!#ch*")) == ["#Other"]
    assert sorted(listed(c, "!*an1")) == ["#Other", "#chan2"]
    assert sorted(listed(c, "#ch*,!*2")) == ["#chan1"], "a mask, and not another"
    assert listed(c, "#chan2,#other") == ["#chan2", "#Other"], "names, in the order asked"
    assert listed(c, "#[a]*") == [], "[ is a character, not a class"


def test_user_counts(net: FakeNet) -> None:
    c = net.user("cat", 0)
    assert sorted(listed(c, ">0")) == ["#Other", "#chan1", "#chan2"]
    assert listed(c, ">1") == ["#chan2"]
    assert sorted(listed(c, "<2")) == ["#Other", "#chan1"]
    assert listed(c, "<1") == []
    assert listed(c, ">1,<2") == []
    assert listed(c, "#ch*,<2") == ["#chan1"]
    assert listed(c, ">x") == [], "no search: a name, which names nothing"


def test_creation_and_topic_times(net: FakeNet) -> None:
    ann = net.clients[0]
    net.now += 180  # three minutes after #chan1, #chan2 and #Other were made
    ann.send("JOIN #late", "TOPIC #late :fresh")
    net.now += 60
    ann.send("TOPIC #chan1 :older")  # (topic set now: a minute after #late's)
    ann.lines()
    net.now += 60
    c = net.user("cat", net.last)
    assert sorted(listed(c, "C>3")) == ["#Other", "#chan1", "#chan2"]
    assert listed(c, "C<3") == ["#late"]
    assert listed(c, "C<0") == []
    assert len(listed(c, "C>0")) == 4
    assert listed(c, "T>1") == ["#late"], "topics: set two minutes ago, and one"
    assert listed(c, "T<2") == ["#chan1"]
    assert sorted(listed(c, "T<10")) == ["#chan1", "#late"], "no topic: no topic time"


def test_secret_channels_stay_hidden_from_searches(net: FakeNet) -> None:
    ann = net.clients[0]
    ann.send("MODE #chan1 +s")
    c = net.user("cat", net.last)
    assert listed(c, "#ch*") == ["#chan2"]
    assert sorted(listed(c, ">0")) == ["#Other", "#chan2"]


@pytest.mark.parametrize(
    ("mask", "name", "expected"),
    [
        (b"#ch*", b"#chan", True),
        (b"*an", b"#chan", True),
        (b"#c?an", b"#chan", True),
        (b"#c?n", b"#chan", False),
        (b"*", b"#x", True),
        (b"#*a*n", b"#chan", True),
        (b"#*a*a*n", b"#chan", False),
        (b"#a*b*a", b"#aba", True),
        (b"#a*b*ab", b"#abab", True),
        (b"#ab*ab", b"#ab", False),
        (b"#[a]", b"#[a]", True),
        (b"#CH\\AN", b"#ch\\an", True),
    ],
)
def test_masks_match_as_globs(mask: bytes, name: bytes, expected: bool) -> None:
    found = mask_regex(mask).match(fold(name).decode("latin-1"))  # (names: Channel.key)
    assert (found is not None) is expected


def test_a_hostile_mask_is_answered() -> None:
    """``*a*a*...*b`` against a long run of ``a``: a regex of plain ``.*`` pieces backtracks
    through every way to place them (hours); fnmatch's atomic groups answer at once."""
    (glob,) = elist.parse(b"#" + b"*a" * 24 + b"*b").masks
    assert not glob.match("#" + "a" * 49)
    assert glob.match("#" + "a" * 48 + "b")
