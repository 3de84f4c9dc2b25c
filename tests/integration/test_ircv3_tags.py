"""IRCv3 server-time and echo-message on a real server, at one worker and at four: clients
on different workers get the same message with the same ``time`` tag (decided once, by the
sequencer), the sender's echo included; a client that did not ask gets no tag and no echo.
Raw sockets; synchronised by PING/PONG."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from fastchat.irc.message import parse, parse_tags
from fastchat.server.runtime import process
from tests.ircclient import IRCClient

TIME = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control"], workers=request.param) as srv:
        yield srv


def timed(server: process.ServerProcess, nick: str, caps: str = "server-time") -> IRCClient:
    client = IRCClient(server.host, server.port, register=False)
    client.nick = nick
    assert "server-time" in client.request_caps(caps)
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.send("CAP END")  # registration waited for it
    client.expect(r" 376 | 422 ")
    client.sync()
    return client


def test_the_same_time_for_every_recipient(server: process.ServerProcess) -> None:
    clients = [timed(server, f"st{i}") for i in range(6)]  # spread over the workers
    plain = IRCClient(server.host, server.port, "stplain")
    try:
        if server.workers > 1:
            where = {server.worker_of(c.sock.getsockname()[1]) for c in clients}
            assert len(where) > 1, "all the timed clients landed on one worker"
        for c in [*clients, plain]:
            c.sync()  # autojoined #lobby; everything so far is in
        plain.send("PRIVMSG #lobby :what time is it")
        plain.sync()
        got = []
        for c in clients:
            line = c.expect(r"PRIVMSG #lobby :what time is it").string.encode()
            got.append(line)
        assert len(set(got)) == 1  # the very same bytes, tag and all
        stamp = parse_tags(parse(got[0]).tags)[b"time"]
        assert TIME.match(stamp)
        clients[0].send("PRIVMSG #lobby :and now")
        line = plain.expect(r"PRIVMSG #lobby :and now").string
        assert line.startswith(":st0!")  # no tag for a client that did not ask
    finally:
        for c in [*clients, plain]:
            c.close()


def test_echo_message_is_the_channels_copy(server: process.ServerProcess) -> None:
    """The sender's echo is byte for byte what the others got, time tag and all, wherever
    they are; a private message's echo too."""
    sender = timed(server, "echoer", "server-time echo-message")
    others = [timed(server, f"ec{i}") for i in range(5)]
    try:
        for c in [sender, *others]:
            c.sync()
        sender.send("PRIVMSG #lobby :hear me")
        echo = sender.expect(r"PRIVMSG #lobby :hear me").string
        assert all(c.expect(r"PRIVMSG #lobby :hear me").string == echo for c in others)
        sender.send("PRIVMSG ec0 :just you")
        echo = sender.expect(r"PRIVMSG ec0 :just you").string
        assert others[0].expect(r"PRIVMSG ec0 :just you").string == echo
        assert echo.startswith("@time=")
    finally:
        for c in [sender, *others]:
            c.close()


def test_msgid_and_client_tags_are_the_same_everywhere(server: process.ServerProcess) -> None:
    """message-tags: the same msgid and client-only tags for every recipient on every worker
    and in the sender's echo; a TAGMSG reaches only those who negotiated message-tags; a
    client without it gets the plain line."""
    caps = "message-tags echo-message"
    sender = timed(server, "mt0", caps)
    others = [timed(server, f"mt{i}", "message-tags") for i in range(1, 6)]
    plain = IRCClient(server.host, server.port, "mtplain")
    try:
        for c in [sender, *others, plain]:
            c.sync()
        sender.send("@+draft/react=👍;+x=a\\sb PRIVMSG #lobby :tagged")
        echo = sender.expect(r"PRIVMSG #lobby :tagged").string
        assert all(c.expect(r"PRIVMSG #lobby :tagged").string == echo for c in others)
        tags = parse_tags(parse(echo.encode()).tags)
        assert tags[b"+draft/react"] == "👍".encode() and tags[b"+x"] == b"a b"
        assert tags[b"msgid"]
        assert plain.expect(r"PRIVMSG #lobby :tagged").string.startswith(":mt0!")
        sender.send("@+typing=active TAGMSG #lobby")
        echo = sender.expect(r"TAGMSG #lobby").string
        assert all(c.expect(r"TAGMSG #lobby").string == echo for c in others)
        # the channel's one order: had plain been sent the TAGMSG, it would come before this
        others[0].send("PRIVMSG #lobby :done")
        line = others[1].expect(r"PRIVMSG #lobby :done").string
        assert parse_tags(parse(line.encode()).tags)[b"msgid"] != tags[b"msgid"]
        assert not any("TAGMSG" in x for x in plain.expect_until(r"PRIVMSG #lobby :done"))
    finally:
        for c in [sender, *others, plain]:
            c.close()


def test_labeled_replies_on_any_worker(server: process.ServerProcess) -> None:
    """labeled-response: a query about a user on another worker, a JOIN and a message each
    come back as one labeled message (a line, a batch, the echo), or ACK."""
    caps = "batch labeled-response echo-message"
    asker = timed(server, "lr0", caps)
    others = [timed(server, f"lr{i}") for i in range(1, 5)]
    try:
        for c in [asker, *others]:
            c.sync()
        asker.send("@label=a1 WHOIS lr4")
        start = asker.expect(r"BATCH \+").string
        assert start.startswith("@label=a1 ")
        ref = start.split()[3][1:]
        asker.expect(rf"@batch={ref} .* 318 ")
        asker.expect(rf"BATCH -{ref}")
        asker.send("@label=a2 PRIVMSG #lobby :labeled")
        assert asker.expect(r"PRIVMSG #lobby :labeled").string.startswith("@label=a2 ")
        line = others[3].expect(r"PRIVMSG #lobby :labeled").string
        assert "label=" not in line
        asker.send("@label=a3 PONG x")
        asker.expect(r"^@label=a3 :\S+ ACK$")
    finally:
        for c in [asker, *others]:
            c.close()
