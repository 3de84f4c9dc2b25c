"""The lobby at scale (issue 14, part 3): N clients connect at once, register and autojoin
``#lobby``; how long until every one of them has its end of NAMES, how many bytes the server
sent them, and the PING round trip right after.

Owns: starting a fastchat server with the lobby settings asked for, the client shards (forked
processes, each holding a share of the connections: one process may hold at most
``ulimit -Hn`` descriptors, 20,000 here), the probes and the one-line report.
Must never: connect anywhere but the server it started, or leave a process behind.

Usage: ``python -m bench.lobbyjoin --clients 20000 --workers 4 [--delay-join-at 200]``;
``--compare`` runs ``--delay-join-at 0`` (every JOIN shown to everyone) and the given value
alternately, ``--rounds`` times each, for ratios measured side by side.

How it counts: every shard reads everything its clients receive (so no server queue grows
behind a silent client), counts the bytes, and looks in each read for its client's
``366 <nick> #lobby``. The time is from the go (every shard starts connecting at once, at
most ``--window`` clients per shard between connecting and their end of NAMES) to the last
end of NAMES. Probes: ``--probes`` clients registered in the lobby before the storm, each
sends ``--pings`` PINGs one after the other once every joiner is done, the round trip of each
(the first includes reading whatever the storm queued for it). Then every client PINGs once
more and its shard reads up to the PONG: the bytes counted include all the server sent.
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import resource
import select
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import peers, profiler
from bench.loadgen import raise_fd_limit
from fastchat.server.runtime import process

CHANNEL = b"#lobby"
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2


class _Conn:
    __slots__ = ("done", "nick", "sock", "tail")

    def __init__(self, sock: socket.socket, nick: bytes) -> None:
        self.sock = sock
        self.nick = nick
        self.tail = b""  # the end of the last read: a line split across reads is still found
        self.done = 0  # 0: joining; 1: has its end of NAMES; 2: has the last PONG


def _shard(host: str, port: int, first: int, count: int, window: int, pipe: mpc.Connection) -> None:
    """One process's clients: connect ``count`` of them (nicks ``j<first>``...) when told,
    report when all have their end of NAMES, then PING each once and report the bytes."""
    raise_fd_limit(count + 100)
    ep = select.epoll()
    conns: dict[int, _Conn] = {}
    received = 0
    join_lines = 0  # JOIN lines received (a line cut between two reads may be missed)
    joined = 0
    failed = 0
    pipe.send("ready")
    pipe.recv()  # the go
    t0 = time.monotonic()
    next_nick = first
    last = first + count
    last_done = t0
    in_flight = 0

    def open_more() -> None:
        nonlocal next_nick, in_flight
        while in_flight < window and next_nick < last:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            # From one of 64 loopback addresses, the port picked at connect: with every
            # client on 127.0.0.1, each connect() searched the ephemeral ports the others
            # held (16 ms a connect at 20,000 clients: the generator, not the server, was
            # what got measured). IP_BIND_ADDRESS_NO_PORT lets one port serve many sources.
            sock.setsockopt(socket.SOL_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((f"127.1.0.{1 + next_nick % 64}", 0))
            err = sock.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, "connect")
            nick = b"j%d" % next_nick
            next_nick += 1
            conn = _Conn(sock, nick)
            conns[sock.fileno()] = conn
            # NICK and USER go once it is connected (EPOLLOUT)
            ep.register(sock.fileno(), select.EPOLLOUT)
            in_flight += 1

    def read(conn: _Conn, stage: int) -> bool:
        """Read what there is; True when ``conn`` reached ``stage`` with this read."""
        nonlocal received, failed, in_flight, join_lines
        try:
            data = conn.sock.recv(1 << 18)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            failed += 1
            if conn.done == 0:
                in_flight -= 1
            ep.unregister(conn.sock.fileno())
            conn.done = 3
            return False
        received += len(data)
        join_lines += data.count(b" JOIN ")
        seen = conn.tail + data
        conn.tail = seen[-300:]
        if b"PING " in seen:
            for line in seen.split(b"\r\n"):
                if line.startswith(b"PING "):
                    conn.sock.send(b"PONG " + line[5:] + b"\r\n")
        if conn.done < stage:
            if stage == 1:
                hit = b" 366 " + conn.nick + b" " + CHANNEL + b" " in seen
            else:
                hit = b"PONG " in seen and b":lobbyjoin-end\r\n" in seen
            if hit:
                conn.done = stage
                return True
        return False

    open_more()
    while joined + failed < count:
        for fd, ev in ep.poll(1.0):
            conn = conns[fd]
            if conn.done == 3:
                continue
            if ev & select.EPOLLOUT and conn.done == 0 and not conn.tail:
                err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed += 1
                    in_flight -= 1
                    ep.unregister(fd)
                    conn.done = 3
                    continue
                conn.sock.send(b"NICK %s\r\nUSER u 0 * :lobby join\r\n" % conn.nick)
                conn.tail = b"\n"  # registered for reading from now on
                ep.modify(fd, select.EPOLLIN)
                continue
            if read(conn, 1):
                joined += 1
                in_flight -= 1
                last_done = time.monotonic()
        open_more()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    pipe.send({"joined": joined, "failed": failed, "seconds": last_done - t0, "cpu": cpu})
    # keep reading (a client that nobody reads would hold the server's queues) until told
    while not pipe.poll(0):
        for fd, _ in ep.poll(0.05):
            if conns[fd].done != 3:
                read(conns[fd], 1)
    pipe.recv()
    live = [c for c in conns.values() if c.done == 1]
    for conn in live:
        conn.sock.send(b"PING :lobbyjoin-end\r\n")
    ponged = 0
    deadline = time.monotonic() + 120
    while ponged < len(live) and time.monotonic() < deadline:
        for fd, _ in ep.poll(1.0):
            if conns[fd].done == 1 and read(conns[fd], 2):
                ponged += 1
    pipe.send({"bytes": received, "ponged": ponged, "joins": join_lines})
    for conn in conns.values():
        conn.sock.close()


def _probe(host: str, port: int, nick: bytes) -> socket.socket:
    """A client registered and in the lobby (blocking until its end of NAMES)."""
    sock = socket.create_connection((host, port), timeout=60)
    sock.sendall(b"NICK %s\r\nUSER p 0 * :probe\r\n" % nick)
    _read_until(sock, b" 366 " + nick + b" " + CHANNEL + b" ")
    return sock


def _read_until(sock: socket.socket, marker: bytes) -> int:
    got = b""
    total = 0
    while marker not in got:
        data = sock.recv(1 << 18)
        if not data:
            raise ConnectionError("the server closed a probe")
        total += len(data)
        got = got[-400:] + data
    return total


def _pings(socks: list[socket.socket], count: int) -> list[float]:
    """Round trips (ms) of ``count`` PINGs from each probe, one at a time."""
    rtts: list[float] = []
    for i in range(count):
        for n, sock in enumerate(socks):
            token = b"p%d-%d" % (n, i)
            start = time.perf_counter()
            sock.sendall(b"PING :" + token + b"\r\n")
            _read_until(sock, b" :" + token + b"\r\n")
            rtts.append((time.perf_counter() - start) * 1000)
    return rtts


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    clients: int,
    workers: int,
    delay_join_at: int,
    shards: int = 4,
    window: int = 500,
    probes: int = 4,
    pings: int = 10,
    extra: tuple[str, ...] = (),
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """One storm of ``clients`` against a fresh server; the figures as a dict."""
    raise_fd_limit(probes + 100)
    args = [
        "--no-flood-control",
        "--max-clients-per-ip",
        "0",
        "--autojoin",
        CHANNEL.decode(),
        "--lobby-delay-join-at",
        str(delay_join_at),
        *extra,
    ]
    ctx = mp.get_context("fork")
    with process.running(args, workers=workers) as srv:
        probe_socks = [_probe(srv.host, srv.port, b"probe%d" % i) for i in range(probes)]
        pipes: list[mpc.Connection] = []
        procs = []
        per = -(-clients // shards)
        for s in range(shards):
            first = s * per
            count = min(per, clients - first)
            if count <= 0:
                break
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_shard, args=(srv.host, srv.port, first, count, window, theirs))
            p.start()
            pipes.append(mine)
            procs.append(p)
        try:
            for pipe in pipes:
                pipe.recv()
            spy = profiler.Recorder(srv.tree, profile_to) if profile_to else None
            if spy is not None:
                spy.start(clients / 2000)
            cpu_before = peers.cpu_by_role(srv.tree())
            for pipe in pipes:
                pipe.send("go")
            results = [pipe.recv() for pipe in pipes]
            cpu_after = peers.cpu_by_role(srv.tree())
            if spy is not None:
                print(spy.finish(), file=sys.stderr)
            rtts = _pings(probe_socks, pings)
            for pipe in pipes:
                pipe.send("end")
            ends = [pipe.recv() for pipe in pipes]
        finally:
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()
                    p.join()
            for sock in probe_socks:
                sock.close()
    return {
        "clients": clients,
        "workers": workers,
        "delay_join_at": delay_join_at,
        "joined": sum(r["joined"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "seconds": round(max(r["seconds"] for r in results), 3),
        "cpu_s": {
            role: round(cpu_after[role] - cpu_before.get(role, 0.0), 2) for role in cpu_after
        },
        "client_cpu_s": round(sum(r["cpu"] for r in results), 2),
        "mib_sent": round(sum(e["bytes"] for e in ends) / 2**20, 2),
        "ponged": sum(e["ponged"] for e in ends),
        "join_lines": sum(e["joins"] for e in ends),
        "ping_ms_first": round(rtts[0], 2) if rtts else None,
        "ping_ms_p50": round(statistics.median(rtts), 2),
        "ping_ms_p99": round(_percentile(rtts, 0.99), 2),
        "ping_ms_max": round(max(rtts), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--delay-join-at", type=int, default=200, help="lobby_delay_join_at")
    ap.add_argument("--shards", type=int, default=4, help="client processes")
    ap.add_argument("--window", type=int, default=500, help="clients joining at once, per shard")
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--pings", type=int, default=10, help="PINGs per probe")
    ap.add_argument("--compare", action="store_true", help="alternate with --delay-join-at 0")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-history", action="store_true", help="fastchat --no-history")
    ap.add_argument("--profile", type=Path, help="py-spy the server during the storm, to here")
    args = ap.parse_args(argv)
    extra = ("--no-history",) if args.no_history else ()
    settings = [0, args.delay_join_at] if args.compare else [args.delay_join_at]
    for rnd in range(args.rounds):
        for at in settings if rnd % 2 == 0 else settings[::-1]:
            row = run(
                args.clients,
                args.workers,
                at,
                args.shards,
                args.window,
                args.probes,
                args.pings,
                extra,
                args.profile,
            )
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
