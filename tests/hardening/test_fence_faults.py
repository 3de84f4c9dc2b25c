"""A read fence (network/fence.py) in flight when something fails: no query waits for ever.

A worker that is stopped (SIGSTOP) answers no fence and does not die: a query elsewhere waits
for it only ``FENCE_PATIENCE``. A worker that dies leaves the round at once. A hub that dies
with a round out takes the held query with it, and the worker resends it to the new hub,
which answers it. Synchronised by replies; the one wait without a reply is the proof that
the query is held (a PONG must *not* come while the fence is out).
"""

from __future__ import annotations

import os
import signal
import time

from fastchat.server.runtime import process
from fastchat.server.runtime.hub import FENCE_PATIENCE
from tests.hardening.harness import client_on_worker, wait_for


def test_a_stopped_worker_delays_queries_only_for_a_while() -> None:
    with process.running(["--no-flood-control"], workers=3) as server:
        asker_pid, stopped, _ = server.worker_pids()
        asker = client_on_worker(server, asker_pid, "asker")
        asker.sync()
        os.kill(stopped, signal.SIGSTOP)
        try:
            began = time.monotonic()
            asker.send("PING held")
            asker.expect(r"PONG \S+ :?held$", timeout=FENCE_PATIENCE + 5)
            assert time.monotonic() - began >= FENCE_PATIENCE * 0.9  # it did wait
            asker.sync(timeout=FENCE_PATIENCE + 5)  # and the next round is not stuck
        finally:
            os.kill(stopped, signal.SIGCONT)
        asker.sync()
        asker.close()


def test_a_dead_worker_leaves_the_round() -> None:
    with process.running(["--no-flood-control"], workers=3) as server:
        asker_pid, doomed, _ = server.worker_pids()
        asker = client_on_worker(server, asker_pid, "asker")
        asker.sync()
        os.kill(doomed, signal.SIGSTOP)  # it answers nothing...
        asker.send("PING held")
        assert asker.next_line(timeout=FENCE_PATIENCE / 4) is None  # held by the fence
        os.kill(doomed, signal.SIGKILL)  # ...and then it is gone
        began = time.monotonic()
        asker.expect(r"PONG \S+ :?held$")
        assert time.monotonic() - began < FENCE_PATIENCE  # not the patience: its death
        asker.sync()
        asker.close()


def test_a_hub_crash_with_a_fence_out_loses_no_query() -> None:
    with process.running(["--no-flood-control"], workers=3) as server:
        asker_pid, stopped, _ = server.worker_pids()
        asker = client_on_worker(server, asker_pid, "asker")
        asker.sync()
        os.kill(stopped, signal.SIGSTOP)
        try:
            asker.send("PING held")
            assert asker.next_line(timeout=FENCE_PATIENCE / 4) is None  # held by the fence
            old_hub = server.hub_pid()
            assert old_hub is not None
            os.kill(old_hub, signal.SIGKILL)
            wait_for(lambda: server.hub_pid() not in (None, old_hub), 5.0, "a new hub")
        finally:
            os.kill(stopped, signal.SIGCONT)
        asker.expect(r"PONG \S+ :?held$", timeout=10)
        assert "held" not in " ".join(asker.sync())  # one PONG, not two
        asker.close()
