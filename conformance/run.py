"""Run irctest against fastchat at several worker counts, retry suspects, then judge.

``make conformance`` calls this with the selection and the paths; it:

1. checks that the irctest suite is there (else says how to get it, and fails);
2. runs the selection once per worker count (``FASTCHAT_WORKERS``), lowest first, inside the
   suite's folder (its ``conftest.py`` and ``pytest.ini`` live there) without writing into it:
   no pytest cache, no bytecode; the JUnit file and the full log go to the results folder.
   At the higher worker counts it leaves out, unless ``--rerun-skipped``, the tests the lowest
   one skipped: irctest skips a test when the server lacks a capability, an ISUPPORT token or
   a command, which does not depend on the worker count, and every test costs a server start
   (0.25 s of CPU at 1 worker, 0.45 s at 4), so this saves a third of the time;
3. runs again, up to ``--retries`` times, only the *suspects*: tests that did not pass at one
   worker count although they are in ``passing.txt`` or passed at another worker count. A test
   that passes on a retry counts as passing and is reported as FLAKY, with its node id;
4. hands over to ``report.py`` for the table and the ratchet.

Retries are off by default (``make conformance`` passes ``--retries 0``): a flaky test is a
bug, and the ratchet must fail on it. They are a diagnostic: ``make conformance
CONFORMANCE_RETRIES=3`` names every test that fails now and then (FLAKY), with its node id.
Before the read barrier (README, "Current answers"), a client's PONG could overtake a line
another worker was about to deliver, and a handful of tests at 4 workers failed at random.

Standard library only; any Python 3.11 runs it (pytest itself runs in ``--python``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import report

IRCTEST_REPO = "https://github.com/progval/irctest"
SERVER_TESTS = "irctest/server_tests"


def pytest_command(args: argparse.Namespace, junit: Path, tests: list[str], jobs: int) -> list[str]:
    return [
        args.python,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",  # the suite's folder may be read-only: no .pytest_cache
        "--controller",
        "fastchat_controller",
        "-m",
        args.markers,
        "-n",
        str(jobs),
        "--timeout",
        str(args.timeout),
        "-q",
        "--durations",
        "15",
        f"--junitxml={junit}",
        *tests,
    ]


def run_pytest(
    args: argparse.Namespace, workers: int, name: str, tests: list[str], jobs: int
) -> int:
    """One pytest run at one worker count; the log goes to ``pytest-NAME.log``. Returns
    pytest's exit status, after printing its closing line and the time it took."""
    results = args.results.resolve()
    env = dict(os.environ)
    env.update(
        PYTHONDONTWRITEBYTECODE="1",  # nor __pycache__ in the suite's folder
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parent), *filter(None, [env.get("PYTHONPATH")])]
        ),
        FASTCHAT_BIN=str(Path(args.fastchat).resolve()),
        FASTCHAT_WORKERS=str(workers),
    )
    log = results / f"pytest-{name}.log"
    command = pytest_command(args, results / f"junit-{name}.xml", tests, jobs)
    started = time.monotonic()
    with log.open("wb") as out:
        status = subprocess.run(
            command, cwd=args.irctest_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    lines = log.read_text(errors="replace").splitlines()
    closing = lines[-1] if lines else "(no output)"
    print(f"  {closing}  [{time.monotonic() - started:.0f}s, log: {args.results / log.name}]")
    if status > 1:  # 0: all passed, 1: some failed; anything else is a broken run
        print("\n".join(lines[-30:]))
        print(f"irctest run failed (pytest exit status {status})")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--irctest-dir", type=Path, required=True)
    parser.add_argument("--commit", default="", help="the irctest commit to advise cloning")
    parser.add_argument("--python", required=True, help="the Python that has irctest's needs")
    parser.add_argument("--fastchat", required=True, help="the fastchat executable")
    parser.add_argument("--workers", type=int, nargs="+", required=True)
    parser.add_argument("--jobs", type=int, default=2, help="pytest-xdist processes")
    parser.add_argument("--markers", required=True, help="pytest -m selection")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per test")
    parser.add_argument("--retries", type=int, default=3, help="extra runs for suspects")
    parser.add_argument(
        "--rerun-skipped",
        action="store_true",
        help="run the tests skipped at the lowest worker count at the others too",
    )
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--passing", type=Path, required=True)
    args = parser.parse_args(argv)

    if not (args.irctest_dir / "conftest.py").is_file():
        print(f"irctest not found in IRCTEST_DIR={args.irctest_dir}. Get it with:")
        print(f"  git clone {IRCTEST_REPO} {args.irctest_dir}")
        if args.commit:
            print(f"  git -C {args.irctest_dir} checkout {args.commit}")
        print("or point IRCTEST_DIR at such a clone.")
        return 1

    args.results.mkdir(parents=True, exist_ok=True)
    for old in args.results.glob("*"):
        old.unlink()
    listed = report.read_passing(args.passing)

    for workers in sorted(args.workers):
        tests = [SERVER_TESTS]
        note = ""
        if workers > min(args.workers) and not args.rerun_skipped:
            runs = report.read_results(args.results)
            skipped = report.skipped_first(runs)
            tests = sorted(runs[min(runs)].keys() - skipped)
            note = (
                f" (not the {len(skipped)} tests skipped at "
                f"{report.plural(min(runs), 'worker')}: see --rerun-skipped)"
            )
        print(f"irctest, fastchat --workers {workers}{note}:")
        status = run_pytest(args, workers, f"w{workers}", tests, args.jobs)
        if status > 1:
            return status

    for attempt in range(1, args.retries + 1):
        runs = report.read_results(args.results)
        suspects = report.suspects(runs, listed)
        if not any(suspects.values()):
            break
        for workers, tests in suspects.items():
            if tests:
                print(
                    f"retry {attempt} at {report.plural(workers, 'worker')}: "
                    f"{len(tests)} test(s) that pass elsewhere or are in passing.txt"
                )
                status = run_pytest(args, workers, f"w{workers}-retry{attempt}", tests, jobs=0)
                if status > 1:
                    return status

    print()
    return report.main(["--results", str(args.results), "--passing", str(args.passing)])


if __name__ == "__main__":
    sys.exit(main())
