"""What the machine allows, decided once at start: descriptors, and the ``auto`` settings.

Owns: raising the soft RLIMIT_NOFILE to the hard limit (the supervisor, before it forks, so
every child inherits it), the rule of ``--workers auto`` (from the cores this process may
run on) and of ``--max-clients auto`` (from the descriptors each worker has), and the log
lines that say what was picked and why.
Must never: open sockets, or run anywhere but in the supervisor before it forks (its
children inherit the limit and get the picks in their config).

The rules themselves (:func:`auto_workers`, :func:`auto_max_clients`,
:func:`worker_overhead`) are pure functions of numbers, tested without a machine;
:func:`decide` applies them to this one.
"""

from __future__ import annotations

import logging
import os
import resource
from typing import NamedTuple

from fastchat.server.config import AUTO, Config, with_auto

log = logging.getLogger("fastchat.limits")

#: ``--workers auto`` never picks more than this. Why 8 (bench/FINDINGS.md, issue 14;
#: BENCHMARKS.md's projection): it was set when the hub bounded throughput from about 6
#: workers with rooms spread and 9 with rooms clustered (more workers then *lost*). Since
#: segments (engine/segments.py) the hub forwards approved messages whole, and the model
#: stays linear to about 11 cores, then bound by the store's writer; but that model is fed
#: by one-core measurements, its writer term at long runs (optimistic), and no machine with
#: more than 2 cores has measured it. Eight stays until one does.
AUTO_WORKERS_MAX = 8
#: Below this many usable cores, ``--workers auto`` picks one worker. On 2 cores one worker
#: relays more than 2 or 4 (the issue's measurements: 1.56 M deliveries/s at 1 worker,
#: 1.19 M at 2, 0.77 M at 4, at 2-4x the CPU per delivery): a second worker only pays when
#: it has a core of its own besides the hub's and the store writer's, each a busy process.
AUTO_WORKERS_MIN_CORES = 4
#: Cores ``--workers auto`` leaves to the two serial processes: the hub and the store's writer.
SERIAL_PROCESSES = 2

#: Descriptors a worker holds whatever its clients, besides its listeners and its reserve
#: (measured with ``ls /proc/PID/fd`` on an idle worker, at 1 and at 4 workers: 10 with one
#: listener, 13 with four): stdin, stdout, stderr, /dev/null (the store's processes'), the
#: selector, the signal wakeup pair (2), the lifeline, the bus link to the hub or the store
#: writer's link, the history reader's link. tests/integration/test_descriptors.py measures
#: it again.
WORKER_BASE_FDS = 9
#: Descriptors a worker may open for a moment besides its clients: SMTP connections of
#: verification mails (2 threads), a K-line file's save (the file and its temporary), a
#: certificate read at a reload, a restarted reader's or writer's new link while the old
#: one closes. Left free by ``--max-clients auto``, with room to spare.
WORKER_MARGIN_FDS = 16
#: The descriptor each worker holds in reserve (fastchat.server.runtime.accept.Reserve), to
#: answer a newcomer when every other one is taken.
RESERVE_FDS = 1


class Descriptors(NamedTuple):
    """RLIMIT_NOFILE before and after :func:`raise_descriptor_limit`."""

    before: int
    soft: int
    hard: int
    error: str  # why it could not be raised ('' if it was, or need not be)


def raise_descriptor_limit() -> Descriptors:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it).
    A system whose hard limit is unlimited gets its ``nr_open`` ceiling (Linux refuses
    more); a failure leaves the limit as it was, and says why."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:
        target = _nr_open() or soft
    if soft == resource.RLIM_INFINITY or soft >= target:
        return Descriptors(soft, soft, hard, "")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        return Descriptors(soft, soft, hard, str(exc))
    return Descriptors(soft, target, hard, "")


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and
    ``taskset`` narrow), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # (not every platform has affinity)
        return os.cpu_count() or 1


def auto_workers(cores: int) -> int:
    """``--workers auto``: one worker below :data:`AUTO_WORKERS_MIN_CORES` usable cores;
    else one per core besides the hub's and the store writer's, at most
    :data:`AUTO_WORKERS_MAX` (see those for the evidence).

    >>> [auto_workers(c) for c in (1, 2, 3, 4, 5, 6, 8, 12, 64)]
    [1, 1, 1, 2, 3, 4, 6, 8, 8]
    """
    if cores < AUTO_WORKERS_MIN_CORES:
        return 1
    return min(cores - SERIAL_PROCESSES, AUTO_WORKERS_MAX)


def worker_overhead(config: Config) -> int:
    """Descriptors a worker needs for itself: :data:`WORKER_BASE_FDS` and one per listener
    (plain, TLS, web, web TLS, and the hand-off listener of ``placement = "affine"``, which
    a single worker does without), before the margin and the reserve. (A hand-off in flight
    holds one more for a moment: the margin's.)"""
    listeners = 1 + sum(
        1 for port in (config.tls_port, config.web_port, config.web_tls_port) if port
    )
    if config.placement == "affine":
        listeners += 1
    return WORKER_BASE_FDS + listeners


def auto_max_clients(soft: int, overhead: int, workers: int) -> int:
    """``--max-clients auto``: the clients ``workers`` workers can hold with ``soft``
    descriptors each, after ``overhead`` (:func:`worker_overhead`), the margin and the
    reserve; 0 (no limit) when the limit is unlimited. At least one per worker, so that a
    tiny limit still lets someone in (and the reserve answers the rest).

    >>> auto_max_clients(1024, 10, 1), auto_max_clients(64, 10, 4)
    (997, 148)
    """
    if soft == resource.RLIM_INFINITY:
        return 0
    per_worker = soft - overhead - WORKER_MARGIN_FDS - RESERVE_FDS
    return max(1, per_worker) * workers


class Picks(NamedTuple):
    """What :func:`decide` made of the config, and what ``auto`` means for each setting
    that takes it (by field name, for :func:`fastchat.server.config.with_auto` at each
    reload, where a file may say ``auto`` that did not at start)."""

    config: Config
    auto: dict[str, int]


def decide(config: Config) -> Picks:
    """At start, in the supervisor before it forks: raise the descriptor limit, then pick
    the ``auto`` settings from this machine, and log all three."""
    fds = raise_descriptor_limit()
    if fds.error:
        log.warning(
            "descriptors: soft %s (hard %s): cannot raise the soft limit: %s",
            _shown(fds.soft),
            _shown(fds.hard),
            fds.error,
        )
    else:
        log.info(
            "descriptors: soft %s -> %s (hard %s)",
            _shown(fds.before),
            _shown(fds.soft),
            _shown(fds.hard),
        )
    # Both picked whether asked for or not: a reload may turn a number into auto
    cores = usable_cores()
    picks = {"workers": auto_workers(cores)}
    workers = picks["workers"] if config.workers == AUTO else config.workers
    overhead = worker_overhead(config)
    picks["max_clients"] = limit = auto_max_clients(fds.soft, overhead, workers)
    if config.workers == AUTO:
        if cores < AUTO_WORKERS_MIN_CORES:
            why = f"below {AUTO_WORKERS_MIN_CORES}, one worker relays the most"
        elif workers == AUTO_WORKERS_MAX:
            why = f"at most {AUTO_WORKERS_MAX}: more is not measured yet"
        else:
            why = "one each besides the hub's and the store writer's"
        log.info("workers: auto -> %d (%d cores usable: %s)", workers, cores, why)
    if config.max_clients == AUTO and limit:
        log.info(
            "max clients: auto -> %d (%d workers x (%d descriptors - %d for itself - %d "
            "spare - %d reserve))",
            limit,
            workers,
            fds.soft,
            overhead,
            WORKER_MARGIN_FDS,
            RESERVE_FDS,
        )
    elif config.max_clients == AUTO:
        log.info("max clients: auto -> no limit (descriptors unlimited)")
    return Picks(with_auto(config, picks), picks)


def preview(config: Config | None = None) -> dict[str, str]:
    """What ``auto`` would pick on this machine, by key, for ``--help`` (without raising
    the limit: as it would be once raised)."""
    config = Config() if config is None else config
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        soft = max(soft, hard)
    cores = usable_cores()
    workers = auto_workers(cores)
    clients = auto_max_clients(soft, worker_overhead(config), workers)
    return {
        "workers": f"{workers}, of {cores} usable cores",
        "max_clients": f"{clients} at {workers} worker{'s' if workers > 1 else ''}"
        if clients
        else "no limit",
    }


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
