"""``make bench`` against a real server, briefly: the server's CPU split by process role, and
which worker holds each client (the visits per message), at one and at four workers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import peers, run
from bench.loadgen import LoadSpec

TINY = LoadSpec(
    "closed", rooms=6, members=5, talkers=2, window=16, duration=0.4, warmup=0.2, processes=1
)


@pytest.mark.parametrize("workers", [1, 4])
def test_roles_and_visits(workers: int) -> None:
    scenario = replace(run.SCENARIOS["rooms"], load=TINY)
    row = run.measure("fastchat", scenario, workers, TINY)
    assert "error" not in row, row.get("error")
    assert row["connected"] == 30 and row["lost"] == 0
    # every client was found on a worker, and a message visits at least its sender's
    assert row["clients_unplaced"] == 0
    visits = row["visits_per_message"]
    if workers == 1:
        assert visits == 1.0
    else:
        assert 1.0 <= visits <= min(workers, TINY.members)
    roles = row["role_cpu_us_per_delivery"]
    assert {f"worker{i}" for i in range(workers)} <= set(roles)
    assert f"worker{workers}" not in roles
    assert ("hub" in roles) == (workers > 1)  # one worker runs the sequencer itself
    assert {"supervisor", "store"} <= set(roles)  # history is on by default: its writer
    # the roles are the whole tree: they add up to the total (rounding aside)
    assert sum(roles.values()) == pytest.approx(row["server_cpu_us_per_delivery"], abs=0.01)
    assert row["lines_per_write"] >= 1.0
    assert 3.5 <= row["deliveries_per_message"] <= 4.0  # rooms of 5: four others each


def test_role_names() -> None:
    assert peers.role_of("fastchat-super") == "supervisor"
    assert peers.role_of("fastchat-hub") == "hub"
    assert peers.role_of("fastchat-worker") == "worker"  # (cut to 15 bytes: no slot)
    assert peers.role_of("fastchat-store") == "store"
    assert peers.role_of("fastchat-read") == "readers"
    assert peers.role_of("inspircd") == "other"
