"""What the hardening tests share: placing a client on a chosen worker, and measuring processes.

Owns: helpers that need both a raw client and the server's process tree (``worker_of``, psutil).
Must never: sleep to synchronise; every wait here has a deadline and ends on an observation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from fastchat.server.runtime.process import ServerProcess
from tests.ircclient import IRCClient


def client_on_worker(
    server: ServerProcess, worker_pid: int, nick: str | None = None, attempts: int = 200
) -> IRCClient:
    """A client whose connection is held by ``worker_pid`` (registered as ``nick`` if given).

    The kernel spreads connections over the workers (SO_REUSEPORT hashing), so we connect
    until one lands there. A PING answered before registration proves the worker has accepted
    the connection before we ask psutil who holds it.
    """
    for _ in range(attempts):
        client = IRCClient(server.host, server.port)
        client.nick = nick or ""
        client.sync()
        if server.worker_of(client.sock.getsockname()[1]) == worker_pid:
            if nick:
                client.register(nick)
            return client
        client.close()
    raise AssertionError(f"no connection landed on worker {worker_pid} in {attempts} tries")


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids``."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.02) -> None:
    """Poll ``condition`` (an observation of the server, e.g. its process table) until true.

    Only for states that no IRC reply can announce (a process exiting or being born);
    fails with ``what`` at the deadline.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def pids_alive(pids: list[int]) -> list[int]:
    """The subset of ``pids`` that still exist (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive
