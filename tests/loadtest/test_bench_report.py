"""The benchmark report: medians over rounds, ratios, and the target checks, on made-up runs
(no servers). Guards the arithmetic between a measurement and the page that shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.run import summarize


def _run(
    scenario: str, server: str, workers: int = 1, sweep: str | None = None, **figures: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": scenario, "server": server, "workers": workers, "sweep": sweep,
        "clients": 50, "connected": 50, "lost": 0, "disconnects": 0, "latency": {},
        "version": server,
    }  # fmt: skip
    row.update(figures)
    return row


def _results(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "machine": {"cpu": "test", "cores": 2, "date": "now", "memory_gb": 1, "kernel": "k",
                    "python": "3", "commit": "abc"},
        "settings": {"duration_s": 1, "warmup_s": 1, "rounds": 2, "generator_processes": 2,
                     "fastchat_workers": 1, "elapsed_s": 1},
        "runs": rows,
        "summary": summarize(rows, 1),
    }  # fmt: skip


ROWS = [
    _run(
        "fanout",
        "fastchat",
        deliveries_per_s=3e6,
        server_cpu_us_per_delivery=0.4,
        server_cpu_cores=0.6,
    ),
    _run("fanout", "fastchat", deliveries_per_s=2e6, server_cpu_us_per_delivery=0.6),
    _run("fanout", "fastchat", deliveries_per_s=4e6, server_cpu_us_per_delivery=0.3),
    _run("fanout", "inspircd", deliveries_per_s=2.5e6, server_cpu_us_per_delivery=0.2),
    _run("rooms", "fastchat", deliveries_per_s=1e6, server_cpu_us_per_delivery=0.7),
    _run("fanout-tagged", "fastchat", deliveries_per_s=2e6, server_cpu_us_per_delivery=0.52),
    _run("rooms-tagged", "fastchat", deliveries_per_s=6e5, server_cpu_us_per_delivery=1.4),
    _run(
        "latency", "fastchat", latency={"samples": 9, "p50_ms": 0.2, "p99_ms": 0.5, "max_ms": 3.0}
    ),
    _run("idle", "fastchat", rss_per_connection_bytes=1900),
    _run("idle", "ngircd", error="unavailable: ngircd is not installed"),
    _run("fanout", "fastchat", 1, "workers", deliveries_per_s=2e6, server_cpu_us_per_delivery=0.4),
    _run(
        "fanout", "fastchat", 4, "workers", deliveries_per_s=2.2e6, server_cpu_us_per_delivery=0.6
    ),
    _run(
        "rooms",
        "fastchat",
        1,
        "workers",
        deliveries_per_s=1e6,
        server_cpu_us_per_delivery=0.5,
        lost=3,
    ),
]


def test_medians_over_rounds() -> None:
    cells = summarize(ROWS, 1)
    fanout = next(
        c
        for c in cells
        if c["scenario"] == "fanout" and c["server"] == "fastchat" and not c["sweep"]
    )
    assert fanout["rounds"] == 3
    assert fanout["deliveries_per_s"] == 3e6
    assert fanout["server_cpu_us_per_delivery"] == 0.4
    idle_ngircd = next(c for c in cells if c["scenario"] == "idle" and c["server"] == "ngircd")
    assert idle_ngircd["error"].startswith("unavailable")


def test_targets() -> None:
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(ROWS))}
    assert checks["fanout: server CPU per delivery ≤ 0.5 µs"] == ("0.4 µs", True)
    assert checks["rooms: server CPU per delivery ≤ 0.65 µs"][1] is False
    assert checks["latency: p99 ≤ 5.0 ms"][1] is True
    assert checks["idle: RSS per connection ≤ 2048 B"][1] is True
    assert checks["fanout: more deliveries/s than InspIRCd"][1] is True
    workers = checks["fanout: --workers 4 ≥ 0.9× --workers 1 deliveries/s at ≤ 1.3× CPU/delivery"]
    assert workers == ("1.10× deliveries/s, 1.50× CPU/delivery", False)
    assert checks["no loss: rooms on fastchat w1"] == ("⚠ 3 lost, 0 disconnects", False)
    tagged = checks["fanout-tagged: server CPU per delivery ≤ 1.5× plain fanout"]
    assert tagged == ("0.52 vs 0.4 µs (1.30×)", True)
    assert checks["rooms-tagged: server CPU per delivery ≤ 1.5× plain rooms"][1] is False
    assert "idle: --workers 4 RSS per connection ≤ 2048 B" not in checks  # not measured


def test_idle_at_four_workers_is_a_target_of_its_own() -> None:
    rows = [
        *ROWS,
        _run("idle", "fastchat", 1, "workers", rss_per_connection_bytes=900),
        _run("idle", "fastchat", 4, "workers", rss_per_connection_bytes=2600),
        _run("idle", "fastchat", 4, "workers", rss_per_connection_bytes=2400),
    ]
    results = _results(rows)
    checks = {label: (figure, ok) for label, figure, ok in report.targets(results)}
    # the median of the rounds at four workers, with one worker's beside it; not met
    assert checks["idle: --workers 4 RSS per connection ≤ 2048 B"] == (
        "2,500 B (one worker: 900 B)",
        False,
    )
    # the sweep's idle runs have no deliveries: no CPU ratios, no roles row, nothing breaks
    assert not any(label.startswith("idle: --workers 4 ≥") for label in checks)
    page = report.benchmarks_md(results, report.markdown(results))
    assert "| idle (workers) | fastchat | 4 |" in page


# issue 14: the worker sweep's CPU by process role and the workers a message visits
def _swept(workers: int, rate: float, total: float, roles: dict[str, float], visits: float) -> Any:
    return _run("rooms-small", "fastchat", workers, "workers", deliveries_per_s=rate,
                server_cpu_us_per_delivery=total, role_cpu_us_per_delivery=roles,
                visits_per_message=visits, deliveries_per_message=9.0, lines_per_write=3.0)  # fmt: skip


SWEEP_ROWS = [
    _swept(1, 1.5e6, 0.4, {"supervisor": 0.0, "worker0": 0.35, "store": 0.05, "readers": 0.0}, 1.0),
    _swept(1, 1.6e6, 0.42, {"supervisor": 0.0, "worker0": 0.37, "store": 0.05}, 1.0),
    _swept(2, 1.2e6, 0.5, {"hub": 0.1, "worker0": 0.2, "worker1": 0.15, "store": 0.05}, 2.0),
    _swept(
        4,
        8e5,
        0.6,
        {
            "hub": 0.12,
            "worker0": 0.1,
            "worker1": 0.1,
            "worker2": 0.1,
            "worker3": 0.13,
            "store": 0.05,
        },
        3.8,
    ),
]


def test_roles_and_visits_in_the_sweep() -> None:
    cells = {c["workers"]: c for c in summarize(SWEEP_ROWS, 1)}
    # medians over rounds, role by role (a role a round lacks counts as 0 there)
    assert cells[1]["role_cpu_us_per_delivery"] == {
        "readers": 0.0, "store": 0.05, "supervisor": 0.0, "worker0": 0.36,
    }  # fmt: skip
    assert cells[4]["visits_per_message"] == 3.8 and cells[1]["visits_per_message"] == 1.0
    assert cells[2]["lines_per_write"] == 3.0
    table = report.markdown(_results(SWEEP_ROWS))
    assert "### Worker sweep: where the server's CPU goes" in table
    # one worker: no hub (the sequencer is inside the worker)
    assert (
        "| rooms-small | 1 | 1,550,000 | 9 | 3 | 0.41 | 0 | – | 0.360 / **0.360** | 0.05 | 0 | 1 |"
        in table
    )
    assert (
        "| rooms-small | 4 | 800,000 | 9 | 3 | 0.6 | – | 0.12 "
        "| 0.100 / 0.100 / 0.100 / 0.130 / **0.430** | 0.05 | – | 3.8 |"
    ) in table
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(SWEEP_ROWS))}
    two = checks["rooms-small: --workers 2 ≥ 1.0× --workers 1 deliveries/s at ≤ 1.3× CPU/delivery"]
    assert two == ("0.77× deliveries/s, 1.22× CPU/delivery", False)


def test_sweep_ratios_pair_each_round() -> None:
    """The sweep's targets compare each run with the one-worker run of its own round, then
    take the median over rounds: a machine whose load drifts between rounds moves a pair
    together. Here the second round ran at half speed throughout: pairs say 1.0x and
    1.1x every round, where the medians' ratio would say 1.0x / 0.75x = 1.33x."""

    def swept(rnd: int, workers: int, rate: float, cpu: float) -> dict[str, Any]:
        return _run("rooms", "fastchat", workers, "workers", round=rnd, deliveries_per_s=rate,
                    server_cpu_us_per_delivery=cpu)  # fmt: skip

    rows = [
        swept(0, 1, 2e6, 0.5), swept(0, 2, 2e6, 0.55), swept(0, 4, 1.8e6, 0.7),
        swept(1, 4, 0.9e6, 1.4), swept(1, 2, 1e6, 1.1), swept(1, 1, 1e6, 1.0),
        swept(2, 1, 1.5e6, 0.6), swept(2, 2, 1.5e6, 0.66), swept(2, 4, 1.4e6, 0.8),
    ]  # fmt: skip
    cells = {c["workers"]: c for c in summarize(rows, 1)}
    assert (cells[2]["rate_vs_one"], cells[2]["cpu_vs_one"]) == (1.0, 1.1)
    assert cells[2]["paired_rounds"] == 3
    assert (cells[4]["rate_vs_one"], cells[4]["cpu_vs_one"]) == (0.9, 1.4)
    assert "rate_vs_one" not in cells[1]
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(rows))}
    two = checks["rooms: --workers 2 ≥ 1.0× --workers 1 deliveries/s at ≤ 1.3× CPU/delivery"]
    assert two == ("1.00× deliveries/s, 1.10× CPU/delivery (median of 3 rounds' pairs)", True)
    four = checks["rooms: --workers 4 ≥ 0.9× --workers 1 deliveries/s at ≤ 1.3× CPU/delivery"]
    assert four == ("0.90× deliveries/s, 1.40× CPU/delivery (median of 3 rounds' pairs)", False)
    # a run without its round pairs with nothing; a cell run twice in one round leaves the
    # pairing undefined, and the medians' ratio stands
    del rows[0]["round"]
    assert {c["workers"]: c for c in summarize(rows, 1)}[2]["paired_rounds"] == 2
    rows[0]["round"] = 1
    assert "rate_vs_one" not in {c["workers"]: c for c in summarize(rows, 1)}[2]


def test_store_per_message_from_the_sweep() -> None:
    sweep = summarize(SWEEP_ROWS, 1)
    assert report.store_us_per_message(sweep) == 0.45  # 0.05 µs/delivery × 9
    assert report.store_us_per_message([]) == 0.0


def test_ceilings_and_projection_section(tmp_path: Path) -> None:
    import json

    hub = {
        "what": "the hub", "machine": {"date": "now"}, "settings": {"command": "hubceiling"},
        "runs": [
            {"load": {"placement": p, "workers": 4, "run": 1}, "visits": v,
             "hub_cpu_us_per_message": us, "ceiling_messages_per_s": 1e6 / us,
             "ceiling_deliveries_per_s": 9e6 / us, "messages_per_s": 1e5, "hub_cpu_cores": 0.9}
            for p, v, us in (("spread", 4.0, 3.0), ("clustered", 1.0, 1.5))
        ],
    }  # fmt: skip
    worker = {
        "what": "a worker", "machine": {"date": "now"}, "settings": {"command": "workerceiling"},
        "runs": [
            {"mode": "deliver", "setup": {"local": 3, "run": 1, "per_room": 8},
             "us_per_record": 1.0, "us_per_delivery": 0.33, "deliveries_per_s": 3e6},
            {"mode": "ingest", "setup": {"local": 1, "run": 1, "per_room": 8},
             "us_per_message": 3.0, "messages_per_s": 3e5},
        ],
        "fits": {"1": {"ingest_us": 3.0, "visit_us": 0.4, "delivery_us": 0.2}},
    }  # fmt: skip
    results = _results(SWEEP_ROWS)
    assert report.scaling_section(results, tmp_path) == ""  # no ceilings measured: nothing
    (tmp_path / "hubceiling.json").write_text(json.dumps(hub))
    (tmp_path / "workerceiling.json").write_text(json.dumps(worker))
    section = report.scaling_section(results, tmp_path)
    assert (
        "## Projection: deliveries per second on 1 to 16 cores (a model, not a measurement)"
        in section
    )
    assert "| spread | 4 | 4.00 | 1 | 3.000 | 333,333 | 3,000,000 |" in section
    # the hub's cost fitted in the visits: 1.0 + 0.5 per visit; the store from the sweep
    assert "| 1 | 3.000 | 0.400 | 0.200 | 1.000 | 0.500 | 0.450 |" in section
    # one core: ingest 3 + visit 0.4 + 9 × 0.2 + store 0.45 = 5.65 µs per message, no hub
    assert f"| 1 | 1.00 | {round(9e6 / 5.65):,} (cores)" in section
    # the model against the sweep: at one worker 5.65 / 9 = 0.628 µs per delivery
    assert "| rooms-small | 1 | 3.0 | 1.00 | 0.628 (1) | 0.410 | 0.65× |" in section
    # sixteen cores, clustered: the hub's one core bounds it (1 / 1.5 µs = 666,667 messages/s)
    assert "| 16 | " in section and f"{round(9e6 / 1.5):,} (hub) |" in section
    assert "| 16 ÷ 1 | | " in section and f" | {9e6 / 1.5 / (9e6 / 5.65):.1f}× |" in section
    # issue 14's targets: the hub ceiling (spread over 4, runs of 1) and the 16-core gain
    assert (
        "| hub ceiling ≥ 1,000,000 channel messages/s on one core (rooms of 10 over 4 workers, "
        "one message per record) | 333,333 messages/s (3.000 µs each) | **no** |"
    ) in section
    assert "| projection, run 1, clustered: 16 cores ≥ 6× one core | 3.8× (" in section
    page = report.benchmarks_md(results, report.markdown(results), tmp_path)
    assert section in page


def test_markdown_and_page(tmp_path: Path) -> None:
    results = _results(ROWS)
    table = report.markdown(results)
    assert "| fanout | server_cpu_us_per_delivery | 0.4 | 0.2 | 2.00× |" in table
    assert "unavailable: ngircd is not installed" in table
    assert "| fanout-tagged | fastchat | 1 | 2,000,000 | 0.52 |" in table
    page = report.benchmarks_md(results, table)
    assert table in page and "make bench PEERS=ngircd,inspircd" in page
    for row in ROWS:
        assert report.one_line(row)


def _probe(p50: float, p99: float, lines: tuple[int, int] = (100, 100), **more: Any) -> Any:
    figures = {"samples": 150, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "max_ms": p99 * 2,
               "room": "#r0", "limit": 100, "timeouts": 0, "lines_min": lines[0],
               "lines_max": lines[1], "short": int(lines[0] < 100)}  # fmt: skip
    figures.update(more)
    return figures


def _ping(p50: float, p99: float, top: float) -> dict[str, Any]:
    return {"samples": 150, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "max_ms": top}


# issue 12: history on (the default) against --no-history, and the CHATHISTORY probe
HISTORY_ROWS = [
    _run("rooms", "fastchat", deliveries_per_s=9e5, server_cpu_us_per_delivery=1.0),
    _run("rooms-nohistory", "fastchat", deliveries_per_s=1e6, server_cpu_us_per_delivery=0.9),
    _run("latency", "fastchat", latency={"samples": 9, "p50_ms": 0.3, "p99_ms": 2.5, "max_ms": 9}),
    _run(
        "latency-nohistory",
        "fastchat",
        latency={"samples": 9, "p50_ms": 0.2, "p99_ms": 0.5, "max_ms": 3.0},
    ),
    *[
        _run("history", "fastchat", deliveries_per_s=rate, chathistory=probe)
        for rate, probe in (
            (8e5, _probe(2.0, 4.0, ping=_ping(0.4, 1.0, 2.0))),
            (8.5e5, _probe(3.0, 6.0, lines=(40, 100), ping=_ping(0.5, 1.2, 3.0))),
            (7e5, _probe(2.5, 4.5, ping=_ping(0.6, 1.5, 4.0))),
        )
    ],
]


def test_history_medians_over_rounds() -> None:
    cell = next(c for c in summarize(HISTORY_ROWS, 1) if c["scenario"] == "history")
    h = cell["chathistory"]
    assert (h["p50_ms"], h["p99_ms"], h["max_ms"]) == (2.5, 4.5, 9.0)
    assert (h["samples"], h["lines_min"], h["lines_max"], h["short"]) == (450, 40, 100, 1)
    assert cell["deliveries_per_s"] == 8e5


def test_history_targets() -> None:
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(HISTORY_ROWS))}
    assert checks["rooms: history on ≥ 0.8× history off deliveries/s"] == (
        "900,000 vs 1,000,000 (0.90×)",
        True,
    )
    assert checks["latency: p99 with history on ≤ 2.0 ms"] == (
        "2.5 ms (history off: 0.5 ms)",
        False,
    )
    assert checks["latency: p99 ≤ 5.0 ms"][1] is True  # the older target, same figure
    assert checks["history: CHATHISTORY LATEST 100 p99 < 5.0 ms while rooms runs"] == (
        "4.5 ms (p50 2.5, max 9; 450 answers)",
        True,
    )
    lines = checks["history: every CHATHISTORY answer held 100 lines"]
    assert lines == ("40–100 lines, 450 answers, 0 timed out", False)


def test_history_targets_fail_and_errors() -> None:
    slow = [
        _run("rooms", "fastchat", deliveries_per_s=7e5),
        _run("rooms-nohistory", "fastchat", deliveries_per_s=1e6),
        _run("history", "fastchat", deliveries_per_s=7e5, chathistory=_probe(4.0, 5.0)),
    ]
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(slow))}
    assert checks["rooms: history on ≥ 0.8× history off deliveries/s"][1] is False
    # under 5 ms, strictly
    assert checks["history: CHATHISTORY LATEST 100 p99 < 5.0 ms while rooms runs"][1] is False
    assert checks["history: every CHATHISTORY answer held 100 lines"][1] is True
    broken = [
        _run(
            "history",
            "fastchat",
            deliveries_per_s=7e5,
            chathistory={"samples": 0, "limit": 100, "timeouts": 0, "error": "RuntimeError: x"},
        )
    ]
    checks = {label: (figure, ok) for label, figure, ok in report.targets(_results(broken))}
    assert checks["history: CHATHISTORY LATEST 100 p99 < 5.0 ms while rooms runs"] == (
        "RuntimeError: x",
        False,
    )
    assert checks["history: every CHATHISTORY answer held 100 lines"][1] is False
    assert "no answer (RuntimeError: x)" in report.one_line(broken[0])


def test_history_tables() -> None:
    table = report.markdown(_results(HISTORY_ROWS))
    assert "| rooms | deliveries_per_s | 900,000 | 1,000,000 | 0.90× |" in table
    assert "| latency | p99_ms | 2.5 | 0.5 | 5.00× |" in table
    assert (
        "| `CHATHISTORY LATEST #r0 * 100` | 1 | 450 | 2.50 / 4.50 / 9.00 | 40–100 (of 100) "
        "| 0.50 / 1.20 / 3.00 | 800,000 | none |"
    ) in table
    # the variants are throughput (or latency) rows of the main table like their own
    assert "| rooms-nohistory | fastchat | 1 | 1,000,000 | 0.9 |" in table
    assert "| latency-nohistory | fastchat | 1 |" in table and "0.20 / 0.50 / 3.00" in table
    assert "CHATHISTORY p50/p99/max 2.00/4.00/8.00 ms, 150 answers of 100 lines" in (
        report.one_line(HISTORY_ROWS[4])
    )


def test_history_scenarios() -> None:
    from bench import peers
    from bench.run import ALL, SCENARIOS

    for name in ("rooms-nohistory", "latency-nohistory", "history"):
        assert name in ALL  # make bench runs them by default
        assert SCENARIOS[name].fastchat_only
    # each pair back to back, history on (fastchat's default) first
    order = list(SCENARIOS)
    assert order.index("rooms-nohistory") == order.index("rooms") + 1
    assert order.index("latency-nohistory") == order.index("latency") + 1
    assert SCENARIOS["rooms-nohistory"].server_args == ("--no-history",)
    assert SCENARIOS["rooms"].server_args == () and not SCENARIOS["rooms"].fastchat_only
    assert SCENARIOS["history"].load == SCENARIOS["rooms"].load
    assert SCENARIOS["latency-nohistory"].load == SCENARIOS["latency"].load
    refused = pytest.raises(peers.Unavailable, match="takes no fastchat flags")
    with refused, peers.launch("ngircd", 1, ("--no-history",)):
        pass


def test_findings_are_the_pages_end() -> None:
    """`make bench` rebuilds BENCHMARKS.md from the latest run and bench/FINDINGS.md: a finding
    written into the page alone would be lost by the next run."""
    root = Path(__file__).resolve().parents[2]
    page = (root / "BENCHMARKS.md").read_text()
    assert page.endswith((root / "bench" / "FINDINGS.md").read_text())
