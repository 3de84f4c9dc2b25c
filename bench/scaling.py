"""How far more workers can take fastchat: the visit count and the projected curve.

Owns: the arithmetic that turns measurements into the scaling story of BENCHMARKS.md:
how many workers a channel message visits (measured from where clients sit, and expected
when SO_REUSEPORT spreads them at random), and the projection of deliveries per second on
1 to 16 cores from costs measured one core at a time (``bench/hubceiling.py``,
``bench/workerceiling.py``).
Must never: measure anything, or touch a socket, a process or the clock (pure: tested in
``tests/loadtest/test_bench_scaling.py``).

**Visits.** A message to a room *visits* each worker that holds at least one of the room's
members, the sender's own worker included: the hub sends its ``D_CHAN`` record to exactly
those workers (``Channel.workers``), and each decodes it and finds the channel, whether it
then delivers to nine local members or to none but the sender. At one worker every message
visits one worker; a room of 10 spread at random over 4 workers visits 3.77 on average.

**The projection** (per message to a room of ``m`` members, ``d = m - 1`` deliveries; costs
are CPU microseconds, each measured on one core)::

    cpu(W)        = ingest + hub(W) + store + visits(W) * visit + d * delivery
    hub(W)        = hub + visits(W) * hub_visit
    messages/s(C) = min(C / cpu(W),  1 / hub(W),  1 / store)
    deliveries/s  = d * messages/s

with ``W = C`` workers on ``C`` cores (at ``C = 1`` there is no hub: the sequencer runs inside
the one worker, so ``hub`` is 0 there). The first term says every core is busy and the
work spreads over them perfectly; the hub and the store writer are one process each, so
each can use one core at most (their ceilings). (With as many workers as cores, a worker's
own one-core limit never binds before the first term does.)
What it leaves out, and so overstates: context switches and cache misses from more processes
than cores, the kernel's loopback cost (counted in ``delivery`` only as far as the worker
ceiling's socketpair sends are), and any contention in the kernel. What it does not
overstate: ``visits(W)`` grows with ``W`` (see :func:`expected_visits`), so the spread curve
bends exactly as the measured cost per delivery grows with workers today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def visits_per_message(
    placement: Iterable[tuple[int, str]], sent_by_room: Mapping[int, int]
) -> float | None:
    """The average number of workers a message visits, weighted by the messages each room
    sent: ``placement`` is (room, worker holding that member) for every member whose worker
    is known; a room that sent but whose members are unknown counts for nothing. ``None``
    when no message is accounted for.

    >>> visits_per_message([(0, "w0"), (0, "w1"), (0, "w1"), (1, "w0")], {0: 3, 1: 1})
    1.75
    """
    workers: dict[int, set[str]] = {}
    for room, worker in placement:
        workers.setdefault(room, set()).add(worker)
    weighted = 0
    messages = 0
    for room, sent in sent_by_room.items():
        held = workers.get(room)
        if held and sent > 0:
            weighted += len(held) * sent
            messages += sent
    return weighted / messages if messages else None


def expected_visits(workers: int, members: int) -> float:
    """Workers a room of ``members`` visits when each member lands on one of ``workers`` at
    random (what SO_REUSEPORT's hash of the address pair comes to): the expected number of
    distinct workers among ``members`` uniform picks, ``W * (1 - (1 - 1/W) ** m)``.

    >>> round(expected_visits(4, 10), 2), expected_visits(1, 10), round(expected_visits(16, 10), 2)
    (3.77, 1.0, 7.61)
    """
    if workers < 1 or members < 1:
        raise ValueError("workers and members must be at least 1")
    return workers * (1 - (1 - 1 / workers) ** members)


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``y = a + b x`` through ``points``: (a, b).

    >>> fit([(1, 3.0), (2, 5.0), (4, 9.0)])
    (1.0, 2.0)
    """
    n = len(points)
    if n < 2 or len({x for x, _ in points}) < 2:
        raise ValueError("two distinct x at least")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return round(my - b * mx, 6), round(b, 6)


@dataclass(frozen=True)
class Costs:
    """CPU microseconds per channel message, each measured on one core."""

    ingest: float  # the sender's worker: read, cut, check, relay to the hub (per message)
    visit: float  # each visited worker: decode the record, find the channel (per visit)
    delivery: float  # each delivery: append to the member's output, its share of the send
    hub: float  # decide and route, per message (the hub ceiling is 1 / (hub + v * hub_visit))
    store: float = 0.0  # the history writer (per message; 0 with history off)
    hub_visit: float = 0.0  # the hub's routing, per worker a message goes to

    def worker(self, visits: float, deliveries: int) -> float:
        """The workers' CPU per message, all of them together."""
        return self.ingest + visits * self.visit + deliveries * self.delivery

    def hub_at(self, visits: float) -> float:
        return self.hub + visits * self.hub_visit


@dataclass(frozen=True)
class Point:
    cores: int
    workers: int
    visits: float
    messages_per_s: float
    deliveries_per_s: float
    bound: str  # which term of the min decided it: "cores", "hub" or "store"


def project(cores: int, members: int, costs: Costs, visits: float | None = None) -> Point:
    """Projected throughput of rooms of ``members`` on ``cores`` cores with as many workers
    (see the module docstring for the formula). ``visits``: workers per message; by default
    :func:`expected_visits` for random placement (pass 1.0 for rooms clustered on one worker).
    """
    if cores < 1 or members < 2:
        raise ValueError("at least one core, and rooms of at least two members")
    workers = cores
    v = expected_visits(workers, members) if visits is None else min(visits, workers)
    d = members - 1
    hub = costs.hub_at(v) if workers > 1 else 0.0
    terms = {"cores": cores / (costs.worker(v, d) + hub + costs.store) * 1e6}
    if hub > 0:
        terms["hub"] = 1e6 / hub
    if costs.store > 0:
        terms["store"] = 1e6 / costs.store
    bound = min(terms, key=lambda k: terms[k])
    rate = terms[bound]
    return Point(cores, workers, round(v, 3), rate, rate * d, bound)


def curve(
    members: int, costs: Costs, cores: Iterable[int] = range(1, 17), clustered: bool = False
) -> list[Point]:
    """:func:`project` for each core count: rooms spread at random, or ``clustered`` (every
    room's members on one worker: one visit per message)."""
    return [project(c, members, costs, 1.0 if clustered else None) for c in cores]


def costs_from(
    hub_runs: list[dict[str, Any]],
    worker_fits: Mapping[str, Mapping[str, float]],
    run: int,
    store: float = 0.0,
) -> Costs | None:
    """The projection's costs for records of ``run`` messages, from the ceilings' results
    (``bench/results/hubceiling.json``'s runs, ``workerceiling.json``'s fits): the hub's CPU
    per message as a line in the visits (fitted over its layouts), the worker's from its fit.
    ``None`` when either ceiling lacks that run length."""
    points = [
        (float(r["visits"]), float(r["hub_cpu_us_per_message"]))
        for r in hub_runs
        if "error" not in r
        and r["load"]["run"] == run
        and r.get("hub_cpu_us_per_message")
        and r["load"].get("segments", True)  # what workers send (not the before of a comparison)
    ]
    worker = worker_fits.get(str(run))
    if not points or worker is None:
        return None
    if len({x for x, _ in points}) > 1:
        hub, hub_visit = fit(points)
    else:
        hub, hub_visit = sum(y for _, y in points) / len(points), 0.0
    return Costs(
        ingest=worker["ingest_us"],
        visit=max(0.0, worker["visit_us"]),
        delivery=worker["delivery_us"],
        hub=hub,
        store=store,
        hub_visit=hub_visit,
    )


def model_cpu_per_delivery(costs: Costs, workers: int, visits: float, members: int) -> float:
    """What the model says a delivery costs in CPU at ``workers`` workers and ``visits`` (to
    set beside the sweep's measured figure: how far to trust the projection)."""
    d = members - 1
    hub = costs.hub_at(visits) if workers > 1 else 0.0
    return (costs.worker(visits, d) + hub + costs.store) / d
