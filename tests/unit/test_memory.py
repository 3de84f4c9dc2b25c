"""When a process gives its freed heap back (runtime/memory.py): after work, once quiet;
never in the middle of a burst; now and then if it is never quiet; rarely when idle."""

from __future__ import annotations

import pytest

from fastchat.server.runtime import memory
from fastchat.server.runtime.memory import BUSY_EVERY, CHECK_EVERY, MIN_WORK, Trimmer


class Process:
    """A fake process: its CPU clock, advanced by the test, and the trims it was asked for."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.trims = 0

    def release(self) -> bool:
        self.trims += 1
        return True


def run(trimmer: Trimmer, p: Process, start: float, seconds: float, share: float) -> float:
    """Let ``seconds`` pass from ``start`` while the process uses ``share`` of a core,
    checking as a loop does (each time :attr:`Trimmer.due` passes); the time at the end."""
    now = start
    while now < start + seconds:
        step = min(trimmer.due, start + seconds) - now
        now += step
        p.cpu += step * share
        if now >= trimmer.due:
            trimmer.check(now)
    return now


def make() -> tuple[Trimmer, Process]:
    p = Process()
    p.cpu = 0.3  # starting up
    return Trimmer(0.0, cpu=lambda: p.cpu, release=p.release), p


def test_starting_up_counts_as_work_and_the_first_quiet_look_trims() -> None:
    t, p = make()
    run(t, p, 0.0, CHECK_EVERY, 0.0)
    assert p.trims == 1


def test_a_burst_is_never_trimmed_in_the_middle_and_is_right_after() -> None:
    t, p = make()
    now = run(t, p, 0.0, 1.0, 0.0)
    assert p.trims == 1
    now = run(t, p, now, 10.0, 0.8)  # a connect storm: a core mostly busy
    assert p.trims == 1
    run(t, p, now, 2 * CHECK_EVERY, 0.0)  # quiet again: within two looks
    assert p.trims == 2


def test_an_idle_process_trims_only_once_its_ticks_add_up_to_some_work() -> None:
    t, p = make()
    now = run(t, p, 0.0, 1.0, 0.0)
    assert p.trims == 1
    share = 0.001  # an idle server's ticks
    now = run(t, p, now, 0.9 * MIN_WORK / share, share)
    assert p.trims == 1
    run(t, p, now, 0.2 * MIN_WORK / share, share)
    assert p.trims == 2


def test_a_process_never_quiet_trims_every_busy_every_seconds() -> None:
    t, p = make()
    run(t, p, 0.0, 3 * BUSY_EVERY + CHECK_EVERY, 0.5)
    assert p.trims == 3


def test_nothing_done_since_the_last_trim_is_nothing_to_trim() -> None:
    t, p = make()
    run(t, p, 0.0, 5 * BUSY_EVERY, 0.0)
    assert p.trims == 1


def test_where_the_c_library_has_no_malloc_trim_nothing_breaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    assert memory.trim() is False
    t = Trimmer(0.0)
    t.check(CHECK_EVERY)  # the real clocks: no error, no trim


def test_this_machine_trims() -> None:
    """Linux with glibc (what CI and the README's `make run` use): the call is there."""
    assert memory._TRIM is not None
    assert memory.trim() is True
