"""``python -m bench.idlemem``: where an idle connection's bytes go, by process role.

Owns: starting fastchat (as ``make bench``'s idle scenario does: 500 rooms of 10 silent
clients, ``bench/run.py``'s ``IDLE``), reading every server process's resident memory before
the clients connect and once they all sit idle, and printing the growth per connection by
role (supervisor, hub, each worker, the store's writer, the history readers), at each
``--workers`` count asked for, alternating the counts over ``--rounds`` so the shared
machine affects them alike.
Must never: reach beyond 127.0.0.1, or leave a server running.

RSS is what the operating system charges: Python's allocator keeps freed arenas, so a
figure is an upper bound of what the objects need. The total is ``bench/run.py``'s
"RSS/connection" figure, split up. The "before" reading waits :data:`SETTLE` seconds
more than ``bench.peers`` does for the server to settle: the store's writer was still
growing by a fixed ~0.65 MB then (its SQLite caches), which was counted per connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import psutil

from bench import peers
from bench.loadgen import LoadSpec, run_load

IDLE = LoadSpec("idle", rooms=500, members=10)
#: Seconds the "before" reading waits after start-up (see above)
SETTLE = 1.5


def rss_by_role(procs: list[psutil.Process]) -> dict[str, int]:
    """Resident bytes of ``procs`` by role (workers as ``worker0``... in pid order, as
    :func:`bench.peers.cpu_by_role` names them)."""
    workers = sorted(
        (p for p in procs if peers.role_of(peers._name(p)) == "worker"), key=lambda p: p.pid
    )
    label = {p.pid: f"worker{i}" for i, p in enumerate(workers)}
    out: dict[str, int] = {}
    for p in procs:
        role = label.get(p.pid) or peers.role_of(peers._name(p))
        with contextlib.suppress(psutil.NoSuchProcess):
            out[role] = out.get(role, 0) + p.memory_info().rss
    return out


def measure(workers: int, spec: LoadSpec, args: tuple[str, ...]) -> dict[str, Any]:
    """One fresh server at ``workers``; bytes per connection by role, and in all."""
    with peers.launch("fastchat", workers, args) as srv:
        probes: list[dict[str, int]] = []

        def probe() -> dict[str, float]:
            if not probes:
                time.sleep(SETTLE)
            probes.append(rss_by_role(srv.tree()))
            return {}

        result = run_load(srv.host, srv.port, spec, probe)
    before, after = probes[0], probes[-1]
    n = result.clients_connected or 1
    per_role = {role: (after[role] - before.get(role, 0)) / n for role in sorted(after)}
    return {
        "workers": workers,
        "clients": result.clients_connected,
        "per_connection": {**per_role, "total": sum(per_role.values())},
        "rss_after": after,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.idlemem", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--workers", default="1,4", help="comma-separated counts (default 1,4)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--rooms", type=int, default=IDLE.rooms)
    ap.add_argument("--members", type=int, default=IDLE.members)
    ap.add_argument("--json", action="store_true", help="print every row as JSON too")
    ap.add_argument("server_args", nargs="*", help="more fastchat flags (after --)")
    ns = ap.parse_args(argv)
    spec = replace(IDLE, rooms=ns.rooms, members=ns.members)
    counts = [int(w) for w in ns.workers.split(",") if w]
    rows: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
    for r in range(ns.rounds):
        for w in counts if r % 2 == 0 else reversed(counts):
            row = measure(w, spec, tuple(ns.server_args))
            rows[w].append(row)
            if ns.json:
                print(json.dumps(row), flush=True)
            per = row["per_connection"]
            print(
                f"round {r} workers {w}: "
                + ", ".join(f"{k} {v:,.0f}" for k, v in per.items())
                + " B/connection",
                flush=True,
            )
    for w, got in rows.items():
        roles = sorted({k for row in got for k in row["per_connection"]})
        med = {k: statistics.median(row["per_connection"].get(k, 0) for row in got) for k in roles}
        print(f"median, workers {w}: " + ", ".join(f"{k} {v:,.0f}" for k, v in med.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
