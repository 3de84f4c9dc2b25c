"""IRCv3 message-tags (https://ircv3.net/specs/extensions/message-tags) with msgid
(https://ircv3.net/specs/extensions/message-ids) and TAGMSG, in the pure core at one and two
workers: client-only tags reach only those who negotiated message-tags, a msgid is the same
for every recipient (and the sender's echo) and differs between messages, TAGMSG reaches
nobody else."""

from __future__ import annotations

import pytest

from fastchat.irc.message import parse, parse_tags
from fastchat.server.caps.message_tags import client_tags
from tests.unit.fakenet import FakeClient, FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def _tags(line: bytes) -> dict[bytes, bytes]:
    msg = parse(line)
    return parse_tags(msg.tags) if msg.tags else {}


def _room(net: FakeNet) -> tuple[FakeClient, FakeClient, FakeClient]:
    """ann (message-tags, echo-message) on the first worker, bob (message-tags) and cy
    (nothing) on the last, all in #t."""
    last = net.last
    ann = net.negotiated(0, "ann", "message-tags", "echo-message")
    bob = net.negotiated(last, "bob", "message-tags")
    cy = net.negotiated(last, "cy")
    for c in (ann, bob, cy):
        c.send("JOIN #t")
    for c in (ann, bob, cy):
        c.lines()
    return ann, bob, cy


def test_client_tags_and_msgid_reach_only_those_who_asked(net: FakeNet) -> None:
    """The spec: client-only tags are relayed to clients that negotiated message-tags;
    server tags a client sent are not; a client without the capability gets no tags."""
    ann, bob, cy = _room(net)
    ann.send("@+draft/reply=abc;+x=a\\sb;fizz=buzz PRIVMSG #t :hi")
    (echo,) = ann.raw_lines()
    (got,) = bob.raw_lines()
    assert echo == got  # the echo is the same bytes as the recipient's copy
    tags = _tags(got)
    assert tags[b"+draft/reply"] == b"abc" and tags[b"+x"] == b"a b"
    assert b"fizz" not in tags and tags[b"msgid"]
    assert cy.raw_lines() == [b":ann!~ann@10.0.0.1 PRIVMSG #t :hi"]


def test_each_message_has_its_own_msgid_even_in_a_run(net: FakeNet) -> None:
    """Messages pipelined into one run (one record) still get one msgid each, the same for
    every recipient."""
    ann, bob, cy = _room(net)
    ann.send("PRIVMSG #t :1", "PRIVMSG #t :2", "NOTICE #t :3")
    ids = [_tags(line)[b"msgid"] for line in bob.raw_lines()]
    assert len(ids) == len(set(ids)) == 3
    assert [_tags(line)[b"msgid"] for line in ann.raw_lines()] == ids
    assert len(cy.raw_lines()) == 3
    ann.send("PRIVMSG bob :direct")
    (pm,) = bob.raw_lines()
    (pm_echo,) = ann.raw_lines()
    assert _tags(pm)[b"msgid"] == _tags(pm_echo)[b"msgid"] not in ids


def test_tagmsg_reaches_only_message_tags_clients(net: FakeNet) -> None:
    """TAGMSG: relayed like a PRIVMSG to those who negotiated message-tags (the sender's echo
    too), and to nobody else; one without client-only tags is dropped."""
    ann, bob, cy = _room(net)
    ann.send("@+typing=active TAGMSG #t")
    (got,) = bob.raw_lines()
    assert got.endswith(b" :ann!~ann@10.0.0.1 TAGMSG #t")
    assert _tags(got)[b"+typing"] == b"active"
    assert ann.raw_lines() == [got]
    assert cy.raw_lines() == []
    ann.send("TAGMSG #t", "@+typing=paused TAGMSG bob")
    (direct,) = bob.raw_lines()
    assert direct.endswith(b" TAGMSG bob") and _tags(direct)[b"+typing"] == b"paused"
    cy.send("@+typing=active TAGMSG #t")  # cy did not negotiate message-tags: 421
    assert [" 421 " in line for line in cy.lines()] == [True]
    assert bob.raw_lines() == []


def test_client_tag_deny_drops_those_tags(net: FakeNet) -> None:
    """CLIENTTAGDENY (the client_tag_deny setting): those tags are not relayed; ISUPPORT
    says which."""
    net = FakeNet(workers=len(net.cores), client_tag_deny=(b"typing",))
    ann, bob, _ = _room(net)
    ann.send("@+typing=active;+react=ok PRIVMSG #t :x")
    tags = _tags(bob.raw_lines()[0])
    assert b"+typing" not in tags and tags[b"+react"] == b"ok"
    c = net.connect(0)
    assert any("CLIENTTAGDENY=typing" in line for line in c.register("dee"))


def test_client_tags_are_normalised() -> None:
    """What a client sends is re-escaped, so what goes out is well formed; denied and server
    tags are dropped; ``*`` denies them all."""
    assert client_tags(b"+a=x\\sy;b=1;+c;+d=\\:", ()) == b"+a=x\\sy;+c;+d=\\:"
    assert client_tags(b"+a=1;+b=2", (b"a",)) == b"+b=2"
    assert client_tags(b"+a=1", (b"*",)) == b""
    assert client_tags(None, ()) == b""


def test_statusmsg_reaches_channel_operators_only(net: FakeNet) -> None:
    """Modern IRC STATUSMSG: ``PRIVMSG @#chan`` reaches the channel's operators, ``+#chan``
    the voiced ones too, with the target as written; the sender's echo included."""
    last = net.last
    op = net.negotiated(0, "op")
    op.send("JOIN #s")
    voiced = net.negotiated(last, "vo")
    plain = net.negotiated(last, "pl", "echo-message")
    for c in (voiced, plain):
        c.send("JOIN #s")
    op.send("MODE #s +v vo")
    for c in (op, voiced, plain):
        c.lines()
    plain.send("PRIVMSG @#s :ops only", "NOTICE +#s :voices too")
    assert op.lines() == [
        f":pl!~pl@10.0.0.{last + 1} PRIVMSG @#s :ops only",
        f":pl!~pl@10.0.0.{last + 1} NOTICE +#s :voices too",
    ]
    assert voiced.lines() == [f":pl!~pl@10.0.0.{last + 1} NOTICE +#s :voices too"]
    assert len(plain.lines()) == 2  # its echoes
    assert any("STATUSMSG=@+" in line for line in net.connect(0).register("zed"))
