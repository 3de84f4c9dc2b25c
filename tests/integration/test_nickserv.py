"""NickServ (issue 12) on a real server, at one worker and at four: REGISTER on one
connection, IDENTIFY from others (spread over the workers), PASSWD, DROP; and across a
restart with the same data directory, a registered account is kept with its new password
and a dropped one is gone. Raw sockets;
synchronised by PING/PONG."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

NS = r":NickServ!NickServ@services\. NOTICE"


def _user(srv: process.ServerProcess, nick: str) -> IRCClient:
    c = IRCClient(srv.host, srv.port, register=False)
    c.nick = nick
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.expect(r" 376 | 422 ")
    return c


def _identify(srv: process.ServerProcess, nick: str, account: str, password: str) -> bool:
    c = _user(srv, nick)
    try:
        c.send(f"PRIVMSG NickServ :IDENTIFY {account} {password}")
        answer = c.expect(rf"{NS} {nick} :(You are now logged in|Invalid account)").string
        return "logged in" in answer
    finally:
        c.close()


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_register_identify_drop_and_restart(workers: int, tmp_path: Path) -> None:
    data = ["--no-flood-control", "--data-dir", str(tmp_path)]
    with process.running(data, workers=workers) as srv:
        for name in ("keeper", "dropped", "changer"):
            c = _user(srv, name)
            c.send("PRIVMSG NickServ :REGISTER correct-horse")
            c.expect(rf"{NS} {name} :Account {name} registered$")
            c.expect(rf" 900 {name} {name}!\S+ {name} :You are now logged in as {name}$")
            c.close()
        for i in range(4):  # spread over the workers: some identify on another one
            assert _identify(srv, f"id{i}", "keeper", "correct-horse")
        assert not _identify(srv, "bad", "keeper", "wrong-horse")
        changer = _user(srv, "changer2")
        changer.send("PRIVMSG NickServ :IDENTIFY changer correct-horse")
        changer.expect(rf"{NS} changer2 :You are now logged in as changer$")
        changer.send("PRIVMSG NickServ :PASSWD correct-horse battery-staple")
        changer.expect(rf"{NS} changer2 :Password changed for changer$")
        changer.close()
        for i in range(4):  # every worker's replica has the new password
            assert _identify(srv, f"new{i}", "changer", "battery-staple")
            assert not _identify(srv, f"old{i}", "changer", "correct-horse")
        owner = _user(srv, "owner")
        owner.send("PRIVMSG NickServ :IDENTIFY dropped correct-horse")
        owner.expect(rf"{NS} owner :You are now logged in as dropped$")
        owner.send("NS DROP correct-horse")
        owner.expect(rf"{NS} owner :Account dropped has been dropped$")
        owner.send("WHOIS owner")
        assert not any(" 330 " in x for x in owner.expect_until(r" 318 owner owner "))
        owner.send("PRIVMSG NickServ :INFO dropped")
        owner.expect(rf"{NS} owner :Account dropped is not registered$")
        owner.close()
    with process.running(data, workers=workers) as srv:
        assert _identify(srv, "back", "keeper", "correct-horse")
        assert _identify(srv, "back2", "changer", "battery-staple")
        assert not _identify(srv, "back3", "changer", "correct-horse")
        assert not _identify(srv, "gone", "dropped", "correct-horse")
