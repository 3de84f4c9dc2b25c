"""Turning benchmark results into what people read: a console line per run, the Markdown
tables (results, fastchat-vs-peer ratios, targets), the PNG chart and ``BENCHMARKS.md``.

Owns: presentation and the target checks (the figures the issue promises).
Must never: measure anything, or alter a figure on its way to the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import scaling

Cell = dict[str, Any]

#: The targets from the issue: (label, scenario, key, comparison, limit).
FASTCHAT_LIMITS = (
    ("fanout: server CPU per delivery", "fanout", "server_cpu_us_per_delivery", 0.5, "µs"),
    ("rooms: server CPU per delivery", "rooms", "server_cpu_us_per_delivery", 0.65, "µs"),
    ("latency: p99", "latency", "p99_ms", 5.0, "ms"),
    ("idle: RSS per connection", "idle", "rss_per_connection_bytes", 2048, "B"),
)
#: Idle memory at more workers (issue 14): RSS per connection at most this at four workers
IDLE_AT_FOUR_LIMIT = 2048
#: More workers (issue 14): each worker count's deliveries/s at least this share of one
#: worker's, at no more than SWEEP_CPU_CEILING times its CPU per delivery
SWEEP_SCENARIOS = ("fanout", "rooms", "rooms-small")
SWEEP_RATE_FLOORS = ((2, 1.0), (4, 0.9))
SWEEP_CPU_CEILING = 1.3
#: History (issue 12): rooms with history on keeps this share of the deliveries/s with it off
HISTORY_RATE_FLOOR = 0.8
#: ... the latency scenario's p99 with history on, at most (ms)
HISTORY_LATENCY_P99_MS = 2.0
#: ... and CHATHISTORY LATEST of 100 lines, while rooms runs: p99 under this (ms)
CHATHISTORY_P99_MS = 5.0


def _base(scenario: str) -> str:
    """The scenario a variant is measured like: ``rooms-tagged``, ``rooms-nohistory`` and
    ``history`` (rooms with a CHATHISTORY probe) are rooms; ``latency-nohistory`` is latency."""
    return "rooms" if scenario == "history" else scenario.split("-")[0]


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if (isinstance(v, float) and v >= 1000) or isinstance(v, int):
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def one_line(row: Cell) -> str:
    """The console line printed as each run finishes."""
    head = f"{row['scenario']:<17} {row['server']:<9} w{row['workers']}"
    if "error" in row:
        return f"{head}  {row['error']}"
    lat = row.get("latency", {})
    parts = [
        f"{row['connected']}/{row['clients']} clients",
        f"{_num(row.get('deliveries_per_s'))} deliveries/s",
    ]
    for who in ("server", "generator"):
        if f"{who}_cpu_us_per_delivery" in row:
            parts.append(f"{who} {row[f'{who}_cpu_us_per_delivery']:.3f} µs/delivery")
    if row.get("server_cpu_cores") is not None and row.get("deliveries_per_s"):
        parts.append(
            f"busy: server {row['server_cpu_cores']:.2f} cores, generator "
            f"{row.get('generator_cpu_cores', 0):.2f} (busiest process {row.get('generator_busiest_process', 0):.0%})"
        )
    if lat.get("samples"):
        parts.append(f"p50/p99/max {lat['p50_ms']:.2f}/{lat['p99_ms']:.2f}/{lat['max_ms']:.2f} ms")
    if "chathistory" in row:
        parts.append(f"CHATHISTORY {_chathistory(row['chathistory'])}")
    if "rss_per_connection_bytes" in row:
        parts.append(f"RSS {row['rss_per_connection_bytes']:,} B/connection")
    parts.append(
        f"lost {row['lost']}"
        + (f", {row['disconnects']} disconnects" if row["disconnects"] else "")
    )
    return f"{head}  " + ", ".join(parts)


def _cells(results: dict[str, Any], sweep: str | None) -> list[Cell]:
    return [c for c in results["summary"] if c.get("sweep") == sweep]


def _find(cells: list[Cell], scenario: str, server: str, workers: int | None = None) -> Cell | None:
    for c in cells:
        same = c["scenario"] == scenario and c["server"] == server
        if same and "error" not in c and (workers is None or c["workers"] == workers):
            return c
    return None


def _loss(c: Cell) -> str:
    if c["connected"] < c["clients"]:
        return f"⚠ {c['clients'] - c['connected']} not connected"
    if c["lost"] or c["disconnects"]:
        return f"⚠ {c['lost']} lost, {c['disconnects']} disconnects"
    return "0"


def _busy(c: Cell) -> str:
    if c.get("server_cpu_cores") is None:
        return ""
    return (
        f"{c['server_cpu_cores']:.2f} / {c.get('generator_cpu_cores', 0):.2f} "
        f"({c.get('generator_busiest_process', 0):.0%})"
    )


def markdown(results: dict[str, Any]) -> str:
    """Results, ratios and targets as Markdown tables."""
    main = _cells(results, None)
    sweep = _cells(results, "workers")
    servers = list(dict.fromkeys(c["server"] for c in main))
    out = [
        "### Results",
        "",
        "| scenario | server | workers | deliveries/s | server CPU µs/delivery | generator CPU µs/delivery "
        "| cores busy: server / generator (busiest process) | latency p50 / p99 / max ms | RSS/connection | loss |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in main + sweep:
        name = c["scenario"] + (" (workers)" if c.get("sweep") else "")
        if "error" in c:
            out.append(
                f"| {name} | {c['server']} | {c['workers']} | {c['error'][:120]} |  |  |  |  |  |"
            )
            continue
        lat = (
            f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} / {c['max_ms']:.2f}"
            if "p99_ms" in c and _base(c["scenario"]) == "latency"
            else ""
        )
        thr = _base(c["scenario"]) in ("fanout", "rooms", "latency")
        out.append(
            f"| {name} | {c['server']} | {c['workers']} | {_num(c.get('deliveries_per_s')) if thr else ''} "
            f"| {_num(c.get('server_cpu_us_per_delivery')) if thr else ''} "
            f"| {_num(c.get('generator_cpu_us_per_delivery')) if thr else ''} | {_busy(c) if thr else ''} | {lat} "
            f"| {_num(c.get('rss_per_connection_bytes')) + ' B' if 'rss_per_connection_bytes' in c else ''} "
            f"| {_loss(c)} |"
        )
    out += _roles_table(sweep)
    peers = [s for s in servers if s != "fastchat"]
    if "fastchat" in servers and peers:
        out += [
            "",
            "### fastchat / peer, same run (deliveries/s: higher is better; the rest: lower is better)",
            "",
            "| scenario | figure | fastchat | "
            + " | ".join(f"{p} | fastchat/{p}" for p in peers)
            + " |",
            "|---|---|---:|" + "---:|---:|" * len(peers),
        ]
        figures = (
            ("fanout", "deliveries_per_s"),
            ("fanout", "server_cpu_us_per_delivery"),
            ("rooms", "deliveries_per_s"),
            ("rooms", "server_cpu_us_per_delivery"),
            ("latency", "p50_ms"),
            ("latency", "p99_ms"),
            ("latency", "max_ms"),
            ("idle", "rss_per_connection_bytes"),
        )
        for scenario, key in figures:
            fc = _find(main, scenario, "fastchat")
            if fc is None or key not in fc:
                continue
            row = f"| {scenario} | {key} | {_num(fc[key])} |"
            for p in peers:
                pc = _find(main, scenario, p)
                if pc is None or not pc.get(key):
                    row += " – | – |"
                else:
                    row += f" {_num(pc[key])} | {fc[key] / pc[key]:.2f}× |"
            out.append(row)
    out += _history_tables(main)
    checks = targets(results)
    if checks:
        out += ["", "### Targets (fastchat)", "", "| target | measured | met |", "|---|---|---|"]
        out += [
            f"| {label} | {figure} | {'yes' if ok else '**no**'} |" for label, figure, ok in checks
        ]
    return "\n".join(out) + "\n"


#: The roles of the breakdown, in the order shown (workers go between hub and store)
_ROLES_BEFORE = ("supervisor", "hub")
_ROLES_AFTER = ("store", "readers")


def _roles_table(sweep: list[Cell]) -> list[str]:
    """The worker sweep's server CPU per delivery by process role, and the workers a message
    visits (see bench/scaling.py); nothing when no cell has the breakdown."""
    cells = [c for c in sweep if "error" not in c and c.get("role_cpu_us_per_delivery")]
    if not cells:
        return []
    out = [
        "",
        "### Worker sweep: where the server's CPU goes (µs per delivery, by process)",
        "",
        "Each process's CPU over the measured window divided by the deliveries in it; the "
        "roles add up to the total. *Workers* lists each worker (in pid order), then their "
        "sum. *Visits*: the workers a message visits, i.e. the distinct workers holding a "
        "member of its room (the sender's included: the hub sends its record to each), "
        "averaged over the messages sent, from which worker holds each client connection. "
        "*Lines per write*: the talkers' lines per `send`, about the runs the server relays "
        "as one record (engine/relay.py).",
        "",
        "| scenario | workers | deliveries/s | deliveries per message | lines per write | total "
        "| supervisor | hub | workers: each / sum | store | readers | visits per message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in sorted(cells, key=lambda c: (c["scenario"], c["workers"])):
        roles: dict[str, float] = c["role_cpu_us_per_delivery"]
        workers = [v for k, v in sorted(roles.items()) if k.startswith("worker")]
        each = " / ".join(f"{v:.3f}" for v in workers)
        fixed = [_num(roles.get(r)) for r in _ROLES_BEFORE]
        after = [_num(roles.get(r)) for r in _ROLES_AFTER]
        out.append(
            f"| {c['scenario']} | {c['workers']} | {_num(c.get('deliveries_per_s'))} "
            f"| {_num(c.get('deliveries_per_message'))} | {_num(c.get('lines_per_write'))} "
            f"| {_num(c.get('server_cpu_us_per_delivery'))} | {' | '.join(fixed)} "
            f"| {each} / **{sum(workers):.3f}** | {' | '.join(after)} "
            f"| {_num(c.get('visits_per_message'))} |"
        )
    return out


def _chathistory(h: Cell) -> str:
    """One probe's (or its median's) figures, in a line."""
    if "p99_ms" not in h:
        return f"no answer ({h.get('error', 'no samples')})"
    lines = (
        f"{h['lines_min']}–{h['lines_max']}" if h["lines_min"] != h["lines_max"] else h["lines_min"]
    )
    return (
        f"p50/p99/max {h['p50_ms']:.2f}/{h['p99_ms']:.2f}/{h['max_ms']:.2f} ms, "
        f"{h['samples']} answers of {lines} lines"
        + (f", {h['timeouts']} timed out" if h.get("timeouts") else "")
        + (f", {h['error']}" if h.get("error") else "")
    )


def _history_tables(main: list[Cell]) -> list[str]:
    """History (issue 12): fastchat with history on (its default) beside ``--no-history``,
    and the CHATHISTORY probe; nothing if this run has neither."""
    out: list[str] = []
    pairs = (
        ("rooms", "deliveries_per_s"),
        ("rooms", "server_cpu_us_per_delivery"),
        ("latency", "p50_ms"),
        ("latency", "p99_ms"),
        ("latency", "max_ms"),
    )
    rows = []
    for scenario, key in pairs:
        on, off = (
            _find(main, scenario, "fastchat"),
            _find(main, f"{scenario}-nohistory", "fastchat"),
        )
        if on is None or off is None or key not in on or key not in off:
            continue
        ratio = f"{on[key] / off[key]:.2f}×" if off[key] else "–"
        rows.append(f"| {scenario} | {key} | {_num(on[key])} | {_num(off[key])} | {ratio} |")
    if rows:
        out += [
            "",
            "### History on (the default) and off (`--no-history`), fastchat, same run",
            "",
            "| scenario | figure | history on | history off | on/off |",
            "|---|---|---:|---:|---:|",
            *rows,
        ]
    probe = _find(main, "history", "fastchat")
    if probe is not None and "chathistory" in probe:
        h = probe["chathistory"]
        lines = f"{h['lines_min']}–{h['lines_max']} (of {h['limit']})" if "lines_min" in h else "–"
        timing = (
            f"{h['p50_ms']:.2f} / {h['p99_ms']:.2f} / {h['max_ms']:.2f}" if "p99_ms" in h else "–"
        )
        trouble = ", ".join(
            part
            for part in (
                f"{h['timeouts']} timed out" if h.get("timeouts") else "",
                h.get("error", ""),
            )
            if part
        )
        ping = h.get("ping", {})
        ping_timing = (
            f"{ping['p50_ms']:.2f} / {ping['p99_ms']:.2f} / {ping['max_ms']:.2f}"
            if "p99_ms" in ping
            else "–"
        )
        out += [
            "",
            "### CHATHISTORY while rooms runs (fastchat)",
            "",
            "A `PING` follows each answer on the same connection: its round trip is what any "
            "request waits under the same load.",
            "",
            "| request | workers | answers | p50 / p99 / max ms | lines per answer "
            "| PING meanwhile: p50 / p99 / max ms | rooms deliveries/s meanwhile | trouble |",
            "|---|---|---:|---:|---:|---:|---:|---|",
            f"| `CHATHISTORY LATEST {h.get('room', '#r0')} * {h['limit']}` | {probe['workers']} "
            f"| {h['samples']} | {timing} | {lines} | {ping_timing} "
            f"| {_num(probe.get('deliveries_per_s'))} | {trouble or 'none'} |",
        ]
    return out


def _history_targets(main: list[Cell]) -> list[tuple[str, str, bool]]:
    """The targets of issue 12, for the figures this run has."""
    checks: list[tuple[str, str, bool]] = []
    on, off = _find(main, "rooms", "fastchat"), _find(main, "rooms-nohistory", "fastchat")
    key = "deliveries_per_s"
    if on is not None and off is not None and on.get(key) and off.get(key):
        ratio = on[key] / off[key]
        checks.append(
            (
                f"rooms: history on ≥ {HISTORY_RATE_FLOOR}× history off deliveries/s",
                f"{_num(on[key])} vs {_num(off[key])} ({ratio:.2f}×)",
                ratio >= HISTORY_RATE_FLOOR,
            )
        )
    lat, lat_off = _find(main, "latency", "fastchat"), _find(main, "latency-nohistory", "fastchat")
    if lat is not None and "p99_ms" in lat:
        versus = (
            f" (history off: {lat_off['p99_ms']:.3g} ms)" if lat_off and "p99_ms" in lat_off else ""
        )
        checks.append(
            (
                f"latency: p99 with history on ≤ {HISTORY_LATENCY_P99_MS} ms",
                f"{lat['p99_ms']:.3g} ms{versus}",
                lat["p99_ms"] <= HISTORY_LATENCY_P99_MS,
            )
        )
    probe = _find(main, "history", "fastchat")
    if probe is not None and "chathistory" in probe:
        h = probe["chathistory"]
        answered = "p99_ms" in h and not h.get("error")
        limit = h.get("limit")
        checks.append(
            (
                f"history: CHATHISTORY LATEST {limit} p99 < {CHATHISTORY_P99_MS} ms while rooms runs",
                f"{h['p99_ms']:.3g} ms (p50 {h['p50_ms']:.3g}, max {h['max_ms']:.3g}; "
                f"{h['samples']} answers)"
                if "p99_ms" in h
                else h.get("error", "no answer"),
                answered and h["p99_ms"] < CHATHISTORY_P99_MS,
            )
        )
        checks.append(
            (
                f"history: every CHATHISTORY answer held {limit} lines",
                f"{h['lines_min']}–{h['lines_max']} lines, {h['samples']} answers, "
                f"{h.get('timeouts', 0)} timed out"
                if "lines_min" in h
                else h.get("error", "no answer"),
                answered and "lines_min" in h and not h.get("short") and not h.get("timeouts"),
            )
        )
    return checks


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target of the issue that this run has the figures for: (label, figure, met)."""
    main = _cells(results, None)
    sweep = _cells(results, "workers")
    checks: list[tuple[str, str, bool]] = []
    for label, scenario, key, limit, unit in FASTCHAT_LIMITS:
        c = _find(main, scenario, "fastchat")
        if c is not None and key in c:
            checks.append((f"{label} ≤ {limit} {unit}", f"{_num(c[key])} {unit}", c[key] <= limit))
    fc, ins = _find(main, "fanout", "fastchat"), _find(main, "fanout", "inspircd")
    if fc is not None and ins is not None:
        checks.append(
            (
                "fanout: more deliveries/s than InspIRCd",
                f"{_num(fc['deliveries_per_s'])} vs {_num(ins['deliveries_per_s'])} "
                f"({fc['deliveries_per_s'] / ins['deliveries_per_s']:.2f}×)",
                fc["deliveries_per_s"] > ins["deliveries_per_s"],
            )
        )
    for scenario in SWEEP_SCENARIOS:
        one = _find(sweep, scenario, "fastchat", 1)
        for workers, floor in SWEEP_RATE_FLOORS:
            more = _find(sweep, scenario, "fastchat", workers)
            key = "server_cpu_us_per_delivery"
            if one is None or more is None or key not in more or key not in one:
                continue
            # each round's pair (run one after the other), median over rounds, where the
            # run has them (bench/run.py, _paired_ratios); else the ratio of the medians
            paired = "rate_vs_one" in more and "cpu_vs_one" in more
            rate = (
                more["rate_vs_one"]
                if paired
                else more["deliveries_per_s"] / one["deliveries_per_s"]
            )
            cpu = more["cpu_vs_one"] if paired else more[key] / one[key]
            how = f" (median of {more['paired_rounds']} rounds' pairs)" if paired else ""
            checks.append(
                (
                    f"{scenario}: --workers {workers} ≥ {floor}× --workers 1 deliveries/s "
                    f"at ≤ {SWEEP_CPU_CEILING}× CPU/delivery",
                    f"{rate:.2f}× deliveries/s, {cpu:.2f}× CPU/delivery{how}",
                    rate >= floor and cpu <= SWEEP_CPU_CEILING,
                )
            )
    idle_four = _find(sweep, "idle", "fastchat", 4)
    if idle_four is not None and "rss_per_connection_bytes" in idle_four:
        rss = idle_four["rss_per_connection_bytes"]
        one = _find(sweep, "idle", "fastchat", 1)
        beside = f" (one worker: {_num(one['rss_per_connection_bytes'])} B)" if one else ""
        checks.append(
            (
                f"idle: --workers 4 RSS per connection ≤ {IDLE_AT_FOUR_LIMIT} B",
                f"{_num(rss)} B{beside}",
                rss <= IDLE_AT_FOUR_LIMIT,
            )
        )
    for scenario in ("fanout", "rooms"):
        # IRCv3 (issue 11): every client with tags and echo-message, ≤ 1.5× the plain cost
        plain, tagged = (
            _find(main, scenario, "fastchat"),
            _find(main, scenario + "-tagged", "fastchat"),
        )
        key = "server_cpu_us_per_delivery"
        if plain is None or tagged is None or key not in plain or key not in tagged:
            continue
        ratio = tagged[key] / plain[key]
        checks.append(
            (
                f"{scenario}-tagged: server CPU per delivery ≤ 1.5× plain {scenario}",
                f"{_num(tagged[key])} vs {_num(plain[key])} µs ({ratio:.2f}×)",
                ratio <= 1.5,
            )
        )
    checks += _history_targets(main)
    for c in main + sweep:
        if "error" not in c and (c["lost"] or c["disconnects"] or c["connected"] < c["clients"]):
            checks.append(
                (f"no loss: {c['scenario']} on {c['server']} w{c['workers']}", _loss(c), False)
            )
    return checks


def chart(results: dict[str, Any], path: Path) -> Path | None:
    """A 2×3 bar chart of the headline figures; ``None`` (and a message) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart: matplotlib is not installed (pip install -e '.[bench]'); no PNG written")
        return None
    main = _cells(results, None)
    sweep = _cells(results, "workers")
    servers = list(dict.fromkeys(c["server"] for c in main))
    colours = {"fastchat": "#2a7ab0", "ngircd": "#e08a2c", "inspircd": "#5a9e4b"}
    panels = (
        ("fanout", "deliveries_per_s", "fanout: deliveries/s (higher is better)"),
        ("fanout", "server_cpu_us_per_delivery", "fanout: server CPU µs/delivery"),
        ("rooms", "deliveries_per_s", "rooms: deliveries/s"),
        ("rooms", "server_cpu_us_per_delivery", "rooms: server CPU µs/delivery"),
        ("latency", "p99_ms", "latency: p99 ms (1,000 msg/s)"),
        ("idle", "rss_per_connection_bytes", "idle: RSS bytes/connection"),
    )
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    flat = list(axes.flat)
    for ax, (scenario, key, title) in zip(flat, panels, strict=False):
        names, values = [], []
        for s in servers:
            c = _find(main, scenario, s)
            if c is not None and c.get(key) is not None:
                names.append(s)
                values.append(c[key])
        bars = ax.bar(names, values, color=[colours.get(n, "#888") for n in names])
        ax.bar_label(bars, labels=[_num(v) for v in values], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=9)
    for ax, scenario in zip(flat[6:], ("fanout", "rooms"), strict=True):
        cells = sorted(
            (c for c in sweep if c["scenario"] == scenario and "error" not in c),
            key=lambda c: c["workers"],
        )
        if cells:
            x = [str(c["workers"]) for c in cells]
            bars = ax.bar(x, [c["deliveries_per_s"] for c in cells], color="#2a7ab0")
            ax.bar_label(
                bars,
                labels=[f"{c.get('server_cpu_us_per_delivery', 0):.2f} µs" for c in cells],
                fontsize=8,
            )
            ax.set_xlabel("fastchat --workers (label: CPU µs/delivery)")
        ax.set_title(f"{scenario}: deliveries/s by worker count", fontsize=10)
    m = results["machine"]
    fig.suptitle(
        f"fastchat benchmarks, same run — {m['cpu']}, {m['cores']} cores, {m['date']}", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def benchmarks_md(results: dict[str, Any], table: str, results_dir: Path | None = None) -> str:
    """The whole of ``BENCHMARKS.md``: the latest table, the ceilings and the projection (from
    ``results_dir``'s ceiling results, when there are any), the machine, how to reproduce."""
    ceilings = scaling_section(results, results_dir or Path(__file__).with_name("results"))
    m = results["machine"]
    st = results["settings"]
    versions = sorted({c["version"] for c in results["summary"] if c.get("version")})
    sc = st.get("scenarios", {})
    fan_w = sc.get("fanout", {}).get("window", "?")
    rooms_w = sc.get("rooms", {}).get("window", "?")
    findings_file = Path(__file__).with_name("FINDINGS.md")
    findings = findings_file.read_text() if findings_file.exists() else ""
    return f"""# Benchmarks

Written by `make bench` (`python -m bench.run`); the raw figures are in
[`bench/results/latest.json`](bench/results/latest.json) and the chart is
[`bench/results/latest.png`](bench/results/latest.png).

![benchmark chart](bench/results/latest.png)

## Latest run

{table}
{ceilings}
## Machine

- {m["cpu"]}, {m["cores"]} cores, {m["memory_gb"]} GB RAM, Linux {m["kernel"]}, Python {m["python"]}
- fastchat commit `{m["commit"]}`, {m["date"]}; servers: {", ".join(versions) or "–"}
- load average as the run started (1, 5, 15 min): {", ".join(map(str, m.get("load_average", []))) or "not recorded"}
- {st["duration_s"]:g} s measured per run after {st["warmup_s"]:g} s of warm-up, {st["rounds"]} round(s)
  (medians), {st["generator_processes"]} load generator processes, fastchat `--workers {st["fastchat_workers"]}`
  outside the worker sweep; the whole run took {st["elapsed_s"]:g} s:
  `{st.get("command", "")}`

The load generator shares the machine with the server under test, and the machine is shared
with other work: compare the servers *within* one run (the ratios), not absolute figures across
runs or machines. The worker sweep's targets compare each run with the one-worker run of
the same scenario in the same round (they ran one after the other; rounds alternate their
order), then take the median of those ratios over the rounds.

## Reproduce

```sh
make bench-peers                     # apt-get installs ngircd and inspircd (once, as root)
make bench PEERS=ngircd,inspircd     # all scenarios, fastchat and both peers, side by side
make bench BENCH_ARGS="--scenarios fanout,latency --duration 10 --rounds 3"
make bench-ceilings                  # the hub alone and a worker's paths alone; the projection
make bench BENCH_ARGS="--scenarios workers --duration 3"   # the sweep the projection is checked against
```

Run it from a clean checkout (or `git worktree add`) so that the commit above is exactly what
was measured; `+dirty` after it means fastchat had uncommitted changes. To compare two builds
with one virtualenv, run `python -m bench.run` from outside both (`cd /tmp &&
PYTHONPATH=/path/to/worktree /path/to/.venv/bin/python -m bench.run ...`): `python -m` puts the
current folder first on `sys.path`, ahead of `PYTHONPATH`. `BENCH_ARGS="--profile"`
adds a py-spy run of each throughput scenario asked for and writes `bench/results/profile-*.txt`.

## Load test

`make loadtest` is the realistic counterpart: locust users (USERS, ROOMS, RATE msg/s each,
DURATION s, a WORKERS-worker server started for the run unless HOST/PORT name one) with exact
latency from timestamps inside the messages; its CSV and HTML reports go to
`loadtest/reports/` and it ends with a summary and `messages_per_second=...`.

## What is measured

| scenario | load | reported |
|---|---|---|
| fanout | one room of 50 members, 2 talkers, closed loop ({fan_w} messages in flight) | deliveries/s, server CPU µs per delivery |
| rooms | 40 rooms of 10 members, 2 talkers each, closed loop ({rooms_w} in flight per room) | deliveries/s, server CPU µs per delivery |
| rooms-nohistory | as rooms, fastchat `--no-history`; fastchat only | the same, and history on / off (at least 0.8× the deliveries/s) |
| history | as rooms, and one more member of `#r0` (with `draft/chathistory batch server-time message-tags`) sends `CHATHISTORY LATEST #r0 * 100` one at a time, at most every 20 ms, through the measured window; fastchat only | the answers' time from the send to `BATCH -`, p50/p99/max (p99 under 5 ms), and the lines each held (100) |
| fanout-tagged, rooms-tagged | as fanout and rooms, every client having negotiated `server-time`, `message-tags` (msgid) and `echo-message`; fastchat only | the same, and the ratio to the plain scenario (at most 1.5×) |
| latency | 1,000 clients in 100 rooms, every client sends 1 message/s (1,000/s in total), open loop, senders staggered evenly | latency p50/p99/max (p99 at most 2 ms with history on) |
| latency-nohistory | as latency, fastchat `--no-history`; fastchat only | the same, beside history on |
| idle | 5,000 connected clients in 500 rooms | server RSS growth per connection |
| rooms-small | as rooms with small windows (issue 14): 50 in flight per room, topped up as soon as any has drained (rooms: once half has) | deliveries/s, server CPU µs per delivery, talkers' lines per write |
| workers | fanout, rooms and rooms-small at fastchat `--workers 1, 2, 4`; idle at `--workers 1, 4` | the same per worker count, the server's CPU by process role, and the workers a message visits; idle memory per connection |

- fastchat runs as configured by default unless a scenario says otherwise: history on (every
  channel message written to a SQLite store in a temporary `--data-dir` by the sequencer's
  process), no flood control, no per-IP limit. Each `-nohistory` scenario runs right after its
  own, and every other round runs the whole list backwards, so each of a pair goes first as
  often as the other.
- A delivery is one message arriving at one room member (the sender gets no echo, except in
  the tagged scenarios, where its echo counts as a delivery): a message to a room of 50 makes
  49 deliveries (50 tagged). Every run checks deliveries expected against received: "loss".
- Server CPU is user + system time summed over the server's whole process tree with psutil,
  over the measured window only (connecting and registering are excluded). Generator CPU is
  the load generator's own processes over the same window, shown so the reader can see how much
  of the machine the measurement itself took.
- Latency is from a monotonic-clock timestamp inside the message to its arrival at each
  member, in nanoseconds (reported in ms with microsecond digits). In the closed-loop
  scenarios one message in 32 carries a timestamp; in the latency scenario every message does.
- Closed loop: a room's talkers and one "witness" member share a load generator process; the
  talkers refill the room's window (pipelined, many lines per `send`) once the witness has
  received half of it.
- Peers are configured for the benchmark, not for production: loopback only, no DNS or ident
  lookups, connection limits above 5,000, and flood protection off (ngIRCd: `MaxPenaltyTime = 0`
  and user mode `F` for everyone; InspIRCd: a connect class with a huge penalty threshold and
  command rate, 16 MiB send queue and 64 KiB reads).
- Neither ngIRCd nor InspIRCd sets `TCP_NODELAY` on client sockets. On loopback (64 KiB MSS)
  Nagle then holds each write until the client acknowledges the previous one, and a client's
  delayed ACK takes up to 40 ms. The generator's clients re-arm `TCP_QUICKACK` after every read
  so that this artefact does not dominate anyone's figures; real clients over a real network
  would see some of it from those servers.

{findings}"""


def rewrite_benchmarks_md(results_dir: Path, page: Path | None) -> None:
    """Rebuild ``page`` (BENCHMARKS.md) from the latest results in ``results_dir`` (the ceiling
    tools call it after writing theirs); nothing without a ``latest.json`` or a page."""
    latest = results_dir / "latest.json"
    if page is None or not latest.exists():
        return
    results = json.loads(latest.read_text())
    page.write_text(benchmarks_md(results, markdown(results), results_dir))


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _load_average(results: dict[str, Any]) -> str:
    return " / ".join(map(str, results["machine"].get("load_average", []))) or "not recorded"


#: The projection's rooms (issue 14: rooms of 10), and the core counts it covers
PROJECTED_MEMBERS = 10
PROJECTED_CORES = tuple(range(1, 17))


def store_us_per_message(sweep: list[Cell], scenario: str = "rooms-small") -> float:
    """The history writer's CPU per message in ``scenario`` of the worker sweep (the median
    over worker counts; 0 without the breakdown)."""
    values = sorted(
        c["role_cpu_us_per_delivery"].get("store", 0.0) * c["deliveries_per_message"]
        for c in sweep
        if c["scenario"] == scenario
        and "error" not in c
        and c.get("role_cpu_us_per_delivery")
        and c.get("deliveries_per_message")
    )
    return values[len(values) // 2] if values else 0.0


def scaling_section(results: dict[str, Any], results_dir: Path) -> str:
    """BENCHMARKS.md's ceilings (``python -m bench.hubceiling``, ``python -m bench.workerceiling``)
    and the projection made of them (bench/scaling.py); "" without both ceilings' results."""
    hub = _load(results_dir / "hubceiling.json")
    worker = _load(results_dir / "workerceiling.json")
    if hub is None or worker is None:
        return ""
    sweep = _cells(results, "workers")
    store = store_us_per_message(sweep)
    out = [
        "## Ceilings, one core at a time",
        "",
        f"Measured by `{hub['settings']['command']}` ({hub['machine']['date']}) and "
        f"`{worker['settings']['command']}` ({worker['machine']['date']}), on the machine below "
        "while other work shared it (load average as each started: "
        f"{_load_average(hub)} and {_load_average(worker)}); each figure is the least CPU of "
        "a few repeats, since sharing only ever adds CPU. Compare within a table.",
        "",
        "**The hub alone** (" + hub["what"] + "): rooms of 10 (two talkers each) over "
        "N fake workers, each frame a worker's batch of approved channel messages ending with "
        "a read barrier, about 512 messages in flight per fake worker in whole frames (a "
        "bound in messages: see bench/hubceiling.py); history off. *Ceiling*: messages "
        "decided and routed per second of the hub's own CPU, i.e. on one core it had to "
        "itself; the wall rate beside it is what it reached on the shared machine. A record "
        "carries a *run* of messages (one sender's consecutive lines to one channel, "
        "engine/relay.py); a frame's consecutive records to rooms on the same workers travel "
        "as one *segment* (engine/segments.py), which the hub forwards whole while nothing "
        "changed since the fake worker's last B_SEEN (*no segments*: a request per record, "
        "as before).",
        "",
        "| placement | fake workers | visits per message | run | hub µs/message | ceiling messages/s "
        "| = deliveries/s (×9) | wall messages/s (hub cores busy) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in hub["runs"]:
        load = r["load"]
        # segments off: one R_CHANMSG per record, as workers sent before segments (issue 14)
        placement = load["placement"] + ("" if load.get("segments", True) else ", no segments")
        if "error" in r:
            out.append(
                f"| {placement} | {load['workers']} | | {load['run']} | {r['error']} | | | |"
            )
            continue
        out.append(
            f"| {placement} | {load['workers']} | {r['visits']:.2f} | {load['run']} "
            f"| {r['hub_cpu_us_per_message']:.3f} | {_num(r['ceiling_messages_per_s'])} "
            f"| {_num(r['ceiling_deliveries_per_s'])} | {_num(r['messages_per_s'])} "
            f"({r['hub_cpu_cores']:.2f}) |"
            + (
                ""
                if r.get("records_routed_per_record") == r["visits"]
                else f" ⚠ routed to {r.get('records_routed_per_record')} workers per record |"
            )
        )
    out += [
        "",
        "**A worker's delivery path alone** (" + worker["what"] + "): *deliver*, hub frames "
        "of channel records for rooms with *local* members here, decoded, applied and flushed "
        "(one send per member per frame); *ingest*, a talker's reads of *run* lines each into "
        "the bus frame. µs of CPU per record (deliver) or message (ingest).",
        "",
        "| mode | local members | run | per room per frame | µs/record or message | µs/delivery "
        "| deliveries or messages/s on one core |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in worker["runs"]:
        st = r["setup"]
        if r["mode"] == "deliver":
            out.append(
                f"| deliver | {st['local']} | {st['run']} | {st['per_room']} "
                f"| {r['us_per_record']:.3f} | {r['us_per_delivery']:.3f} "
                f"| {_num(r['deliveries_per_s'])} |"
            )
        else:
            out.append(
                f"| ingest | | {st['run']} | | {r['us_per_message']:.3f} | "
                f"| {_num(r['messages_per_s'])} |"
            )
    runs = sorted(int(k) for k in worker.get("fits", {}))
    costs = {
        run: c
        for run in runs
        if (c := scaling.costs_from(hub["runs"], worker["fits"], run, store)) is not None
    }
    if not costs:
        return "\n".join(out) + "\n"
    out += [
        "",
        "Fitted per message (µs): the worker's *ingest*; per visit, the *visit* (the deliver "
        "line's intercept over *run*); per delivery, the *delivery* (its slope over *run*); "
        "the hub's cost as a line in the visits, *hub* + visits × *hub/visit*; and the store's "
        "writer, from the worker sweep's `store` role in rooms-small above "
        f"({store:.3f} µs/message).",
        "",
        "| run | ingest | visit | delivery | hub | hub/visit | store |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, c in costs.items():
        out.append(
            f"| {run} | {c.ingest:.3f} | {c.visit:.3f} | {c.delivery:.3f} | {c.hub:.3f} "
            f"| {c.hub_visit:.3f} | {c.store:.3f} |"
        )
    m = PROJECTED_MEMBERS
    out += [
        "",
        "## Projection: deliveries per second on 1 to 16 cores (a model, not a measurement)",
        "",
        f"Rooms of {m} (9 deliveries per message), as many workers as cores, from the costs "
        "above (bench/scaling.py):",
        "",
        "```",
        "cpu(W)        = ingest + hub + visits(W) × (visit + hub/visit) + store + 9 × delivery",
        "messages/s(C) = min(C / cpu(C),  1 / (hub + visits(C) × hub/visit),  1 / store)",
        "deliveries/s  = 9 × messages/s;   at C = 1 there is no hub (the sequencer runs in the worker)",
        "visits(W)     = W × (1 − (1 − 1/W)^10)   spread: SO_REUSEPORT places members at random",
        "              = 1                        clustered: a room's members on one worker",
        "```",
        "",
        "Assumptions: every core does useful work (no context switches, cache misses or "
        "kernel contention beyond what the one-core measurements contain), the load "
        "generator is elsewhere, and the costs stay what they were at the measured sizes. "
        "*Bound* says which term of the min decided: all cores busy, or the hub's or the "
        "store writer's one core. *Clustered* is what channel-affine placement (`placement "
        "= affine`, the default since issue 14) gives: the sweep measures 1.0-1.02 visits "
        "per rooms message at several workers with it (*spread* is `--placement kernel`). "
        "History is "
        "on (the default): the *store* term is the writer's cost per message as the sweep "
        "measured it, with the sweep's runs (*lines per write* long); one row per run, so "
        "with runs of 1 it would cost more per message than shown, and the run 1 columns are "
        "optimistic wherever the store bounds them.",
        "",
        "| cores | visits (spread) | "
        + " | ".join(f"run {run}: spread | run {run}: clustered" for run in costs)
        + " |",
        "|---:|---:|" + "---:|---:|" * len(costs),
    ]
    for cores in PROJECTED_CORES:
        cells = []
        visits = 0.0
        for c in costs.values():
            spread = scaling.project(cores, m, c)
            clustered = scaling.project(cores, m, c, 1.0)
            visits = spread.visits
            cells += [
                f"{_num(round(spread.deliveries_per_s))} ({spread.bound})",
                f"{_num(round(clustered.deliveries_per_s))} ({clustered.bound})",
            ]
        out.append(f"| {cores} | {visits:.2f} | " + " | ".join(cells) + " |")
    gains = []
    for c in costs.values():
        for visits_at in (None, 1.0):
            one = scaling.project(1, m, c, visits_at).deliveries_per_s
            top = scaling.project(PROJECTED_CORES[-1], m, c, visits_at).deliveries_per_s
            gains.append(f"{top / one:.1f}×")
    out.append(f"| {PROJECTED_CORES[-1]} ÷ 1 | | " + " | ".join(gains) + " |")
    targets = ceiling_targets(hub["runs"], costs)
    if targets:
        out += ["", "| target (issue 14) | measured | met |", "|---|---|---|"]
        out += [
            f"| {label} | {figure} | {'yes' if ok else '**no**'} |" for label, figure, ok in targets
        ]
    checks = _model_checks(sweep, costs)
    if checks:
        out += [
            "",
            "How far to trust it: the model's CPU per delivery at the worker sweep's own worker "
            "counts and measured visits, beside what the sweep measured (same figures, "
            "measured whole; the sweep's runs are about *lines per write* long).",
            "",
            "| scenario | workers | lines per write | visits | model µs/delivery (run) "
            "| measured µs/delivery | measured / model |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *checks,
        ]
    return "\n".join(out) + "\n"


#: Issue 14: the hub decides and routes this many channel messages per second on one core
#: (rooms of 10, small windows: runs of one message, spread over this many workers) ...
HUB_CEILING_TARGET = 1_000_000
HUB_CEILING_WORKERS = 4
#: ... so that the projection shows at least this multiple of one core's rate at 16 cores
PROJECTED_GAIN_TARGET = 6.0


def ceiling_targets(
    hub_runs: list[dict[str, Any]], costs: dict[int, scaling.Costs]
) -> list[tuple[str, str, bool]]:
    """Issue 14's targets on the ceilings and the projection, for the figures there are."""
    checks = []
    for r in hub_runs:
        load = r["load"]
        if (
            "error" not in r
            and load["run"] == 1
            and load["placement"] == "spread"
            and load["workers"] == HUB_CEILING_WORKERS
            and load.get("segments", True)  # what workers send
        ):
            ceiling = r["ceiling_messages_per_s"]
            checks.append(
                (
                    f"hub ceiling ≥ {HUB_CEILING_TARGET:,} channel messages/s on one core "
                    f"(rooms of 10 over {HUB_CEILING_WORKERS} workers, one message per record)",
                    f"{_num(ceiling)} messages/s ({r['hub_cpu_us_per_message']:.3f} µs each)",
                    ceiling >= HUB_CEILING_TARGET,
                )
            )
    if 1 in costs:
        top = PROJECTED_CORES[-1]
        for label, visits in (("spread", None), ("clustered", 1.0)):
            one = scaling.project(1, PROJECTED_MEMBERS, costs[1], visits).deliveries_per_s
            many = scaling.project(top, PROJECTED_MEMBERS, costs[1], visits)
            gain = many.deliveries_per_s / one
            checks.append(
                (
                    f"projection, run 1, {label}: {top} cores ≥ {PROJECTED_GAIN_TARGET:g}× one core",
                    f"{gain:.1f}× ({_num(round(many.deliveries_per_s))} deliveries/s, "
                    f"bound: {many.bound})",
                    gain >= PROJECTED_GAIN_TARGET,
                )
            )
    return checks


def _model_checks(sweep: list[Cell], costs: dict[int, scaling.Costs]) -> list[str]:
    rows = []
    for c in sorted(sweep, key=lambda c: (c["scenario"], c["workers"])):
        if c["scenario"] not in ("rooms", "rooms-small") or "error" in c:
            continue
        visits, measured = c.get("visits_per_message"), c.get("server_cpu_us_per_delivery")
        per_write = c.get("lines_per_write")
        if visits is None or not measured or not per_write:
            continue
        # the measured run length nearest the sweep's lines per write
        run = min(costs, key=lambda r: abs(r - per_write))
        model = scaling.model_cpu_per_delivery(costs[run], c["workers"], visits, PROJECTED_MEMBERS)
        rows.append(
            f"| {c['scenario']} | {c['workers']} | {per_write:.1f} | {visits:.2f} "
            f"| {model:.3f} ({run}) | {measured:.3f} | {measured / model:.2f}× |"
        )
    return rows
