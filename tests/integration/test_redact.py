"""IRCv3 draft/message-redaction on a real server, at one worker and at four: a message
redacted by its sender reaches the other members that negotiated it (wherever they are)
as a REDACT, and leaves the history (CHATHISTORY) at once and after a restart with the same
data directory; someone else's message is refused; a private message is redacted for both
parties. Raw sockets; synchronised by waiting for replies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, with_caps

CAPS = "message-tags echo-message batch draft/chathistory draft/message-redaction"


def _client(srv: process.ServerProcess, nick: str) -> IRCClient:
    return with_caps(srv.host, srv.port, nick, CAPS)


def _history(c: IRCClient, target: str) -> list[str]:
    """The texts CHATHISTORY LATEST gives for ``target``."""
    c.send(f"CHATHISTORY LATEST {target} * 50")
    lines = c.expect_until(r"BATCH -")
    return [x.rsplit(" :", 1)[1] for x in lines if " PRIVMSG " in x]


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_redaction_reaches_members_and_the_history(workers: int, tmp_path: Path) -> None:
    data = ["--no-flood-control", "--data-dir", str(tmp_path)]
    with process.running(data, workers=workers) as srv:
        people = [_client(srv, f"m{i}") for i in range(4)]  # on every worker, at 4
        try:
            for c in people:
                c.send("JOIN #r")
                c.expect(r" 366 \S+ #r ")
            for c in people:
                c.sync()
            m0, m1 = people[0], people[1]
            m1.send("PRIVMSG #r :keep this")
            m0.send("PRIVMSG #r :oops, wrong window")
            echo = m0.expect(r"PRIVMSG #r :oops, wrong window$").string
            msgid = re.search(r"msgid=([^; ]+)", echo)[1]  # type: ignore[index]
            m1.send(f"REDACT #r {msgid}")  # not m1's, and m1 is no operator
            m1.expect(rf"FAIL REDACT REDACT_FORBIDDEN #r {msgid} ")
            m0.send(f"REDACT #r {msgid} :wrong window")
            for c in people:
                c.expect(rf"^:m0!\S+ REDACT #r {msgid} :wrong window$")
            assert _history(people[3], "#r") == ["keep this"]
            m0.send("PRIVMSG m2 :psst")  # private: kept once a party is logged in
            m0.send("REGISTER m0 * correct-horse")
            m0.expect(r" REGISTER SUCCESS m0 ")
            m0.send("PRIVMSG m2 :a secret")
            echo = m0.expect(r"PRIVMSG m2 :a secret$").string
            dm = re.search(r"msgid=([^; ]+)", echo)[1]  # type: ignore[index]
            people[2].expect(r"PRIVMSG m2 :a secret$")
            m0.send(f"REDACT m2 {dm}")
            m0.expect(rf"^:m0!\S+ REDACT m2 {dm}$")
            people[2].expect(rf"^:m0!\S+ REDACT m2 {dm}$")
            assert _history(m0, "m2") == []
        finally:
            for c in people:
                c.close()
    with process.running(data, workers=workers) as srv:
        back = _client(srv, "back")
        back.send("JOIN #r")
        back.expect(r" 366 back #r ")
        assert _history(back, "#r") == ["keep this"]
        back.close()
