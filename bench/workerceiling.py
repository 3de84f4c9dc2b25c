"""``python -m bench.workerceiling``: a worker's two halves of a channel message, alone, on one core.

Owns: an in-process worker core (``engine/core.py``'s :class:`WorkerCore`, as a worker of a
multi-worker server: ``standalone=False``) set up through its ordinary paths (clients connect,
say NICK, USER and JOIN; a sequencer in this process decides, as the hub would), then timed
on its hot paths with ``time.process_time``:

- **deliver**: the hub's frames of ``D_CHAN`` records (each for a room with ``local`` members
  on this worker, from a sender elsewhere; by default as one ``D_CHANSEG``, the segment a
  hub forwards whole, engine/segments.py; ``--segments off``: one record each) decoded as the bus does (``FrameReader``), applied
  (``apply_batch``), and each dirty client's output joined and sent as the shell's
  ``_flush_client`` does, to a socketpair whose other end a child process drains (or, with
  ``--transport null``, not sent at all);
- **ingest**: a talker's reads of ``run`` PRIVMSG lines each (``data_received``: cut, check,
  format, relay as a run) and the bus frame of what it relayed (``encode``), as the shell's
  ``_flush_all`` makes it.

Must never: change the core, or stand for the whole worker: the shell's ``select``, its
``recv`` from clients and its bookkeeping are not in these figures (the sweep's per-role
breakdown has the whole worker, bench/run.py).

From deliver at several ``local`` counts, a least-squares line: µs per record = *visit* +
*local* x (µs per member), which the projection (bench/scaling.py) uses as the cost of a
visit and of a delivery. Results go to ``bench/results/workerceiling.json`` and into
BENCHMARKS.md (bench/report.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import marshal
import multiprocessing as mp
import select
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.scaling import fit
from fastchat.server.config import Config
from fastchat.server.connection import Client
from fastchat.server.engine.core import WorkerCore
from fastchat.server.network.records import (
    B_SNAPSHOT,
    D_CHAN,
    D_CHANSEG,
    Record,
    RJoin,
    RRegister,
    make,
)
from fastchat.server.network.sequencer import Sequencer
from fastchat.server.network.state import Channel, State
from fastchat.server.runtime.bus import FrameReader, encode

ROOT = Path(__file__).resolve().parent.parent
_LOG = logging.getLogger("bench.workerceiling")


class _ToWorker:
    """The hub's routing, for worker 0 only (the other workers are names in the state)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.out: list[Record] = []

    def event(self, event: Record) -> None:
        self.state.apply(event)
        self.out.append(event)

    def to_channel(self, chan: Channel, record: Record) -> None:
        if 0 in chan.workers:
            self.out.append(record)

    def to_worker(self, worker: int, record: Record) -> None:
        if worker == 0:
            self.out.append(record)

    def after_stored(self, worker: int, record: Record) -> None:
        self.to_worker(worker, record)


@dataclass(frozen=True)
class Setup:
    rooms: int = 40
    members: int = 10
    local: int = 3  # of each room's members, on this worker
    run: int = 1  # messages per D_CHAN record (deliver) or lines per read (ingest)
    # records per room in one hub frame (deliver): how many lines a member gets per loop
    # turn, so how many deliveries one send carries
    per_room: int = 8
    pad: int = 48
    segments: bool = True  # deliver: the frame's records as one D_CHANSEG (what a hub sends)


class Bench:
    """A worker core with ``setup.local`` members of each room, the rest elsewhere."""

    def __init__(self, setup: Setup, transport: str) -> None:
        self.setup = setup
        config = Config(workers=2, autojoin=(), data_dir="", history=False, flood_control=False)
        self.config = config
        self.state = State()
        self.router = _ToWorker(self.state)
        self.sequencer = Sequencer(self.state, config, self.router)
        self.core = WorkerCore(config, 0, 1, standalone=False, log=_LOG)
        self.now = 1_000_000.0
        self.core.set_start_time(self.now)
        self.core.apply((B_SNAPSHOT, self.state.snapshot(), {}))
        self.socks: dict[int, socket.socket] = {}  # client uid -> our end
        self.drain_ends: list[socket.socket] = []
        self.talkers: list[Client] = []
        self.remote_senders: list[int] = []
        self._deliver_pending()
        remote_uid = 1 << 40
        for room in range(setup.rooms):
            for j in range(setup.members):
                nick = b"u%d_%d" % (room, j)
                if j < setup.local:
                    client = self.core.connect(b"127.0.0.1", self.now)
                    self._say(client, b"NICK %s\r\nUSER u 0 * :bench\r\n" % nick)
                    self._say(client, b"JOIN #r%d\r\n" % room)
                    if j == 0:
                        self.talkers.append(client)
                    if transport == "socketpair":
                        ours, theirs = socket.socketpair()
                        ours.setblocking(False)
                        self.socks[client.uid] = ours
                        self.drain_ends.append(theirs)
                else:
                    remote_uid += 1
                    self.sequencer.handle(
                        1, make(RRegister, remote_uid, nick, b"u", b"127.0.0.2", b"bench"), 0
                    )
                    self.sequencer.handle(1, make(RJoin, remote_uid, b"#r%d" % room, b""), 0)
                    if j == setup.local:
                        self.remote_senders.append(remote_uid)
                self._decide()
        for client in self.core.clients.values():  # the welcome, the JOINs: not measured
            client.pending.clear()
        self.core.dirty = []

    def _say(self, client: Client, data: bytes) -> None:
        self.core.data_received(client, data, self.now)
        self._decide()

    def _decide(self) -> None:
        """Play the hub until nothing is left to decide (an answer may release lines that
        waited behind the client's barrier, which make requests of their own)."""
        while self.core.outbox or self.router.out:
            outbox, self.core.outbox = self.core.outbox, []
            for request in outbox:
                self.sequencer.handle(0, request, int(self.now * 1000))
            self._deliver_pending()

    def _deliver_pending(self) -> None:
        out, self.router.out = self.router.out, []
        if out:
            self.core.apply_batch(out, self.now)

    def hub_frame(self) -> bytes:
        """One frame of ``per_room`` D_CHAN records for each room, rooms in turn, each from a
        remote sender."""
        s = self.setup
        records = []
        for i in range(s.rooms * s.per_room):
            room = i % s.rooms
            sender = self.remote_senders[room]
            line = b":u%d_%d!u@127.0.0.2 PRIVMSG #r%d :%s\r\n" % (
                room, s.local, room, b"x" * s.pad
            ) * s.run  # fmt: skip
            records.append((D_CHAN, b"#r%d" % room, sender, line, 0, b"", 0, 1))
        if s.segments:  # RChanSeg's payload: channel, sender, line, first, notice, account
            items = [x for r in records for x in (r[1], r[2], r[3], r[4], False, b"")]
            return encode([(D_CHANSEG, marshal.dumps(items), 1)])
        return encode(records)

    def deliver(self, seconds: float) -> dict[str, Any]:
        """Apply hub frames and flush for ``seconds`` of CPU; the figures."""
        frame = self.hub_frame()
        core = self.core
        reader = FrameReader()
        socks = self.socks
        records = deliveries = 0
        per_record = self.setup.local * self.setup.run
        per_frame = self.setup.rooms * self.setup.per_room  # records (in a segment or not)
        t0 = time.process_time()
        end = t0 + seconds
        while True:
            for batch in reader.feed(frame):
                core.apply_batch(batch, self.now)
                records += per_frame
            dirty, core.dirty = core.dirty, []
            for client in dirty:
                pending = client.pending
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                sock = socks.get(client.uid)
                if sock is not None:
                    with contextlib.suppress(BlockingIOError):
                        sock.send(data)
            deliveries = records * per_record
            if (t := time.process_time()) >= end:
                break
        cpu = t - t0
        return {
            "records": records,
            "deliveries": deliveries,
            "cpu_s": round(cpu, 4),
            "us_per_record": round(cpu / records * 1e6, 4),
            "us_per_delivery": round(cpu / deliveries * 1e6, 4),
            "deliveries_per_s": round(deliveries / cpu),
        }

    def ingest(self, seconds: float) -> dict[str, Any]:
        """Talkers' reads of ``run`` lines each into bus frames for ``seconds`` of CPU."""
        s = self.setup
        core = self.core
        chunks = [
            (t, b"PRIVMSG #r%d :%s\r\n" % (room, b"x" * s.pad) * s.run)
            for room, t in enumerate(self.talkers)
        ]
        messages = 0
        t0 = time.process_time()
        end = t0 + seconds
        while True:
            for client, chunk in chunks:
                core.data_received(client, chunk, self.now)
            for batch in core.take_requests():  # segments marshalled, as the shell takes them
                encode(batch)
            messages += len(chunks) * s.run
            dirty, core.dirty = core.dirty, []
            for client in dirty:  # (nothing: no echo, no reply; kept honest)
                client.pending.clear()
            if (t := time.process_time()) >= end:
                break
        cpu = t - t0
        return {
            "messages": messages,
            "cpu_s": round(cpu, 4),
            "us_per_message": round(cpu / messages * 1e6, 4),
            "messages_per_s": round(messages / cpu),
        }


def _drain(socks: list[socket.socket]) -> None:
    """The child: read and drop whatever the worker sends its clients, until all close."""
    ep = select.epoll()
    by_fd = {}
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    while by_fd:
        for fd, _ in ep.poll(1.0):
            s = by_fd[fd]
            try:
                if not s.recv(1 << 18):
                    ep.unregister(fd)
                    del by_fd[fd]
            except BlockingIOError:
                pass


def measure(
    setup: Setup, mode: str, transport: str, seconds: float, repeat: int = 1
) -> dict[str, Any]:
    bench = Bench(setup, transport if mode == "deliver" else "null")
    drainer = None
    if bench.drain_ends:
        drainer = mp.get_context("fork").Process(
            target=_drain, args=(bench.drain_ends,), daemon=True
        )
        drainer.start()
        for s in bench.drain_ends:
            s.close()
    try:
        bench.deliver(seconds / 5) if mode == "deliver" else bench.ingest(seconds / 5)  # warm
        # the least CPU of ``repeat`` (on a shared machine noise only ever adds CPU)
        tries = [
            bench.deliver(seconds) if mode == "deliver" else bench.ingest(seconds)
            for _ in range(max(1, repeat))
        ]
        key = "us_per_record" if mode == "deliver" else "us_per_message"
        figures = min(tries, key=lambda f: float(f[key]))
        figures["repeats"] = [f[key] for f in tries]
    finally:
        for s in bench.socks.values():
            s.close()
        if drainer is not None:
            drainer.join(5)
            if drainer.is_alive():
                drainer.kill()
    return {"mode": mode, "transport": transport, "setup": asdict(setup), **figures}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.workerceiling", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--locals", default="1,3,5,9", help="members of a room on this worker (below members)"
    )
    ap.add_argument(
        "--per-room", type=int, default=8, help="records per room per hub frame (default 8)"
    )
    ap.add_argument("--runs", default="1,16", help="messages per record / lines per read")
    ap.add_argument("--transport", default="socketpair", choices=("socketpair", "null"))
    ap.add_argument(
        "--segments",
        default="on",
        choices=("on", "off"),
        help="deliver's frames as one D_CHANSEG (on: what a hub sends) or D_CHAN records",
    )
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    ap.add_argument(
        "--repeat", type=int, default=3, help="measurements of each; the least CPU is kept"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    ap.add_argument(
        "--benchmarks-md",
        type=lambda text: Path(text) if text else None,
        default=ROOT / "BENCHMARKS.md",
        help="rewrite this file from the latest results ('' to leave it alone)",
    )
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    fits: dict[str, dict[str, float]] = {}
    for run in [int(r) for r in args.runs.split(",") if r]:
        points = []
        for local in [int(n) for n in args.locals.split(",") if n]:
            setup = Setup(
                local=local, run=run, per_room=args.per_room, segments=args.segments == "on"
            )
            row = measure(setup, "deliver", args.transport, args.seconds, args.repeat)
            rows.append(row)
            points.append((float(local), row["us_per_record"]))
            print("  " + one_line(row), flush=True)
        row = measure(Setup(local=1, run=run), "ingest", "null", args.seconds, args.repeat)
        rows.append(row)
        print("  " + one_line(row), flush=True)
        visit, member = fit(points) if len(points) > 1 else (points[0][1], 0.0)
        fits[str(run)] = {
            # per message: a record carries ``run`` of them
            "ingest_us": round(row["us_per_message"], 4),
            "visit_us": round(visit / run, 4),
            "delivery_us": round(member / run, 4),
        }
        print(f"  run {run}: per message {fits[str(run)]}", flush=True)
    from bench.run import machine

    results = {
        "tool": "workerceiling",
        "what": "an in-process worker core (standalone=False); deliver sends to "
        + ("socketpairs drained by a child process" if args.transport == "socketpair" else "nowhere"),
        "machine": machine(),
        "settings": {"seconds": args.seconds, "transport": args.transport,
                     "command": " ".join(["python -m bench.workerceiling", *(sys.argv[1:] if argv is None else argv)])},
        "runs": rows,
        "fits": fits,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workerceiling.json").write_text(json.dumps(results, indent=1) + "\n")
    report.rewrite_benchmarks_md(args.out, args.benchmarks_md)
    return 0


def one_line(row: dict[str, Any]) -> str:
    s = row["setup"]
    if row["mode"] == "ingest":
        return (
            f"worker ingest: reads of {s['run']} line(s): {row['us_per_message']:.3f} µs/message, "
            f"{row['messages_per_s']:,} messages/s on one core"
        )
    return (
        f"worker deliver ({row['transport']}): {s['local']} local members, run {s['run']}, "
        f"{s['per_room']} per room per frame"
        f"{'' if s.get('segments', False) else ', no segments'}: "
        f"{row['us_per_record']:.3f} µs/record, {row['us_per_delivery']:.3f} µs/delivery, "
        f"{row['deliveries_per_s']:,} deliveries/s on one core"
    )


if __name__ == "__main__":
    sys.exit(main())
