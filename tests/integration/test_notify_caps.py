"""IRCv3 state-change notifications on a real server, at one worker and at four:
extended-join, away-notify, setname (with SETNAME), chghost (with the operator's CHGHOST),
invite-notify. Each observer is put on another worker than the user it watches (at four
workers), so every line crossed the sequencer; lines are compared exactly. Raw sockets,
synchronised by PING/PONG (a PING passes the read barrier: once an observer has its PONG,
its worker has shown it everything decided before), never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free

CONFIG = """\
autojoin = ""
flood_control = false

[[oper]]
name = "admin"
password = "{password}"
privileges = ["chghost"]
"""
SRV = ":fastchat.local"

Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etc") / "fastchat.toml"
    path.write_text(CONFIG.format(password=passwords.hash_password(b"pw", n=16)), "utf-8")
    return path


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, config_file: Path) -> Iterator[process.ServerProcess]:
    with process.running(["--config", str(config_file)], workers=request.param) as srv:
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Connect]:
    """``connect(nick, *caps, elsewhere=client)``: a registered client that negotiated
    ``caps``; with ``elsewhere``, on another worker than that client (at four workers)."""
    clients: list[IRCClient] = []

    def make(nick: str, *caps: str, elsewhere: IRCClient | None = None) -> IRCClient:
        avoid = None
        if elsewhere is not None and server.workers > 1:
            avoid = server.worker_of(elsewhere.sock.getsockname()[1])
        for _attempt in range(64):
            client = IRCClient(server.host, server.port, register=False)
            clients.append(client)
            if avoid is None or server.worker_of(client.sock.getsockname()[1]) != avoid:
                break
            client.close()
        else:
            raise AssertionError("every connection landed on the same worker")
        client.nick = nick
        if caps:
            client.send("CAP REQ :" + " ".join(caps))
            client.expect(r"CAP \* ACK :")
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :Real {nick}")
        if caps:
            client.send("CAP END")
        client.expect(r" 376 | 422 ")
        client.sync()
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick and not c.closed]
    for client in clients:
        client.close()
    wait_nicks_free(server.host, server.port, nicks)


def joined(channel: str, *clients: IRCClient) -> None:
    """Each client joins ``channel`` in turn; then everyone has seen everything so far."""
    for c in clients:
        c.send(f"JOIN {channel}")
        c.sync()
    for c in clients:
        c.sync()


def test_extended_join(connect: Connect) -> None:
    watcher = connect("ejw", "extended-join")
    plain = connect("ejp", elsewhere=watcher)
    joined("#ej", watcher, plain)
    joiner = connect("ejj", elsewhere=watcher)
    joiner.send("SETNAME :Joe Joiner")
    joiner.send("JOIN #ej")
    joiner.sync()
    assert watcher.sync() == [":ejj!~ejj@127.0.0.1 JOIN #ej * :Joe Joiner"]
    assert plain.sync() == [":ejj!~ejj@127.0.0.1 JOIN #ej"]


def test_away_notify(connect: Connect) -> None:
    watcher = connect("anw", "away-notify")
    other = connect("ano")
    goer = connect("ang", "away-notify", elsewhere=watcher)
    joined("#an", watcher, other, goer)
    goer.send("AWAY :out to lunch")
    goer.send("AWAY")
    assert goer.sync() == [
        f"{SRV} 306 ang :You have been marked as being away",
        f"{SRV} 305 ang :You are no longer marked as being away",
    ]
    assert watcher.sync() == [
        ":ang!~ang@127.0.0.1 AWAY :out to lunch",
        ":ang!~ang@127.0.0.1 AWAY",
    ]
    assert other.sync() == []
    late = connect("anl", elsewhere=watcher)
    late.send("AWAY :already away")
    late.send("JOIN #an")
    late.sync()
    assert watcher.sync() == [
        ":anl!~anl@127.0.0.1 JOIN #an",
        ":anl!~anl@127.0.0.1 AWAY :already away",
    ]


def test_setname(connect: Connect) -> None:
    setter = connect("sns", "setname")
    peer = connect("snp", "setname", elsewhere=setter)
    plain = connect("snx", elsewhere=setter)
    joined("#sn", setter, peer, plain)
    setter.send("SETNAME :Sam Setter")
    assert setter.sync() == [":sns!~sns@127.0.0.1 SETNAME :Sam Setter"]
    assert peer.sync() == [":sns!~sns@127.0.0.1 SETNAME :Sam Setter"]
    assert plain.sync() == []
    plain.send("WHOIS sns")
    assert f"{SRV} 311 snx sns ~sns 127.0.0.1 * :Sam Setter" in plain.sync()
    setter.send("SETNAME :")
    assert setter.sync() == [
        f"{SRV} FAIL SETNAME INVALID_REALNAME :Realname is not valid: it is empty"
    ]


def test_chghost(connect: Connect) -> None:
    target = connect("chg", "chghost")
    aware = connect("cha", "chghost", elsewhere=target)
    plain = connect("chp", elsewhere=target)
    joined("#ch", target, aware, plain)
    oper = connect("cho", elsewhere=target)
    oper.send("OPER admin pw")
    oper.expect(r"^:cho MODE cho :\+o$")
    oper.send("CHGHOST chg vhost users/chg")
    assert oper.sync() == [
        f"{SRV} NOTICE cho :*** CHGHOST: chg!~chg@127.0.0.1 is now chg!vhost@users/chg"
    ]
    assert target.sync() == [":chg!~chg@127.0.0.1 CHGHOST vhost users/chg"]
    assert aware.sync() == [":chg!~chg@127.0.0.1 CHGHOST vhost users/chg"]
    assert plain.sync() == [
        ":chg!~chg@127.0.0.1 QUIT :Changing hostname",
        ":chg!vhost@users/chg JOIN #ch",
        f"{SRV} MODE #ch +o :chg",
    ]
    target.send("PRIVMSG #ch :new me")
    target.sync()
    assert plain.sync() == [":chg!vhost@users/chg PRIVMSG #ch :new me"]
    oper.send("CHGHOST chg bad@host")
    assert oper.sync() == [
        f"{SRV} FAIL CHGHOST INVALID_HOST bad@host :Host may hold only letters, digits and"
        " - . _ : /"
    ]


def test_invite_notify(connect: Connect) -> None:
    op = connect("ino", "invite-notify")
    member = connect("inm", "invite-notify", elsewhere=op)
    inviter = connect("ini", elsewhere=op)
    joined("#in", op, member, inviter)
    op.send("MODE #in +o ini")
    for c in (op, member, inviter):
        c.expect(r" MODE #in \+o :ini$")
    guest = connect("ing", elsewhere=op)
    inviter.send("INVITE ing #in")
    assert inviter.sync()[-1] == f"{SRV} 341 ini ing #in"
    assert guest.sync() == [":ini!~ini@127.0.0.1 INVITE ing :#in"]
    assert op.sync() == [":ini!~ini@127.0.0.1 INVITE ing :#in"]
    assert member.sync() == []
