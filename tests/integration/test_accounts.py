"""Accounts (issue 12) on a real server, at one worker and at four: REGISTER creates an
account on one worker and SASL PLAIN (or SCRAM-SHA-256) logs in to it from another; WHOIS from anywhere shows
330; an account-tag client sees the account on the user's messages. Raw sockets; synchronised
by PING/PONG."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient
from tests.unit.test_scram import Client as ScramClient


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control"], workers=request.param) as srv:
        yield srv


def caps(server: process.ServerProcess, nick: str, wanted: str) -> IRCClient:
    c = IRCClient(server.host, server.port, register=False)
    c.nick = nick
    c.request_caps(wanted)
    return c


def test_register_then_sasl_from_another_connection(server: process.ServerProcess) -> None:
    reg = caps(server, "regger", "draft/account-registration")
    reg.send("NICK regger")
    reg.send("USER regger 0 * :r")
    reg.send("CAP END")
    reg.expect(r" 376 | 422 ")
    reg.send("REGISTER accnt * correct-horse")
    reg.expect(r"^:\S+ REGISTER SUCCESS accnt :Account created$")
    reg.expect(r" 900 regger regger!\S+ accnt :You are now logged in as accnt$")
    clients = [reg]
    try:
        for i in range(4):  # spread over the workers: some log in on another one
            c = caps(server, f"sasl{i}", "sasl account-tag")
            clients.append(c)
            c.send(f"NICK sasl{i}")
            c.send(f"USER s 0 * :s{i}")
            c.sasl_plain("accnt", "correct-horse" if i else "wrong")
            if i == 0:
                c.expect(rf" 904 sasl{i} :SASL authentication failed$")
                c.send("CAP END")
                c.expect(r" 376 | 422 ")
                continue
            c.expect(rf" 900 sasl{i} sasl{i}!\S+ accnt :You are now logged in as accnt$")
            c.expect(rf" 903 sasl{i} :SASL authentication successful$")
            c.send("CAP END")
            c.expect(r" 376 | 422 ")
        reg.send("WHOIS sasl3")
        reg.expect(r" 330 regger sasl3 accnt :is logged in as$")
        reg.send("WHOIS sasl0")
        assert not any(" 330 " in x for x in reg.expect_until(r" 318 regger sasl0 "))
        for c in clients:
            c.send("JOIN #acc")
            c.sync()
        clients[2].send("PRIVMSG #acc :tagged")
        line = clients[3].expect(r"PRIVMSG #acc :tagged$").string
        assert "account=accnt" in line.split(" ", 1)[0]
    finally:
        for c in clients:
            c.close()


def _scram(c: IRCClient, account: str, password: str) -> str:
    """SASL SCRAM-SHA-256 for ``account`` (``sasl`` negotiated), as RFC 5802's client does
    it; the 90x that ends it (or, when the server's signature is wrong, "bad signature")."""
    client = ScramClient(account.encode(), password.encode())
    c.send("AUTHENTICATE SCRAM-SHA-256")
    c.expect(r"^AUTHENTICATE \+$")
    c.send("AUTHENTICATE " + base64.b64encode(client.first()).decode())
    server_first = base64.b64decode(c.expect(r"^AUTHENTICATE (\S+)$")[1])
    c.send("AUTHENTICATE " + base64.b64encode(client.final(server_first)).decode())
    answer = c.expect(r"^AUTHENTICATE (\S+)$| 904 ")
    if answer[1] is None:
        return "904"
    if not client.verifies(base64.b64decode(answer[1])):
        return "bad signature"
    c.send("AUTHENTICATE +")
    return c.expect(r" (90[34]) ")[1]


def test_scram_logs_in_without_sending_the_password(server: process.ServerProcess) -> None:
    """SASL SCRAM-SHA-256 (RFC 7677) to an account REGISTERed on whichever worker, from
    connections on every worker: the right password logs in (900, 903), a wrong one gets
    904, and the server proves it knows the keys too (its signature)."""
    _register(server, "scrammer", "pencil-sharp")
    for i in range(4):
        c = caps(server, f"scr{i}", "sasl")
        try:
            c.send(f"NICK scr{i}")
            c.send("USER s 0 * :s")
            assert "sasl=PLAIN,EXTERNAL,SCRAM-SHA-256" in " ".join(c.log)
            got = _scram(c, "scrammer", "pencil-sharp" if i else "pencil-blunt")
            assert got == ("904" if i == 0 else "903"), got
            if i:
                assert any(" 900 " in line and " scrammer " in line for line in c.log)
        finally:
            c.close()


def _register(srv: process.ServerProcess, nick: str, password: str) -> None:
    c = caps(srv, nick, "draft/account-registration")
    try:
        c.send(f"NICK {nick}")
        c.send(f"USER {nick} 0 * :r")
        c.send("CAP END")
        c.expect(r" 376 | 422 ")
        c.send(f"REGISTER * * {password}")
        c.expect(rf"REGISTER SUCCESS {nick} ")
    finally:
        c.close()


def _logs_in(srv: process.ServerProcess, nick: str, account: str, password: str) -> bool:
    c = caps(srv, nick, "sasl")
    try:
        c.send(f"NICK {nick}")
        c.send("USER u 0 * :u")
        c.sasl_plain(account, password)
        return " 903 " in c.expect(r" 90[34] ").string
    finally:
        c.close()


def _stored(data_dir: str, account: str) -> bool:
    """Is ``account`` in the store file yet (read as another process would)?"""
    with contextlib.closing(
        sqlite3.connect(f"file:{data_dir}/fastchat.db?mode=ro", uri=True)
    ) as db:
        rows = db.execute("SELECT 1 FROM accounts WHERE name_folded = ?", (account,)).fetchall()
    return bool(rows)


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_accounts_survive_a_stop_and_a_kill(workers: int, tmp_path: Path) -> None:
    """Issue 12: accounts survive restarts. A graceful stop (SIGTERM) loses nothing; after a
    SIGKILL of every process, what the store had committed is there."""
    data = ["--no-flood-control", "--data-dir", str(tmp_path)]
    with process.running(data, workers=workers) as srv:
        _register(srv, "keeper", "first-pass")
    with process.running(data, workers=workers) as srv:
        assert _logs_in(srv, "k1", "keeper", "first-pass")
        assert not _logs_in(srv, "k2", "keeper", "wrong-pass")
        _register(srv, "killed", "second-pass")
        deadline = time.monotonic() + 10
        while not _stored(str(tmp_path), "killed"):  # the writer commits within milliseconds
            assert time.monotonic() < deadline, "the account never reached the store"
            time.sleep(0.02)
        for p in srv.tree():
            p.kill()
    with process.running(data, workers=workers) as srv:
        assert _logs_in(srv, "k3", "killed", "second-pass")
        assert _logs_in(srv, "k4", "keeper", "first-pass")


def test_sasl_reauthentication_switches_the_account(server: process.ServerProcess) -> None:
    """SASL 3.2 reauthentication after registration: the new account replaces the old one
    on every worker (another connection's WHOIS, wherever it is, shows it); a wrong password
    keeps the old one."""
    _register(server, "first1", "first-secret")
    _register(server, "second2", "second-secret")
    c = caps(server, "switcher", "sasl")
    watchers = [IRCClient(server.host, server.port, register=False) for _ in range(3)]
    try:
        c.send("NICK switcher")
        c.send("USER s 0 * :s")
        c.sasl_plain("first1", "first-secret")
        c.expect(r" 903 switcher ")
        c.send("CAP END")
        c.expect(r" 376 | 422 ")
        c.sasl_plain("second2", "wrong")
        c.expect(r" 904 switcher ")
        c.sasl_plain("second2", "second-secret")
        c.expect(r" 900 switcher \S+ second2 :You are now logged in as second2$")
        c.expect(r" 903 switcher ")
        for i, w in enumerate(watchers):  # spread over the workers
            w.register(f"watch{i}")
            w.send("WHOIS switcher")
            w.expect(rf" 330 watch{i} switcher second2 :is logged in as$")
    finally:
        c.close()
        for w in watchers:
            w.close()
