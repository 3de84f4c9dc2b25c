"""The scaling arithmetic (bench/scaling.py) and the hub ceiling's layouts: visits per message,
the expected spread, the fits, and the projection's formula, on made-up figures (no servers)."""

from __future__ import annotations

import math
import sys

import pytest

from bench import hubceiling, scaling


def test_visits_counts_distinct_workers_per_room_weighted_by_messages() -> None:
    placement = [(0, "worker0"), (0, "worker1"), (0, "worker1"), (1, "worker0"), (1, "worker0")]
    # room 0 is on two workers, room 1 on one; room 0 sent three times as much
    assert scaling.visits_per_message(placement, {0: 300, 1: 100}) == 1.75
    assert scaling.visits_per_message(placement, {0: 1, 1: 1}) == 1.5
    # a room nobody was placed in, or that sent nothing, counts for nothing
    assert scaling.visits_per_message(placement, {0: 10, 1: 0, 7: 99}) == 2.0
    assert scaling.visits_per_message(placement, {}) is None
    assert scaling.visits_per_message([], {0: 5}) is None


def test_one_worker_is_one_visit() -> None:
    placement = [(room, "worker0") for room in range(40) for _ in range(10)]
    assert scaling.visits_per_message(placement, dict.fromkeys(range(40), 50)) == 1.0


@pytest.mark.parametrize("workers", [1, 2, 4, 16])
@pytest.mark.parametrize("members", [1, 2, 10, 50])
def test_expected_visits_matches_enumeration(workers: int, members: int) -> None:
    """The closed form against the definition: the mean number of distinct workers over
    every way of placing the members (small cases enumerated exactly, by linearity: each
    worker is hit unless all members miss it)."""
    miss_all = ((workers - 1) / workers) ** members
    assert math.isclose(scaling.expected_visits(workers, members), workers * (1 - miss_all))
    assert 1.0 <= scaling.expected_visits(workers, members) <= min(workers, members)


def test_expected_visits_exhaustive_small_case() -> None:
    import itertools

    workers, members = 3, 4
    total = 0
    placements = list(itertools.product(range(workers), repeat=members))
    for p in placements:
        total += len(set(p))
    assert math.isclose(scaling.expected_visits(workers, members), total / len(placements))
    with pytest.raises(ValueError):
        scaling.expected_visits(0, 10)


def test_fit_is_least_squares() -> None:
    assert scaling.fit([(1, 3.0), (2, 5.0), (4, 9.0)]) == (1.0, 2.0)
    a, b = scaling.fit([(0, 1.0), (1, 2.0), (2, 4.0)])  # not on a line: the best one
    assert math.isclose(b, 1.5) and math.isclose(a, 5 / 6, rel_tol=1e-5)
    with pytest.raises(ValueError):
        scaling.fit([(1, 1.0), (1, 2.0)])


COSTS = scaling.Costs(ingest=2.0, visit=0.5, delivery=0.2, hub=1.0, store=0.5, hub_visit=0.25)


def test_projection_one_core_has_no_hub() -> None:
    p = scaling.project(1, 10, COSTS)
    assert p.workers == 1 and p.visits == 1.0
    cpu = 2.0 + 0.5 + 9 * 0.2 + 0.5  # ingest + one visit + 9 deliveries + store; no hub
    assert math.isclose(p.messages_per_s, 1e6 / cpu)
    assert math.isclose(p.deliveries_per_s, 9e6 / cpu)
    assert p.bound == "cores"


def test_projection_formula_at_four_cores() -> None:
    p = scaling.project(4, 10, COSTS)
    v = scaling.expected_visits(4, 10)
    cpu = 2.0 + v * 0.5 + 9 * 0.2 + (1.0 + v * 0.25) + 0.5
    assert math.isclose(p.messages_per_s, min(4e6 / cpu, 1e6 / (1.0 + v * 0.25), 1e6 / 0.5))
    assert p.visits == round(v, 3)


def test_projection_bounds_by_the_hub_and_the_store() -> None:
    slow_hub = scaling.Costs(ingest=0.1, visit=0.0, delivery=0.01, hub=5.0)
    p = scaling.project(16, 10, slow_hub, 1.0)
    assert p.bound == "hub" and math.isclose(p.messages_per_s, 1e6 / 5.0)
    slow_store = scaling.Costs(ingest=0.1, visit=0.0, delivery=0.01, hub=0.1, store=4.0)
    assert scaling.project(16, 10, slow_store, 1.0).bound == "store"


def test_clustered_beats_spread_and_the_curve_never_falls_when_clustered() -> None:
    spread = scaling.curve(10, COSTS)
    clustered = scaling.curve(10, COSTS, clustered=True)
    assert [p.cores for p in spread] == list(range(1, 17))
    for s, c in zip(spread, clustered, strict=True):
        assert c.deliveries_per_s >= s.deliveries_per_s
    rates = [p.deliveries_per_s for p in clustered[1:]]
    assert rates == sorted(rates)
    # spread: visits grow with the workers, towards the room's size
    assert spread[-1].visits > spread[3].visits > spread[1].visits


def test_costs_from_the_ceilings_results() -> None:
    hub_runs = [
        {"load": {"run": 1}, "visits": 1.0, "hub_cpu_us_per_message": 2.0},
        {"load": {"run": 1}, "visits": 4.0, "hub_cpu_us_per_message": 3.5},
        {"load": {"run": 12}, "visits": 4.0, "hub_cpu_us_per_message": 0.8},
        {"load": {"run": 1}, "error": "RuntimeError: x"},
    ]
    fits = {"1": {"ingest_us": 3.0, "visit_us": -0.1, "delivery_us": 0.3}}
    c = scaling.costs_from(hub_runs, fits, 1, store=1.25)
    assert c is not None
    assert (c.hub, c.hub_visit) == (1.5, 0.5)  # 2.0 at one visit, 3.5 at four
    assert c.visit == 0.0  # a fit below zero is noise: no negative cost
    assert (c.ingest, c.delivery, c.store) == (3.0, 0.3, 1.25)
    assert scaling.costs_from(hub_runs, fits, 12) is None  # no worker fit for runs of 12
    # one layout only: the hub's cost is its figure, flat in the visits
    only = scaling.costs_from(hub_runs, {"12": fits["1"]}, 12)
    assert only is not None and (only.hub, only.hub_visit) == (0.8, 0.0)


def test_model_cpu_per_delivery() -> None:
    at_one = scaling.model_cpu_per_delivery(COSTS, 1, 1.0, 10)
    assert math.isclose(at_one, (2.0 + 0.5 + 1.8 + 0.5) / 9)
    at_four = scaling.model_cpu_per_delivery(COSTS, 4, 4.0, 10)
    assert math.isclose(at_four, (2.0 + 2.0 + 1.8 + 0.5 + 1.0 + 1.0) / 9)


@pytest.mark.parametrize("workers", [1, 2, 4, 16])
def test_hub_ceiling_layouts(workers: int) -> None:
    spread = hubceiling.HubLoad(workers=workers)
    assert hubceiling.visits(spread) == min(workers, spread.members)
    # in flight: about 512 messages in whole frames, whatever the run length
    assert spread.frames_in_flight == 16
    assert hubceiling.HubLoad(run=16).frames_in_flight == 1
    assert hubceiling.HubLoad(run=16, window=3).frames_in_flight == 3
    clustered = hubceiling.HubLoad(workers=workers, placement="clustered")
    assert hubceiling.visits(clustered) == 1.0
    for load in (spread, clustered):
        users = [u for us in hubceiling.layout(load).values() for u in us]
        assert len(users) == load.rooms * load.members
        assert len({uid for uid, _, _ in users}) == len(users)
        assert sum(talks for _, _, talks in users) == load.rooms * load.talkers


def test_pure() -> None:
    """bench/scaling.py imports no I/O (it is arithmetic on figures)."""
    import subprocess

    code = (
        "import sys; before = set(sys.modules); import bench.scaling; "
        "print(sorted(m for m in ('socket', 'selectors', 'psutil', 'subprocess', 'time') "
        "if m in sys.modules and m not in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
