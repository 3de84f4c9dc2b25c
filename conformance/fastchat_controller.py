"""irctest controller for fastchat: starts ``fastchat serve`` for one test and stops it.

irctest (https://github.com/progval/irctest) imports this module by name
(``pytest --controller fastchat_controller``, with this folder on ``PYTHONPATH``) and calls
``get_irctest_controller_class()``. For every test it asks the controller to ``run`` a server on
a port it picked, connects its clients, and ``kill``s the server at the end.

What it owns: the command line of the server under test (flags chosen so irctest's usual
expectations hold: no autojoin, no flood control, 32-character nicks, client lines up to 2 KB
as Ergo's controller allows, the server description every controller gives), its config file (in a temporary folder of its own, with the operator
irctest logs in as: ``operuser`` with ``operpassword``, holding every privilege), and waiting
for the server to be ready. What it must never do: change how the server behaves beyond its public flags and config file, or
claim a feature fastchat lacks: such tests are skipped with ``NotImplementedByController``
and counted as skips, not passes.

TLS (``ssl=True``): irctest's clients then connect to the port it gave with TLS, as to Ergo's
TLS-only listener. fastchat's TLS is a listener of its own beside the plain one: the given
port becomes ``--tls-port`` (with the self-signed certificate fastchat makes in the test's
data directory: irctest's clients do not verify it), and the plain listener takes a free
port of its own.

WebSocket (``websocket_hostname``/``websocket_port``, irctest's websocket.py): passed as
``--web-host``/``--web-port``.

Environment:
  ``FASTCHAT_BIN``      the ``fastchat`` executable (``make conformance`` sets the project's
                        ``.venv/bin/fastchat``); default: ``fastchat`` on ``PATH``.
  ``FASTCHAT_WORKERS``  ``--workers`` for every server (default 1).
  ``IRCTEST_DEBUG_LOGS`` irctest's own switch: ``1`` streams the server's stderr into the
                        test output (``--log-level DEBUG`` too).
"""

from __future__ import annotations

import atexit
import functools
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from irctest.basecontrollers import BaseServerController, ProcessStopped

READY_PREFIX = b"fastchat ready on "
# Generous: on a loaded 2-core machine forking a supervisor, a hub and 4 workers can take
# a few seconds; a server that is not ready by then is a failure worth seeing.
READY_TIMEOUT = 30.0

# Limits raised above fastchat's defaults where irctest expects more (ngIRCd's controller
# sets MaxNickLength = 32 for the same reason); every other limit keeps its default.
NICKLEN = 32
# The longest client line without its tags (``--max-line``): Ergo's irctest setting.
MAX_LINE = 2048
# The description every irctest controller gives its server (LINKS expects it in RPL_LINKS).
SERVER_INFO = "test server"

# The operator account irctest's tests log in with (BaseServerTestCase: OPER operuser
# operpassword), with every privilege fastchat has (config.PRIVILEGES; this venv cannot
# import fastchat, tests/unit/test_configfile.py checks that the two lists agree).
OPER_NAME = "operuser"
OPER_PASSWORD = "operpassword"
OPER_PRIVILEGES = ("accounts", "chghost", "kill", "kline", "override", "rehash", "see", "wallops")
CONFIG_TEMPLATE = """\
# Written by conformance/fastchat_controller.py for one irctest server.
[[oper]]
name = "{name}"
password = "{password_hash}"
privileges = [{privileges}]
"""


def fastchat_bin() -> str:
    """The ``fastchat`` executable under test: ``$FASTCHAT_BIN``, else the one on ``PATH``."""
    explicit = os.environ.get("FASTCHAT_BIN")
    if explicit:
        return explicit
    found = shutil.which("fastchat")
    if found is None:
        raise RuntimeError("fastchat not found: set FASTCHAT_BIN or put fastchat on PATH")
    return found


@functools.cache
def oper_password_hash() -> str:
    """The hash of :data:`OPER_PASSWORD`, made once per process by ``fastchat mkpasswd``
    (scrypt costs tens of milliseconds, and this venv cannot import fastchat)."""
    out = subprocess.run(
        [fastchat_bin(), "mkpasswd", "--stdin"],
        input=OPER_PASSWORD.encode() + b"\n",
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().strip()


def config_text() -> str:
    """The config file of every server under test: one operator, nothing else (the settings
    stay flags, as the README documents them)."""
    return CONFIG_TEMPLATE.format(
        name=OPER_NAME,
        password_hash=oper_password_hash(),
        privileges=", ".join(f'"{p}"' for p in OPER_PRIVILEGES),
    )


def worker_count() -> int:
    """``--workers`` for the servers under test: ``$FASTCHAT_WORKERS``, default 1."""
    return int(os.environ.get("FASTCHAT_WORKERS", "1"))


class FastchatController(BaseServerController):
    """Runs ``fastchat serve`` in its own session, so ``kill_proc`` (which signals the whole
    process group) stops the supervisor, the hub and every worker together."""

    software_name = "fastchat"
    # irctest's base class declares a plain set, so no ClassVar here; nothing mutates it
    supported_sasl_mechanisms: set[str] = {"PLAIN", "EXTERNAL", "SCRAM-SHA-256"}  # noqa: RUF012
    supports_sts = True  # --sts-duration (caps/sts.py)
    extban_mute_char = "m"  # +b m:mask (network/access.py; ISUPPORT EXTBAN=,am)

    def wait_for_services(self) -> None:
        """Nothing to wait for: fastchat's accounts start with it (as Ergo's do)."""

    def registerUser(
        self,
        case: Any,
        username: str,
        password: str | None = None,
    ) -> None:
        """Create the account ``username`` as a user would: IRCv3 draft/account-registration
        ``REGISTER`` on a connection of its own (fastchat's accounts are built in)."""
        assert password
        client = case.addClient(show_io=False)
        case.sendLine(client, "CAP LS 302")
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        case.sendLine(client, "CAP END")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        case.sendLine(client, f"REGISTER * * {password}")
        while (msg := case.getMessage(client)).command not in ("REGISTER", "FAIL", "417"):
            pass  # (a password too long for one line gets 417 ERR_INPUTTOOLONG)
        assert msg.command == "REGISTER" and msg.params[:2] == ["SUCCESS", username], msg
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._stdout_lines: queue.Queue[bytes] = queue.Queue()
        self._config_dir: Path | None = None

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None,
        websocket_port: int | None,
    ) -> None:
        _stop_unfinished()
        _unfinished.append(self)  # before any skip: kill() also frees irctest's ports
        # run_services: fastchat's accounts are built in (REGISTER, SASL): nothing to start
        assert self.proc is None
        self.hostname = hostname
        self.port = port
        self.port_open = False
        self._config_dir = Path(tempfile.mkdtemp(prefix="fastchat-irctest-"))
        config_file = self._config_dir / "fastchat.toml"
        config_file.write_text(config_text(), encoding="utf-8")

        # The replay of a channel's last lines on JOIN (--history-replay) keeps its default:
        # no test in passing.txt expects it absent, at 1 worker or 4 (checked when it came).
        # Should one, ``--history-replay 0`` is what Ergo's own controller amounts to: its
        # config (irctest/controllers/ergo.py, BASE_CONFIG["history"]) leaves out
        # ``autoreplay-on-join``, which is then Go's zero value, 0 (its default.yaml's too).
        command = [
            fastchat_bin(),
            "serve",
            "--host",
            hostname,
            "--port",
            str(_free_port(hostname) if ssl else port),
            "--workers",
            str(worker_count()),
            "--server-name",
            "My.Little.Server",
            "--autojoin",
            "",
            "--no-flood-control",
            "--nicklen",
            str(NICKLEN),
            "--password-min-length",
            "1",  # irctest's accounts use passwords as short as "bar"
            # lines up to 2 KB without their tags, as Ergo's controller configures Ergo
            # (irctest/controllers/ergo.py, BASE_CONFIG limits.linelen.rest): irctest
            # registers accounts with passwords too long for a 512-byte REGISTER (sasl.py,
            # testPlainLarge800); what the server sends stays within 512 bytes
            "--max-line",
            str(MAX_LINE),
            "--server-info",
            SERVER_INFO,
            "--config",
            str(config_file),
            # accounts (and history) of this test only, gone with its folder
            "--data-dir",
            str(self._config_dir / "data"),
        ]
        if ssl:
            command += ["--tls-port", str(port)]
        if password is not None:
            command += ["--password", password]
        if websocket_port is not None:  # IRCv3 websocket (irctest's websocket.py)
            command += ["--web-port", str(websocket_port)]
            if websocket_hostname is not None:
                command += ["--web-host", websocket_hostname]
        # what a test asks of the server's account registration (draft/account-registration)
        if self.test_config.account_registration_before_connect:
            command.append("--register-before-connect")
        if self.test_config.account_registration_requires_email:
            # and verified, as Ergo's controller configures it for these tests (their
            # classes are RegisterEmailVerified*): no SMTP server, so a code would be logged
            command += ["--register-requires-email", "--register-verify"]
        if self.debug_mode:
            command += ["--log-level", "DEBUG"]

        # PYTHONDONTWRITEBYTECODE keeps pytest from writing into the (read-only) irctest
        # tree; the server under test should still cache its own bytecode, or every one of
        # the hundreds of servers a run starts would compile fastchat again.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

        faketime_command: list[str] = []
        if faketime and shutil.which("faketime"):
            # libfaketime moves the server's wall clock (list.py's creation/topic-time tests);
            # DONT_FAKE_MONOTONIC keeps fastchat's timeouts (monotonic) in real time.
            faketime_command = ["faketime", "-f", faketime]
            env["DONT_FAKE_MONOTONIC"] = "1"
            self.faketime_enabled = True

        # stdout carries only the ready line; stderr (logs) goes where irctest sends output
        # (nowhere, or the test log with IRCTEST_DEBUG_LOGS=1). execute() starts a new session.
        self.proc = self.execute([*faketime_command, *command], stdout=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        threading.Thread(
            target=self._read_stdout,
            args=(self.proc.stdout,),
            name="fastchat_stdout",
            daemon=True,
        ).start()

    def kill(self) -> None:
        """Stop the server (the whole process group), free the ports irctest gave it and
        remove its config folder. Safe to call twice."""
        super().kill()
        if self._config_dir is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None
        if self in _unfinished:
            _unfinished.remove(self)

    def _read_stdout(self, stdout: IO[bytes]) -> None:
        """Hand every stdout line to ``wait_for_port``; keep draining so the pipe never fills."""
        for line in stdout:
            self._stdout_lines.put(line)

    def wait_for_port(self) -> None:
        """Wait for ``fastchat ready on HOST:PORT`` (printed once every worker serves)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.port_open:
            self.check_is_alive()
            if time.monotonic() > deadline:
                raise ProcessStopped(f"fastchat not ready after {READY_TIMEOUT:.0f}s")
            try:
                line = self._stdout_lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if line.startswith(READY_PREFIX):
                self.port_open = True


def _free_port(host: str) -> int:
    """A port nobody listens on now (the plain listener's, when irctest's port is TLS)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Controllers whose test may not reach tearDown. irctest skips some tests from setUp, after
# the server started (BotModeTestCase raises IsupportTokenNotSupported there), and pytest then
# skips teardown: their servers would run on, orphaned, after the test run. Tests run one at a
# time in a process (pytest-xdist gives each its own), so when a server starts, every earlier
# one belongs to a finished test; what is left at exit is stopped too.
_unfinished: list[FastchatController] = []


def _stop_unfinished() -> None:
    while _unfinished:
        _unfinished.pop().kill()


atexit.register(_stop_unfinished)


def get_irctest_controller_class() -> type[FastchatController]:
    return FastchatController
