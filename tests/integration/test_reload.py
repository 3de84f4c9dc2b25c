"""Reloading the config file without a restart (issue 10): SIGHUP to the supervisor, with one
and with four workers. Every process takes the new limits and MOTD, nobody is disconnected,
settings that cannot change live are reported, and a file that fails keeps the old config."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from tests.ircclient import IRCClient

CONFIG = """\
motd_file = "motd.txt"
nicklen = {nicklen}
network = "{network}"
autojoin = ""
whowas_size = {whowas_size}

[[oper]]
name = "admin"
password = "{hash}"
privileges = ["rehash"]
"""
#: a cheap hash (scrypt N=16) of "secret": the tests need an operator, not a strong hash
HASH = passwords.hash_password(b"secret", n=16)
DEADLINE = 10.0


def write(folder: Path, motd: str, nicklen: int, network: str, whowas_size: int = 1000) -> None:
    (folder / "motd.txt").write_text(motd + "\n", encoding="utf-8")
    (folder / "fastchat.toml").write_text(
        CONFIG.format(nicklen=nicklen, network=network, whowas_size=whowas_size, hash=HASH),
        encoding="utf-8",
    )


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[process.ServerProcess, Path, list[IRCClient]]]:
    """A server started from a file, and a client on each of its workers."""
    workers = request.param
    write(tmp_path, "before", 12, "OldNet")
    clients: list[IRCClient] = []
    with process.running(["--config", str(tmp_path / "fastchat.toml")], workers=workers) as srv:
        try:
            pids = set(srv.worker_pids())
            met: set[int | None] = set()
            tries = 0
            while not pids <= met and tries < 16 * workers:
                client = IRCClient(srv.host, srv.port)
                # a nick of its own: the nick of a try closed just before may not be free yet
                client.register(f"r{tries}")
                tries += 1
                worker = srv.worker_of(client.sock.getsockname()[1])
                if worker in met:
                    client.close()
                    continue
                met.add(worker)
                clients.append(client)
            assert pids <= met
            yield srv, tmp_path, clients
        finally:
            for client in clients:
                client.close()


def motd(client: IRCClient) -> list[str]:
    client.send("MOTD")
    return [line.split(" :- ", 1)[1] for line in client.expect_until(" 376 ") if " 372 " in line]


def wait_for_motd(client: IRCClient, text: str) -> None:
    """Ask for the MOTD until the worker serves ``text`` (the reload reached it) or time out."""
    deadline = time.monotonic() + DEADLINE
    while motd(client) != [text]:
        assert time.monotonic() < deadline, f"the MOTD never became {text!r}"


def test_sighup_reloads_every_worker_and_disconnects_nobody(
    setup: tuple[process.ServerProcess, Path, list[IRCClient]],
) -> None:
    srv, folder, clients = setup
    assert all(motd(c) == ["before"] for c in clients)
    for i, client in enumerate(clients):
        client.send(f"NICK seventeen_chars{i}")  # longer than NICKLEN 12
        client.expect(r" 432 ")
    write(folder, "after", 20, "NewNet")
    os.kill(srv.pid, signal.SIGHUP)
    for i, client in enumerate(clients):
        wait_for_motd(client, "after")
        client.send(f"NICK seventeen_chars{i}")  # fits NICKLEN 20
        client.expect(rf":r\d+!\S+ NICK :seventeen_chars{i}")
        client.send("NICK " + "x" * 21)
        client.expect(r" 432 ")
        client.send("VERSION")  # NETWORK cannot change live: clients already know it
        assert "NETWORK=OldNet" in " ".join(client.sync())  # in any of the 005 lines
    srv.wait_log(re.escape("change only at a restart: network"), timeout=DEADLINE)


def test_a_bad_file_on_sighup_keeps_the_old_config(
    setup: tuple[process.ServerProcess, Path, list[IRCClient]],
) -> None:
    srv, folder, clients = setup
    (folder / "fastchat.toml").write_text("nicklen = 'long'\n", encoding="utf-8")
    os.kill(srv.pid, signal.SIGHUP)
    srv.wait_log(re.escape("reload failed, the old config stays"), timeout=DEADLINE)
    assert "fastchat.toml:1: setting 'nicklen'" in srv.log_text()
    for client in clients:
        assert motd(client) == ["before"]
        client.send("PING :alive")
        client.expect(" PONG .* :alive")
    # the supervisor goes on reloading: a good file afterwards is taken
    write(folder, "after", 12, "OldNet")
    os.kill(srv.pid, signal.SIGHUP)
    for client in clients:
        wait_for_motd(client, "after")


def test_sighup_lowers_the_whowas_bound_everywhere(
    setup: tuple[process.ServerProcess, Path, list[IRCClient]],
) -> None:
    """``whowas_size`` is reloadable: every worker (and the hub) keeps only the newest entries
    at once, so every worker answers WHOWAS alike."""
    srv, folder, clients = setup
    for i in range(3):
        with IRCClient(srv.host, srv.port, f"was{i}") as gone:
            gone.send("QUIT")
            gone.wait_closed()
    for client in clients:
        client.send("WHOWAS was0")
        client.expect(r" 314 \S+ was0 ")
    write(folder, "before", 12, "OldNet", whowas_size=1)
    os.kill(srv.pid, signal.SIGHUP)
    for client in clients:
        deadline = time.monotonic() + DEADLINE
        while True:
            client.send("WHOWAS was1")
            if client.expect(r" (314|406) \S+ was1 ").group(1) == "406":
                break
            assert time.monotonic() < deadline, "the WHOWAS bound never went down"
        client.send("WHOWAS was2")
        client.expect(r" 314 \S+ was2 ")


def test_rehash_from_an_operator_reloads_every_worker_or_says_why_not(
    setup: tuple[process.ServerProcess, Path, list[IRCClient]],
) -> None:
    """Modern IRC REHASH: an operator with the rehash privilege gets 382 RPL_REHASHING and
    every worker takes the file; a file that cannot be used gets a notice naming its line,
    and the old config stays; without the privilege, 481."""
    _, folder, clients = setup
    oper, other = clients[0], clients[-1]
    other.send("REHASH")
    other.expect(r" 481 ")
    oper.send("OPER admin secret")
    oper.expect(r" 381 ")
    (folder / "fastchat.toml").write_text("nicklen = 'long'\n", encoding="utf-8")
    oper.send("REHASH")
    oper.expect(r"NOTICE \S+ :REHASH failed, the old config stays: .*fastchat.toml:1: setting")
    write(folder, "after", 12, "NewNet")
    oper.send("REHASH")
    oper.expect(rf" 382 \S+ {folder / 'fastchat.toml'} :Rehashing")
    oper.expect(r"NOTICE \S+ :These settings change only at a restart: network")
    for client in clients:
        wait_for_motd(client, "after")
