"""What a SIGKILL can cost the history: how long the store's writer takes from a decision
to its commit, under load.

``python -m bench.durability [--workers 1,4] [--duration 5]`` runs, on a fresh fastchat each
time, the rooms load (closed loop: as fast as the server relays, the writer saturated) and
the latency load (open loop: 1,000 messages per second over 1,000 clients), stops the server
gracefully, and reads what its store logged at the stop: the delay from the submit of each
batch's oldest operation to its commit, p50/p99/max. A decision reaches the writer at the end
of the loop turn that made it (a millisecond or so more), so after a SIGKILL of the process
that keeps the store (the hub, or the one worker) the history lacks at most the messages
decided in about that long (README, "Durability").
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace

from bench.loadgen import LoadSpec, run_load
from bench.peers import FASTCHAT_BENCH_ARGS
from fastchat.server.runtime import process

LOADS = {
    "rooms": LoadSpec("closed", rooms=40, members=10, talkers=2, window=64),
    "latency": LoadSpec("open", rooms=100, members=10, rate=1000.0),
}
_LINE = re.compile(
    r"(\d+) operations written in (\d+) commits; from submit to commit "
    r"p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms"
)


def measure(load: str, workers: int, duration: float) -> str:
    server = process.start(list(FASTCHAT_BENCH_ARGS), workers=workers)
    try:
        spec = replace(LOADS[load], duration=duration, warmup=1.0)
        result = run_load(server.host, server.port, spec)
    finally:
        server.stop()
    m = _LINE.search(server.log_text())
    if m is None:
        return f"{load:8} workers {workers}: no store summary in the log"
    ops, commits, p50, p99, top = m.groups()
    return (
        f"{load:8} workers {workers}: {result.sent_per_s:,.0f} msg/s; {ops} runs in {commits} "
        f"commits; submit to commit p50 {p50} ms, p99 {p99} ms, max {top} ms"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__)
    ap.add_argument("--workers", default="1,4")
    ap.add_argument("--duration", type=float, default=5.0)
    args = ap.parse_args(argv)
    for workers in (int(w) for w in args.workers.split(",")):
        for load in LOADS:
            print(measure(load, workers, args.duration), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
