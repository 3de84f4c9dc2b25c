"""What the read barrier costs a query: round-trip time of WHOIS, NAMES and PING, per worker count.

``python -m bench.querycost --workers 1,4 --queries 2000`` starts a fresh server for each
worker count, registers an asker and a target on different workers (when there are several)
and times each query from the send to its last reply line, one at a time. PING is not a
query (it passes no barrier): it is the baseline of the same loop. Prints one table; the
figures for the README come from here.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker
from tests.ircclient import IRCClient

QUERIES = {
    "PING": ("PING :x", r" PONG "),
    "WHOIS": ("WHOIS target", r" 318 "),
    "NAMES": ("NAMES #lobby", r" 366 "),
}


def measure(workers: int, count: int) -> dict[str, list[float]]:
    with process.running(["--no-flood-control"], workers=workers) as server:
        pids = server.worker_pids()
        asker = client_on_worker(server, pids[0], "asker")
        target: IRCClient = client_on_worker(server, pids[-1], "target")
        try:
            times: dict[str, list[float]] = {name: [] for name in QUERIES}
            for _ in range(count):
                for name, (line, end) in QUERIES.items():
                    start = time.perf_counter()
                    asker.send(line)
                    asker.expect(end)
                    times[name].append(time.perf_counter() - start)
            return times
        finally:
            asker.close()
            target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'workers':>7} {'query':>6} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    for workers in (int(w) for w in args.workers.split(",")):
        for name, samples in measure(workers, args.queries).items():
            samples.sort()
            p50 = samples[len(samples) // 2] * 1e6
            p99 = samples[int(len(samples) * 0.99)] * 1e6
            mean = statistics.fmean(samples) * 1e6
            print(f"{workers:>7} {name:>6} {p50:>8.0f} {p99:>8.0f} {mean:>8.0f}")


if __name__ == "__main__":
    main()
