"""Operators on a real server, at one worker and at four (Modern IRC "Operators": OPER, KILL,
WALLOPS; RFC 2812 §3.1.4, §3.7.1, §4.7).

The operators come from a config file's ``[[oper]]`` tables (``fastchat serve --config``).
With four workers, the users that matter are put on another worker than the operator (more
clients connect until the kernel has given one to another worker), so every answer below is
the network's, not one worker's. Synchronised by PING/PONG (and the read barrier of the
queries), never by sleeping.
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
password = "{admin}"
hosts = ["*@127.0.0.1"]
privileges = ["kill", "wallops", "override", "see", "accounts"]

[[oper]]
name = "helper"
password = "{helper}"
privileges = ["wallops"]

[[oper]]
name = "faraway"
password = "{faraway}"
hosts = ["*@192.0.2.*"]
privileges = ["kill"]
"""

Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etc") / "fastchat.toml"
    hashes = {
        # the real cost for the operator every test uses: the check runs off the loop
        "admin": passwords.hash_password(b"secret"),
        "helper": passwords.hash_password(b"help", n=16),
        "faraway": passwords.hash_password(b"far", n=16),
    }
    path.write_text(CONFIG.format(**hashes), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, config_file: Path) -> Iterator[process.ServerProcess]:
    with process.running(["--config", str(config_file)], workers=request.param) as srv:
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Connect]:
    clients: list[IRCClient] = []

    def make(nick: str, source: str | None = None) -> IRCClient:
        client = IRCClient(server.host, server.port, nick, source=source)
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients]
    for client in clients:
        client.close()
    wait_nicks_free(server.host, server.port, nicks)


def worker_of(server: process.ServerProcess, client: IRCClient) -> int | None:
    return server.worker_of(client.sock.getsockname()[1])


def elsewhere(
    server: process.ServerProcess, connect: Connect, nick: str, than: IRCClient
) -> IRCClient:
    """A client named ``nick`` on another worker than ``than`` (at one worker, the only one).
    The kernel spreads connections over the workers: connect until one lands elsewhere."""
    avoid = worker_of(server, than) if server.workers > 1 else None
    for attempt in range(64):
        client = connect(f"{nick}{attempt}" if attempt else nick)
        if avoid is None or worker_of(server, client) != avoid:
            return client
        client.send("QUIT")
        client.wait_closed()
    raise AssertionError("every connection landed on the operator's worker")


def oper_up(client: IRCClient) -> None:
    client.send("OPER admin secret")
    client.expect(rf" 381 {client.nick} :")
    client.expect(rf"^:{client.nick} MODE {client.nick} :\+o$")


def test_oper_answers(connect: Connect) -> None:
    """Modern IRC OPER: 464 for a wrong password and for an unknown name, 491 for the right
    password from a host the block does not allow (here 127.0.0.1), 461 without a password,
    and 381 with one MODE +o on success. The failures come from another address: the wait
    they cause follows the address (127.0.0.1 is the operators')."""
    a = connect("opa", source="127.0.0.2")
    a.send("OPER admin wrong")
    a.send("OPER nobody secret")
    a.send("OPER admin")
    assert a.replies() == [
        ":fastchat.local 464 opa :Password incorrect",
        ":fastchat.local 464 opa :Password incorrect",  # refused unchecked: too soon
        ":fastchat.local 461 opa OPER :Not enough parameters",
    ]
    b = connect("opb")
    b.send("OPER faraway far")
    assert b.replies() == [":fastchat.local 491 opb :No O-lines for your host"]
    c = connect("opc")
    c.send("OPER admin secret")
    c.send("MODE opc")
    assert c.sync() == [
        ":fastchat.local 381 opc :You are now an IRC operator",
        ":opc MODE opc :+o",
        ":fastchat.local 221 opc :+o",
    ]


def test_a_failure_slows_the_next_attempt(connect: Connect) -> None:
    """A failed OPER makes the connection's next one, sent at once, get 464 unchecked, even
    with the right password (the wait after a first failure is a second); another connection
    is not held back (nor is another address: the wait follows the connection's address too,
    see the unit tests)."""
    a, b = connect("slowa", source="127.0.0.3"), connect("slowb")
    a.send("OPER admin wrong")
    a.expect(r" 464 slowa ")
    a.send("OPER admin secret")
    b.send("OPER admin secret")
    assert a.replies() == [":fastchat.local 464 slowa :Password incorrect"]
    b.expect(r" 381 slowb ")


def test_an_operator_is_seen_from_every_worker(
    server: process.ServerProcess, connect: Connect
) -> None:
    """+o is network state: from another worker, WHOIS shows 313, WHO the flag ``*``, LUSERS
    252 counts it; ``MODE -o`` takes all of it back, and KILL then gets 481."""
    o = connect("seen")
    watcher = elsewhere(server, connect, "watcher", o)
    oper_up(o)
    o.send("JOIN #seen")
    o.expect(r" 366 seen #seen ")
    w = watcher.nick
    watcher.send("WHOIS seen")
    watcher.send("WHO seen")
    watcher.send("WHO #seen")
    watcher.send("LUSERS")
    got = watcher.replies()
    assert f":fastchat.local 313 {w} seen :is an IRC operator" in got
    assert [x for x in got if f" 352 {w} " in x] == [
        f":fastchat.local 352 {w} * ~seen 127.0.0.1 fastchat.local seen H* :0 Real seen",
        f":fastchat.local 352 {w} #seen ~seen 127.0.0.1 fastchat.local seen H*@ :0 Real seen",
    ]
    assert f":fastchat.local 252 {w} 1 :operator(s) online" in got
    o.send("MODE seen -o")
    o.expect(r"^:seen MODE seen :-o$")
    watcher.send("WHOIS seen")
    watcher.send("LUSERS")
    got = watcher.replies()
    assert not [x for x in got if " 313 " in x]
    assert f":fastchat.local 252 {w} 0 :operator(s) online" in got
    o.send("KILL watcher :x")
    o.expect(r" 481 seen :Permission Denied")


def test_kill_a_user_on_another_worker(server: process.ServerProcess, connect: Connect) -> None:
    """Modern IRC KILL, the victim on another worker than the operator: it receives the KILL
    and an ERROR and is disconnected; whoever shares a channel with it sees
    ``QUIT :Killed (<oper> (<reason>))``; its nick is free at once. A user gets 481; an
    unknown nick 401."""
    o = connect("killer")
    victim = elsewhere(server, connect, "victim", o)
    witness = connect("witness")
    for c in (victim, witness):
        c.send("JOIN #scene")
        c.expect(rf" 366 {c.nick} #scene ")
    witness.sync()
    witness.send(f"KILL {victim.nick} :no")
    witness.expect(r" 481 witness :Permission Denied")
    oper_up(o)
    o.send("KILL nobody :x")
    o.expect(r" 401 killer nobody :No such nick")
    o.send(f"KILL {victim.nick} :spamming")
    o.sync()
    victim.expect(rf"^:killer!~killer@127\.0\.0\.1 KILL {victim.nick} :spamming$")
    victim.expect(
        rf"^ERROR :Closing link: \(~{victim.nick}@127\.0\.0\.1\) \[Killed \(killer \(spamming\)\)\]$"
    )
    victim.wait_closed()
    witness.expect(rf"^:{victim.nick}!~\S+ QUIT :Killed \(killer \(spamming\)\)$")
    o.send(f"ISON {victim.nick}")
    o.expect(r" 303 killer :$")


def test_wallops_reaches_plus_w_users_on_every_worker(
    server: process.ServerProcess, connect: Connect
) -> None:
    """RFC 2812 §4.7: WALLOPS goes "to all currently connected users who have set the 'w'
    user mode": a reader on another worker gets it, a user without +w does not (its own PING
    comes back after anything the sequencer sent its worker before)."""
    o = connect("wall")
    reader = elsewhere(server, connect, "reader", o)
    deaf = elsewhere(server, connect, "deaf", o)
    reader.send(f"MODE {reader.nick} +w")
    reader.expect(rf"^:{reader.nick} MODE {reader.nick} :\+w$")
    o.send("OPER helper help")
    o.expect(r" 381 wall ")
    o.send("WALLOPS :maintenance at 10:00")
    assert o.sync()[-1] == ":wall MODE wall :+o"  # the sender has no +w: no echo
    reader.expect(r"^:wall!~wall@127\.0\.0\.1 WALLOPS :maintenance at 10:00$")
    assert deaf.sync() == []


def test_userhost_marks_an_operator_and_whowas_remembers_a_kill(
    server: process.ServerProcess, connect: Connect
) -> None:
    """Modern IRC RPL_USERHOST: ``*`` after the nick of an operator, seen from another worker;
    and a user an operator KILLs leaves its nick to WHOWAS, as one that quits."""
    o = connect("uho")
    watcher = elsewhere(server, connect, "uhw", o)
    victim = elsewhere(server, connect, "uhv", o)
    oper_up(o)
    w = watcher.nick
    watcher.send(f"USERHOST uho {w}")
    assert watcher.replies()[-1] == (
        f":fastchat.local 302 {w} :uho*=+~uho@127.0.0.1 {w}=+~{w}@127.0.0.1"
    )
    o.send(f"KILL {victim.nick} :enough")
    victim.wait_closed()
    watcher.send(f"WHOWAS {victim.nick}")
    got = watcher.replies()
    assert got[0] == (
        f":fastchat.local 314 {w} {victim.nick} ~{victim.nick} 127.0.0.1 * :Real {victim.nick}"
    )
    assert got[-1] == f":fastchat.local 369 {w} {victim.nick} :End of WHOWAS"


def test_an_operator_resets_a_password(server: process.ServerProcess, connect: Connect) -> None:
    """NickServ SASET <account> PASSWORD: an operator with ``accounts`` sets the password of
    an account made on whichever worker; it works from another worker at once."""
    owner = connect("forgetful")
    owner.send("REGISTER forgetful * old-password")
    owner.expect(r" REGISTER SUCCESS forgetful ")
    ada = connect("adareset")
    ada.send("PRIVMSG NickServ :SASET forgetful PASSWORD new-password")
    ada.expect(r" 481 adareset ")
    oper_up(ada)
    ada.send("PRIVMSG NickServ :SASET forgetful PASSWORD new-password")
    ada.expect(r"NOTICE adareset :Password changed for forgetful$")
    back = elsewhere(server, connect, "comeback", ada)
    back.send("PRIVMSG NickServ :IDENTIFY forgetful old-password")
    back.expect(rf"NOTICE {back.nick} :Invalid account credentials$")
    back.send("PRIVMSG NickServ :IDENTIFY forgetful new-password")
    back.expect(rf"NOTICE {back.nick} :You are now logged in as forgetful$")
