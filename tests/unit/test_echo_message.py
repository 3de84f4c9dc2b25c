"""IRCv3 echo-message (https://ircv3.net/specs/extensions/echo-message), in the pure core:
the sender of a PRIVMSG or NOTICE gets it back once relayed, in the channel's order, with the
same bytes (and tags) as the other recipients; only if it asked."""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def test_a_channel_message_comes_back_to_its_sender_in_order(net: FakeNet) -> None:
    """The spec: "the server MUST send the message back to the client". The echo is the
    channel's copy: between what came before and after it, as everyone else sees it."""
    last = len(net.cores) - 1
    ann = net.negotiated(0, "ann", "echo-message")
    bob = net.negotiated(last, "bob")
    for c in (ann, bob):
        c.send("JOIN #e")
    ann.lines()
    bob.lines()
    bob.send("PRIVMSG #e :before")
    ann.send("PRIVMSG #e :mine", "NOTICE #e :noted")
    bob.send("PRIVMSG #e :after")
    assert ann.lines() == [
        f":bob!~bob@10.0.0.{last + 1} PRIVMSG #e :before",
        ":ann!~ann@10.0.0.1 PRIVMSG #e :mine",
        ":ann!~ann@10.0.0.1 NOTICE #e :noted",
        f":bob!~bob@10.0.0.{last + 1} PRIVMSG #e :after",
    ]
    assert bob.lines() == [
        ":ann!~ann@10.0.0.1 PRIVMSG #e :mine",
        ":ann!~ann@10.0.0.1 NOTICE #e :noted",
    ]


def test_without_the_capability_no_echo(net: FakeNet) -> None:
    bob = net.negotiated(0, "bob")
    bob.send("JOIN #e")
    bob.lines()
    bob.send("PRIVMSG #e :alone")
    assert bob.lines() == []


def test_a_private_message_comes_back_with_the_same_time(net: FakeNet) -> None:
    """The sequencer sends the sender its copy with the target's: the same bytes, and with
    server-time the same ``time`` tag; a message to oneself arrives twice, as delivered and as
    echoed (what the labeled-response spec describes: "echo-message will result in duplicate
    messages being sent by the server, as both sent and received messages")."""
    last = len(net.cores) - 1
    ann = net.negotiated(0, "ann", "echo-message", "server-time")
    bob = net.negotiated(last, "bob", "server-time")
    ann.lines()  # bob's arrival in #lobby
    net.now += 2.0
    ann.send("PRIVMSG bob :psst")
    (echo,) = ann.raw_lines()
    (got,) = bob.raw_lines()
    assert echo == got
    assert echo.startswith(b"@time=") and echo.endswith(b" PRIVMSG bob :psst")
    ann.send("PRIVMSG ann :note to self")
    assert [line.split(b" ", 1)[1] for line in ann.raw_lines()] == [
        b":ann!~ann@10.0.0.1 PRIVMSG ann :note to self"
    ] * 2
    ann.send("PRIVMSG nobody :hello?")
    assert [line.split(b" ", 2)[1] for line in ann.raw_lines()] == [b"401"]
