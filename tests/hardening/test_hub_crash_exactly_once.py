"""Repeated SIGKILLs of the hub under steady cross-worker chat lose, duplicate and reorder nothing.

Each worker keeps every request until all workers have received what the sequencer decided
for it, and resends the rest to the new hub, which decides them again in the old hub's order
and sends nothing twice (README, "A hub restart loses nothing"). Four clients, one per worker,
talk in one channel while the hub is killed again and again; afterwards every client must
have received every other client's messages exactly once, in the order sent, and any two
clients must have seen the messages they both received in the same order.

The history too (issue 12): the hub keeps it, so each kill loses the store writer's last
batch at most; what it holds afterwards was received by the members, once each (a request
the new hub decides again is not written twice), in the channel's order.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker, wait_for
from tests.ircclient import IRCClient

KILLS = 5
KILL_EVERY = 1.3  # seconds: more than the supervisor's "died right after it started" window
PACE = 0.004  # seconds between rounds of one message from each sender


def _read_until(
    client: IRCClient, marker: str, markers: int, out: list[str], deadline: float
) -> None:
    """Collect the channel's messages until ``markers`` lines end with ``marker``."""
    while time.monotonic() < deadline:
        line = client.next_line(timeout=max(0.05, deadline - time.monotonic()))
        if line is None:
            continue
        if " PRIVMSG #storm :" in line:
            out.append(line.split(" PRIVMSG #storm :", 1)[1])
            if line.endswith(marker):
                markers -= 1
                if not markers:
                    return


def test_hub_sigkills_lose_duplicate_and_reorder_nothing() -> None:
    args = ["--no-flood-control", "--chathistory-max", "100000"]
    with process.running(args, workers=4) as server:
        clients = [
            client_on_worker(server, pid, f"talk{i}") for i, pid in enumerate(server.worker_pids())
        ]
        try:
            for c in clients:
                c.send("JOIN #storm")
                c.expect(rf" 366 {c.nick} #storm ")
            for c in clients:
                c.sync()
                c.drain()
            received: list[list[str]] = [[] for _ in clients]
            stop = threading.Event()
            sent = [0] * len(clients)

            def talk() -> None:
                k = 0
                while not stop.is_set():
                    for i, c in enumerate(clients):
                        c.send(f"PRIVMSG #storm :{c.nick} {k}")
                        sent[i] = k + 1
                    k += 1
                    time.sleep(PACE)

            deadline = time.monotonic() + 60
            readers = [
                threading.Thread(
                    target=_read_until,
                    args=(c, "the end", len(clients) - 1, received[i], deadline),
                    daemon=True,
                )
                for i, c in enumerate(clients)
            ]
            for r in readers:
                r.start()
            talker = threading.Thread(target=talk, daemon=True)
            talker.start()
            killed = []
            try:
                for _ in range(KILLS):
                    time.sleep(KILL_EVERY)
                    hub = server.hub_pid()
                    assert hub is not None
                    os.kill(hub, signal.SIGKILL)
                    killed.append(hub)
                    wait_for(lambda h=hub: server.hub_pid() not in (None, h), 10.0, "a new hub")
                time.sleep(0.5)
            finally:
                stop.set()
                talker.join()
            for c in clients:
                c.send(f"PRIVMSG #storm :{c.nick} the end")
            for r in readers:
                r.join(timeout=max(1.0, deadline - time.monotonic()))
            assert len(set(killed)) == KILLS
            for i, c in enumerate(clients):
                assert not c.closed, f"{c.nick} was disconnected"
                got = received[i]
                for j, other in enumerate(clients):
                    if j == i:
                        continue
                    theirs = [m.split(" ", 1)[1] for m in got if m.startswith(other.nick + " ")]
                    want = [str(k) for k in range(sent[j])] + ["the end"]
                    if theirs != want:
                        missing = sorted(set(want) - set(theirs), key=len)[:10]
                        dups = len(theirs) - len(set(theirs))
                        raise AssertionError(
                            f"{c.nick} got {len(theirs)} of {len(want)} lines from "
                            f"{other.nick}: missing {missing}, {dups} duplicated, "
                            f"in order: {theirs == sorted(theirs, key=_key)}"
                        )
            # one order for the channel: messages two clients both received, in one order
            for i in range(len(clients)):
                for j in range(i + 1, len(clients)):
                    skip = (clients[i].nick + " ", clients[j].nick + " ")
                    a = [m for m in received[i] if not m.startswith(skip)]
                    b = [m for m in received[j] if not m.startswith(skip)]
                    assert a == b, f"{clients[i].nick} and {clients[j].nick} disagree on order"
            assert sum(sent) > 1000, sent
            _check_history(server, received, [c.nick for c in clients])
        finally:
            for c in clients:
                c.close()


def _key(m: str) -> int:
    return int(m) if m.isdigit() else 1 << 60


def _check_history(
    server: process.ServerProcess, received: list[list[str]], nicks: list[str]
) -> None:
    """The channel's history after the kills: no message twice, none that nobody received,
    in the order the members saw; and few missing (each kill may lose the writer's last
    batch: the messages decided in the milliseconds before it)."""
    reader = IRCClient(server.host, server.port, register=False)
    try:
        reader.send("CAP REQ :draft/chathistory batch message-tags")
        reader.expect(r"CAP \* ACK")
        reader.send("NICK historian")
        reader.send("USER historian 0 * :historian")
        reader.send("CAP END")
        reader.expect(r" 376 | 422 ")
        reader.send("JOIN #storm")
        reader.expect(r" 366 historian #storm ")
        reader.send("CHATHISTORY LATEST #storm * 100000")
        reader.expect(r"BATCH \+\S+ chathistory ")
        kept = [
            line.split(" PRIVMSG #storm :", 1)[1]
            for line in reader.expect_until(r"BATCH -", timeout=30)
            if " PRIVMSG #storm :" in line
        ]
    finally:
        reader.close()
    assert len(kept) == len(set(kept)), "a message is in the history twice"
    everyone = set().union(*map(set, received))
    assert set(kept) <= everyone, sorted(set(kept) - everyone)[:10]
    for i, got in enumerate(received):  # the history's order is the one every member saw
        mine = set(got)
        own = nicks[i] + " "
        assert [m for m in kept if m in mine] == [
            m for m in got if m in set(kept) and not m.startswith(own)
        ], f"{nicks[i]} saw another order than the history's"
    missing = len(everyone) - len(kept)
    assert missing <= len(everyone) // 20, f"{missing} of {len(everyone)} messages not kept"
