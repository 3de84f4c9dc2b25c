"""Channel mode +D, delayed join (InspIRCd's ``delayjoin``), through worker cores at one and
four workers: what each member is shown, the replicas' agreement on who is hidden, the NAMES
of the visible members (rendered once while they stay the same) and the forms a revealed JOIN
takes (extended-join, away-notify).
"""

from __future__ import annotations

import pytest

from fastchat.server.config import OperBlock
from fastchat.server.network.records import HIDDEN
from fastchat.server.network.state import shown
from fastchat.server.passwords import hash_password
from fastchat.server.render import replies
from tests.unit.fakenet import FakeClient, FakeNet


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def _delayed(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    """``op`` (worker 0) makes #d +D; ``hid`` (the last worker) joins it hidden."""
    op = net.user("op", 0)
    op.send("JOIN #d", "MODE #d +D")
    hid = net.user("hid", net.last)
    hid.send("JOIN #d")
    op.lines()
    hid.lines()
    return op, hid


def _hidden_everywhere(net: FakeNet, nick: str) -> list[bool]:
    """Is ``nick`` a hidden member of #d, replica by replica (and the sequencer's state)?"""
    states = [core.state for core in net.cores]
    if not net.standalone:
        states.append(net.state)  # the hub's: the sequencer's own
    out = []
    for state in states:
        chan = state.channel(b"#d")
        user = state.user_by_nick(nick.encode())
        assert chan is not None and user is not None
        hidden = user.uid in chan.hidden
        assert hidden == bool(chan.members[user.uid] & HIDDEN)
        assert hidden != (user.uid in shown(chan))
        out.append(hidden)
    return out


def test_the_joiner_alone_sees_its_join_and_every_replica_hides_it(net: FakeNet) -> None:
    op = net.user("op", 0)
    op.send("JOIN #d", "MODE #d +D")
    op.lines()
    hid = net.user("hid", net.last)
    hid.send("JOIN #d")
    got = hid.lines()
    assert got[0].startswith(":hid!") and got[0].endswith(" JOIN #d")
    assert got[1].endswith(" 353 hid = #d :@op hid")
    assert op.lines() == []
    assert set(_hidden_everywhere(net, "hid")) == {True}


def test_speaking_reveals_once_on_every_replica(net: FakeNet) -> None:
    op, hid = _delayed(net)
    hid.send("PRIVMSG #d :hello", "PRIVMSG #d :again")
    got = op.lines()
    assert [line.split(" ", 2)[1] for line in got] == ["JOIN", "PRIVMSG", "PRIVMSG"], got
    assert hid.lines() == []
    assert set(_hidden_everywhere(net, "hid")) == {False}


def test_a_tagmsg_reveals_too(net: FakeNet) -> None:
    op = net.negotiated(0, "op", "message-tags")
    op.send("JOIN #d", "MODE #d +D")
    hid = net.negotiated(net.last, "hid", "message-tags")
    hid.send("JOIN #d")
    op.lines()
    hid.send("@+typing=active TAGMSG #d")
    got = op.lines()
    assert " JOIN #d" in got[0] and got[1].endswith(" TAGMSG #d"), got


def test_the_revealed_join_takes_extended_join_and_away_notify(net: FakeNet) -> None:
    op = net.negotiated(0, "op", "extended-join", "away-notify")
    op.send("JOIN #d", "MODE #d +D")
    hid = net.user("hid", net.last)
    hid.send("AWAY :lunch", "JOIN #d")
    op.lines()
    hid.send("PRIVMSG #d :back soon")
    got = op.lines()
    assert got[0].endswith(" JOIN #d * :Real hid") or got[0].endswith(" JOIN #d * :hid"), got
    assert got[1].endswith(" AWAY :lunch") and got[2].endswith(" PRIVMSG #d :back soon"), got


def test_a_hidden_members_away_and_quit_reach_nobody_there(net: FakeNet) -> None:
    op = net.negotiated(0, "op", "away-notify")
    op.send("JOIN #d", "MODE #d +D")
    op.lines()
    hid = net.user("hid", net.last)
    hid.send("JOIN #d", "AWAY :gone", "QUIT :bye")
    assert op.lines() == []


def test_names_of_the_visible_members_follow_their_changes(net: FakeNet) -> None:
    """The cached bodies move with nicks, prefixes and the visible members themselves."""
    op, _ = _delayed(net)
    vis = net.user("vis", 0)
    vis.send("JOIN #d")  # hidden too, until it speaks
    vis.send("PRIVMSG #d :here")
    late = net.user("late", net.last)
    late.send("JOIN #d")
    assert late.lines()[1].endswith(" 353 late = #d :@op vis late")
    vis.send("NICK seen")
    later = net.user("later", net.last)
    later.send("JOIN #d")
    assert later.lines()[1].endswith(" 353 later = #d :@op seen later")
    op.send("MODE #d +v seen")
    again = net.user("again", net.last)
    again.send("JOIN #d")
    assert again.lines()[1].endswith(" 353 again = #d :@op +seen again")
    op.send("PART #d")
    last = net.user("last", net.last)
    last.send("JOIN #d")
    assert last.lines()[1].endswith(" 353 last = #d :+seen last")


def test_a_long_names_list_keeps_every_line_within_512_bytes() -> None:
    """The asker's own entry goes on the last line of the cached bodies if it fits, on a
    line of its own if not; every line within 512 bytes."""
    net = FakeNet(workers=1, autojoin=())
    op = net.user("op", 0)
    op.send("JOIN #d")
    for i in range(120):
        net.user(f"member{i:03d}", 0).send("JOIN #d")
    op.send("MODE #d +D")
    for nick in ("h", "hidden_with_a_long_nick_xx"):
        c = net.user(nick, 0)
        c.send("JOIN #d")
        raw = [line for line in c.raw_lines() if b" 353 " in line]
        assert all(len(line) <= 512 for line in raw)
        names = b" ".join(line.split(b" :", 1)[1].rstrip(b"\r\n") for line in raw).split()
        assert names[-1] == nick.encode() and len(names) == 122


def test_minus_d_reveals_every_hidden_member(net: FakeNet) -> None:
    op, _ = _delayed(net)
    two = net.user("two", 0)
    two.send("JOIN #d")
    op.lines()
    op.send("MODE #d -D")
    got = op.lines()
    assert [line.split(" ")[1] for line in got] == ["JOIN", "JOIN", "MODE"], got
    assert got[0].startswith(":hid!") and got[1].startswith(":two!")
    assert set(_hidden_everywhere(net, "hid")) == {False}


def test_kick_of_a_hidden_member_shows_to_it_and_the_kicker(net: FakeNet) -> None:
    op, hid = _delayed(net)
    other = net.user("other", 0)
    other.send("JOIN #d", "PRIVMSG #d :visible")
    op.lines()
    other.lines()
    op.send("KICK #d hid :out")
    assert op.lines()[-1].endswith(" KICK #d hid :out")
    assert hid.lines()[-1].endswith(" KICK #d hid :out")
    assert other.lines() == []


def test_whois_shows_a_hidden_members_channel_to_itself_only(net: FakeNet) -> None:
    op, hid = _delayed(net)
    op.send("WHOIS hid")
    assert not any(" 319 " in line for line in op.lines())
    hid.send("WHOIS hid")
    assert any(line.endswith(" 319 hid hid :#d") for line in hid.lines())


def test_the_autojoin_channel_gets_d_past_the_threshold() -> None:
    net = FakeNet(workers=1, autojoin=(b"#lobby",), lobby_delay_join_at=2)
    first = net.user("first", 0)
    net.user("second", 0)
    first.lines()
    net.user("third", 0)
    assert first.lines()[-1] == ":fastchat.local MODE #lobby +D"
    net.user("fourth", 0)
    assert first.lines() == []


def test_word_bodies_splits_like_word_lines() -> None:
    words = [b"n%03d" % i for i in range(200)]
    lines = list(replies.word_lines(b"srv", b"me", b"303", words))
    room = 512 - len(replies.numeric(b"srv", b"me", b"303", b""))
    bodies = list(replies.word_bodies(words, room))
    assert [line.rsplit(b" :", 1)[1].rstrip(b"\r\n") for line in lines] == bodies


def test_an_operator_with_see_finds_hidden_members() -> None:
    """NAMES and WHO list hidden members to an IRC operator with ``see``, as invisible ones."""
    block = OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"see"}))
    net = FakeNet(workers=2, opers=(block,), autojoin=())
    op, _ = _delayed(net)
    oper = net.user("oper", 0)
    oper.send("OPER admin secret")
    oper.lines()
    for asker, expected in ((oper, {"@op", "hid"}), (op, {"@op"})):
        asker.send("NAMES #d")
        names = next(line for line in asker.lines() if " 353 " in line).rsplit(" :", 1)[1]
        assert set(names.split()) == expected
        asker.send("WHO #d")
        who = {line.split()[7] for line in asker.lines() if " 352 " in line}
        assert who == {n.lstrip("@") for n in expected}
