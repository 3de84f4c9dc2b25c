"""Fixtures for the client's end-to-end tests: a real server, and a raw-socket IRC peer.

The server is the real fastchat server (``fastchat.server.runtime.process.running``) and, when the
binary is installed, ngircd as a standard IRC server: the client must work with any server.
Every process started here is stopped in a ``finally``, and every port is a free one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fastchat.irc.linebuffer import LineBuffer
from fastchat.irc.message import Message, parse


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _ngircd() -> Iterator[Server]:
    binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
    if not os.path.exists(binary):
        pytest.skip("ngircd is not installed (apt-get install ngircd)")
    with tempfile.TemporaryDirectory() as tmp:
        # A free port found by binding port 0: there is a small window in which another
        # process could take it; the readiness wait below would then fail loudly.
        port = _free_port()
        conf = Path(tmp, "ngircd.conf")
        conf.write_text(
            "[Global]\nName = irc.test.local\nInfo = fastchat test\nListen = 127.0.0.1\n"
            f"Ports = {port}\nServerUID = {os.getuid() or 65534}\nServerGID = {os.getgid() or 65534}\n"
            "[Limits]\nMaxNickLength = 30\n"
            "[Options]\nDNS = no\nIdent = no\nPAM = no\n"
        )
        proc = subprocess.Popen(
            [binary, "-n", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("ngircd did not start") from None
                    time.sleep(0.05)
            yield Server("ngircd", "127.0.0.1", port)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _fastchat() -> Iterator[Server]:
    from fastchat.server.runtime.process import running

    with running(workers=1) as server:
        yield Server("fastchat", server.host, server.port)


@pytest.fixture(params=["fastchat", "ngircd"])
def irc_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    starter = _fastchat if request.param == "fastchat" else _ngircd
    with starter() as server:
        yield server


class RawClient:
    """A bare IRC peer on a socket, for transcript-style checks of what the client sent."""

    def __init__(self, server: Server, nick: str) -> None:
        self.nick = nick
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self._buf = LineBuffer(16384)
        self._pending: list[bytes] = []
        self.send(f"NICK {nick}", f"USER {nick} 0 * :raw test peer")
        self.expect(lambda m: m.command in (b"376", b"422"))

    def send(self, *lines: str) -> None:
        self.sock.sendall(b"".join(x.encode() + b"\r\n" for x in lines))

    def expect(self, match: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        """Read until a message for which ``match(msg)`` is true (answering PINGs)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                msg = parse(self._pending.pop(0))
                if msg.command == b"PING":
                    self.send("PONG :" + msg.param(0).decode())
                if match(msg):
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.nick}: no matching message in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"{self.nick}: server closed the connection")
            self._pending += self._buf.feed(data)

    def sync(self) -> None:
        """Wait until the server has processed everything sent so far (PING/PONG)."""
        self.send("PING :sync-token")
        self.expect(lambda m: m.command == b"PONG" and m.params[-1:] == (b"sync-token",))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("QUIT :done")
        self.sock.close()


@pytest.fixture
def raw_peer(irc_server: Server) -> Iterator[RawClient]:
    """A raw client named ``rawpeer`` that has joined #lobby."""
    peer = RawClient(irc_server, "rawpeer")
    try:
        peer.send("JOIN #lobby")
        peer.sync()
        yield peer
    finally:
        peer.close()
