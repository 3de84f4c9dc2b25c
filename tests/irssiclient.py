"""A real irssi for interoperability tests: Debian's ``irssi`` in a fresh home directory, on a
pseudo-terminal of its own, typed into as a user types and read back through its log.

irssi has no headless mode, so it runs on a pty: what a test types goes to the pty, and what
irssi draws is read and thrown away (a pty nobody reads fills up and blocks irssi). Its
``startup`` file opens a log of every level of every window, which irssi writes at once; that
log is what a test reads. Tests marked ``requires_irssi`` are skipped where it is missing.
Every wait is for a condition with a deadline; ``stop`` quits irssi or kills its process
group, and ``started`` does so however the block ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IRSSI = "irssi"
TIMEOUT = 20.0
_STAMP = re.compile(r"^\d\d:\d\d ")  # irssi's default timestamp, before every line

requires_irssi = pytest.mark.skipif(
    shutil.which(IRSSI) is None,
    reason=f"{IRSSI} is not installed (apt-get install {IRSSI})",
)


class Irssi:
    """irssi in ``home``, ready to be typed into once its log is open; see the module
    docstring."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log_path = home / "irssi.log"
        home.mkdir(parents=True, exist_ok=True)
        startup = [
            "/set paste_detect_time 0",  # several lines typed at once are no paste to confirm
            "/set cmd_queue_speed 0",  # no anti-flood queue (2.2 s between commands)
            f"/log open {self.log_path} ALL",
        ]
        (home / "startup").write_text("".join(f"{command}\n" for command in startup))
        self._pty, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        try:
            self.proc = subprocess.Popen(
                [IRSSI, "--home", str(home)],
                stdin=terminal,
                stdout=terminal,
                stderr=terminal,
                env=dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm"),
                start_new_session=True,  # its own process group, killed as one
            )
        finally:
            os.close(terminal)
        self._screen = threading.Thread(target=self._discard_screen, daemon=True)
        self._screen.start()
        try:
            self.wait_log(lambda line: "Log file" in line and "opened" in line, "its log")
        except BaseException:
            self.stop()
            raise

    def _discard_screen(self) -> None:
        # Until irssi is gone: then reading the pty fails (EIO) or ends.
        with contextlib.suppress(OSError):
            while os.read(self._pty, 65536):
                pass

    def type(self, line: str) -> None:
        """Type ``line`` (text or a /command) and Enter, into the current window."""
        os.write(self._pty, line.encode() + b"\r")

    def log(self) -> list[str]:
        """Every line irssi has shown, in every window, without its timestamp."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [_STAMP.sub("", row) for row in text.splitlines() if not row.startswith("--- ")]

    def wait_log(self, match: Callable[[str], bool], what: str) -> str:
        """The first line of the log for which ``match`` holds."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for line in self.log():
                if match(line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError(f"irssi exited ({self.proc.returncode}): {self.dump()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"irssi never showed {what}: {self.dump()}")
            time.sleep(0.05)  # a file has nothing to wait on; the deadline bounds this

    def dump(self) -> str:
        """The log, for a failure message."""
        return "\n" + "\n".join(self.log())

    def stop(self) -> None:
        """Quit, or kill the process group if it does not go within 5 s; safe twice."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.type("/quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._screen.join(5)
        if not self._screen.is_alive():  # never close an fd a thread may still read
            with contextlib.suppress(OSError):
                os.close(self._pty)


@contextlib.contextmanager
def started(home: Path) -> Iterator[Irssi]:
    """``with started(home) as irssi:`` an irssi stopped however the block ends."""
    irssi = Irssi(home)
    try:
        yield irssi
    finally:
        irssi.stop()
