"""Each process gives its heap's freed pages back once quiet after work (runtime/memory.py),
at one worker and at four: a crowd connects, talks in the lobby and leaves, and then the
process that did most of the work (the one worker; at four, the hub, which decided all of
it) says, at DEBUG, that it trimmed. (The worker's loop is the same code at four: there a
crowd this small leaves each worker under the work that calls for a trim.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psutil
import pytest

from fastchat.server.runtime import process
from fastchat.server.runtime.memory import MIN_WORK
from tests.ircclient import IRCClient

CROWD = 120


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    srv = process.start(["--log-level", "DEBUG", "--no-flood-control"], workers=request.param)
    try:
        yield srv
    finally:
        srv.stop()


def test_the_process_that_worked_trims_once_quiet(server: process.ServerProcess) -> None:
    started = dict(re.findall(r"started (hub 0|worker \d+) \(pid (\d+)\)", server.log_text()))
    workers = {int(pid) for name, pid in started.items() if name.startswith("worker")}
    hub = int(started["hub 0"]) if "hub 0" in started else None
    busy = hub if hub is not None else workers.pop()
    process_busy = psutil.Process(busy)
    cpu_before = sum(process_busy.cpu_times()[:2])
    since = len(server.log_text())
    crowd = [IRCClient(server.host, server.port) for _ in range(CROWD)]
    try:
        for i, client in enumerate(crowd):
            client.register(f"crowd{i}")
        # Talk until the process has done the work that calls for a trim (MIN_WORK of CPU,
        # with a margin): a crowd of a given size is less work on a faster machine
        for _ in range(50):
            for i, client in enumerate(crowd):
                client.send(f"PRIVMSG #lobby :hello from {i}")
            for client in crowd:
                client.sync()
            if sum(process_busy.cpu_times()[:2]) - cpu_before >= 2 * MIN_WORK:
                break
        else:
            raise AssertionError(f"50 rounds left process {busy} under {2 * MIN_WORK} s of CPU")
        for client in crowd:
            client.send("QUIT :bye")
        for client in crowd:
            client.wait_closed(5.0)
    finally:
        for client in crowd:
            client.close()
    server.wait_log(
        rf"\[{busy}\] DEBUG: memory: heap trimmed, RSS [\d.]+ -> [\d.]+ MB", since=since
    )
