"""``fastchat serve --config FILE`` for real, with one and with four workers: the file's
settings reach every worker, the flags given override it, and a file that cannot be used
starts nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from tests.ircclient import IRCClient

CONFIG = """\
# the motd file is next to this file, not in the server's working directory
motd_file = "motd.txt"
nicklen = 12
network = "ConfNet"
autojoin = ""
topiclen = 100   # --topiclen on the command line wins
workers = 2      # so does --workers, which process.start always gives

[[oper]]
name = "admin"
password = "{password_hash}"
privileges = ["kill"]
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("etc")
    (folder / "motd.txt").write_text("Welcome to ConfNet.\nBe kind.\n", encoding="utf-8")
    path = folder / "fastchat.toml"
    hashed = passwords.hash_password(b"secret")
    path.write_text(CONFIG.format(password_hash=hashed), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, config_file: Path) -> Iterator[process.ServerProcess]:
    args = ["--config", str(config_file), "--topiclen", "120"]
    with process.running(args, workers=request.param) as srv:
        yield srv


def test_the_files_settings_reach_every_worker(server: process.ServerProcess) -> None:
    """A client on each worker (more connect until the kernel has given one to every worker)
    is welcomed with the file's MOTD and ISUPPORT, and held to its NICKLEN; the command
    line's --topiclen and --workers win over the file."""
    workers = set(server.worker_pids())
    assert len(workers) == server.workers != 2
    clients: list[IRCClient] = []
    met: set[int | None] = set()
    try:
        while not workers <= met and len(clients) < 16 * server.workers:
            client = IRCClient(server.host, server.port)
            clients.append(client)
            nick = f"conf{len(clients)}"
            lines = client.register(nick)
            met.add(server.worker_of(client.sock.getsockname()[1]))
            motd = [line.split(" :- ", 1)[1] for line in lines if " 372 " in line]
            assert motd == ["Welcome to ConfNet.", "Be kind."]
            isupport = " ".join(line for line in lines if " 005 " in line).split()
            for token in ["NICKLEN=12", "NETWORK=ConfNet", "TOPICLEN=120"]:
                assert token in isupport
            assert not any(" JOIN " in line for line in client.sync())  # autojoin = ""
            client.send("NICK muchtoolongnick")
            client.expect(rf" 432 {nick} muchtoolongnick ")
        assert workers <= met
    finally:
        for client in clients:
            client.close()


def serve(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fastchat.cli", "serve", "--port", "0"]
    data = ["--data-dir", str(config.parent / "data")]
    return subprocess.run(
        [*command, "--config", str(config), *data, *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("workers", ["1", "4"])
def test_a_bad_file_starts_nothing_and_says_where(tmp_path: Path, workers: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('nicklen = 12\n\n[[oper]]\nname = "admin"\npassword = "plain"\n')
    done = serve(bad, "--workers", workers)
    assert done.returncode == 2
    assert done.stdout == ""  # no ready line: nothing started
    assert done.stderr == (
        f"fastchat serve: {bad}:5: oper 'admin', key 'password': not a password hash "
        "(make one with `fastchat mkpasswd`)\n"
    )


def test_a_missing_file_or_a_bad_flag_is_one_line_too(tmp_path: Path) -> None:
    done = serve(tmp_path / "absent.toml")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"fastchat serve: {tmp_path / 'absent.toml'}: cannot read: No such file or directory\n"
    )
    good = tmp_path / "good.toml"
    good.write_text("nicklen = 12\n")
    done = serve(good, "--motd-file", str(tmp_path / "absent.txt"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("fastchat serve: setting 'motd_file': ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
