"""The supervisor: opens the listening sockets, forks the hub and the workers, and only supervises.

Owns: process lifetimes. It reaps children on SIGCHLD and restarts the dead (a worker within a
second), turns SIGTERM/SIGINT into a graceful stop with a deadline (SIGTERM to workers, then the
hub, SIGKILL for anything left after 5 s), and holds the listening sockets so that connections
waiting in a dead worker's accept queue are served by its replacement. SIGHUP reloads the
config file: the supervisor checks it (a file that fails keeps the old config, and the log says
why), keeps the result for the children it will start, and passes SIGHUP on to every child,
which reads the file again and takes what may change live (see ``config.reloaded``).
Must never: speak IRC or touch client connections.

Children learn of the supervisor's death through the *lifeline*: a pipe whose write end only the
supervisor holds. When it dies, the pipe reads EOF in every child, and they stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastchat.server.config import Config, ConfigError, reloaded
from fastchat.server.configfile import Source
from fastchat.server.runtime import limits, tls
from fastchat.server.runtime.memory import Trimmer
from fastchat.server.runtime.proctitle import set_process_name

log = logging.getLogger("fastchat.supervisor")

STOP_DEADLINE = 5.0
RESTART_BACKOFF_MAX = 10.0
#: A child that dies within this many seconds of starting counts towards a crash loop.
CRASH_LOOP_WINDOW = 1.0


def open_listeners(
    config: Config, port: int | None = None, host: str | None = None
) -> list[socket.socket]:
    """One SO_REUSEPORT socket per worker where the platform has it, else one shared socket.

    SO_REUSEPORT lets the kernel spread connections evenly over the workers' own accept queues
    (PERFORMANCE-NOTES.md: 519/512/453/516 against 602/724/286/388 for a shared socket). A probe
    bind without SO_REUSEPORT first makes sure no other server already holds the port (two
    SO_REUSEPORT servers on one port would silently split its connections). ``port``: the
    TLS port, say; by default the plain one. ``host``: by default --host.
    """
    host = config.host if host is None else host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind((host, config.port if port is None else port))
    port = probe.getsockname()[1]
    reuseport = hasattr(socket, "SO_REUSEPORT") and config.workers > 1
    if not reuseport:
        probe.listen(1024)
        return [probe]
    probe.close()
    listeners = []
    for _ in range(config.workers):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        listeners.append(sock)
    return listeners


def open_hub_listener() -> tuple[socket.socket, str]:
    """The hub's Unix socket, in Linux's abstract namespace (no file to clean up)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if sys.platform == "linux":
        address = f"\0fastchat-hub-{os.getpid()}-{time.monotonic_ns()}"
    else:
        import tempfile

        address = os.path.join(tempfile.mkdtemp(prefix="fastchat-"), "hub.sock")
    sock.bind(address)
    sock.listen(64)
    return sock, address


@dataclass
class Child:
    role: str  # "hub" or "worker"
    slot: int
    pid: int = 0
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    def __init__(self, config: Config, reload: Source | None = None) -> None:
        self.config = config
        self.reload = reload
        self.reload_wanted = False
        self.listeners = open_listeners(config)
        self.port = self.listeners[0].getsockname()[1]
        # TLS: its own listeners, one per worker like the plain ones, and one context that
        # every worker inherits (the certificate is read, or made, once, here)
        self.tls_listeners: list[socket.socket] = []
        self.tls_context: ssl.SSLContext | None = None
        self.tls_port = 0
        tls.check_sts(config)
        if config.tls_port:
            self.tls_context = tls.server_context(*tls.certificate_files(config))
            self.tls_listeners = open_listeners(config, max(0, config.tls_port))
            self.tls_port = self.tls_listeners[0].getsockname()[1]
        # The web port (HTTP and WebSocket), and over TLS with the same context
        self.web_host = config.web_host or config.host
        self.web_listeners: list[socket.socket] = []
        self.web_tls_listeners: list[socket.socket] = []
        self.web_port = self.web_tls_port = 0
        if config.web_port:
            self.web_listeners = open_listeners(config, max(0, config.web_port), self.web_host)
            self.web_port = self.web_listeners[0].getsockname()[1]
        # (its own context, with the same certificate: it asks browsers for no certificate)
        self.web_tls_context: ssl.SSLContext | None = None
        if config.web_tls_port:
            files = tls.certificate_files(config)
            self.web_tls_context = tls.server_context(*files, client_certificates=False)
            self.web_tls_listeners = open_listeners(
                config, max(0, config.web_tls_port), self.web_host
            )
            self.web_tls_port = self.web_tls_listeners[0].getsockname()[1]
        self.multi = config.workers > 1
        self.hub_sock: socket.socket | None = None
        self.hub_address: str | None = None
        if self.multi:
            self.hub_sock, self.hub_address = open_hub_listener()
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.ready_r, self.ready_w = os.pipe()
        self.children: dict[int, Child] = {}  # pid -> child
        self.slots: dict[tuple[str, int], Child] = {}
        self.incarnation = 0
        self.started = time.time()  # the server's start: every worker shows this one
        self.stopping = False
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()

    # -- starting children ----------------------------------------------------------------------
    def _fork(self, child: Child, target: Callable[[], int]) -> None:
        self.incarnation += 1
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                # until the child installs its own, a reload must not kill it
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                # until the hub installs its handler, "the server is stopping" changes nothing
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)
                os.close(self.lifeline_w)
                os.close(self.ready_r)
                self._wake_r.close()
                self._wake_w.close()
                self.sel.close()
                set_process_name(
                    f"fastchat-{child.role}" + (f"{child.slot}" if child.role == "worker" else "")
                )
                code = target()
            except BaseException:
                log.exception("%s %d crashed", child.role, child.slot)
            finally:
                logging.shutdown()
                os._exit(code)
        child.pid = pid
        child.started = time.monotonic()
        self.children[pid] = child
        self.slots[(child.role, child.slot)] = child
        log.info("started %s %d (pid %d)", child.role, child.slot, pid)

    def _start(self, child: Child) -> None:
        from fastchat.server.runtime.hub import Hub
        from fastchat.server.runtime.worker import Worker

        if child.role == "hub":
            assert self.hub_sock is not None
            hub_sock = self.hub_sock
            self._fork(
                child, lambda: Hub(self.config, hub_sock, self.lifeline_r, self.reload).run()
            )
            return
        listener = self.listeners[child.slot % len(self.listeners)]
        tls_listener = (
            self.tls_listeners[child.slot % len(self.tls_listeners)] if self.tls_listeners else None
        )
        web_listener = (
            self.web_listeners[child.slot % len(self.web_listeners)] if self.web_listeners else None
        )
        web_tls_listener = (
            self.web_tls_listeners[child.slot % len(self.web_tls_listeners)]
            if self.web_tls_listeners
            else None
        )
        mine = (listener, tls_listener, web_listener, web_tls_listener)
        incarnation = self.incarnation + 1

        # The workers know the TLS port as it is open (--tls-port -1 picks one): the sts
        # capability tells plain clients where it is
        config = self.config
        if self.tls_port and config.tls_port != self.tls_port:
            config = dataclasses.replace(config, tls_port=self.tls_port)

        def target() -> int:
            for other in [
                *self.listeners,
                *self.tls_listeners,
                *self.web_listeners,
                *self.web_tls_listeners,
            ]:
                if all(other is not m for m in mine):
                    other.close()
            if self.hub_sock is not None:
                self.hub_sock.close()
            return Worker(
                config,
                child.slot,
                incarnation,
                listener,
                self.hub_address,
                self.lifeline_r,
                self.ready_w,
                self.reload,
                self.started,
                tls_listener,
                self.tls_context,
                web_listener,
                web_tls_listener,
                self.web_tls_context,
            ).run()

        self._fork(child, target)

    # -- the supervision loop ----------------------------------------------------------------------
    def run(self) -> int:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda s, f: None)  # wakes the selector via the wakeup fd
        signal.signal(signal.SIGHUP, self._on_reload)
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.sel.register(self.ready_r, selectors.EVENT_READ, "ready")
        if self.multi:
            self._start(Child("hub", 0))
        for slot in range(self.config.workers):
            self._start(Child("worker", slot))
        ready: set[int] = set()
        announced = False
        trimmer = Trimmer(time.monotonic())  # the heap's freed pages back, once quiet
        while not self.stopping:
            now = time.monotonic()
            if now >= trimmer.due:
                trimmer.check(now)
            due = [c for c in self.slots.values() if c.pid == 0 and c.restart_at]
            timeout = max(0.0, min((c.restart_at for c in due), default=now + 1.0) - now)
            for key, _ in self.sel.select(timeout):
                if key.data == "wake":
                    self._drain(self._wake_r)
                elif key.data == "ready":
                    for word in os.read(self.ready_r, 4096).split():
                        ready.add(int(word))
            self._reap()
            if self.reload_wanted:
                self.reload_wanted = False
                self._reload()
            now = time.monotonic()
            for child in list(self.slots.values()):
                if (
                    child.pid == 0
                    and child.restart_at
                    and now >= child.restart_at
                    and not self.stopping
                ):
                    child.restart_at = 0.0
                    self._start(child)
            if not announced and len(ready) >= self.config.workers:
                announced = True
                # Each line in one write, its newline included: print() writes the newline
                # apart, and unbuffered (PYTHONUNBUFFERED, as tests run us) a child's log
                # line written to the same pipe in between would glue its digits to the port
                if self.tls_port:  # before the ready line, which tests and tools wait for
                    print(
                        f"fastchat TLS on {self.config.host}:{self.tls_port}\n", end="", flush=True
                    )
                if self.web_port:
                    print(f"fastchat web on {self.web_host}:{self.web_port}\n", end="", flush=True)
                if self.web_tls_port:
                    print(
                        f"fastchat web TLS on {self.web_host}:{self.web_tls_port}\n",
                        end="",
                        flush=True,
                    )
                print(
                    f"fastchat ready on {self.config.host}:{self.port} "
                    f"({self.config.workers} workers, pid {os.getpid()})\n",
                    end="",
                    flush=True,
                )
        self._stop_all()
        return 0

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload_wanted = True

    def _reload(self) -> None:
        """SIGHUP: check the config file; if it can be used, keep it for future children and
        have every child take it (each reads the file again: nobody is disconnected). The
        TLS certificate is read again too, here for future workers, and in every worker for
        its new connections (a file that cannot be used keeps the old certificate)."""
        if self.reload is None and self.tls_context is None and self.web_tls_context is None:
            log.warning("received SIGHUP, but the server runs without --config: nothing to reload")
            return
        if self.reload is not None:
            try:
                new = self.reload.load()
            except ConfigError as exc:
                log.error("reload failed, the old config stays: %s", exc)
                return
            self.config, restart = reloaded(self.config, new)
            log.info("config reloaded")
            if restart:
                log.warning(
                    "reload: these settings change only at a restart: %s", ", ".join(restart)
                )
        if self.tls_context is not None:
            try:
                self.tls_context = tls.reloaded_context(self.config)
                log.info("TLS certificate reloaded")
            except (OSError, ssl.SSLError) as exc:
                log.error("the TLS certificate cannot be used, the old one stays: %s", exc)
        if self.web_tls_context is not None:
            try:
                self.web_tls_context = tls.reloaded_context(self.config, client_certificates=False)
            except (OSError, ssl.SSLError) as exc:
                log.error("the web port's certificate cannot be used, the old one stays: %s", exc)
        for child in list(self.children.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGHUP)

    def _on_stop(self, signum: int, frame: object) -> None:
        if not self.stopping:
            log.info("received %s: stopping", signal.Signals(signum).name)
        self.stopping = True

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while sock.recv(512):
                pass

    def _reap(self) -> list[Child]:
        """Collect dead children; schedule restarts (immediately, with backoff if they keep dying)."""
        dead = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.pop(pid, None)
            if child is None:
                continue
            dead.append(child)
            how = (
                f"signal {signal.Signals(-os.waitstatus_to_exitcode(status)).name}"
                if os.WIFSIGNALED(status)
                else f"exit {os.waitstatus_to_exitcode(status)}"
            )
            child.pid = 0
            if self.stopping:
                continue
            # Restart at once while crashes are rare; back off only for a child that dies
            # again right after it started (a crash loop must not spin).
            lived = time.monotonic() - child.started
            child.failures = 0 if lived > CRASH_LOOP_WINDOW else child.failures + 1
            delay = (
                0.0 if child.failures <= 1 else min(RESTART_BACKOFF_MAX, 0.25 * 2**child.failures)
            )
            log.warning(
                "%s %d (pid %d) died (%s); restarting in %.2fs",
                child.role,
                child.slot,
                pid,
                how,
                delay,
            )
            child.restart_at = time.monotonic() + delay
        return dead

    def _stop_all(self) -> None:
        """SIGTERM workers (they say goodbye and flush), then the hub; SIGKILL at the deadline.

        The hub hears first (SIGUSR1) that the server is stopping, so it logs the workers'
        links closing as news (INFO), not as the faults they would otherwise be (WARNING).
        """
        deadline = time.monotonic() + STOP_DEADLINE
        hub = self.slots.get(("hub", 0))
        if hub is not None and hub.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hub.pid, signal.SIGUSR1)
        workers = [c for c in self.children.values() if c.role == "worker"]
        for child in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        self._wait_for(
            lambda: not any(c.role == "worker" for c in self.children.values()), deadline - 1.0
        )
        for child in list(self.children.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        self._wait_for(lambda: not self.children, deadline - 0.2)
        for child in list(self.children.values()):
            log.warning("%s %d did not stop in time: SIGKILL", child.role, child.slot)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        self._wait_for(lambda: not self.children, deadline + 2.0)
        log.info("stopped")

    def _wait_for(self, done: Callable[[], bool], until: float) -> None:
        while not done() and time.monotonic() < until:
            self.sel.select(0.05)
            self._drain(self._wake_r)
            self._reap()


def serve(config: Config, reload: Source | None = None) -> int:
    """``fastchat serve``: run until SIGTERM or SIGINT; ``reload`` reads the config file
    again (SIGHUP, or REHASH from an operator)."""
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s[%(process)d] %(levelname)s: %(message)s",
    )
    # the descriptor limit raised, and the auto settings picked, before anything forks
    config, picked = limits.decide(config)
    if reload is not None:
        reload = dataclasses.replace(reload, auto=picked)
    try:
        supervisor = Supervisor(config, reload)
    except ssl.SSLError as exc:
        log.error("cannot use the TLS certificate: %s", exc)
        return 2
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 2
    set_process_name("fastchat-super")
    return supervisor.run()
