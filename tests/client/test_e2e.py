"""End to end: the real ``fastchat client`` against a real server, in a pseudo-terminal read by
a terminal emulator (pyte), and in plain line mode through pipes.

Each test types into the client, checks that a raw-socket peer received the line, has the
peer say something, and checks it appears on the emulated screen (or stdout). Waiting is
always for a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator

import pyte
import pytest

from fastchat.irc.message import Message
from tests.client.conftest import RawClient, Server

COLS, ROWS = 100, 30


class PtyClient:
    """``fastchat client`` running in a pty whose output feeds a pyte screen."""

    def __init__(self, server: Server, nick: str) -> None:
        self.master, self.slave = os.openpty()
        self._set_size(COLS, ROWS)
        self.original_modes = termios.tcgetattr(self.slave)
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw_output = bytearray()
        env = dict(os.environ, TERM="xterm", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        cmd = [sys.executable, "-m", "fastchat.cli", "client", server.host, str(server.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--nick", nick],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
        )

    def _set_size(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize(self, cols: int, rows: int) -> None:
        """Resize the pty and the emulator, and tell the client the way a terminal does."""
        self._set_size(cols, rows)
        self.screen.resize(rows, cols)
        self.proc.send_signal(signal.SIGWINCH)

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child side is closed
                return
            self.raw_output += data
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self.text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}:\n{self.text()}")
            self.pump(0.05)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_client(irc_server: Server, raw_peer: RawClient) -> Iterator[PtyClient]:
    client = PtyClient(irc_server, "ptyuser")
    try:
        yield client
    finally:
        client.close()


def _said(nick: bytes, text: bytes) -> Callable[[Message], bool]:
    def match(msg: Message) -> bool:
        return (
            msg.command == b"PRIVMSG"
            and (msg.source or b"").split(b"!")[0] == nick
            and msg.params[-1] == text
        )

    return match


def test_chat_in_a_terminal(pty_client: PtyClient, raw_peer: RawClient) -> None:
    """Type a line in the curses client; a raw peer gets it; the peer's reply appears."""
    client = pty_client
    raw_peer.expect(
        lambda m: m.command == b"JOIN" and m.source is not None and m.source.startswith(b"ptyuser!")
    )
    client.wait_for(lambda s: "ptyuser | 2:#lobby" in s, "the status line in #lobby")

    client.type("héllo from the pty ✓\r")
    raw_peer.expect(_said(b"ptyuser", "héllo from the pty ✓".encode()))

    raw_peer.send("PRIVMSG #lobby :hi back from raw, ünïcode")
    client.wait_for(lambda s: "<rawpeer> hi back from raw, ünïcode" in s, "the peer's line")

    raw_peer.send("PRIVMSG ptyuser :a private word")
    client.wait_for(lambda s: "act: 3!" in s, "activity in the new query window")
    client.type("\x1b3")  # Alt-3
    client.wait_for(lambda s: "<rawpeer> a private word" in s and "(query)" in s, "the query")
    client.type("reply in private\r")
    raw_peer.expect(
        lambda m: m.command == b"PRIVMSG" and m.params == (b"rawpeer", b"reply in private")
    )

    client.resize(60, 15)
    client.wait_for(lambda s: s.splitlines()[13].startswith(" 127.0.0.1"), "the status line moved")

    client.type("\x03")  # Ctrl-C quits
    raw_peer.expect(lambda m: m.command == b"QUIT" and (m.source or b"").startswith(b"ptyuser!"))
    assert client.proc.wait(5) == 0
    client.pump(0.2)
    assert b"\x1b[?1049l" in client.raw_output  # left the alternate screen
    assert termios.tcgetattr(client.slave) == client.original_modes  # echo, canonical mode back


def test_plain_mode_in_a_pipe(irc_server: Server, raw_peer: RawClient) -> None:
    """Not a TTY: lines in, lines out; end of input quits."""
    cmd = [sys.executable, "-m", "fastchat.cli", "client", irc_server.host, str(irc_server.port)]
    proc = subprocess.Popen(
        [*cmd, "--nick", "piper"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        raw_peer.expect(lambda m: m.command == b"JOIN" and (m.source or b"").startswith(b"piper!"))
        proc.stdin.write("piped hello ✓\n".encode())
        proc.stdin.flush()
        raw_peer.expect(_said(b"piper", "piped hello ✓".encode()))
        raw_peer.send("PRIVMSG #lobby :to the pipe")
        deadline = time.monotonic() + 10
        seen = b""
        while b"<rawpeer> to the pipe" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            if select.select([proc.stdout], [], [], 0.05)[0]:
                seen += os.read(proc.stdout.fileno(), 65536)
        # Our own line is shown once: the server's echo where it offers echo-message
        # (fastchat), the local echo where it does not (ngIRCd); it came before the reply.
        assert seen.count("<piper> piped hello ✓".encode()) == 1, seen.decode(errors="replace")
        (enabled,) = [x for x in seen.split(b"\n") if b"Capabilities enabled: " in x]
        caps = set(enabled.partition(b"Capabilities enabled: ")[2].split())
        if irc_server.name == "fastchat":
            assert caps >= {b"server-time", b"echo-message", b"multi-prefix"}
        else:  # ngIRCd offers multi-prefix only
            assert caps == {b"multi-prefix"}
        proc.stdin.close()
        raw_peer.expect(lambda m: m.command == b"QUIT" and (m.source or b"").startswith(b"piper!"))
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
