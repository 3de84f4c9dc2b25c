"""A real WeeChat for interoperability tests: ``weechat-headless`` in a fresh home directory,
driven through its fifo plugin and read back through its logger.

WeeChat is Debian's ``weechat-headless`` (``make test`` installs it when it can; tests marked
``requires_weechat`` are skipped where it is missing). Its fifo plugin takes lines typed into a
buffer (text or /commands); its logger, flushed at once, is what a test reads back. Every wait
is for a condition with a deadline; ``stop`` quits WeeChat or kills its process group, and
``started`` does so however the block ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from fastchat.server.runtime.process import ServerProcess

WEECHAT = "weechat-headless"
TIMEOUT = 20.0

requires_weechat = pytest.mark.skipif(
    shutil.which(WEECHAT) is None,
    reason=f"{WEECHAT} is not installed (apt-get install {WEECHAT}; make test does)",
)


def server_commands(server: ServerProcess, nick: str, name: str = "fastchat") -> list[str]:
    """The commands that add ``server`` to WeeChat as ``name``, with ``nick``, no automatic
    reconnection and no anti-flood queue; connecting is left to the caller (``/connect``)."""
    return [
        f"/server add {name} {server.host}/{server.port} -notls",
        f"/set irc.server.{name}.nicks {nick}",
        f"/set irc.server.{name}.autoreconnect off",
        # No anti-flood queue (2 s between lines by default): WeeChat 3.x's options, and
        # 4.x's one (the other version reports the unknown names in its core buffer).
        f"/set irc.server.{name}.anti_flood_prio_high 0",
        f"/set irc.server.{name}.anti_flood_prio_low 0",
        f"/set irc.server.{name}.anti_flood 0",
    ]


class WeeChat:
    """A headless WeeChat in ``home`` that runs ``commands`` once it has started.

    ``--run-command`` evaluates what it is given (``${...}`` is replaced at once); a command
    that must reach WeeChat exactly as a user types it goes through :meth:`send` instead.
    """

    def __init__(self, home: Path, commands: Sequence[str]) -> None:
        self.home = home
        self.logs = home / "logs"
        self.fifo = home / "fifo"
        self.output = home / "stdout.txt"
        setup = [
            f"/set logger.file.path {self.logs}",
            "/set logger.file.flush_delay 0",  # lines reach the files at once
            f"/set fifo.file.path {self.fifo}",
            "/fifo enable",
        ]
        argv = [WEECHAT, "--dir", str(home), "--no-script"]
        for command in [*setup, *commands]:
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


@contextlib.contextmanager
def started(home: Path, commands: Sequence[str]) -> Iterator[WeeChat]:
    """``with started(home, commands) as weechat:`` a WeeChat stopped however the block ends."""
    weechat = WeeChat(home, commands)
    try:
        yield weechat
    finally:
        weechat.stop()
