"""IRCv3 server-time (https://ircv3.net/specs/extensions/server-time), in the pure core: the
``time`` tag is the sequencer's decision time, the same for every recipient on every worker,
on relayed lines only, and only for clients that negotiated it."""

from __future__ import annotations

import pytest

from fastchat.irc.message import parse, parse_tags
from fastchat.server.caps import CAPABILITIES
from fastchat.server.render.dates import iso8601
from tests.unit.fakenet import FakeClient, FakeNet


def tags(line: bytes) -> dict[bytes, bytes]:
    raw = parse(line).tags
    return parse_tags(raw) if raw else {}


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def connect(net: FakeNet, worker: int, nick: str, timed: bool) -> FakeClient:
    c = net.connect(worker)
    if timed:
        c.send("CAP LS 302", "CAP REQ :server-time")
    c.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    if timed:
        c.send("CAP END")
    got = c.lines()
    assert any(" 001 " in line for line in got)
    if timed:
        assert ":fastchat.local CAP * ACK :server-time" in got
    return c


def test_server_time_is_offered() -> None:
    """The capability is declared in its own module and found by the registry."""
    assert CAPABILITIES.get(b"server-time") is not None


def test_every_recipient_gets_the_same_time_and_plain_clients_none(net: FakeNet) -> None:
    """The spec: ``@time=YYYY-MM-DDThh:mm:ss.sssZ`` on the messages a server relays. The
    time is decided once (the sequencer's stamp), so two recipients on two workers see the
    same value; a client that did not ask gets the line untouched."""
    last = len(net.cores) - 1
    ann = connect(net, 0, "ann", timed=True)
    bea = connect(net, last, "bea", timed=True)
    cid = connect(net, last, "cid", timed=False)
    for c in (ann, bea, cid):
        c.send("JOIN #t")
    for c in (ann, bea, cid):
        c.lines()
    net.now += 1.5
    cid.send("PRIVMSG #t :hello")
    (to_ann,) = ann.raw_lines()
    (to_bea,) = bea.raw_lines()
    assert to_ann == to_bea
    assert tags(to_ann) == {b"time": iso8601(int(net.now * 1000))}
    assert to_ann.split(b" ", 1)[1] == b":cid!~cid@10.0.0.%d PRIVMSG #t :hello" % (last + 1)
    cid.lines()  # the sender gets nothing back (no echo-message)
    ann.send("PRIVMSG #t :hi")
    (plain,) = cid.raw_lines()
    assert plain == b":ann!~ann@10.0.0.1 PRIVMSG #t :hi"


def test_state_changes_and_private_messages_carry_it_too(net: FakeNet) -> None:
    """JOIN, PART, NICK, QUIT and private messages are relayed lines: they carry the time of
    the decision that made them; numerics the server composes for one client do not."""
    last = len(net.cores) - 1
    ann = connect(net, 0, "ann", timed=True)
    bob = connect(net, last, "bob", timed=False)
    ann.send("JOIN #t")
    ann.lines()
    bob.send("JOIN #t", "PRIVMSG ann :psst", "NICK bobby", "PART #t :bye")
    got = ann.raw_lines()
    assert [parse(line).command for line in got] == [b"JOIN", b"PRIVMSG", b"NICK", b"PART"]
    assert all(tags(line) == {b"time": iso8601(int(net.now * 1000))} for line in got)
    ann.send("PING :x")
    (pong,) = ann.raw_lines()
    assert not pong.startswith(b"@")


def test_a_run_of_messages_is_tagged_line_by_line(net: FakeNet) -> None:
    """Several messages read at once travel as one run; each line still gets its tag."""
    ann = connect(net, 0, "ann", timed=True)
    bob = connect(net, len(net.cores) - 1, "bob", timed=False)
    for c in (ann, bob):
        c.send("JOIN #t")
        c.lines()
    ann.lines()
    bob.send("PRIVMSG #t :one", "PRIVMSG #t :two", "PRIVMSG #t :three")
    got = ann.raw_lines()
    assert [parse(line).params[-1] for line in got] == [b"one", b"two", b"three"]
    assert all(tags(line).keys() == {b"time"} for line in got)
