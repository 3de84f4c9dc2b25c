"""Smoke run of the locust load test: a handful of IRC users against a real fastchat server.

Checks the locustfile and its driver end to end (server on a free port, locust headless,
the per-process tallies merged): messages were delivered and nothing failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers import FASTCHAT_BENCH_ARGS
from fastchat.server.runtime.process import running

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_locust_users_chat_without_failures(tmp_path: Path) -> None:
    with running(FASTCHAT_BENCH_ARGS, workers=2) as server:
        done = subprocess.run(
            [sys.executable, "-m", "loadtest.run",
             "--host", server.host, "--port", str(server.port),
             "--users", "6", "--rooms", "2", "--rate", "5", "--duration", "4",
             "--processes", "1", "--sample-every", "2", "--reports", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=50,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["users"] == 6
    assert summary["sent"] > 0
    # three users per room on average: each message reaches the other members
    assert summary["delivered"] > summary["sent"]
    assert summary["connect_errors"] == summary["send_errors"] == summary["disconnects"] == 0
    assert summary["latency"]["samples"] > 0
    assert "messages_per_second=" in done.stdout
    assert (tmp_path / "locust.html").stat().st_size > 0
    assert (tmp_path / "locust_stats.csv").read_text().count("deliver") >= 1
