"""The benchmark report: medians over rounds, ratios, and the target checks, on made-up runs
(no servers). Guards the arithmetic between a measurement and the page that shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    workers = checks["fanout: --workers 4 ≥ --workers 1 deliveries/s at ≤ 1.3× CPU/delivery"]
    assert workers == ("1.10× deliveries/s, 1.50× CPU/delivery", False)
    assert checks["no loss: rooms on fastchat w1"] == ("⚠ 3 lost, 0 disconnects", False)
    tagged = checks["fanout-tagged: server CPU per delivery ≤ 1.5× plain fanout"]
    assert tagged == ("0.52 vs 0.4 µs (1.30×)", True)
    assert checks["rooms-tagged: server CPU per delivery ≤ 1.5× plain rooms"][1] is False


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
