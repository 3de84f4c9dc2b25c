"""The servers under test: fastchat and, for comparison, ngIRCd and InspIRCd from Debian.

Owns: generating each peer's configuration in a temporary directory (loopback only, a free
port, flood limits off, connection limits high, no DNS/ident lookups), starting the server in
the foreground, waiting until it accepts connections, exposing its process tree to psutil,
and killing every process it started however the caller's block ends.
Must never: listen on anything but 127.0.0.1, or leave a server running.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

#: Flags every benchmark and load test passes to fastchat: no flood control, no per-IP cap.
FASTCHAT_BENCH_ARGS = ("--no-flood-control", "--max-clients-per-ip", "0", "--autojoin", "")
#: Connections each peer must accept (the idle scenario opens 5,000).
MAX_CONNECTIONS = 12000

PEER_NAMES = ("ngircd", "inspircd")


class Unavailable(Exception):
    """The server cannot run here (binary missing, failed to start): skip it, say why."""


@dataclass
class Server:
    """A server ready for clients on ``host:port``."""

    name: str
    host: str
    port: int
    workers: int
    tree: Callable[[], list[psutil.Process]]
    version: str
    # fastchat's other listeners, when its flags opened them (0: none)
    tls_port: int = 0
    web_port: int = 0

    def port_for(self, transport: str) -> int:
        """The port a client of ``transport`` (``tcp``, ``tls``, ``ws``) connects to."""
        port = {"tcp": self.port, "tls": self.tls_port, "ws": self.web_port}[transport]
        if not port:
            raise Unavailable(f"{self.name} has no {transport} listener")
        return port


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_of(pid: int) -> list[psutil.Process]:
    """``pid`` and all its live descendants (empty once it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``procs`` (threads included), skipping the departed."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def role_of(name: str) -> str:
    """The role a fastchat process names itself for (``runtime/proctitle.py``): supervisor,
    hub, worker, store (the store's writer) or readers (history readers, one per worker);
    anything else (a peer's processes) is "other"."""
    roles = {
        "fastchat-super": "supervisor",
        "fastchat-hub": "hub",
        "fastchat-store": "store",
        "fastchat-read": "readers",
    }
    if name.startswith("fastchat-worker"):
        return "worker"
    return roles.get(name, "other")


def cpu_by_role(procs: list[psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds of ``procs`` by role (see :func:`role_of`). Workers are
    told apart as ``worker0``, ``worker1``... in pid order (their names are cut to 15 bytes,
    so the slot does not show): stable for one server's life, which is all a window needs."""
    out: dict[str, float] = {}
    workers = sorted((p for p in procs if role_of(_name(p)) == "worker"), key=lambda p: p.pid)
    label = {p.pid: f"worker{i}" for i, p in enumerate(workers)}
    for p in procs:
        role = label.get(p.pid) or role_of(_name(p))
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            out[role] = out.get(role, 0.0) + t.user + t.system
    return out


def worker_of_ports(procs: list[psutil.Process]) -> dict[int, str]:
    """Which worker (``worker0``... as in :func:`cpu_by_role`) holds each client connection,
    by the client's port (the connection's remote port, as the worker sees it)."""
    workers = sorted((p for p in procs if role_of(_name(p)) == "worker"), key=lambda p: p.pid)
    out: dict[int, str] = {}
    for i, p in enumerate(workers):
        with contextlib.suppress(psutil.Error):
            for c in p.net_connections(kind="tcp"):
                if c.raddr:
                    out[c.raddr.port] = f"worker{i}"
    return out


def rss_bytes(procs: list[psutil.Process]) -> int:
    """Resident set size summed over ``procs``."""
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


@contextlib.contextmanager
def launch(name: str, workers: int = 1, fastchat_args: Sequence[str] = ()) -> Iterator[Server]:
    """``with launch("inspircd") as server:`` one freshly started server, gone afterwards.
    ``fastchat_args``: flags fastchat gets after :data:`FASTCHAT_BENCH_ARGS` (``--no-history``,
    say); a peer cannot take them."""
    if name == "fastchat":
        with _fastchat(workers, fastchat_args) as server:
            yield server
    elif fastchat_args:
        raise Unavailable(f"{name} takes no fastchat flags ({' '.join(fastchat_args)})")
    elif name in PEER_NAMES:
        with _peer(name) as server:
            yield server
    else:
        raise Unavailable(f"unknown server {name!r} (know fastchat, {', '.join(PEER_NAMES)})")


@contextlib.contextmanager
def _fastchat(workers: int, extra: Sequence[str]) -> Iterator[Server]:
    from fastchat.server.runtime import process  # late: the peers work without a fastchat server

    _compiled()
    try:
        # in a fresh temporary --data-dir of its own (the store, and the history unless
        # ``extra`` says --no-history), removed when it stops
        server = process.start([*FASTCHAT_BENCH_ARGS, *extra], workers=workers)
    except (RuntimeError, OSError) as e:
        raise Unavailable(f"fastchat did not start: {str(e)[-400:]}") from e
    try:
        import fastchat

        _settled(server.tree)
        version = f"fastchat {getattr(fastchat, '__version__', '?')}"
        yield Server(
            "fastchat",
            server.host,
            server.port,
            server.workers,
            server.tree,
            version,
            server.tls_port,
            getattr(server, "web_port", 0),
        )
    finally:
        server.stop()


def _compiled() -> None:
    """Compile fastchat's bytecode (``__pycache__``) if it is not yet, as any run but the
    first finds it: a server that compiles its modules as it starts leaves ~8 MB of freed,
    still resident memory in its processes, which the first 5,000 idle clients then fill
    without growing RSS, so the idle scenario's growth per connection read 2.6-2.9 KB at four
    workers from a fresh clone and 4.1-4.2 KB once compiled (the same RSS at the end: 265-267
    MB; bench/FINDINGS.md, issue 14 session 4). The compiled start is the one users have."""
    import compileall

    import fastchat

    compileall.compile_dir(str(Path(fastchat.__file__).parent), quiet=2)


def _settled(tree: Callable[[], list[psutil.Process]], timeout: float = 10.0) -> None:
    """Wait until the server's store processes (``fastchat-store``, ``fastchat-read``: fresh
    interpreters, started as the server starts, still importing when it says it is ready)
    have named themselves and the tree's memory has stopped growing: else the idle
    scenario's "before" would miss 15 MB or so per such process and count it per connection
    (16.9 KB at four workers instead of 5.7)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        procs = tree()
        names = []
        for p in procs[1:]:
            with contextlib.suppress(psutil.Error):
                names.append(p.name())
        rss = rss_bytes(procs)
        if all(n.startswith("fastchat-") for n in names) and abs(rss - last) < 256 * 1024:
            return
        last = rss
        time.sleep(0.2)


def _ngircd_conf(port: int, workdir: Path) -> tuple[list[str], Path]:
    conf = workdir / "ngircd.conf"
    motd = workdir / "motd"
    motd.write_text("bench\n")
    conf.write_text(
        f"""[Global]
Name = ngircd.bench
Info = fastchat benchmark peer
Listen = 127.0.0.1
Ports = {port}
MotdFile = {motd}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
; flood limits off: no penalty time, and every client gets user mode F (relaxed flood
; protection), which DefaultUserModes may set although it is normally oper-only
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 120
[Options]
DNS = no
Ident = no
PAM = no
DefaultUserModes = F
"""
    )
    return ["ngircd", "--nodaemon", "--config", str(conf)], conf


def _inspircd_conf(port: int, workdir: Path) -> tuple[list[str], Path]:
    conf = workdir / "inspircd.conf"
    motd = workdir / "motd"
    motd.write_text("bench\n")
    limit = MAX_CONNECTIONS
    conf.write_text(
        f"""<server name="inspircd.bench" description="fastchat benchmark peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<files motd="{motd}">
<power diepass="" restartpass="">
<connect name="main" allow="*" maxchans="100" timeout="60" pingfreq="600"
         hardsendq="16M" softsendq="1M" recvq="1M"
         threshold="1000000" commandrate="1000000000" fakelag="yes"
         localmax="{limit}" globalmax="{limit}" maxconnwarn="no" limit="{limit}"
         resolvehostnames="no" useident="no" modes="">
<performance netbuffersize="65536" somaxconn="1024" softlimit="{limit}"
             clonesonconnect="no" timeskipwarn="0" quietbursts="yes">
<security allowcoreunload="no" hidesplits="no" hideulines="no" flatlinks="no">
<options prefixquit="Quit: " syntaxhints="no" cyclehostsfromuser="no" announcets="no"
         allowmismatched="no" defaultbind="auto" pingwarning="15" splitwhois="no">
<channels users="100" opers="100">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="10" maxhost="64"
        maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxgecos="128" maxaway="200">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{workdir}/ircd.log">
"""
    )
    cmd = ["inspircd", "--nofork", "--nopid", "--runasroot", "--config", str(conf)]
    return cmd, conf


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    first = out.decode(errors="replace").strip().splitlines()
    return first[0] if first else "unknown"


@contextlib.contextmanager
def _peer(name: str) -> Iterator[Server]:
    binary = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if binary is None:
        raise Unavailable(f"{name} is not installed (make bench-peers installs it)")
    version = _version([binary, "--version"])
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        make_conf = _ngircd_conf if name == "ngircd" else _inspircd_conf
        cmd, _conf = make_conf(port, workdir)
        cmd[0] = binary
        log = (workdir / "stdout.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            _wait_listening(proc, port, workdir / "stdout.log")
            yield Server(name, "127.0.0.1", port, 1, lambda: tree_of(proc.pid), version)
        finally:
            for p in reversed(tree_of(proc.pid)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            log.close()


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(
                f"exited with {proc.returncode}: {log.read_text(errors='replace')[-600:]}"
            )
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise Unavailable(f"not listening on 127.0.0.1:{port} after 15 s")
