"""``python -m bench.hubceiling``: the hub alone, driven at full speed by synthetic workers.

Owns: starting the real hub (``runtime/hub.py``'s :class:`Hub` and its loop, the sequencer
inside it) in a child process of its own on a Unix socket, as the supervisor does; fake
workers that connect to it the way real workers do (a ``B_HELLO``, then the snapshot), register
their users and join them to rooms through ordinary requests, then write pre-encoded frames
of channel messages approved by their replica as a worker streams them (``R_CHANSEG``
segments stamped with the epoch of the last B_SEEN they read, engine/segments.py; or, with
``--segments off``, one ``R_CHANMSG`` per record, as before segments) as fast as the hub
takes them, and read whatever it sends back without decoding it;
measuring, over a window, the messages the hub decided and routed and the hub's own CPU.
Must never: change the hub (it runs as it is, its counters read from outside the loop by a
signal handler), run without a time bound, or leave its child behind.

What it reports: messages decided and routed per second of wall time, and per second of the
hub's CPU (``ceiling``: what one core running nothing else would give, which is the figure
the projection uses), with the layout that decides the routing work: rooms of ``members``
spread over ``workers`` fake workers (``spread``: member *j* of room *r* on worker
``(r * members + j) % workers``, every room on as many workers as it can be, as SO_REUSEPORT
comes close to; ``clustered``: a room on one worker), so each message's record goes to
``visits`` workers. A record carries ``run`` messages (a relay run, engine/relay.py: one line
is the small-window case; the half-window refills of ``make bench``'s rooms make runs of a
dozen or more); ``batch`` records per frame (what one worker's loop turn sends), and
``window`` frames in flight per fake worker, each ending with a history barrier
(``R_HISTSYNC``; with history off its ``D_STORED`` comes back at once) that says the hub has
decided and routed the frame (one request more per frame, counted out of the figures). Not
a read barrier (``R_SYNC``): that one waits for a fence round the fake workers do not answer
(network/fence.py), and real workers send one per query, not per frame. The fake workers decode what comes back and count the
``D_CHAN`` records (and the messages of each ``D_CHANSEG``): each message's record must
reach exactly ``visits`` workers; ``whole`` is the share of them that came in segments the
hub forwarded whole (1.0 unless something moved the hub's epoch during the window).

History is off (no ``--data-dir``): the hub hands each message to the store's writer when it
is on, and the store's own cost is measured by ``make bench``'s breakdown (the ``store`` role),
not here. Results go to ``bench/results/hubceiling.json`` and, with the other ceiling, into
BENCHMARKS.md's projection (bench/report.py).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import marshal
import multiprocessing as mp
import os
import pstats
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import report
from fastchat.server.config import Config
from fastchat.server.network.records import (
    B_SEEN,
    B_SNAPSHOT,
    D_CHAN,
    D_CHANSEG,
    D_STORED,
    R_CHANMSG,
    R_CHANSEG,
    SEG_FIELDS,
    BHello,
    Record,
    RHistSync,
    RJoin,
    RRegister,
    make,
)
from fastchat.server.runtime.bus import FrameReader, encode

ROOT = Path(__file__).resolve().parent.parent
_HEADER = struct.Struct("!I")
_COUNT = struct.Struct("<i")  # a marshalled list's item count, after its type byte


#: Messages in flight per fake worker by default: a small window (issue 14's generator kept
#: 50 per room; a worker holds its share of 40 rooms' talkers)
IN_FLIGHT = 512


@dataclass(frozen=True)
class HubLoad:
    workers: int = 4
    rooms: int = 40
    members: int = 10
    talkers: int = 2  # per room
    run: int = 1  # messages per record
    batch: int = 32  # records per frame
    # frames in flight per fake worker; 0: enough for IN_FLIGHT messages (see frames_in_flight)
    window: int = 0

    @property
    def frames_in_flight(self) -> int:
        """Frames in flight per fake worker: ``window``, or by default as many as make
        :data:`IN_FLIGHT` messages (at least one). Bounded in messages, not frames: with long
        runs, frames of the same count would hold megabytes, the fake workers (starved of CPU
        on a shared machine) would fall behind, and the hub would be measured copying its
        backlog rather than deciding (``Link.flush`` copied what was left after each partial
        send, measured 5x the CPU per message at 8 workers with runs of 16; it keeps a view
        now, but a starved fake worker still measures the machine, not the hub)."""
        if self.window:
            return self.window
        return max(1, -(-IN_FLIGHT // (self.batch * self.run)))

    placement: str = "spread"  # or "clustered"
    pad: int = 48  # filler bytes per message text
    segments: bool = True  # R_CHANSEG (what workers send), or one R_CHANMSG per record


def layout(load: HubLoad) -> dict[int, list[tuple[int, int, bool]]]:
    """Fake worker slot -> its users as (uid, room, talker?)."""
    out: dict[int, list[tuple[int, int, bool]]] = {s: [] for s in range(load.workers)}
    for room in range(load.rooms):
        for j in range(load.members):
            index = room * load.members + j
            slot = index % load.workers if load.placement == "spread" else room % load.workers
            out[slot].append(((slot + 1) << 32 | index, room, j < load.talkers))
    return out


def visits(load: HubLoad) -> float:
    """Workers each message's record goes to: the room's distinct workers (the same for
    every room in these layouts)."""
    slots = layout(load)
    rooms: dict[int, set[int]] = {}
    for slot, users in slots.items():
        for _, room, _ in users:
            rooms.setdefault(room, set()).add(slot)
    return sum(len(s) for s in rooms.values()) / len(rooms)


def _hub_main(workers: int, report_w: int, profile_to: str | None = None) -> None:
    """The child: the real hub, answering SIGUSR2 with (requests decided, its CPU seconds);
    with ``profile_to``, cProfile (on the process's CPU clock) runs between the two signals
    of the window and its busiest functions are written there."""
    from fastchat.server.runtime.hub import Hub
    from fastchat.server.runtime.proctitle import set_process_name
    from fastchat.server.runtime.supervisor import open_hub_listener

    set_process_name("fastchat-hub")
    listener, _ = open_hub_listener()
    config = Config(workers=workers, autojoin=(), data_dir="", history=False, flood_control=False)
    hub = Hub(config, listener, None)

    profiler = cProfile.Profile(time.process_time) if profile_to else None
    marks = 0

    def tell(signum: int, frame: object) -> None:
        nonlocal marks
        figures = (sum(hub.processed.values()), time.process_time())
        marks += 1
        if profiler is not None and profile_to is not None:
            if marks == 1:
                profiler.enable()
            elif marks == 2:
                profiler.disable()
                with open(profile_to, "w") as out:
                    stats = pstats.Stats(profiler, stream=out)
                    stats.sort_stats("tottime").print_stats(25)
        os.write(report_w, marshal.dumps(figures))

    signal.signal(signal.SIGUSR2, tell)
    os.write(report_w, marshal.dumps(listener.getsockname()))
    hub.run()


class _Fake:
    """One synthetic worker's link: a socket, its frame to repeat, what is left to send."""

    def __init__(self, slot: int, sock: socket.socket) -> None:
        self.slot = slot
        self.sock = sock
        self.frame = b""
        self.out = memoryview(b"")
        self.records = 0  # messages' records per frame
        self.requests = 0  # requests per frame but its barrier (a segment is one)
        self.epoch = 0  # the hub's state version, from the last B_SEEN read
        self.whole = 0  # messages' records that came in a D_CHANSEG
        self.in_flight = 0  # frames sent whose barrier's D_STORED has not come back
        self.routed = 0  # D_CHAN records the hub sent here
        self.frames = 0  # frames sent
        self.reader = FrameReader()


def _read_until(fake: _Fake, want: Any, timeout: float = 30.0) -> list[Record]:
    """Setup phase: decode frames from the hub until ``want(record)``; the records seen."""
    seen: list[Record] = []
    deadline = time.monotonic() + timeout
    fake.sock.setblocking(True)
    fake.sock.settimeout(max(0.1, deadline - time.monotonic()))
    while True:
        data = fake.sock.recv(1 << 20)
        if not data:
            raise RuntimeError(f"the hub closed fake worker {fake.slot}'s link")
        for batch in fake.reader.feed(data):
            for record in batch:
                seen.append(record)
                if record[0] == B_SEEN:
                    fake.epoch = record[3]
                if want(record):
                    fake.sock.setblocking(False)
                    return seen


def _line(uid: int, room: int, pad: int) -> bytes:
    return b":u%d!u@127.0.0.1 PRIVMSG #r%d :%s\r\n" % (uid & 0xFFFFFFFF, room, b"x" * pad)


def measure(
    load: HubLoad, duration: float, warmup: float, profile_to: Path | None = None
) -> dict[str, Any]:
    """One hub, one load: the figures, or a RuntimeError. With ``profile_to``, the hub runs
    under cProfile (its figures are then not the hub's: a separate run)."""
    ctx = mp.get_context("fork")
    report_r, report_w = os.pipe()
    child = ctx.Process(
        target=_hub_main,
        args=(load.workers, report_w, str(profile_to) if profile_to else None),
        daemon=True,
    )
    child.start()
    os.close(report_w)
    fakes: list[_Fake] = []
    try:
        address = marshal.loads(_read_pipe(report_r, 10.0))
        slots = layout(load)
        for slot in range(load.workers):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address)
            fake = _Fake(slot, sock)
            fakes.append(fake)
            sock.sendall(encode([make(BHello, slot, None, (), 0, {}, ())]))
            _read_until(fake, lambda r: r[0] == B_SNAPSHOT)
        for fake in fakes:  # register, join, and a barrier: its D_STORED says all are in
            users = slots[fake.slot]
            setup: list[Record] = []
            for uid, room, _ in users:
                nick = b"u%d" % (uid & 0xFFFFFFFF)
                setup.append(make(RRegister, uid, nick, b"u", b"127.0.0.1", b"bench"))
                setup.append(make(RJoin, uid, b"#r%d" % room, b""))
            last = users[-1][0]
            setup.append(make(RHistSync, last, 0))
            fake.sock.sendall(encode(setup))
            _read_until(fake, lambda r, last=last: r[0] == D_STORED and r[1] == last)
        for fake in fakes:  # every setup decided: the epoch each fake worker's replica holds
            first = slots[fake.slot][0][0]
            fake.sock.sendall(encode([make(RHistSync, first, 1)]))
            stored = [False]

            def settled(r: Record, uid: int = first, stored: list[bool] = stored) -> bool:
                stored[0] = stored[0] or (r[0] == D_STORED and r[1] == uid)
                return stored[0] and r[0] == B_SEEN  # the end of that frame

            _read_until(fake, settled)
        rooms: dict[int, set[int]] = {}
        for slot, users in slots.items():
            for _, room, _ in users:
                rooms.setdefault(room, set()).add(slot)
        for fake in fakes:
            talkers = [(uid, room) for uid, room, talks in slots[fake.slot] if talks]
            if not talkers:
                continue
            records = []
            items: list[Any] = []  # the open segment's
            route: tuple[int, ...] = ()
            for i in range(load.batch):
                uid, room = talkers[i % len(talkers)]
                line = _line(uid, room, load.pad) * load.run
                if not load.segments:
                    # RChanMsg, approved by the worker's replica (doubted False)
                    records.append((R_CHANMSG, uid, b"#r%d" % room, line, False, False, 0, b"", 0))
                    continue
                # consecutive messages to rooms of one route: one segment (engine/segments.py)
                here = tuple(sorted(rooms[room]))
                if not items or here != route:
                    items, route = [], here
                    records.append((R_CHANSEG, fake.epoch, route, items))
                items += (b"#r%d" % room, uid, line, 0, False, b"")
            records = [
                (R_CHANSEG, r[1], r[2], marshal.dumps(r[3]), _last(r[3]))
                if r[0] == R_CHANSEG
                else r
                for r in records
            ]
            fake.records = load.batch
            fake.requests = len(records)
            records.append(make(RHistSync, talkers[0][0], 0))  # its D_STORED: the frame is through
            fake.frame = encode(records)
        assert child.pid is not None
        return _drive(child.pid, fakes, report_r, load, duration, warmup)
    finally:
        # the hub first: links closed under a running hub are faults it would log
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)
        for fake in fakes:
            fake.sock.close()
        os.close(report_r)


def _last(items: list[Any]) -> dict[bytes, int]:
    """RChanSeg.last: each channel -> where its last message starts in ``items``."""
    return dict(zip(items[::SEG_FIELDS], range(0, len(items), SEG_FIELDS), strict=True))


def _read_pipe(fd: int, timeout: float) -> bytes:
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise RuntimeError("the hub did not answer")
        return os.read(fd, 4096)
    finally:
        sel.close()


def _drive(
    hub_pid: int, fakes: list[_Fake], report_r: int, load: HubLoad, duration: float, warmup: float
) -> dict[str, Any]:
    """Keep ``load.frames_in_flight`` frames in flight per fake worker (a frame ends with a history barrier,
    whose D_STORED comes back once the hub has decided and routed everything before it), count
    the records routed back, and read the hub's counters at the window's ends."""
    sel = selectors.DefaultSelector()
    talking = [f for f in fakes if f.frame]
    for f in fakes:
        f.sock.setblocking(False)
        sel.register(f.sock, selectors.EVENT_READ, f)
    start = time.monotonic()
    window_start = start + warmup
    window_end = window_start + duration
    # (wall, requests decided, hub CPU, driver CPU)
    marks: list[tuple[float, int, float, float]] = []

    def mark() -> None:
        os.kill(hub_pid, signal.SIGUSR2)
        decided, cpu = marshal.loads(_read_pipe(report_r, 5.0))
        marks.append((time.monotonic(), decided, cpu, time.process_time()))

    sending = True

    def top_up(f: _Fake) -> None:
        while sending and f.in_flight < load.frames_in_flight and not f.out:
            f.out = memoryview(f.frame)
            f.in_flight += 1
            f.frames += 1
            _send(f)
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if f.out else 0)
        if sel.get_key(f.sock).events != want:
            sel.modify(f.sock, want, f)

    for f in talking:
        top_up(f)
    while True:
        now = time.monotonic()
        if not marks and now >= window_start:
            mark()
        elif len(marks) == 1 and now >= window_end:
            mark()
            sending = False  # then drain: every frame sent comes back routed
        if not sending and not any(f.in_flight or f.out for f in talking):
            # every barrier is back, but a frame's records for the other workers may still
            # wait in their links: read until the hub has been quiet for a while
            while events := sel.select(0.2):
                for key, _ in events:
                    _receive(key.data)
            break
        if not sending and time.monotonic() > window_end + 10:
            raise RuntimeError("the hub did not finish the frames in flight within 10 s")
        for key, mask in sel.select(0.01):
            f = key.data
            if mask & selectors.EVENT_READ:
                _receive(f)
            if mask & selectors.EVENT_WRITE:
                _send(f)
            if f.frame:
                top_up(f)
    sel.close()
    (t0, d0, c0, g0), (t1, d1, c1, g1) = marks
    wall = t1 - t0
    # every frame is ``batch`` messages' records (in ``requests`` requests: segments, or one
    # each) and one barrier (RHistSync): count messages only
    per_frame = talking[0].records if talking else 1
    requests = talking[0].requests if talking else 1
    records = round((d1 - d0) * per_frame / (requests + 1))
    messages = records * load.run
    hub_cpu = c1 - c0
    v = visits(load)
    return {
        "load": asdict(load),
        "visits": round(v, 3),
        "frames_in_flight": load.frames_in_flight,
        "window_s": round(wall, 3),
        "records_decided": records,
        "whole": round(sum(f.whole for f in fakes) / max(1, sum(f.routed for f in fakes)), 3),
        # every frame sent came back decided (its barrier's D_STORED): all it routed is counted
        "records_routed_per_record": round(
            sum(f.routed for f in fakes) / sum(f.frames * f.records for f in talking), 3
        ),
        "messages_per_s": round(messages / wall),
        "hub_cpu_cores": round(hub_cpu / wall, 3),
        "driver_cpu_cores": round((g1 - g0) / wall, 3),
        "hub_cpu_us_per_message": round(hub_cpu / messages * 1e6, 4) if messages else None,
        "ceiling_messages_per_s": round(messages / hub_cpu) if hub_cpu else None,
        "ceiling_deliveries_per_s": round(messages / hub_cpu * (load.members - 1))
        if hub_cpu
        else None,
    }


def _send(f: _Fake) -> None:
    with contextlib.suppress(BlockingIOError):
        n = f.sock.send(f.out)
        f.out = f.out[n:]


def _receive(f: _Fake) -> None:
    """Decode what the hub sent: count the channel records routed here, and the barriers."""
    while True:
        try:
            data = f.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError("the hub closed a link during the load")
        for batch in f.reader.feed(data):
            for record in batch:
                kind = record[0]
                if kind == D_CHAN:
                    f.routed += 1
                elif kind == D_CHANSEG:  # its payload's list header says how many items
                    n = _COUNT.unpack_from(record[1], 1)[0] // SEG_FIELDS
                    f.routed += n
                    f.whole += n
                elif kind == D_STORED:
                    f.in_flight -= 1
        if len(data) < 1 << 20:
            return


def best_of(load: HubLoad, repeat: int, duration: float, warmup: float) -> dict[str, Any]:
    """``repeat`` runs of ``load``: the one with the least hub CPU per message (on a shared
    machine, noise only ever adds CPU), with every run's figure beside it."""
    rows = []
    for _ in range(max(1, repeat)):
        try:
            rows.append(measure(load, duration, warmup))
        except (RuntimeError, OSError) as e:
            rows.append({"load": asdict(load), "error": f"{type(e).__name__}: {e}"})
    good = [r for r in rows if "error" not in r and r.get("hub_cpu_us_per_message")]
    if not good:
        return rows[-1]
    best = min(good, key=lambda r: r["hub_cpu_us_per_message"])
    best["repeats_us_per_message"] = [r["hub_cpu_us_per_message"] for r in good]
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.hubceiling", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--workers", default="2,4,8,16", help="fake worker counts (comma-separated)")
    ap.add_argument("--runs", default="1,16", help="messages per record (comma-separated)")
    ap.add_argument("--batch", type=int, default=32, help="records per frame (default 32)")
    ap.add_argument(
        "--window", type=int, default=0, help="frames in flight per fake worker (0: see HubLoad)"
    )
    ap.add_argument("--placement", default="spread,clustered", help="spread and/or clustered")
    ap.add_argument(
        "--segments",
        default="on",
        help="on (R_CHANSEG, what workers send) and/or off (one R_CHANMSG per record, as "
        "before segments): 'on,off' measures both in one run",
    )
    ap.add_argument("--duration", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    ap.add_argument(
        "--benchmarks-md",
        type=lambda text: Path(text) if text else None,
        default=ROOT / "BENCHMARKS.md",
        help="rewrite this file from the latest results ('' to leave it alone)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs per layout; the least CPU per message is kept"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="then one more run (spread, the largest worker count, run 1) under cProfile: "
        "bench/results/profile-hub.txt",
    )
    args = ap.parse_args(argv)
    rows = []
    segments = [s == "on" for s in args.segments.split(",") if s]
    for placement in [p for p in args.placement.split(",") if p]:
        for workers in [int(w) for w in args.workers.split(",") if w]:
            for run in [int(r) for r in args.runs.split(",") if r]:
                for whole in segments:  # alternating: before and after side by side
                    load = HubLoad(
                        workers=workers,
                        run=run,
                        batch=args.batch,
                        window=args.window,
                        placement=placement,
                        segments=whole,
                    )
                    row = best_of(load, args.repeat, args.duration, args.warmup)
                    rows.append(row)
                    print("  " + one_line(row), flush=True)
    results = {
        "tool": "hubceiling",
        "what": "the real hub process (runtime/hub.py) driven by fake workers over its Unix socket",
        "machine": _machine(),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "batch": args.batch,
                     "command": " ".join(["python -m bench.hubceiling", *(sys.argv[1:] if argv is None else argv)])},
        "runs": rows,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        workers = max(int(w) for w in args.workers.split(",") if w)
        dest = args.out / "profile-hub.txt"
        load = HubLoad(workers=workers, run=1, batch=args.batch, window=args.window)
        measure(load, args.duration, args.warmup, dest)
        print(f"  profile: {dest}")
    (args.out / "hubceiling.json").write_text(json.dumps(results, indent=1) + "\n")
    report.rewrite_benchmarks_md(args.out, args.benchmarks_md)
    return 0


def one_line(row: dict[str, Any]) -> str:
    load = row["load"]
    head = (
        f"hub: {load['placement']:<9} {load['workers']:>2} workers, run {load['run']:>2}, "
        f"batch {load['batch']}, segments {'on' if load.get('segments', True) else 'off'}"
    )
    if "error" in row:
        return f"{head}: {row['error']}"
    return (
        f"{head}: {row['visits']:.2f} visits/message, {row['messages_per_s']:,} messages/s "
        f"at {row['hub_cpu_cores']:.2f} cores (driver {row['driver_cpu_cores']:.2f}), "
        f"{row['hub_cpu_us_per_message']:.3f} µs/message: "
        f"ceiling {row['ceiling_messages_per_s']:,} messages/s on one core; "
        f"routed to {row['records_routed_per_record']} workers per record, "
        f"{row.get('whole', 0):.0%} in whole segments"
    )


def _machine() -> dict[str, Any]:
    from bench.run import machine

    return machine()


if __name__ == "__main__":
    sys.exit(main())
