"""IRCv3 labeled-response (https://ircv3.net/specs/extensions/labeled-response) with batch,
in the pure core at one and two workers: every reply to a labeled command carries the label
in exactly one logical message, wherever it is produced (at once by the handler, later from
the sequencer, after a read barrier), and other traffic is never taken for it."""

from __future__ import annotations

import pytest

from fastchat.irc.message import parse, parse_tags
from tests.unit.fakenet import FakeNet

CAPS = ("batch", "labeled-response")


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def _tags(line: bytes) -> dict[bytes, bytes]:
    msg = parse(line)
    return parse_tags(msg.tags) if msg.tags else {}


def _labeled(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if _tags(line).get(b"label")]


def test_one_line_reply_carries_the_label(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", *CAPS)
    ann.send("@label=abc PING tok")
    assert ann.raw_lines() == [b"@label=abc :fastchat.local PONG fastchat.local :tok"]


def test_no_reply_gets_an_ack(net: FakeNet) -> None:
    """The spec: "Servers MUST respond with a labeled ACK message when a client sends a
    labeled command that normally produces no response"."""
    ann = net.negotiated(0, "ann", *CAPS)
    ann.send("@label=x1 PONG tok")
    assert ann.raw_lines() == [b"@label=x1 :fastchat.local ACK"]


def test_an_error_is_the_reply(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", *CAPS)
    ann.send("@label=e NOSUCHCOMMAND", "@label=f PRIVMSG nobody :hi")
    assert ann.raw_lines() == [
        b"@label=e :fastchat.local 421 ann NOSUCHCOMMAND :Unknown command",
        b"@label=f :fastchat.local 401 ann nobody :No such nick/channel",
    ]


def test_a_join_is_a_labeled_batch(net: FakeNet) -> None:
    """JOIN's reply is the JOIN line (decided by the sequencer) and NAMES: several lines, so
    a labeled-response batch, every line in it tagged, the end untagged."""
    ann = net.negotiated(net.last, "ann", *CAPS)
    ann.send("@label=j JOIN #new")
    out = ann.raw_lines()
    start, *inner, end = out
    assert start.startswith(b"@label=j :fastchat.local BATCH +")
    ref = start.split(b" ")[3][1:]
    assert start.endswith(b" labeled-response")
    assert end == b":fastchat.local BATCH -" + ref
    assert [_tags(line)[b"batch"] for line in inner] == [ref] * len(inner)
    assert inner[0].endswith(b"JOIN #new") and b" 366 " in inner[-1]


def test_a_query_across_workers_waits_for_its_barrier_then_is_labeled(net: FakeNet) -> None:
    """WHOIS of a user on another worker answers after a read barrier: still one batch."""
    net.negotiated(0, "bob")
    ann = net.negotiated(net.last, "ann", *CAPS)
    ann.lines()
    ann.send("@label=w WHOIS bob")
    out = ann.raw_lines()
    assert len(_labeled(out)) == 1 and b"BATCH +" in out[0]
    assert b" 318 " in out[-2] and out[-1].startswith(b":fastchat.local BATCH -")


def test_a_labeled_message_s_echo_is_its_reply(net: FakeNet) -> None:
    """With echo-message the echo is the reply (labeled); the recipients' copies are not."""
    ann = net.negotiated(0, "ann", *CAPS, "echo-message")
    bob = net.negotiated(net.last, "bob", *CAPS)
    for c in (ann, bob):
        c.send("JOIN #l")
    ann.lines()
    bob.lines()
    ann.send("PRIVMSG #l :streamed first", "@label=m PRIVMSG #l :labeled")
    out = ann.raw_lines()
    assert out[0].endswith(b"PRIVMSG #l :streamed first") and not _tags(out[0])
    assert out[1] == b"@label=m :ann!~ann@10.0.0.1 PRIVMSG #l :labeled"
    assert [_tags(line) for line in bob.raw_lines()] == [{}, {}]
    ann.send("@label=s PRIVMSG ann :me")  # to oneself: delivered, then the (labeled) echo
    assert [_tags(line).get(b"label") for line in ann.raw_lines()] == [None, b"s"]


def test_others_traffic_is_not_the_reply(net: FakeNet) -> None:
    """A line from someone else that arrives while a labeled command is open goes out
    unlabeled, and never before the reply's earlier lines (the batch opens first)."""
    ann = net.negotiated(net.last, "ann", *CAPS)
    bob = net.negotiated(0, "bob")
    for c in (ann, bob):
        c.send("JOIN #o")
    ann.lines()
    core = ann.core
    core.labels.open(ann.client, b"o")
    core.send(ann.client, b":fastchat.local 001 ann :first part of a reply\r\n")
    bob.send("PRIVMSG #o :meanwhile")
    core.labels.close(ann.client)
    start, first, theirs, end = ann.raw_lines()
    ref = start.split(b" ")[3][1:]
    assert start.startswith(b"@label=o ") and first.startswith(b"@batch=" + ref + b" ")
    assert theirs == b":bob!~bob@10.0.0.1 PRIVMSG #o :meanwhile"
    assert end == b":fastchat.local BATCH -" + ref


def test_labels_need_both_capabilities_and_a_short_label(net: FakeNet) -> None:
    """Without labeled-response and batch a label is ignored; a label over 64 bytes is
    refused with FAIL (standard-replies), and the command does not run."""
    plain = net.negotiated(0, "pl", "labeled-response")
    plain.send("@label=a PING x")
    assert plain.raw_lines() == [b":fastchat.local PONG fastchat.local :x"]
    ann = net.negotiated(0, "ann", *CAPS)
    ann.send("@label=%s PING x" % ("y" * 65))
    assert ann.raw_lines() == [
        b":fastchat.local FAIL PING INVALID_LABEL :A label is at most 64 bytes"
    ]


def test_a_malformed_line_s_error_is_labeled(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", *CAPS)
    ann.send("@label=z :src")
    (line,) = ann.raw_lines()
    assert line.startswith(b"@label=z :fastchat.local 400 ")
