"""Faults (issue 5, "Faults"): killed workers, stopped or killed supervisors, a crashing handler.

Each test starts its own server, because each one breaks it on purpose; ``process.running``
kills whatever is left of the process tree however the test ends.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import psutil
import pytest

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker, pids_alive, wait_for
from tests.ircclient import IRCClient, wait_nicks_free


def _other_worker(server: process.ServerProcess, pid: int) -> int:
    return next(p for p in server.worker_pids() if p != pid)


def test_worker_sigkill_is_replaced_and_its_clients_quit() -> None:
    """A worker killed with SIGKILL is replaced within 1 s; its clients are seen to QUIT by
    their channel members on the other worker and their nicks are free again; meanwhile the
    clients of the other worker keep chatting with no message lost or delivered twice."""
    with process.running(["--no-flood-control"], workers=2) as server:
        doomed, healthy = server.worker_pids()
        victims = [client_on_worker(server, doomed, f"victim{i}") for i in range(2)]
        talker = client_on_worker(server, healthy, "talker")
        listener = client_on_worker(server, healthy, "listener")
        for c in (*victims, talker, listener):
            c.sync()

        sent = 0

        def say(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                talker.send(f"PRIVMSG #lobby :seq {sent}")
                sent += 1

        say(20)
        os.kill(doomed, signal.SIGKILL)
        killed_at = time.monotonic()
        say(20)  # while the worker is dead
        wait_for(
            lambda: len(server.worker_pids()) == 2 and doomed not in server.worker_pids(),
            timeout=1.0,
            what="a replacement worker",
        )
        assert time.monotonic() - killed_at <= 1.0
        say(20)  # after the replacement
        talker.send("AWAY")  # sequenced after every message above
        talker.expect(r" 305 talker ")

        quits = set()
        got: list[int] = []
        while len(quits) < 2 or len(got) < sent:
            line = listener.next_line()
            assert line is not None, f"listener stalled: quits {quits}, got {len(got)}/{sent}"
            if m := re.match(r":(victim\d)!\S+ QUIT :", line):
                quits.add(m.group(1))
            elif m := re.search(r"PRIVMSG #lobby :seq (\d+)$", line):
                got.append(int(m.group(1)))
        assert got == list(range(sent)), "a gap, a duplicate or a reordering"
        assert not [line for line in listener.sync() if "PRIVMSG" in line], "a duplicate"
        for victim in victims:
            victim.wait_closed()
        wait_nicks_free(server.host, server.port, ["victim0", "victim1"], timeout=5.0)
        for c in (talker, listener):
            c.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_supervisor_stop_signal_says_goodbye_and_flushes(signum: signal.Signals) -> None:
    """SIGTERM or SIGINT to the supervisor: every client gets ``ERROR :Server shutting down``
    after all the output it was owed (10 MB queued for a client that was not reading), and the
    whole process tree is gone within 5 s."""
    messages = 25_000  # 10 MB: more than the kernel buffers hold (4 MB tcp_wmem max)
    with process.running(["--no-flood-control", "--sendq", str(64 << 20)], workers=2) as server:
        first, second = server.worker_pids()
        writer = client_on_worker(server, first, "writer")
        # The sleeper shares the writer's worker, so the writer's AWAY below (decided after
        # every message) comes back through the same bus stream as the messages: once the
        # writer sees 305, all 10 MB are in the sleeper's output queue.
        sleeper = client_on_worker(server, first, "sleeper")
        sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        elsewhere = client_on_worker(server, second, "elsewhere")
        for c in (writer, sleeper):
            c.send("JOIN #flush")
            c.expect(r" 366 \S+ #flush ")
        pad = "x" * 380
        writer.send_raw(
            b"".join(f"PRIVMSG #flush :{i} {pad}\r\n".encode() for i in range(messages))
        )
        writer.send("AWAY")
        writer.expect(r" 305 writer ", timeout=20)
        tree = [p.pid for p in server.tree()]
        os.kill(server.pid, signum)
        signalled = time.monotonic()

        rest = sleeper.wait_closed(timeout=10)
        numbers = [int(m.group(1)) for line in rest if (m := re.search(r"#flush :(\d+) ", line))]
        assert numbers == list(range(messages)), "pending output was not flushed"
        assert rest[-1] == "ERROR :Server shutting down"
        for c in (writer, elsewhere):
            assert c.wait_closed()[-1] == "ERROR :Server shutting down"
        wait_for(lambda: not pids_alive(tree), 5.0 - (time.monotonic() - signalled), "exit")


def test_supervisor_sigkill_children_exit() -> None:
    """The supervisor killed with SIGKILL: the hub and the workers notice (their lifeline
    reads EOF) and exit within a few seconds, closing their clients' connections; the hub's
    store writing process and the workers' reading processes follow (their sockets close)."""
    with process.running(workers=2) as server:
        clients = [IRCClient(server.host, server.port, f"orphan{i}") for i in range(4)]
        # (a name is at most 15 characters: "fastchat-worker0" reads "fastchat-worker")
        everyone = [
            "fastchat-hub", "fastchat-read", "fastchat-read", "fastchat-store",
            "fastchat-worker", "fastchat-worker",
        ]  # fmt: skip

        def names() -> list[str]:
            return sorted(_name_of(p) for p in server.tree()[1:])

        wait_for(lambda: names() == everyone, 5.0, f"the processes {everyone}")
        children = [p.pid for p in server.tree()[1:]]
        os.kill(server.pid, signal.SIGKILL)
        wait_for(lambda: not pids_alive(children), 3.0, "the hub, workers and store to exit")
        for c in clients:
            c.wait_closed(timeout=3)


def test_fault_in_a_handler_disconnects_only_that_client() -> None:
    """A handler that raises (``FAULT`` under ``--test-hooks``) disconnects only its client
    with ERROR ... Internal server error; its channel sees it quit; the error is logged with
    the connection id; every other client, on the same worker or not, carries on."""
    with process.running(["--test-hooks"], workers=2) as server:
        first, second = server.worker_pids()
        faulty = client_on_worker(server, first, "faulty")
        neighbour = client_on_worker(server, first, "neighbour")
        remote = client_on_worker(server, second, "remote")
        for c in (faulty, neighbour, remote):
            c.sync()
        faulty.send("FAULT")
        rest = faulty.wait_closed()
        assert re.fullmatch(r"ERROR :Closing link: \(\S+\) \[Internal server error\]", rest[-1])
        for c in (neighbour, remote):
            c.expect(r"^:faulty!\S+ QUIT :Internal server error$")
        server.wait_log(r"connection 0x[0-9a-f]+: .*FAULT", timeout=5.0)  # with its id
        assert "RuntimeError: injected fault" in server.log_text()
        neighbour.send("PRIVMSG remote :still here")
        remote.expect(r"^:neighbour!\S+ PRIVMSG remote :still here$")
        remote.send("PRIVMSG neighbour :me too")
        neighbour.expect(r"^:remote!\S+ PRIVMSG neighbour :me too$")
        assert sorted(server.worker_pids()) == sorted([first, second])
        for c in (neighbour, remote):
            c.close()


def test_fault_without_test_hooks_is_unknown() -> None:
    """Without ``--test-hooks`` the fault-injection command does not exist: 421."""
    with (
        process.running(["--autojoin", ""]) as server,
        IRCClient(server.host, server.port, "x") as c,
    ):
        c.send("FAULT")
        assert c.sync() == [":fastchat.local 421 x FAULT :Unknown command"]


def test_no_orphans_after_normal_stop() -> None:
    """The tree a test sees is the whole server: after stop() nothing of it is left."""
    with process.running(workers=2) as server:
        tree = [p.pid for p in server.tree()]
        # the supervisor, the hub and its store writing process, 2 workers and their readers
        assert len(tree) == 7
    assert not pids_alive(tree)
    assert all(not psutil.pid_exists(pid) or pid not in pids_alive([pid]) for pid in tree)


@pytest.mark.parametrize("workers", [1, 4])
def test_graceful_stop_logs_no_warning(workers: int) -> None:
    """A stop the operator asked for (SIGTERM to the supervisor) is no fault: the log says
    how each worker left at INFO, and nothing at WARNING or above (a worker whose link closes
    without a stop is a fault, and stays a WARNING: see the SIGKILL test above)."""
    with process.running(workers=workers) as server:
        clients = [IRCClient(server.host, server.port, f"stayer{i}") for i in range(4)]
        for c in clients:
            c.sync()
        server.stop()
        # the supervisor logs "stopped" after every child has exited, so all their lines
        # are in the pipe before it
        server.wait_log("INFO: stopped", timeout=5.0)
        for c in clients:
            c.close()
    log = server.log_text()
    assert not re.findall(r".*(?:WARNING|ERROR|CRITICAL):.*", log), log
    # nor anything Python printed on its own (a signal written to a closed wakeup socket)
    assert "Traceback" not in log and "Exception ignored" not in log, log
    if workers > 1:  # how each link ended (closed, broke, unreachable) is news, at INFO
        assert re.search(r"INFO: hub: worker \d \w+; \d+ users quit", log), log


def _name_of(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.NoSuchProcess:
        return ""
