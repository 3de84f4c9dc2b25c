"""IRCv3 draft/metadata-3 on a real server, at one worker and at four: a value one user
sets is read back from connections on every worker (GET, WHOIS 760), a subscriber that
shares a channel is told of each change wherever it is, and a channel's operator sets the
channel's. Raw sockets; synchronised by waiting for replies."""

from __future__ import annotations

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, with_caps

CAPS = "draft/metadata-3 batch"


def _client(srv: process.ServerProcess, nick: str) -> IRCClient:
    return with_caps(srv.host, srv.port, nick, CAPS)


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_metadata_across_workers(workers: int) -> None:
    with process.running(["--no-flood-control"], workers=workers) as srv:
        people = [_client(srv, f"p{i}") for i in range(4)]  # on every worker, at 4
        try:
            for c in people[1:]:
                c.send("METADATA * SUB display-name avatar")
                c.expect(r" 770 ")
            for c in people:
                c.send("JOIN #m")
                c.expect(r" 366 \S+ #m ")
            for c in people:
                c.sync()
            p0 = people[0]
            p0.send("METADATA * SET display-name :Person Zero")
            p0.expect(r" 761 p0 p0 display-name \* :Person Zero$")
            for c in people[1:]:
                c.expect(r" 761 \* p0 display-name \* :Person Zero$")
                c.send("METADATA p0 GET display-name")
                c.expect(rf" 761 {c.nick} p0 display-name \* :Person Zero$")
                c.send("WHOIS p0")
                c.expect(rf" 760 {c.nick} p0 display-name \* :Person Zero$")
            p0.send("METADATA #m SET avatar :https://example.org/m.png")
            p0.expect(r" 761 p0 #m avatar \* :https://example.org/m.png$")
            for c in people[1:]:
                c.expect(r" 761 \* #m avatar \* :https://example.org/m.png$")
            people[1].send("METADATA #m SET avatar :mine")  # not an operator of #m
            people[1].expect(r"FAIL METADATA KEY_NO_PERMISSION #m avatar ")
        finally:
            for c in people:
                c.close()
