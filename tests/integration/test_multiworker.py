"""One server, however many workers (issue 2, item 6): 40 clients on 4 workers.

Checks, with clients spread over every worker: unique nicks under a race, complete NAMES/WHO/
LUSERS, every channel message delivered exactly once, each sender's messages in the order
sent, and one order per channel for every member.
"""

from __future__ import annotations

import collections
import re
import socket
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free

CLIENTS = 40
SENDERS = 8
PER_SENDER = 40


@pytest.fixture(scope="module")
def big() -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control"], workers=4) as srv:
        yield srv


@pytest.fixture
def crowd(big: process.ServerProcess) -> Iterator[list[IRCClient]]:
    clients = [IRCClient(big.host, big.port, f"m{i}") for i in range(CLIENTS)]
    try:
        for c in clients:
            c.sync()
        yield clients
    finally:
        for c in clients:
            c.close()
        wait_nicks_free(big.host, big.port, [f"m{i}" for i in range(CLIENTS)])


def test_clients_spread_over_all_workers(
    big: process.ServerProcess, crowd: list[IRCClient]
) -> None:
    workers = {big.worker_of(c.sock.getsockname()[1]) for c in crowd}
    assert None not in workers
    assert len(workers) == 4, "SO_REUSEPORT should spread 40 clients over all 4 workers"


def test_names_who_lusers_see_everyone(crowd: list[IRCClient]) -> None:
    everyone = {f"m{i}" for i in range(CLIENTS)}
    for asker in (crowd[0], crowd[17], crowd[39]):
        asker.send("NAMES #lobby")
        names: set[str] = set()
        for line in asker.expect_until(r" 366 \S+ #lobby "):
            if m := re.search(r" 353 \S+ = #lobby :(.*)$", line):
                names.update(n.lstrip("@+") for n in m.group(1).split())
        assert everyone <= names
        asker.send("WHO #lobby")
        who = {line.split()[7] for line in asker.expect_until(r" 315 ") if " 352 " in line}
        assert everyone <= who
        asker.send("LUSERS")
        total = int(asker.expect(r" 251 \S+ :There are (\d+) users").group(1))
        assert total >= CLIENTS


def test_exactly_once_in_order_one_order_per_channel(crowd: list[IRCClient]) -> None:
    senders = crowd[:SENDERS]
    # Interleave the senders' writes so that their messages race through different workers.
    for seq in range(PER_SENDER):
        for s in senders:
            s.send(f"PRIVMSG #lobby :msg {s.nick} {seq}")
    received: dict[str, list[tuple[str, int]]] = {}
    for c in crowd:
        own = c in senders
        expected = SENDERS * PER_SENDER - (PER_SENDER if own else 0)
        got: list[tuple[str, int]] = []
        while len(got) < expected:
            m = c.expect(r"PRIVMSG #lobby :msg (\S+) (\d+)$")
            got.append((m.group(1), int(m.group(2))))
        assert not any("PRIVMSG #lobby :msg" in line for line in c.sync()), "a duplicate"
        received[c.nick] = got
    for nick, got in received.items():
        counts = collections.Counter(got)
        assert all(n == 1 for n in counts.values()), f"{nick} got a message twice"
        by_sender: dict[str, list[int]] = collections.defaultdict(list)
        for sender, seq in got:
            by_sender[sender].append(seq)
        for sender, seqs in by_sender.items():
            assert seqs == list(range(PER_SENDER)), f"{nick} saw {sender} out of order"
    # One order per channel: any two members saw the messages they both got in the same order.
    reference = received["m0"]
    for nick, got in received.items():
        common = set(reference) & set(got)
        assert [m for m in reference if m in common] == [m for m in got if m in common], nick


def test_nick_race_across_workers(big: process.ServerProcess) -> None:
    """Several clients on different workers claim one nick at the same instant: one wins."""
    socks = [socket.create_connection((big.host, big.port)) for _ in range(12)]
    clients = []
    try:
        for s in socks:
            s.sendall(b"NICK racer\r\nUSER r 0 * :r\r\n")
        for s in socks:
            c = IRCClient.__new__(IRCClient)
            c.sock, c.timeout, c.buf, c.closed, c.nick = s, 10.0, b"", False, "racer?"
            c.lines, c.log = collections.deque(), []
            clients.append(c)
        outcomes = [c.expect(r" (001|433) ").group(1) for c in clients]
        assert outcomes.count("001") == 1, outcomes
    finally:
        for s in socks:
            s.close()


def test_nick_change_race(crowd: list[IRCClient]) -> None:
    racers = crowd[20:30]
    for c in racers:
        c.send("NICK prize")
    wins = 0
    for c in racers:
        lines = c.sync()
        if any(
            re.search(r"NICK :prize$", line) and line.startswith(f":{c.nick}!") for line in lines
        ):
            wins += 1
        else:
            assert any(" 433 " in line for line in lines), lines
    assert wins == 1
