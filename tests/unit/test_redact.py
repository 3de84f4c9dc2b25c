"""IRCv3 draft/message-redaction (REDACT) in the pure core, at one and two workers: who may
redact (the sender, a connection of its account, a channel operator), the FAILs, who is told
(the members that negotiated it, on every worker), the store lookup as an effect behind the
history barrier; and in the store, a redacted message left out of every selector."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastchat.server.caps import message_tags
from fastchat.server.store import db, reader
from fastchat.server.store.schema import HistoryRow
from fastchat.server.store.writer import Writer
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
CAP = "draft/message-redaction"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=(), history=False)  # the msgid says who


def room(net: FakeNet) -> tuple[FakeClient, FakeClient, FakeClient]:
    """#room with alice (its operator, with the capability), bob (with it, on the last
    worker) and carl (without it)."""
    alice = net.negotiated(0, "alice", CAP)
    bob = net.negotiated(net.last, "bob", CAP)
    carl = net.user("carl", net.last)
    for c in (alice, bob, carl):
        c.send("JOIN #room")
    for c in (alice, bob, carl):
        c.lines()
    return alice, bob, carl


def msgid_of(c: FakeClient, seq: int = 0) -> str:
    return message_tags.msgid(1_700_000_000_000, c.client.uid, seq).decode()


def test_the_sender_and_an_operator_may_redact(net: FakeNet) -> None:
    alice, bob, carl = room(net)
    own = msgid_of(bob)
    bob.send(f"REDACT #room {own}")
    assert alice.lines() == [f":bob!~bob@10.0.0.{net.last + 1} REDACT #room {own}"]
    assert bob.lines() == [f":bob!~bob@10.0.0.{net.last + 1} REDACT #room {own}"]
    assert carl.lines() == []  # "MUST NOT" without the capability
    theirs = msgid_of(carl, 3)
    alice.send(f"REDACT #ROOM {theirs} :spam and more")  # an operator: anyone's
    assert bob.lines() == [f":alice!~alice@10.0.0.1 REDACT #room {theirs} :spam and more"]
    assert alice.lines() == [f":alice!~alice@10.0.0.1 REDACT #room {theirs} :spam and more"]
    bob.send(f"REDACT #room {msgid_of(alice)}")
    assert bob.lines() == [
        f"{SRV} FAIL REDACT REDACT_FORBIDDEN #room {msgid_of(alice)} "
        ":You may only redact your own messages"
    ]
    assert alice.lines() == []


def test_fails(net: FakeNet) -> None:
    alice, bob, _ = room(net)
    dave = net.negotiated(0, "dave", CAP)
    dave.send(f"REDACT #room {msgid_of(alice)}", f"REDACT nobody {msgid_of(dave)}")
    alice.send("REDACT #room not-a-msgid", "REDACT #room")
    assert dave.lines() == [
        f"{SRV} FAIL REDACT INVALID_TARGET #room :You are not on that channel",
        f"{SRV} FAIL REDACT INVALID_TARGET nobody :No such nick",
    ]
    assert alice.lines() == [
        f"{SRV} FAIL REDACT UNKNOWN_MSGID #room not-a-msgid :No such message",
        f"{SRV} 461 alice REDACT :Not enough parameters",
    ]
    assert bob.lines() == []  # nothing was redacted
    carl = net.user("carl2")
    carl.send("JOIN #room")
    carl.lines()
    carl.send(f"REDACT #room {msgid_of(carl)}")
    assert carl.lines() == [f"{SRV} 421 carl2 REDACT :Unknown command"]


def test_a_private_message_only_by_its_sender_and_both_parties_told(net: FakeNet) -> None:
    alice = net.negotiated(0, "alice", CAP)
    bob = net.negotiated(net.last, "bob", CAP)
    carl = net.negotiated(net.last, "carl", CAP)
    alice.send(f"REDACT Bob {msgid_of(alice)} :typo")
    line = f":alice!~alice@10.0.0.1 REDACT Bob {msgid_of(alice)} :typo"
    assert alice.lines() == [line] and bob.lines() == [line] and carl.lines() == []
    bob.send(f"REDACT alice {msgid_of(alice)}")  # not bob's: no channel operator here
    assert bob.lines() == [
        f"{SRV} FAIL REDACT REDACT_FORBIDDEN alice {msgid_of(alice)} "
        ":You may only redact your own messages"
    ]


def test_with_a_store_the_message_is_looked_up_first() -> None:
    """Where the history is kept, REDACT asks the store for the message (an effect, behind
    the history barrier): unknown there, UNKNOWN_MSGID; found, its account lets another
    connection of that account redact it."""
    net = FakeNet(workers=2, autojoin=())  # history kept (the default)
    alice, bob, _ = room(net)
    other = net.negotiated(1, "other", CAP)
    other.send("REGISTER acct * acct-secret", "JOIN #room")
    other.lines()
    alice.lines()
    bob.lines()
    msgid = msgid_of(bob)
    other.send(f"REDACT #room {msgid}")
    core = net.cores[1]
    [query] = core.offload.queries
    assert query.query == ("message", "#room", msgid)  # channels: under their folded name
    core.offload.queries.clear()
    core.offload.history_answered(query.ticket, [], "", net.now)
    net.pump()
    assert other.lines() == [f"{SRV} FAIL REDACT UNKNOWN_MSGID #room {msgid} :No such message"]
    other.send(f"REDACT #room {msgid} :mine")
    [query] = core.offload.queries
    core.offload.queries.clear()
    row = HistoryRow("#room", msgid, 1, "bob!~bob@h", "acct", "PRIVMSG", "", b"hi")
    core.offload.history_answered(query.ticket, [row], "", net.now)
    net.pump()
    assert other.lines() == [f":other!~other@10.0.0.2 REDACT #room {msgid} :mine"]
    assert alice.lines() == [f":other!~other@10.0.0.2 REDACT #room {msgid} :mine"]
    other.send(f"REDACT alice {msgid_of(other)}")  # private: the pair's conversation
    [query] = core.offload.queries
    assert query.query == ("message", "*alice\nacct", msgid_of(other))


def test_the_store_leaves_a_redacted_message_out(tmp_path: Path) -> None:
    path = db.prepare(str(tmp_path))
    lines = b"".join(b":bob!b@h PRIVMSG #r :m%d\r\n" % n for n in range(3))
    writer = Writer(path)
    writer.start()
    writer.submit(("message_run", "#r", 1000, 7, 0, b"acct", b"", lines))
    middle = message_tags.msgid(1000, 7, 1).decode()
    writer.submit(("redact", "#r", middle, 1000))
    writer.submit(("redact", "#r", middle, 1000))  # twice: once
    assert writer.close()
    conn = db.connect(path, readonly=True)
    texts = [row.text for row in reader.latest(conn, "#r", None, 10)]
    assert texts == [b"m0", b"m2"]
    assert [row.text for row in reader.after(conn, "#r", 0, 10)] == [b"m0", b"m2"]
    first = message_tags.msgid(1000, 7, 0).decode()
    assert [(r.text, r.account) for r in reader.message(conn, "#r", first)] == [(b"m0", "acct")]
    assert reader.message(conn, "#r", middle) == []
    assert reader.message(conn, "#other", first) == []
