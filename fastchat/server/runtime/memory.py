"""Giving the heap's freed memory back to the operating system, once a process is quiet.

Owns: :class:`Trimmer`, which every long-lived process's loop consults (the worker, the hub,
the supervisor, the store's writing and reading processes), and the one call to the C
library's ``malloc_trim``.
Must never: trim while the process is busy relaying (a trim is 0.1-0.4 ms of CPU on a worker
with 5,000 clients; its freed pages fault back in as the process allocates again), or fail a
process where the C library has no ``malloc_trim`` (musl, macOS: then it does nothing).

Why: CPython serves objects up to 512 bytes from arenas of its own, and everything bigger
(read buffers, joined output, dictionary tables, a frame's list of records) from the C
library's ``malloc``, whose heap is only ever given back from its top. After a burst (a
connect storm, a mass quit, a drained backlog) the freed space in the middle stays resident.
``malloc_trim(0)`` hands every free page of it back (``MADV_DONTNEED``): 5,000 idle
clients at four workers measured 3.2 KB of RSS per connection without it and 2.5 KB with it
(bench/FINDINGS.md, "issue 14, session 4"); glibc's trim threshold (``GLIBC_TUNABLES``)
only governs the top of the heap, and did nothing.

When: a loop calls :meth:`Trimmer.check` once :attr:`Trimmer.due` has passed on its own
clock (every :data:`CHECK_EVERY` seconds). It trims when the process has done
:data:`MIN_WORK` of CPU since it last trimmed, and the last check's interval was quiet (under
:data:`QUIET_SHARE` of one core), so memory comes back within a second or two of a burst
and never in the middle of one; a process busy for good trims anyway every
:data:`BUSY_EVERY` seconds. An idle server trims rarely: its ticks add up to MIN_WORK slowly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("fastchat.memory")

#: Seconds between two looks at the process's CPU time
CHECK_EVERY = 0.25
#: A check's interval is quiet when the process used less than this share of one core in it
QUIET_SHARE = 0.05
#: Seconds of CPU the process must have used since its last trim before it trims again
MIN_WORK = 0.05
#: Seconds after which a process that was never quiet trims anyway (if it worked)
BUSY_EVERY = 30.0


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _libc_trim()


def trim() -> bool:
    """Give the heap's free pages back now; False if this C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def _rss() -> int:
    """This process's resident bytes (0 where ``/proc`` does not say)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Trimmer:
    """When one process gives its freed heap back (see the module docstring).

    ``cpu`` and ``release`` are the process's CPU clock and the trim itself, given only by
    tests."""

    __slots__ = (
        "_checked_at",
        "_cpu",
        "_cpu_checked",
        "_cpu_trimmed",
        "_release",
        "_trimmed_at",
        "due",
    )

    def __init__(
        self,
        now: float,
        cpu: Callable[[], float] = time.process_time,
        release: Callable[[], bool] = trim,
    ) -> None:
        self._cpu = cpu
        self._release = release
        self.due = now + CHECK_EVERY  # the loop calls check() once its clock passes this
        self._checked_at = now
        self._cpu_checked = cpu()
        self._cpu_trimmed = 0.0  # starting up counts as work: the first quiet check trims
        self._trimmed_at = now

    def check(self, now: float) -> bool:
        """Look at the CPU used since the last check (``now``: the loop's clock, seconds, past
        :attr:`due`), and trim if that is due; True if it trimmed."""
        cpu = self._cpu()
        quiet = cpu - self._cpu_checked < QUIET_SHARE * (now - self._checked_at)
        worked = cpu - self._cpu_trimmed >= MIN_WORK
        trimmed = False
        if worked and (quiet or now - self._trimmed_at >= BUSY_EVERY):
            debug = log.isEnabledFor(logging.DEBUG)
            before = _rss() if debug else 0
            trimmed = self._release()
            if debug and trimmed:
                log.debug("memory: heap trimmed, RSS %.1f -> %.1f MB", before / 1e6, _rss() / 1e6)
            cpu = self._cpu()  # (the trim's own CPU is no work)
            self._cpu_trimmed = cpu
            self._trimmed_at = now
        self._cpu_checked = cpu
        self._checked_at = now
        self.due = now + CHECK_EVERY
        return trimmed
