"""Start and stop a fastchat server as a child process: for tests, load tests and benchmarks.

Owns: launching ``fastchat serve`` on a free port, waiting for its readiness line, and making
sure the whole process tree is gone afterwards (even when the caller fails).
Must never: be used by the server itself.

The supervisor prints exactly one line ``fastchat ready on HOST:PORT (N workers, pid P)`` on
stdout once every worker is serving; this module waits for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psutil

READY_RE = re.compile(rb"fastchat ready on (\S+):(\d+) \((\d+) workers, pid (\d+)\)")
#: With --tls-port, printed just before the ready line
TLS_RE = re.compile(rb"fastchat TLS on (\S+):(\d+)")
#: With --web-port and --web-tls-port, likewise
WEB_RE = re.compile(rb"fastchat web on (\S+):(\d+)")
WEB_TLS_RE = re.compile(rb"fastchat web TLS on (\S+):(\d+)")


@dataclass
class ServerProcess:
    """A running server: its address, its supervisor process, and what it has printed."""

    host: str
    port: int
    workers: int
    proc: subprocess.Popen[bytes]
    output: list[bytes] = field(default_factory=list)
    # the data directory made for this server (a test's server keeps no accounts or history
    # beyond its life, and never shares them): removed when it stops
    own_data_dir: str | None = None
    tls_port: int = 0  # the TLS listener's port (0: none)
    web_port: int = 0  # the web listener's port (0: none)
    web_tls_port: int = 0  # the web TLS listener's port (0: none)
    # notified by the thread that reads the server's output, at each line it appends
    grown: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> list[psutil.Process]:
        """The supervisor and every live descendant."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (each names itself ``fastchat-workerN``)."""
        return [p.pid for p in self.tree()[1:] if _name(p).startswith("fastchat-worker")]

    def hub_pid(self) -> int | None:
        """PID of the hub (the sequencer process), when there are several workers."""
        return next((p.pid for p in self.tree()[1:] if _name(p) == "fastchat-hub"), None)

    def worker_of(self, local_port: int) -> int | None:
        """PID of the worker holding the client connection whose local port is ``local_port``."""
        for pid in self.worker_pids():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.raddr and c.raddr.port == local_port for c in conns):
                return pid
        return None

    def log_text(self) -> str:
        return b"".join(self.output).decode(errors="replace")

    def wait_log(
        self, pattern: str | re.Pattern[str], count: int = 1, since: int = 0, timeout: float = 10.0
    ) -> list[re.Match[str]]:
        """The matches of ``pattern`` in the log after its first ``since`` characters, once
        there are ``count``: woken by each line the server prints, never by polling.
        AssertionError with the log after ``timeout`` seconds."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self.grown:
            while len(found := list(regex.finditer(self.log_text()[since:]))) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{regex.pattern!r} x{count} not in the log:\n{self.log_text()}"
                self.grown.wait(left)
        return found

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the supervisor, wait, then SIGKILL whatever is left of the tree."""
        tree = self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.own_data_dir is not None:
            shutil.rmtree(self.own_data_dir, ignore_errors=True)
        return self.proc.returncode


def _name(p: psutil.Process) -> str:
    """The process's name; "" once it has exited (a zombie not reaped yet keeps its name,
    and counting it would let a test see a killed worker as alive)."""
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return ""
        return p.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def start(
    args: Sequence[str] = (),
    workers: int = 1,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    nofile: tuple[int, int] | None = None,
) -> ServerProcess:
    """Start ``fastchat serve --port 0`` with ``args`` and wait until it is ready; without
    ``--data-dir`` in ``args``, in a fresh temporary data directory of its own. ``nofile``:
    the (soft, hard) RLIMIT_NOFILE the server starts with (as ``ulimit -n`` would set it)."""
    own_data_dir = None
    if "--data-dir" not in args:
        own_data_dir = tempfile.mkdtemp(prefix="fastchat-data-")
        args = [*args, "--data-dir", own_data_dir]
    cmd = [
        sys.executable,
        "-m",
        "fastchat.cli",
        "serve",
        "--host",
        host,
        "--port",
        "0",
        "--workers",
        str(workers),
        *args,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    limit = None
    if nofile is not None:
        limit = functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE, nofile)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, preexec_fn=limit
    )
    assert proc.stdout is not None
    output: list[bytes] = []
    grown = threading.Condition()
    ready = threading.Event()
    found: list[re.Match[bytes]] = []
    early: list[bytes] = []  # what it printed before its ready line

    def pump() -> None:
        # Keep draining the server's output so it can never block on a full pipe.
        assert proc.stdout is not None
        for raw in proc.stdout:
            with grown:
                output.append(raw)
                grown.notify_all()
            if not found:
                early.append(raw)
            if not found and (m := READY_RE.search(raw)):
                found.append(m)
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        server = ServerProcess(host, 0, workers, proc, output, own_data_dir, grown=grown)
        server.stop()
        raise RuntimeError("fastchat did not become ready:\n" + server.log_text())
    m = found[0]

    def port_of(pattern: re.Pattern[bytes]) -> int:
        return next((int(p[2]) for raw in early if (p := pattern.search(raw))), 0)

    return ServerProcess(
        m[1].decode(),
        int(m[2]),
        int(m[3]),
        proc,
        output,
        own_data_dir,
        port_of(TLS_RE),
        port_of(WEB_RE),
        port_of(WEB_TLS_RE),
        grown,
    )


@contextlib.contextmanager
def running(args: Sequence[str] = (), workers: int = 1, **kw: object) -> Iterator[ServerProcess]:
    """``with running(workers=4) as server:`` a server that is stopped however the block ends."""
    server = start(args, workers, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
