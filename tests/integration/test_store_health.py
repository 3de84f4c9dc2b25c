"""The store failing for real, at one worker and at four (issue 12: "A full disk or a locked
database file is logged and reported to operators; clients keep chatting (history marked as
unavailable), nothing crashes, and writing resumes when it can").

Two honest failures of the file the server writes: another SQLite connection holding the
write lock (``BEGIN EXCLUSIVE``: "database is locked"), and a disk that is full (the data
directory on a 1 MiB tmpfs that a filler file fills up: "database or disk is full"; mounting
needs root, else that test is skipped). Each time: two IRC operators (on two workers when
there are several) get the server notice of the failure, the channel keeps chatting,
CHATHISTORY answers ``FAIL ... MESSAGE_ERROR``, STATS S says so, the log says so; once the lock
is released (the filler removed), the operators get the notice of the recovery and the
history holds every message, those sent meanwhile included. Synchronised by the lines
awaited (PING/PONG, each ``expect`` with a deadline), never by sleeping.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.passwords import hash_password
from fastchat.server.runtime import process
from fastchat.server.store import db
from tests.ircclient import IRCClient

CONFIG = """\
autojoin = ""
flood_control = false

[[oper]]
name = "admin"
password = "{password}"
hosts = ["*@127.0.0.1"]
privileges = ["kill"]
"""
CAPS = "draft/chathistory batch server-time message-tags"
UNAVAILABLE = r"FAIL CHATHISTORY MESSAGE_ERROR LATEST #h :History is temporarily unavailable$"


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etc") / "fastchat.toml"
    path.write_text(CONFIG.format(password=hash_password(b"secret", n=16)), encoding="utf-8")
    return path


class Network:
    """The clients of one test: two operators, two members of ``#h``; all closed at the end."""

    def __init__(self, server: process.ServerProcess) -> None:
        self.server = server
        self.clients: list[IRCClient] = []
        self.op = self.oper("op")
        self.op2 = self.oper("op2", elsewhere_than=self.op)
        self.alice = self.member("alice")
        self.bob = self.member("bob")

    def connect(self, nick: str) -> IRCClient:
        client = IRCClient(self.server.host, self.server.port, nick)
        self.clients.append(client)
        return client

    def oper(self, nick: str, elsewhere_than: IRCClient | None = None) -> IRCClient:
        """An operator; on another worker than ``elsewhere_than`` when there are several
        (the kernel spreads connections: connect until one lands elsewhere)."""
        server = self.server
        avoid = None
        if elsewhere_than is not None and server.workers > 1:
            avoid = server.worker_of(elsewhere_than.sock.getsockname()[1])
        for attempt in range(64):
            client = self.connect(f"{nick}{attempt}" if attempt else nick)
            if avoid is None or server.worker_of(client.sock.getsockname()[1]) != avoid:
                break
            client.send("QUIT")
            client.wait_closed()
        else:
            raise AssertionError("every connection landed on the first operator's worker")
        client.send("OPER admin secret")
        client.expect(rf" 381 {client.nick} :")
        client.sync()
        return client

    def member(self, nick: str) -> IRCClient:
        c = IRCClient(self.server.host, self.server.port, register=False)
        self.clients.append(c)
        c.nick = nick
        c.send("CAP REQ :" + CAPS)
        c.expect(r"CAP \* ACK")
        c.send(f"NICK {nick}")
        c.send(f"USER {nick} 0 * :{nick}")
        c.send("CAP END")
        c.expect(r" 376 | 422 ")
        c.send("JOIN #h")
        c.expect(r"JOIN #h")
        c.sync()
        return c

    def chat(self, text: str) -> None:
        """alice says ``text`` in #h; bob receives it (the chat goes on, whatever the store)."""
        self.alice.send(f"PRIVMSG #h :{text}")
        self.bob.expect(rf" PRIVMSG #h :{re.escape(text)}$")

    def history(self) -> list[str]:
        """The texts CHATHISTORY LATEST gives alice."""
        self.alice.send("CHATHISTORY LATEST #h * 10")
        self.alice.expect(r"BATCH \+\S+ chathistory ")
        return [
            line.rsplit(" :", 1)[1]
            for line in self.alice.expect_until(r"BATCH -")
            if " PRIVMSG " in line
        ]

    def operators_told(self, pattern: str) -> None:
        """Both operators get the server notice matching ``pattern``, once."""
        for op in (self.op, self.op2):
            op.expect(rf"^:fastchat\.local NOTICE {op.nick} :\*\*\* {pattern}")
            assert not [line for line in op.sync() if " NOTICE " in line], "told twice"

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextlib.contextmanager
def network(server: process.ServerProcess) -> Iterator[Network]:
    net = Network(server)
    try:
        yield net
    finally:
        net.close()


def fail_and_recover(
    server: process.ServerProcess,
    reason: str,
    fail: Callable[[], None],
    recover: Callable[[], None],
) -> None:
    """The transcript of both tests: the store works; ``fail()`` breaks it; it must fail,
    be told and logged, the chat go on; ``recover()`` mends it; writing must resume."""
    with network(server) as net:
        net.chat("before")
        assert net.history() == ["before"]
        fail()
        net.chat("during")  # delivered at once: the members never wait for the store
        net.operators_told(
            rf"store: writing history failed: {reason}; retrying; \d+ writes queued$"
        )
        server.wait_log(re.escape(f"store: writing history failed: {reason}"))
        net.chat("still chatting")
        net.alice.send("CHATHISTORY LATEST #h * 10")
        net.alice.expect(UNAVAILABLE)
        op = net.op.nick
        net.op.send("STATS S")
        stats = net.op.replies()
        assert re.fullmatch(
            rf":fastchat\.local 249 {op} S :store: failing; \d+ writes queued, \d+ committed, "
            r"0 dropped",
            stats[0],
        ), stats
        assert stats[1] == f":fastchat.local 249 {op} S :store: last error: {reason}"
        recover()
        net.operators_told(
            r"store: writing works again; 0 history writes were dropped while it failed$"
        )
        net.chat("after")
        assert net.history() == ["before", "during", "still chatting", "after"]


def test_a_locked_file(workers: int, config_file: Path, tmp_path: Path) -> None:
    """Another connection holds the file's write lock (``BEGIN EXCLUSIVE``), then lets go."""
    args = ["--config", str(config_file), "--data-dir", str(tmp_path)]
    with process.running(args, workers=workers) as server:
        lock = sqlite3.connect(db.path_in(str(tmp_path)), isolation_level=None)
        try:
            fail_and_recover(
                server,
                "database is locked",
                lambda: lock.execute("BEGIN EXCLUSIVE"),
                lambda: lock.execute("ROLLBACK"),
            )
        finally:
            lock.close()  # (rolls back, if the test stopped in between)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that really fills up (unmounted at the end, the server gone)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: no small disk to fill up")
    if done.returncode != 0:
        pytest.skip(f"mounting a 1 MiB tmpfs (a disk to fill up) needs root: {done.stderr}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the disk has no room left (ENOSPC)."""
    with open(path, "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(bytes(65536))
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def test_a_full_disk(workers: int, config_file: Path, small_disk: Path) -> None:
    """The data directory's disk fills up (a filler file takes every free byte), then the
    filler goes."""
    args = ["--config", str(config_file), "--data-dir", str(small_disk)]
    filler = small_disk / "filler"
    with process.running(args, workers=workers) as server:
        fail_and_recover(
            server,
            "database or disk is full",
            lambda: fill(filler),
            lambda: os.remove(filler),
        )
