"""``make bench``: peak throughput, latency and memory of fastchat and its peers, side by side.

Owns: the scenario table, the order of runs (each scenario on every server back to back, so
the noisy shared machine affects them alike; every other round in reverse), measuring server
CPU and RSS with psutil over the server's process tree during the steady window only, and
writing the results.
Must never: reach beyond 127.0.0.1, run without a time bound, or leave a server running.

Usage: ``python -m bench.run [--peers ngircd,inspircd] [--scenarios fanout,rooms,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from bench import peers, profiler, report, scaling
from bench.historyprobe import Prober, ProbeSpec
from bench.loadgen import LoadResult, LoadSpec, Placement, raise_fd_limit, run_load

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    load: LoadSpec
    reports: str  # what the scenario is judged by: "throughput", "latency" or "memory"
    # flags fastchat gets besides peers.FASTCHAT_BENCH_ARGS (fastchat only, as is a load with
    # capabilities): without any, fastchat runs as configured by default, history on
    server_args: tuple[str, ...] = ()
    # a CHATHISTORY probe through the measured window (bench/historyprobe.py)
    history_probe: ProbeSpec | None = None

    @property
    def fastchat_only(self) -> bool:
        return bool(
            self.load.caps or self.server_args or self.history_probe or self.load.transport != "tcp"
        )


#: What a client of the "-tagged" scenarios negotiates (msgid comes with message-tags)
TAGGED = "server-time message-tags echo-message"
#: The "-nohistory" scenarios: fastchat keeps no history (issue 12), against the default
NO_HISTORY = ("--no-history",)
#: The "-kernel" scenarios: clients where the kernel put them, against channel-affine
#: placement, the default (issue 14 part 3)
KERNEL = ("--placement", "kernel")
#: The transports besides plain TCP (issue 13): the listener each needs, on a free port
TLS = ("--tls-port", "-1")
WEB = ("--web-port", "-1")
# Windows: enough messages in flight that every server is busy (rooms: all of them saturate one
# core at 64 per room), few enough that no send queue comes near a limit. InspIRCd's fan-out
# falls off a cliff at 1,024 in flight, so fanout stays at 512.
ROOMS = LoadSpec("closed", rooms=40, members=10, talkers=2, window=64)
FANOUT = LoadSpec("closed", rooms=1, members=50, talkers=2, window=512)
# Issue 14's small windows: 50 in flight per room, topped up as soon as any has drained
# (rooms refills once half its window has). The talkers' lines per write, about the runs the
# server relays as one record, are measured and shown: under this generator's loop a top-up
# still carries what drained since its last turn, a dozen lines or more, not one
ROOMS_SMALL = LoadSpec("closed", rooms=40, members=10, talkers=2, window=50, topup=True)
LATENCY = LoadSpec("open", rooms=100, members=10, rate=1000.0)
IDLE = LoadSpec("idle", rooms=500, members=10)
# Each "-nohistory" scenario comes right after its own, so a round runs them back to back
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("fanout", FANOUT, "throughput"),
        Scenario("rooms", ROOMS, "throughput"),
        Scenario("rooms-nohistory", ROOMS, "throughput", NO_HISTORY),
        Scenario("rooms-small", ROOMS_SMALL, "throughput"),
        Scenario("rooms-kernel", ROOMS, "throughput", KERNEL),
        Scenario("rooms-small-kernel", ROOMS_SMALL, "throughput", KERNEL),
        # rooms, and meanwhile one more member of the first room asks for its latest 100
        # lines every 20 ms: how long a CHATHISTORY answer takes under load
        Scenario("history", ROOMS, "throughput", history_probe=ProbeSpec()),
        # IRCv3: every client negotiated the tags a modern client asks for, and echo-message
        # (fastchat only: what tags and echoes cost against the plain scenarios above)
        Scenario(
            "fanout-tagged",
            LoadSpec("closed", rooms=1, members=50, talkers=2, window=512, caps=TAGGED),
            "throughput",
        ),
        Scenario("rooms-tagged", replace(ROOMS, caps=TAGGED), "throughput"),
        # The same loads over TLS and over WebSocket (fastchat only): their cost per
        # delivery against plain TCP's in the same run
        Scenario("fanout-tls", replace(FANOUT, transport="tls"), "throughput", TLS),
        Scenario("rooms-tls", replace(ROOMS, transport="tls"), "throughput", TLS),
        Scenario("fanout-ws", replace(FANOUT, transport="ws"), "throughput", WEB),
        Scenario("rooms-ws", replace(ROOMS, transport="ws"), "throughput", WEB),
        Scenario("latency", LATENCY, "latency"),
        Scenario("latency-nohistory", LATENCY, "latency", NO_HISTORY),
        Scenario("idle", IDLE, "memory"),
        Scenario("idle-tls", replace(IDLE, transport="tls"), "memory", TLS),
        Scenario("idle-ws", replace(IDLE, transport="ws"), "memory", WEB),
    )
}
#: The "workers" scenario: these scenarios at these fastchat worker counts.
WORKER_SWEEP = (("fanout", "rooms", "rooms-small"), (1, 2, 4))
#: ...and idle memory at these counts (issue 14: at most 2 KB per connection at four)
IDLE_SWEEP = (1, 4)
ALL = (*SCENARIOS, "workers")


def measure(
    server: str, scenario: Scenario, workers: int, load: LoadSpec, profile_to: Path | None = None
) -> dict[str, Any]:
    """One fresh server, one load; every figure the report needs, or the reason there is none.
    With ``profile_to``, py-spy samples the server's processes during the window (a separate
    run: the profiler takes CPU, so its figures are not reported)."""
    row: dict[str, Any] = {"scenario": scenario.name, "server": server, "workers": workers}
    try:
        with peers.launch(server, workers, scenario.server_args) as srv:
            row["version"] = srv.version
            row["workers"] = srv.workers  # the peers are single-process whatever was asked

            def probe() -> dict[str, float]:
                tree = srv.tree()
                # fastchat: by role, read once, so that the roles add up to the total
                roles = peers.cpu_by_role(tree) if server == "fastchat" else {}
                return {
                    "cpu_s": sum(roles.values()) if roles else peers.cpu_seconds(tree),
                    "rss": float(peers.rss_bytes(tree)),
                    "processes": float(len(tree)),
                    **{ROLE_PREFIX + role: cpu for role, cpu in roles.items()},
                }

            # which worker holds each client, read while they are all connected
            held: dict[int, str] = {}
            placement: Placement = []

            def on_ready(where: Placement) -> None:
                if server == "fastchat":
                    placement.extend(where)
                    held.update(peers.worker_of_ports(srv.tree()))

            spy = profiler.Recorder(srv.tree, profile_to) if profile_to else None
            spec = scenario.history_probe
            history = Prober(srv.host, srv.port, spec) if spec else None

            def on_window(seconds: float) -> None:
                if server == "fastchat" and scenario.server_args != KERNEL:
                    # clients moved after they joined (placement = affine, the default):
                    # where they sit once the load runs
                    held.update(peers.worker_of_ports(srv.tree()))
                if spy is not None:
                    spy.start(seconds)
                if history is not None:
                    history.start(seconds)

            port = srv.port_for(load.transport)
            result = run_load(srv.host, port, load, probe, on_window, on_ready)
            if spy is not None:
                row["profile"] = spy.finish()
            if history is not None:
                row["chathistory"] = history.finish()
    except peers.Unavailable as e:
        row["error"] = f"unavailable: {e}"
        return row
    except (RuntimeError, TimeoutError, OSError) as e:
        row["error"] = f"failed: {type(e).__name__}: {e}"
        return row
    row.update(_figures(result))
    if placement:
        row.update(_spread(placement, held, result))
    return row


#: Probe keys of the server's CPU seconds by process role (peers.cpu_by_role)
ROLE_PREFIX = "cpu_s:"


def _spread(placement: Placement, held: dict[int, str], r: LoadResult) -> dict[str, Any]:
    """Where the clients sat: how many workers a message visited on average (see
    :func:`bench.scaling.visits_per_message`), and how many clients the workers missed."""
    where = [(room, held[port]) for room, port in placement if port in held]
    visits = scaling.visits_per_message(where, r.sent_by_room)
    out: dict[str, Any] = {"clients_unplaced": len(placement) - len(where)}
    if visits is not None:
        out["visits_per_message"] = round(visits, 3)
    return out


def _figures(r: LoadResult) -> dict[str, Any]:
    delivered = r.delivered_per_s * r.window_seconds
    server_cpu = r.probe_end.get("cpu_s", 0.0) - r.probe_start.get("cpu_s", 0.0)
    out: dict[str, Any] = {
        "clients": r.spec["rooms"] * r.spec["members"],
        "connected": r.clients_connected,
        "setup_seconds": r.setup_seconds,
        "setup_failures": r.setup_failures[:5],
        "window_seconds": r.window_seconds,
        "sent_per_s": r.sent_per_s,
        "deliveries_per_s": r.delivered_per_s,
        "server_cpu_cores": round(server_cpu / r.window_seconds, 3) if r.window_seconds else None,
        "generator_cpu_cores": round(r.generator_cpu_s / r.window_seconds, 3)
        if r.window_seconds
        else None,
        "generator_busiest_process": r.generator_busiest,
        "expected": r.expected_total,
        "received": r.received_total,
        "lost": r.lost,
        "disconnects": r.disconnects,
        "latency": r.latency,
        "server_processes": int(r.probe_end.get("processes", 0)),
    }
    if delivered > 0:
        out["server_cpu_us_per_delivery"] = round(server_cpu / delivered * 1e6, 3)
        out["generator_cpu_us_per_delivery"] = round(r.generator_cpu_s / delivered * 1e6, 3)
        # the same, by process role (fastchat: supervisor, hub, worker0..., store, readers)
        roles = {
            key[len(ROLE_PREFIX) :]: r.probe_end[key] - r.probe_start.get(key, 0.0)
            for key in r.probe_end
            if key.startswith(ROLE_PREFIX)
        }
        if roles:
            out["role_cpu_us_per_delivery"] = {
                role: round(cpu / delivered * 1e6, 4) for role, cpu in sorted(roles.items())
            }
        if r.sent_per_s > 0:
            out["deliveries_per_message"] = round(r.delivered_per_s / r.sent_per_s, 3)
    if r.refills:
        # lines per talker write: about the runs the server relays (engine/relay.py)
        out["lines_per_write"] = round(r.sent_total / r.refills, 2)
    if r.spec["mode"] == "idle" and r.clients_connected:
        grown = r.probe_end.get("rss", 0.0) - r.probe_before.get("rss", 0.0)
        out["rss_per_connection_bytes"] = round(grown / r.clients_connected)
        out["rss_total_bytes"] = int(r.probe_end.get("rss", 0.0))
    return out


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT, check=False)
        return done.stdout.strip()

    # the server measured is the working tree: say so when it differs from the commit
    commit = git("rev-parse", "--short", "HEAD") + (
        "+dirty" if git("status", "--porcelain", "fastchat") else ""
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        # the machine is shared: how busy it was as this run started (1, 5, 15 minutes)
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default="", help="comma-separated: ngircd,inspircd (default none)")
    ap.add_argument(
        "--scenarios", default=",".join(ALL), help=f"comma-separated, of {','.join(ALL)}"
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="fastchat workers outside the sweep (default 1)"
    )
    ap.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per run (default 5)"
    )
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    ap.add_argument("--rounds", type=int, default=1, help="repeat everything, report medians")
    ap.add_argument("--processes", type=int, default=2, help="load generator processes (default 2)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after measuring, run each throughput scenario once more under py-spy",
    )
    ap.add_argument(
        "--no-quickack",
        action="store_true",
        help="clients leave delayed ACKs on (see BENCHMARKS.md: Nagle on loopback)",
    )
    ap.add_argument("--no-fastchat", action="store_true", help="only the peers (harness checks)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    ap.add_argument(
        "--benchmarks-md",
        type=lambda text: Path(text) if text else None,
        default=ROOT / "BENCHMARKS.md",
        help="rewrite this file with the latest table ('' to leave it alone)",
    )
    args = ap.parse_args(argv)

    wanted = [s for s in args.scenarios.split(",") if s]
    unknown = set(wanted) - set(ALL)
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    peer_names = [p for p in args.peers.split(",") if p]
    servers = ([] if args.no_fastchat else ["fastchat"]) + peer_names
    fd_limit = raise_fd_limit()
    print(
        f"bench: servers {', '.join(servers)}; scenarios {', '.join(wanted)}; "
        f"{args.duration:g} s measured per run; open files limit {fd_limit}",
        flush=True,
    )

    def tuned(load: LoadSpec) -> LoadSpec:
        return replace(
            load,
            duration=args.duration,
            warmup=args.warmup,
            processes=args.processes,
            quickack=not args.no_quickack,
        )

    plan: list[tuple[str, Scenario, int, str | None]] = []
    for name in wanted:
        if name == "workers":
            continue
        scenario = SCENARIOS[name]
        plan += [
            (server, scenario, args.workers, None)
            for server in servers
            if server == "fastchat" or not scenario.fastchat_only  # peers: the plain ones
        ]
    if "workers" in wanted and not args.no_fastchat:
        names, counts = WORKER_SWEEP
        plan += [("fastchat", SCENARIOS[n], w, "workers") for n in names for w in counts]
        plan += [("fastchat", SCENARIOS["idle"], w, "workers") for w in IDLE_SWEEP]

    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for rnd in range(args.rounds):
        # every other round backwards (A B, B A, ...): a scenario and the one beside it (a
        # server and the next, history on and off) take turns going first, so a drift of the
        # shared machine within a round does not always favour the same one
        for server, scenario, workers, sweep in plan if rnd % 2 == 0 else plan[::-1]:
            row = measure(server, scenario, workers, tuned(scenario.load))
            row["round"] = rnd
            row["sweep"] = sweep
            rows.append(row)
            print("  " + report.one_line(row), flush=True)

    if args.profile and not args.no_fastchat:
        for name in [n for n in wanted if n in SCENARIOS and SCENARIOS[n].reports == "throughput"]:
            dest = args.out / f"profile-{name}-w{args.workers}.txt"
            row = measure(
                "fastchat", SCENARIOS[name], args.workers, tuned(SCENARIOS[name].load), dest
            )
            print(f"  profile {name}: " + row.get("profile", row.get("error", "?")), flush=True)

    results = {
        "machine": machine(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "generator_processes": args.processes,
            "fastchat_workers": args.workers,
            "quickack": not args.no_quickack,
            "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
            "scenarios": {
                n: {
                    **asdict(s.load),
                    "server_args": list(s.server_args),
                    "history_probe": asdict(s.history_probe) if s.history_probe else None,
                }
                for n, s in SCENARIOS.items()
            },
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        "runs": rows,
        "summary": summarize(rows, args.workers),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    table = report.markdown(results)
    (args.out / "latest.md").write_text(table)
    chart = report.chart(results, args.out / "latest.png")
    if args.benchmarks_md is not None:
        args.benchmarks_md.write_text(report.benchmarks_md(results, table, args.out))
    print()
    print(table)
    print(
        f"results: {args.out / 'latest.json'}, {args.out / 'latest.md'}"
        + (f", {chart}" if chart else "")
    )
    return 0


def summarize(rows: list[dict[str, Any]], fastchat_workers: int) -> list[dict[str, Any]]:
    """Median over rounds of each (scenario, server, workers, sweep) cell."""
    cells: dict[tuple[str, str, int, Any], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["scenario"], r["server"], r["workers"], r.get("sweep")), []).append(r)
    out = []
    for (scenario, server, workers, sweep), runs in cells.items():
        good = [r for r in runs if "error" not in r]
        cell: dict[str, Any] = {
            "scenario": scenario,
            "server": server,
            "workers": workers,
            "sweep": sweep,
            "rounds": len(runs),
            "ok_rounds": len(good),
        }
        if not good:
            cell["error"] = runs[-1].get("error", "no data")
            out.append(cell)
            continue
        for key in (
            "deliveries_per_s",
            "sent_per_s",
            "server_cpu_us_per_delivery",
            "generator_cpu_us_per_delivery",
            "server_cpu_cores",
            "generator_cpu_cores",
            "generator_busiest_process",
            "rss_per_connection_bytes",
        ):
            vals = [r[key] for r in good if r.get(key) is not None]
            if vals:
                cell[key] = round(statistics.median(vals), 3)
        for key in ("p50_ms", "p99_ms", "max_ms"):
            vals = [r["latency"][key] for r in good if key in r.get("latency", {})]
            if vals:
                cell[key] = round(statistics.median(vals), 3)
        for key in ("visits_per_message", "deliveries_per_message", "lines_per_write"):
            vals = [r[key] for r in good if r.get(key) is not None]
            if vals:
                cell[key] = round(statistics.median(vals), 3)
        roles = sorted({role for r in good for role in r.get("role_cpu_us_per_delivery", {})})
        if roles:
            cell["role_cpu_us_per_delivery"] = {
                role: round(
                    statistics.median(
                        r["role_cpu_us_per_delivery"].get(role, 0.0)
                        for r in good
                        if "role_cpu_us_per_delivery" in r
                    ),
                    4,
                )
                for role in roles
            }
        history = [r["chathistory"] for r in good if "chathistory" in r]
        if history:
            cell["chathistory"] = _history_cell(history)
        cell["lost"] = sum(r["lost"] for r in good)
        cell["disconnects"] = sum(r["disconnects"] for r in good)
        cell["connected"] = min(r["connected"] for r in good)
        cell["clients"] = good[0]["clients"]
        cell["version"] = good[0].get("version", "")
        out.append(cell)
    _paired_ratios(rows, out)
    return out


def _paired_ratios(rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> None:
    """The worker sweep's ratios to one worker, each round's run against the one-worker run
    of the same scenario in the same round (they ran one after the other), then the median
    over rounds: ``rate_vs_one`` (deliveries/s) and ``cpu_vs_one`` (server CPU per delivery).
    A ratio of two medians would compare runs minutes apart on a shared machine whose load
    drifts between rounds; a pair shares its moment. Set only where every round that ran
    both has one run of each (rows carry their ``round``)."""
    by_round: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in rows:
        if r.get("sweep") != "workers" or "error" in r or "round" not in r:
            continue
        key = (r["scenario"], r["workers"], r["round"])
        if key in by_round:
            return  # two runs of one cell in a round: no pairing is defined
        by_round[key] = r
    for cell in cells:
        if cell.get("sweep") != "workers" or cell["workers"] == 1 or "error" in cell:
            continue
        rates, cpus = [], []
        for (scenario, workers, rnd), r in by_round.items():
            one = by_round.get((scenario, 1, rnd))
            if scenario != cell["scenario"] or workers != cell["workers"] or one is None:
                continue
            if one.get("deliveries_per_s") and r.get("deliveries_per_s") is not None:
                rates.append(r["deliveries_per_s"] / one["deliveries_per_s"])
            key = "server_cpu_us_per_delivery"
            if one.get(key) and r.get(key) is not None:
                cpus.append(r[key] / one[key])
        if rates and cpus:
            cell["rate_vs_one"] = round(statistics.median(rates), 3)
            cell["cpu_vs_one"] = round(statistics.median(cpus), 3)
            cell["paired_rounds"] = min(len(rates), len(cpus))


def _history_cell(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """The CHATHISTORY probe over rounds: median percentiles, every answer's line counts and
    timeouts, and any round's error."""
    out: dict[str, Any] = {
        "samples": sum(p.get("samples", 0) for p in probes),
        "timeouts": sum(p.get("timeouts", 0) for p in probes),
        "short": sum(p.get("short", 0) for p in probes),
        "room": probes[0].get("room"),
        "limit": probes[0].get("limit"),
    }
    for key in ("p50_ms", "p99_ms", "max_ms"):
        vals = [p[key] for p in probes if key in p]
        if vals:
            out[key] = round(statistics.median(vals), 3)
    for key, pick in (("lines_min", min), ("lines_max", max)):
        vals = [p[key] for p in probes if key in p]
        if vals:
            out[key] = pick(vals)
    pings = [p["ping"] for p in probes if "ping" in p]
    if pings:  # the PING after each answer, likewise
        out["ping"] = {
            key: round(statistics.median(p[key] for p in pings), 3)
            for key in ("p50_ms", "p99_ms", "max_ms")
            if all(key in p for p in pings)
        }
    errors = [p["error"] for p in probes if "error" in p]
    if errors:
        out["error"] = errors[-1]
    return out


if __name__ == "__main__":
    sys.exit(main())
