"""Server bans (K-lines) on a real server, at one worker and at four: KLINE of a user on
another worker than the operator, a matching connection refused with 465, UNKLINE, STATS k,
and the K-line file that keeps them across a restart.

The operator comes from a config file's ``[[oper]]`` table with the ``kline`` privilege; the
K-line file is ``klines.toml`` next to that config file (the default). Every client connects
from 127.0.0.1 and registers with its nick as username (``~nick``), so the K-lines here name
users by username. Synchronised by PING/PONG and by the replies, never by sleeping.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from tests.integration.test_operators import elsewhere, oper_up
from tests.ircclient import IRCClient, wait_nicks_free

CONFIG = """\
autojoin = ""
flood_control = false

[[oper]]
name = "admin"
password = "{admin}"
hosts = ["*@127.0.0.1"]
privileges = ["kline"]

[[oper]]
name = "helper"
password = "{helper}"
privileges = ["wallops"]
"""

Connect = Callable[..., IRCClient]
DENIED = "Permission Denied- You're not an IRC operator"


def write_config(folder: Path) -> Path:
    path = folder / "fastchat.toml"
    hashes = {
        "admin": passwords.hash_password(b"secret"),
        "helper": passwords.hash_password(b"help", n=16),
    }
    path.write_text(CONFIG.format(**hashes), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("etc"))


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, config_file: Path) -> Iterator[process.ServerProcess]:
    with process.running(["--config", str(config_file)], workers=request.param) as srv:
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Connect]:
    clients: list[IRCClient] = []

    def make(nick: str) -> IRCClient:
        client = IRCClient(server.host, server.port, nick)
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if not c.closed]
    for client in clients:
        client.close()
    wait_nicks_free(server.host, server.port, nicks)


def try_to_register(host: str, port: int, nick: str, username: str) -> IRCClient:
    client = IRCClient(host, port, register=False)
    client.nick = nick
    client.send(f"NICK {nick}")
    client.send(f"USER {username} 0 * :Real {nick}")
    return client


def test_kline_a_user_on_another_worker(server: process.ServerProcess, connect: Connect) -> None:
    """A K-line on a user of another worker than the operator: it gets 465 and ERROR and is
    disconnected; whoever shares a channel with it sees ``QUIT :K-Lined: <reason>``; the
    operator is told what was done. A new connection it matches, on whichever worker, gets
    465 and ERROR; after UNKLINE, the same connection is welcome."""
    o = connect("kop")
    victim = elsewhere(server, connect, "kvic", o)
    witness = connect("kwit")
    for c in (victim, witness):
        c.send("JOIN #kscene")
        c.expect(rf" 366 {c.nick} #kscene ")
    witness.sync()
    oper_up(o)
    o.send("KLINE ~kvic*@127.0.0.1 1h :spamming")
    o.expect(
        rf"^:fastchat\.local NOTICE kop :\*\*\* Added K-line on ~kvic\*@127\.0\.0\.1 \(for 1h\):"
        rf" spamming; removed: {victim.nick}$"
    )
    victim.expect(
        rf"^:fastchat\.local 465 {victim.nick} :You are banned from this server \(spamming\)$"
    )
    victim.expect(rf"^ERROR :Closing link: \(~{victim.nick}@127\.0\.0\.1\) \[K-Lined: spamming\]$")
    victim.wait_closed()
    witness.expect(rf"^:{victim.nick}!~{victim.nick}@127\.0\.0\.1 QUIT :K-Lined: spamming$")
    for attempt in range(2 * server.workers):
        again = try_to_register(server.host, server.port, f"kvic{attempt}x", "kvicx")
        again.expect(r"^:fastchat\.local 465 \S+ :You are banned from this server \(spamming\)$")
        again.expect(r"^ERROR :Closing link: \(~kvicx@127\.0\.0\.1\) \[K-Lined: spamming\]$")
        again.wait_closed()
    o.send("UNKLINE ~KVIC*@127.0.0.1")
    o.expect(
        r"^:fastchat\.local NOTICE kop :\*\*\* Removed K-line on ~kvic\*@127\.0\.0\.1 \(set by"
        r" kop: spamming\)$"
    )
    welcome = try_to_register(server.host, server.port, "kvicback", "kvicx")
    welcome.expect(r" 001 kvicback ")
    welcome.send("QUIT")
    welcome.wait_closed()


def test_stats_k_and_who_may_kline(server: process.ServerProcess, connect: Connect) -> None:
    """STATS k lists the K-lines in force to an operator (216, then 219), from any worker;
    a user gets 481 alone. KLINE needs the ``kline`` privilege (481); a mask that would match
    everyone, or the operator itself, is refused with a NOTICE."""
    o = connect("kstat")
    user = elsewhere(server, connect, "kuser", o)
    user.send("KLINE ~nobody@*")
    user.send("STATS k")
    assert user.replies() == [
        f":fastchat.local 481 {user.nick} :{DENIED}",
        f":fastchat.local 481 {user.nick} :{DENIED}",
    ]
    user.send("OPER helper help")
    user.expect(r" 381 ")
    user.send("KLINE ~nobody@*")
    assert user.replies()[-1] == f":fastchat.local 481 {user.nick} :{DENIED}"
    oper_up(o)
    o.send("KLINE *@*")
    o.send("KLINE ~kstat@*")
    o.send("KLINE ~kgone@192.0.2.* 2h :test stats")
    got = o.replies()
    assert got[0].startswith(
        ":fastchat.local NOTICE kstat :*** KLINE refused: K-line mask *@* would match everyone."
    )
    assert got[1].startswith(
        ":fastchat.local NOTICE kstat :*** KLINE refused: K-line mask ~kstat@* would match you."
    )
    assert got[2].startswith(":fastchat.local NOTICE kstat :*** Added K-line on ~kgone@192.0.2.*")
    user.send("STATS k")
    got = user.replies()
    assert [line.split()[1] for line in got] == ["216", "219"]
    _, _, nick, mask, _set_at, length, setter, reason = got[0].split(" ", 7)
    assert (nick, mask, length, setter, reason) == (
        user.nick,
        "~kgone@192.0.2.*",
        "7200",
        "kstat",
        ":test stats",
    )
    o.send("UNKLINE ~kgone@192.0.2.*")
    o.expect(r"\*\*\* Removed K-line on ~kgone@192\.0\.2\.\*")


@pytest.mark.parametrize("workers", [1, 4])
def test_klines_survive_a_restart(tmp_path: Path, workers: int) -> None:
    """The K-lines are kept in ``klines.toml`` next to the config file: a server started
    again with the same config still refuses who they match, and STATS k lists them with
    their setter, time and reason; an UNKLINE is kept as well."""
    config = write_config(tmp_path)
    args = ["--config", str(config)]
    with process.running(args, workers=workers) as srv, IRCClient(srv.host, srv.port, "kop") as o:
        oper_up(o)
        o.send("KLINE ~kstay@* 0 :for good")
        o.expect(r"\*\*\* Added K-line on ~kstay@\* \(permanent\): for good")
        o.send("STATS k")
        before = o.replies()[0]
    assert 'mask = "~kstay@*"' in (tmp_path / "klines.toml").read_text(encoding="utf-8")
    with process.running(args, workers=workers) as srv, IRCClient(srv.host, srv.port, "kop") as o:
        oper_up(o)
        o.send("STATS k")
        assert o.replies() == [before, ":fastchat.local 219 kop k :End of /STATS report"]
        assert before.endswith(" 0 kop :for good")
        banned = try_to_register(srv.host, srv.port, "stayer", "kstay")
        banned.expect(
            r"^:fastchat\.local 465 stayer :You are banned from this server \(for good\)$"
        )
        banned.wait_closed()
        o.send("UNKLINE ~kstay@*")
        o.expect(r"\*\*\* Removed K-line on ~kstay@\*")
    with process.running(args, workers=workers) as srv, IRCClient(srv.host, srv.port, "kop") as o:
        oper_up(o)
        o.send("STATS k")
        assert o.replies() == [":fastchat.local 219 kop k :End of /STATS report"]


def test_a_bad_kline_file_starts_nothing_and_says_where(tmp_path: Path) -> None:
    """A K-line file that cannot be used, as a config file that cannot: one line naming the
    file and the line, exit status 2, no ready line."""
    config = write_config(tmp_path)
    klines = tmp_path / "klines.toml"
    klines.write_text('[[kline]]\nmask = "*@*"\n', encoding="utf-8")
    command = [sys.executable, "-m", "fastchat.cli", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path / "data")]
    done = subprocess.run(
        [*command, "--config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"fastchat serve: {klines}:2: kline #1, key 'mask': '*@*' would match everyone\n"
    )
