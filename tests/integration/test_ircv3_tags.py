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
    client.send("CAP LS 302")
    client.expect(r"CAP \* LS :.*server-time")
    client.send("CAP REQ :" + caps)
    client.expect(r"CAP \* ACK :" + caps)
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
