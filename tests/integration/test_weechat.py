"""Interoperability with a real client: a headless WeeChat against fastchat at one and four
workers, beside a raw-socket peer.

WeeChat runs as ``weechat-headless`` (Debian's package; ``make test`` installs it when it can,
and this test is skipped where it is missing) in a fresh home directory, with its default
``irc.server_default.capabilities = "*"``: it requests every capability it supports among those
the server offers. Its fifo plugin drives it (lines typed into a buffer, commands); its logger
(flushed at once) is what the test reads back: the capability negotiation it reports in the
server buffer, and each buffer's lines. The raw peer checks the other direction on the wire.

Every wait is for a condition with a deadline; WeeChat is stopped (its process group killed if
need be) whatever happens, and the server fixture stops the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime.process import ServerProcess
from tests.ircclient import IRCClient

WEECHAT = "weechat-headless"
#: What WeeChat 3.8 supports (``/help cap``); 4.x adds more. Each one the server offers must
#: be requested and acknowledged.
WEECHAT_CAPS = frozenset(
    {
        "account-notify",
        "away-notify",
        "cap-notify",
        "chghost",
        "extended-join",
        "invite-notify",
        "message-tags",
        "multi-prefix",
        "server-time",
        "setname",
        "userhost-in-names",
    }
)
#: What fastchat offered when this test was written, which WeeChat must therefore enable.
EXPECTED = frozenset({"cap-notify", "multi-prefix", "server-time", "userhost-in-names"})
TIMEOUT = 20.0
Connect = Callable[..., IRCClient]


class WeeChat:
    """A headless WeeChat connected to ``server`` as ``nick``; see the module docstring."""

    def __init__(self, home: Path, server: ServerProcess, nick: str) -> None:
        self.home = home
        self.logs = home / "logs"
        self.fifo = home / "fifo"
        self.output = home / "stdout.txt"
        commands = [
            f"/set logger.file.path {self.logs}",
            "/set logger.file.flush_delay 0",  # lines reach the files at once
            f"/set fifo.file.path {self.fifo}",
            "/fifo enable",
            f"/server add fastchat {server.host}/{server.port} -notls",
            f"/set irc.server.fastchat.nicks {nick}",
            "/set irc.server.fastchat.autoreconnect off",
            # No anti-flood queue (2 s between lines by default): WeeChat 3.x's options, and
            # 4.x's one (the other version reports the unknown names in its core buffer).
            "/set irc.server.fastchat.anti_flood_prio_high 0",
            "/set irc.server.fastchat.anti_flood_prio_low 0",
            "/set irc.server.fastchat.anti_flood 0",
            "/connect fastchat",
        ]
        argv = [WEECHAT, "--dir", str(home), "--no-script"]
        for command in commands:
            argv += ["--run-command", command]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="dumb"),
                start_new_session=True,  # its own process group, killed as one
            )

    def log(self, buffer: str) -> list[tuple[str, str]]:
        """The (prefix, message) lines of a buffer's log, e.g. ``irc.fastchat.#lobby``."""
        path = self.logs / f"{buffer.lower()}.weechatlog"
        if not path.exists():
            return []
        rows = []
        for row in path.read_text(encoding="utf-8", errors="replace").splitlines():
            _, _, rest = row.partition("\t")  # the date comes first
            prefix, _, message = rest.partition("\t")
            rows.append((prefix, message))
        return rows

    def wait_log(
        self, buffer: str, match: Callable[[str, str], bool], what: str
    ) -> tuple[str, str]:
        """The first line of ``buffer``'s log for which ``match(prefix, message)`` holds."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for prefix, message in self.log(buffer):
                if match(prefix, message):
                    return prefix, message
            if self.proc.poll() is not None:
                raise AssertionError(f"WeeChat exited ({self.proc.returncode}): {self.dump()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"WeeChat's {buffer} never showed {what}: {self.dump()}")
            time.sleep(0.05)  # a file has nothing to wait on; the deadline bounds this

    def send(self, buffer: str, text: str) -> None:
        """Type ``text`` (a line or a /command) into ``buffer``, through the fifo plugin."""
        deadline = time.monotonic() + TIMEOUT
        while not self._fifo_ready():
            assert self.proc.poll() is None, f"WeeChat exited: {self.dump()}"
            assert time.monotonic() < deadline, f"no fifo: {self.dump()}"
            time.sleep(0.05)
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, f"{buffer} *{text}\n".encode())
        finally:
            os.close(fd)

    def _fifo_ready(self) -> bool:
        return self.fifo.exists() and stat.S_ISFIFO(self.fifo.stat().st_mode)

    def errors(self) -> list[str]:
        """Every line WeeChat logged with its error prefix (``=!=``) in an IRC buffer (the
        core buffer has the option names one WeeChat version does not know)."""
        found = []
        for path in sorted(self.logs.glob("irc.*.weechatlog")):
            for row in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if "\t=!=\t" in row:
                    found.append(f"{path.name}: {row}")
        return found

    def dump(self) -> str:
        """The logs, for a failure message."""
        parts = []
        for path in sorted(self.logs.glob("*.weechatlog")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n" + "\n".join(parts)

    def stop(self) -> None:
        """Quit, or kill the process group if it does not go within 5 s; safe twice."""
        if self.proc.poll() is None:
            if self._fifo_ready():
                with contextlib.suppress(OSError):
                    self.send("core.weechat", "/quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def weechat_home(tmp_path: Path) -> Path:
    if shutil.which(WEECHAT) is None:
        pytest.skip(f"{WEECHAT} is not installed (apt-get install {WEECHAT}; make test does)")
    return tmp_path


@pytest.fixture
def weechat(weechat_home: Path, server: ServerProcess) -> Iterator[WeeChat]:
    client = WeeChat(weechat_home, server, "weebot")
    try:
        yield client
    finally:
        client.stop()


def _capabilities(weechat: WeeChat, what: str) -> set[str]:
    """WeeChat's own report in the server buffer: ``irc: client capability, WHAT: a b c``."""
    head = f"irc: client capability, {what}: "
    _, line = weechat.wait_log("irc.server.fastchat", lambda p, m: m.startswith(head), head)
    return {name.partition("=")[0] for name in line[len(head) :].split()}


def _said(prefix: str, nick: str) -> bool:
    """A message line's prefix: the nick, maybe after its channel prefix (``@weebot``)."""
    return prefix.lstrip("@+") == nick


def test_weechat_negotiates_and_chats(
    server: ServerProcess, connect: Connect, weechat: WeeChat
) -> None:
    """WeeChat connects with its default capabilities, joins #lobby, and chats both ways with
    a raw peer (in the channel and in private), changes nick, and quits: each line shown once
    with the right text, and no error in any of its buffers."""
    raw = connect("rawpeer")
    raw.sync()

    offered = _capabilities(weechat, "server supports")
    requested = _capabilities(weechat, "requesting")
    enabled = _capabilities(weechat, "enabled")
    assert WEECHAT_CAPS & offered <= requested, "WeeChat asked for less than its default set"
    assert requested <= offered
    assert enabled == requested, "the server refused (NAK) some of what WeeChat asked for"
    assert enabled >= EXPECTED

    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: p == "-->" and m.startswith("weebot "), "its JOIN"
    )
    raw.expect(r"^:weebot!\S+ JOIN :?#lobby$")

    # raw -> WeeChat, in the channel: shown once, exactly as sent
    raw.send("PRIVMSG #lobby :héllo weechat ✓ from raw")
    weechat.wait_log(
        "irc.fastchat.#lobby",
        lambda p, m: _said(p, "rawpeer") and m == "héllo weechat ✓ from raw",
        "the raw peer's line",
    )
    # WeeChat -> raw, in the channel
    weechat.send("irc.fastchat.#lobby", "hi raw, ünïcode from weechat")
    raw.expect(r"^(@\S+ )?:weebot!\S+ PRIVMSG #lobby :hi raw, ünïcode from weechat$")
    # private messages, both ways
    raw.send("PRIVMSG weebot :a private word")
    weechat.wait_log(
        "irc.fastchat.rawpeer",
        lambda p, m: p == "rawpeer" and m == "a private word",
        "the private message",
    )
    weechat.send("irc.server.fastchat", "/msg rawpeer private answer")
    raw.expect(r"^:weebot!\S+ PRIVMSG rawpeer :private answer$")
    # WHOIS, then a nick change the raw peer sees
    weechat.send("irc.server.fastchat", "/whois rawpeer")
    weechat.wait_log(
        "irc.server.fastchat", lambda p, m: "[rawpeer]" in m and "End of" in m, "WHOIS's end"
    )
    weechat.send("irc.server.fastchat", "/nick weebot2")
    raw.expect(r"^:weebot!\S+ NICK :?weebot2$")
    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: "weebot2" in m and "now known" in m, "the nick change"
    )

    lobby = weechat.log("irc.fastchat.#lobby")
    theirs = [row for row in lobby if row[1] == "héllo weechat ✓ from raw"]
    ours = [row for row in lobby if row[1] == "hi raw, ünïcode from weechat"]
    assert len(theirs) == 1 and _said(theirs[0][0], "rawpeer"), lobby
    assert len(ours) == 1 and _said(ours[0][0], "weebot"), lobby  # no duplicate, echo or not
    assert weechat.errors() == []

    weechat.send("irc.server.fastchat", "/quit bye from weechat")
    raw.expect(r"^:weebot2!\S+ QUIT :(Quit: )?bye from weechat$")
    weechat.stop()
    assert weechat.errors() == []
