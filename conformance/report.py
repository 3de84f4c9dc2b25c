"""Read irctest's JUnit files, print a per-module table, and enforce the ratchet.

``make conformance`` (through ``run.py``) runs irctest once per worker count, writing
``junit-wN.xml`` into a results folder, and retries suspects into ``junit-wN-retryK.xml``.
This script then:

1. prints, per test module, how many tests passed, failed and were skipped at each worker
   count, side by side, with totals (a test passes if it passed in any attempt);
2. names every FLAKY test: one that failed and then passed on a retry, at which worker count;
3. checks the ratchet, ``conformance/passing.txt`` (pytest node ids, sorted, one a line):
   every listed test must pass at every worker count, and the pass sets of all worker counts
   must be equal (a test that passes with 1 worker but not with 4 points at the multi-process
   design). Tests that pass everywhere but are not listed yet are announced, with the command
   that records them.

Tests named in ``conformance/racy.txt`` (next to ``passing.txt``; a node id, or one without
its ``[parameters]`` for all of them, each with the reason) race by their own design at
several workers: they send from one client and read from another without synchronising the
sender, which no multi-process server can order. They still run and are shown (KNOWN
RACES), but are held to neither rule, and never listed in ``passing.txt``.

``--update`` rewrites ``passing.txt`` from the results: the tests that passed at every worker
count, except the racy ones. Exit status: 0 when the ratchet holds (or after an update), 1 when it does not, 2 when
the results are missing or unreadable. Standard library only: it runs in any Python 3.11.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

PASS, FAIL, SKIP = "pass", "fail", "skip"
# The worse status wins when a node id appears twice in one file (a teardown error can be
# reported as a second <testcase> of the same test).
SEVERITY = {PASS: 0, SKIP: 1, FAIL: 2}
JUNIT_NAME = re.compile(r"junit-w(\d+)(?:-retry(\d+))?\.xml")
TEST_ROOT = "irctest/server_tests/"

# Worker count → node id → statuses, first attempt first.
Runs = dict[int, dict[str, list[str]]]


def node_id(classname: str, name: str) -> str:
    """``irctest.server_tests.chmodes.ban.BanModeTestCase`` + ``testBan`` →
    ``irctest/server_tests/chmodes/ban.py::BanModeTestCase::testBan`` (pytest's node id, which
    ``pytest NODEID`` accepts to rerun one test)."""
    module, _, cls = classname.rpartition(".")
    return f"{module.replace('.', '/')}.py::{cls}::{name}"


def module_of(test: str) -> str:
    """``irctest/server_tests/chmodes/ban.py::...`` → ``chmodes/ban``."""
    path = test.split("::", 1)[0]
    return path.removeprefix(TEST_ROOT).removesuffix(".py")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def read_junit(path: Path) -> dict[str, str]:
    """Node id → ``pass``/``fail``/``skip`` for every test case in one JUnit file."""
    results: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = node_id(case.get("classname", ""), case.get("name", ""))
        if case.find("failure") is not None or case.find("error") is not None:
            status = FAIL
        elif case.find("skipped") is not None:
            status = SKIP
        else:
            status = PASS
        if SEVERITY[status] >= SEVERITY[results.get(test, PASS)]:
            results[test] = status
    return results


def read_results(folder: Path) -> Runs:
    """Every ``junit-wN.xml`` and its retries ``junit-wN-retryK.xml``, in attempt order."""
    files: list[tuple[int, int, Path]] = []
    for path in folder.glob("junit-w*.xml"):
        match = JUNIT_NAME.fullmatch(path.name)
        if match:
            files.append((int(match.group(1)), int(match.group(2) or 0), path))
    runs: Runs = {}
    for workers, _, path in sorted(files):
        history = runs.setdefault(workers, {})
        for test, status in read_junit(path).items():
            history.setdefault(test, []).append(status)
    return runs


def skipped_first(runs: Runs) -> set[str]:
    """The tests the lowest worker count skipped (run.py may not run them again elsewhere)."""
    first = runs[min(runs)]
    return {test for test, history in first.items() if final(history) == SKIP}


def carry_skips(runs: Runs) -> dict[int, int]:
    """Count a test skipped at the lowest worker count and not run at another as skipped
    there too (``--rerun-skipped`` off). Returns how many were carried, per worker count."""
    carried: dict[int, int] = {}
    for workers, results in runs.items():
        missing = skipped_first(runs) - results.keys()
        for test in missing:
            results[test] = [SKIP]
        if missing:
            carried[workers] = len(missing)
    return carried


def final(history: list[str]) -> str:
    """A test passes if any attempt passed; otherwise its first attempt tells."""
    return PASS if PASS in history else history[0]


def passed(runs: Runs) -> dict[int, set[str]]:
    return {w: {t for t, h in results.items() if final(h) == PASS} for w, results in runs.items()}


def suspects(runs: Runs, listed: set[str]) -> dict[int, list[str]]:
    """Per worker count, the tests worth another attempt there: not passed yet, although they
    are in ``passing.txt`` or passed at another worker count."""
    anywhere: set[str] = set().union(*passed(runs).values())
    return {
        w: sorted(t for t in (listed | anywhere) - ok if t in runs[w])
        for w, ok in passed(runs).items()
    }


def read_passing(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def print_table(runs: Runs) -> None:
    """One row per test module, one ``pass fail skip`` column group per worker count."""
    counts: dict[tuple[str, int], Counter[str]] = {}
    for workers, results in runs.items():
        for test, history in results.items():
            counts.setdefault((module_of(test), workers), Counter())[final(history)] += 1
    modules = sorted({module for module, _ in counts})
    width = max([len(m) for m in modules] + [len("module")])

    def row(label: str, cells: list[str]) -> str:
        return f"{label:<{width}} | " + " | ".join(cells)

    def numbers(c: Counter[str]) -> str:
        return f"{c[PASS]:>4} {c[FAIL]:>4} {c[SKIP]:>4}"

    cell = len(numbers(Counter()))
    print(row("", [f"{plural(w, 'worker'):^{cell}}" for w in runs]))
    print(row("module", [f"{'pass fail skip':>{cell}}" for _ in runs]))
    rule = "-" * width + "-+-" + "-+-".join("-" * cell for _ in runs)
    print(rule)
    totals = {workers: Counter[str]() for workers in runs}
    for module in modules:
        cells = []
        for workers in runs:
            c = counts.get((module, workers), Counter())
            totals[workers].update(c)
            cells.append(numbers(c))
        print(row(module, cells))
    print(rule)
    print(row("total", [numbers(totals[w]) for w in runs]))


def describe(test: str, runs: Runs) -> str:
    where = ", ".join(
        f"{plural(w, 'worker')}: {'/'.join(r.get(test, ['absent']))}" for w, r in runs.items()
    )
    return f"  {test}  ({where})"


def read_racy(path: Path) -> set[str]:
    """The node ids (or ids without parameters) of ``racy.txt``; ``#`` starts a comment."""
    if not path.exists():
        return set()
    entries = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {entry for entry in entries if entry}


def is_racy(test: str, racy: frozenset[str] | set[str]) -> bool:
    return test in racy or test.split("[", 1)[0] in racy


def check_ratchet(
    runs: Runs, listed: set[str], racy: frozenset[str] | set[str] = frozenset()
) -> bool:
    """Print what is flaky and what breaks the ratchet; True when the ratchet holds."""
    ok_at = passed(runs)
    everywhere = set.intersection(*ok_at.values())
    anywhere = set.union(*ok_at.values())
    ok = True

    known = sorted({t for results in runs.values() for t in results if is_racy(t, racy)})
    if known:
        print(f"\nKNOWN RACES: {len(known)} test(s) of racy.txt, not held to the ratchet:")
        for test in known:
            print(describe(test, runs))
        everywhere = {t for t in everywhere if not is_racy(t, racy)}
        anywhere = {t for t in anywhere if not is_racy(t, racy)}

    flaky = sorted(
        {t for results in runs.values() for t, h in results.items() if PASS in h and h[0] != PASS}
    )
    if flaky:
        print(f"\nFLAKY: {len(flaky)} test(s) failed, then passed on a retry:")
        for test in flaky:
            print(describe(test, runs))

    regressed = sorted(listed - everywhere)
    if regressed:
        ok = False
        print(
            f"\nFAIL: {len(regressed)} test(s) in passing.txt did not pass at every worker count:"
        )
        for test in regressed:
            print(describe(test, runs))

    differing = sorted(anywhere - everywhere)
    if differing:
        ok = False
        counts = " and ".join(str(w) for w in runs)
        print(f"\nFAIL: the pass sets at {counts} workers differ in {len(differing)} test(s):")
        for test in differing:
            print(describe(test, runs))

    gained = sorted(everywhere - listed)
    if gained:
        print(
            f"\n{len(gained)} test(s) now pass at every worker count but are not in "
            "conformance/passing.txt:"
        )
        for test in gained:
            print(f"  {test}")
        print("Record them with `make conformance-update` (and commit conformance/passing.txt).")

    if ok:
        print(f"\nratchet holds: all {len(listed)} listed tests pass at every worker count.")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=Path, required=True, help="folder of junit-wN.xml")
    parser.add_argument("--passing", type=Path, required=True, help="the ratchet file")
    parser.add_argument(
        "--update", action="store_true", help="rewrite the ratchet file from the results"
    )
    args = parser.parse_args(argv)

    try:
        runs = read_results(args.results)
    except (OSError, ET.ParseError) as exc:
        print(f"cannot read the results in {args.results}: {exc}", file=sys.stderr)
        return 2
    if not runs:
        print(f"no junit-wN.xml in {args.results}: run `make conformance` first", file=sys.stderr)
        return 2
    listed = read_passing(args.passing)
    racy = read_racy(args.passing.parent / "racy.txt")

    if args.update:
        everywhere = set.intersection(*passed(runs).values())
        everywhere = {t for t in everywhere if not is_racy(t, racy)}
        args.passing.write_text("".join(f"{test}\n" for test in sorted(everywhere)))
        counts = " and ".join(str(w) for w in runs)
        print(
            f"wrote {args.passing}: {len(everywhere)} tests passing at {counts} workers "
            f"(+{len(everywhere - listed)} -{len(listed - everywhere)})"
        )
        return 0

    carried = carry_skips(runs)
    print_table(runs)
    for workers, count in carried.items():
        print(
            f"({count} tests skipped at {plural(min(runs), 'worker')} were not run again at "
            f"{workers}: counted as skipped there)"
        )
    return 0 if check_ratchet(runs, listed, racy) else 1


if __name__ == "__main__":
    sys.exit(main())
