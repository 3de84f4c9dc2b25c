"""How many history messages per second the store's writer sustains, and what submitting
costs the loop.

``python -m bench.storewriter --messages 200000 --rounds 3 [--run N] [--max-batch N]`` writes
that many PRIVMSG-sized history messages (a 120-byte text and a sender mask, over 20 channels)
through a :class:`fastchat.server.store.writer.Writer` on a fresh file in a temporary
directory, as "message_run" operations of ``--run`` lines each (what the sequencer hands it:
one per D_CHAN record; the rooms benchmark's runs average about 30 lines): the calling thread
submits them as fast as it can (as a busy loop would), the writer's thread commits them in
batches. Prints, per round, the messages per second from the first submit to ``close()``
returning (everything committed), the commits it took, and the submitting thread's
microseconds per operation.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fastchat.server.store import db
from fastchat.server.store.writer import Op, Writer


def operations(count: int, run: int) -> list[Op]:
    text = b"x" * 120
    ops: list[Op] = []
    for n in range(0, count, run):
        target = b"#room%d" % (n // run % 20)
        line = b":user%d!u@host.example PRIVMSG %s :%s\r\n" % (n % 500, target, text)
        lines = line * min(run, count - n)
        ops.append(
            ("message_run", target, 1_700_000_000_000 + n // 10, n % 500, n, b"", b"", lines)
        )
    return ops


def round_(count: int, run: int, max_batch: int) -> tuple[float, int, float]:
    ops = operations(count, run)
    with tempfile.TemporaryDirectory() as data_dir:
        writer = Writer(db.prepare(data_dir), max_batch=max_batch)
        writer.start()
        started = time.perf_counter()
        for op in ops:
            writer.submit(op)
        submitted = time.perf_counter()
        assert writer.close(60.0)
        done = time.perf_counter()
        status = writer.status()
        assert status.committed == len(ops)
    return count / (done - started), status.commits, (submitted - started) / len(ops) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", type=int, default=1, help="messages per run (default 1)")
    parser.add_argument("--max-batch", type=int, default=Writer(":memory:").max_batch)
    args = parser.parse_args(argv)
    for n in range(args.rounds):
        rate, commits, submit_us = round_(args.messages, args.run, args.max_batch)
        print(
            f"round {n + 1}: {rate:,.0f} messages/s in runs of {args.run}, {commits} commits, "
            f"submit {submit_us:.2f} µs/op"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
