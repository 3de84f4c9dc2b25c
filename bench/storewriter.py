"""How many history inserts per second the store's writer sustains, and what submitting costs
the loop.

``python -m bench.storewriter --messages 200000 --rounds 3 [--max-batch N]`` writes that many
PRIVMSG-sized history operations (a 120-byte text, a msgid, a sender mask, over 20 channels)
through a :class:`fastchat.server.store.writer.Writer` on a fresh file in a temporary
directory: the calling thread submits them as fast as it can (as a busy loop would), the
writer's thread commits them in batches. Prints, per round, the inserts per second from the first submit to
``close()`` returning (everything committed), the commits it took, and the submitting
thread's microseconds per operation.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fastchat.server.store import db
from fastchat.server.store.writer import Op, Writer


def operations(count: int) -> list[Op]:
    text = b"x" * 120
    return [
        ("message", f"#room{n % 20}", f"msgid{n:012d}", 1_700_000_000_000 + n // 10,
         f"user{n % 500}!u@host.example", "", "PRIVMSG", "", text)
        for n in range(count)
    ]  # fmt: skip


def round_(count: int, max_batch: int) -> tuple[float, int, float]:
    ops = operations(count)
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
        assert status.committed == count
    return count / (done - started), status.commits, (submitted - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=Writer(":memory:").max_batch)
    args = parser.parse_args(argv)
    for n in range(args.rounds):
        rate, commits, submit_us = round_(args.messages, args.max_batch)
        print(
            f"round {n + 1}: {rate:,.0f} inserts/s, {commits} commits "
            f"({args.messages / commits:,.0f} per commit), submit {submit_us:.2f} µs/op"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
