"""``make loadtest``: run the locust IRC users headless against fastchat and summarise.

Owns: starting a fastchat server for the run (unless ``--host``/``--port`` name one), running
locust headless with its CSV and HTML reports under ``loadtest/reports/``, merging the exact
per-process tallies the locustfile writes, and the summary a person reads at a glance (ending
with ``messages_per_second=<delivered per second>``). Also leaves ``summary.json`` there.
Must never: leave the server or locust running, whatever happens.

Usage: ``python -m loadtest.run --users 200 --rooms 20 --rate 1 --duration 30 --workers 4``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.counting import summarize_ns
from bench.peers import FASTCHAT_BENCH_ARGS

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"


@contextlib.contextmanager
def target(host: str | None, port: int | None, workers: int) -> Iterator[tuple[str, int, str]]:
    """The server to load: the one named, or a fresh fastchat stopped afterwards."""
    if host or port:
        yield host or "127.0.0.1", port or 6667, "given"
        return
    from fastchat.server.runtime.process import running

    with running(FASTCHAT_BENCH_ARGS, workers=workers) as server:
        yield server.host, server.port, f"fastchat, {server.workers} workers, pid {server.pid}"


def run_locust(args: argparse.Namespace, host: str, port: int, reports: Path) -> int:
    spawn_rate = args.spawn_rate or max(1.0, args.users / 2)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(args.users), "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{args.duration:g}s", "--stop-timeout", "3",
        "--host", f"irc://{host}:{port}",
        "--csv", str(reports / "locust"), "--html", str(reports / "locust.html"),
        "--rooms", str(args.rooms), "--rate", f"{args.rate:g}",
        "--irc-sample-every", str(args.sample_every), "--irc-stats-dir", str(reports),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        print("loadtest: locust overran its time; killing it", file=sys.stderr)
        return 124
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def merge(reports: Path) -> dict[str, Any]:
    """Sum the per-process tallies into one summary."""
    tallies = [json.loads(p.read_text()) for p in sorted(reports.glob("irc-tally-*.json"))]
    latencies: list[int] = []
    total: dict[str, Any] = {"processes": len(tallies), "sent": 0, "delivered": 0, "users": 0,
                             "connect_errors": 0, "send_errors": 0, "disconnects": 0, "errors": []}  # fmt: skip
    first, last = [], []
    for t in tallies:
        for key in ("sent", "delivered", "users", "connect_errors", "send_errors", "disconnects"):
            total[key] += t[key]
        total["errors"] += t["errors"][:5]
        latencies.extend(t["latencies_ns"])
        if t["first_send_ns"]:
            first.append(t["first_send_ns"])
            last.append(max(t["last_send_ns"], t["last_delivery_ns"]))
    span = (max(last) - min(first)) / 1e9 if first else 0.0
    total["seconds"] = round(span, 3)
    total["sent_per_second"] = round(total["sent"] / span, 1) if span else 0.0
    total["delivered_per_second"] = round(total["delivered"] / span, 1) if span else 0.0
    total["latency"] = summarize_ns(latencies)
    return total


def summary_text(s: dict[str, Any], args: argparse.Namespace, server: str) -> str:
    lat = s["latency"]
    failures = s["connect_errors"] + s["send_errors"] + s["disconnects"]
    lines = [
        "",
        f"fastchat load test: {s['users']}/{args.users} users in {args.rooms} rooms, "
        f"{args.rate:g} msg/s each, {s['seconds']:.1f} s ({server})",
        f"  sent       {s['sent']:>10,}  ({s['sent_per_second']:,.1f}/s)",
        f"  delivered  {s['delivered']:>10,}  ({s['delivered_per_second']:,.1f}/s, "
        f"{s['delivered'] / s['sent'] if s['sent'] else 0:.2f} per message sent)",
    ]
    if lat.get("samples"):
        lines.append(
            f"  latency    p50 {lat['p50_ms']:.3f} ms  p95 {lat['p95_ms']:.3f} ms  "
            f"p99 {lat['p99_ms']:.3f} ms  max {lat['max_ms']:.3f} ms  ({lat['samples']:,} samples)"
        )
    else:
        lines.append("  latency    no samples")
    lines.append(
        f"  errors     {s['connect_errors']} connect, {s['send_errors']} send, "
        f"{s['disconnects']} disconnects" + ("" if not s["errors"] else f"  e.g. {s['errors'][0]}")
    )
    cores = os.cpu_count() or 1
    busy = s["locust_cpu_cores"]
    lines.append(
        f"  locust     {busy:.2f} of {cores} cores busy on average (start-up included)"
        + (
            "  (saturated: latency includes the load generator's own queueing)"
            if busy > 0.8 * min(cores, args.processes)
            else ""
        )
    )
    lines.append(f"  reports    {args.reports}/locust.html, {args.reports}/locust_stats.csv")
    lines.append("  verdict    " + ("OK" if s["delivered"] > 0 and failures == 0 else "FAILED"))
    lines.append(f"messages_per_second={s['delivered_per_second']:.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1.0, help="messages per second per user")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds, ramp-up included")
    ap.add_argument("--workers", type=int, default=4, help="workers of the server we start")
    ap.add_argument("--host", default=None, help="load this server instead of starting one")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                    help="locust processes (default: up to 2)")  # fmt: skip
    ap.add_argument("--spawn-rate", type=float, default=0.0, help="users/s (default: all in 2 s)")
    ap.add_argument(
        "--sample-every", type=int, default=10, help="one locust event per N deliveries"
    )
    ap.add_argument("--reports", type=Path, default=HERE / "reports")
    args = ap.parse_args(argv)
    if args.host and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"loadtest: loading {args.host} (not loopback) as asked", file=sys.stderr)

    args.reports.mkdir(parents=True, exist_ok=True)
    for old in args.reports.glob("irc-tally-*.json"):
        old.unlink()
    started = time.monotonic()
    with target(args.host, args.port, args.workers) as (host, port, server):
        print(
            f"loadtest: {args.users} users -> {host}:{port} ({server}) for {args.duration:g} s",
            flush=True,
        )
        # locust's forked workers are reaped by its master, so once we have waited for the
        # master their CPU time is all in our RUSAGE_CHILDREN (the server is not reaped yet)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        rc = run_locust(args, host, port, args.reports)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        locust_wall = time.monotonic() - t0
    s = merge(args.reports)
    locust_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    s["locust_cpu_seconds"] = round(locust_cpu, 2)
    s["locust_cpu_cores"] = round(locust_cpu / locust_wall, 2) if locust_wall else 0.0
    s.update(locust_exit_code=rc, wall_seconds=round(time.monotonic() - started, 1),
             users_asked=args.users, rooms=args.rooms, rate=args.rate)  # fmt: skip
    (args.reports / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    print(summary_text(s, args, server))
    failures = s["connect_errors"] + s["send_errors"] + s["disconnects"]
    return 0 if s["delivered"] > 0 and failures == 0 and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
