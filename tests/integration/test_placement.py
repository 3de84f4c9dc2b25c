"""Channel-affine placement (issue 14 part 3, engine/placement.py, runtime/handoff.py).

With ``placement = "affine"``, a plain TCP client that joins a channel is handed to the
worker holding most of that channel's members. Where a client sits is read from the kernel
(which worker process holds its socket: ``ServerProcess.worker_of``), not from the server.
Checks, at four workers: a room's members end up on one worker (on two, when it is too
big for one worker's share); lines sent to, by and
privately to a client while it moves arrive exactly once and in order, including what was
queued for it at the moment of the hand-off; its capabilities, labels, away message and
MONITOR list survive; a client that hangs up during its move leaves no ghost nick, and
neither does killing its old or its new worker. At one worker nothing moves.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free

FLOOD = 300


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def srv(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    args = ["--placement", "affine", "--no-flood-control"]
    with process.running(args, workers=request.param) as server:
        yield server


def _connector(server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """A fixture's ``connect(nick)`` to ``server``: every client it made is closed at the
    end, and the test after it waits until their nicks are free."""
    clients: list[IRCClient] = []

    def make(nick: str, rcvbuf: int = 0) -> IRCClient:
        client = IRCClient(server.host, server.port, nick, rcvbuf=rcvbuf)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    wait_nicks_free(server.host, server.port, [c.nick for c in clients])


@pytest.fixture
def connect(srv: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    yield from _connector(srv)


def worker_of(srv: process.ServerProcess, client: IRCClient) -> int | None:
    return srv.worker_of(client.sock.getsockname()[1])


def moves_logged(srv: process.ServerProcess) -> int:
    return len(re.findall(r"moves to worker \d+\n", srv.log_text()))


def wait_on(srv: process.ServerProcess, client: IRCClient, pid: int | None) -> bool:
    """Until ``client``'s socket is held by worker ``pid`` (a move is asynchronous): sync
    with the server between looks; False after 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        client.sync()
        if worker_of(srv, client) == pid:
            return True
    return False


def anchors_and_mover(
    srv: process.ServerProcess, connect: Callable[..., IRCClient], tag: str, rcvbuf: int = 0
) -> tuple[IRCClient, IRCClient, IRCClient, int | None]:
    """Two clients on one worker and a third on another (at one worker: all on it)."""
    pool = [connect(f"{tag}{i}", rcvbuf) for i in range(12)]
    by_worker: dict[int | None, list[IRCClient]] = {}
    for c in pool:
        by_worker.setdefault(worker_of(srv, c), []).append(c)
    home = max(by_worker, key=lambda w: len(by_worker[w]))
    a1, a2 = by_worker[home][:2]
    others = [c for w, cs in by_worker.items() if w != home for c in cs]
    mover = others[0] if others else by_worker[home][2]
    for c in pool:
        if c not in (a1, a2, mover):
            c.send("QUIT")
    return a1, a2, mover, home


def test_room_members_end_on_one_worker(
    srv: process.ServerProcess, connect: Callable[..., IRCClient]
) -> None:
    before = moves_logged(srv)
    room = [connect(f"room{i}") for i in range(8)]
    spread = {worker_of(srv, c) for c in room}
    for c in room:
        c.send("JOIN #room")
        c.sync()
    first = worker_of(srv, room[0])
    assert all(wait_on(srv, c, first) for c in room)
    if srv.workers == 1:
        assert moves_logged(srv) == before, "nothing moves at one worker"
    else:
        assert len(spread) > 1, "SO_REUSEPORT put all 8 on one worker: nothing to show"
        assert moves_logged(srv) > before
    # the room still works, from and to every member
    room[3].send("PRIVMSG #room :after the moves")
    for c in room:
        if c is not room[3]:
            c.expect(r"PRIVMSG #room :after the moves$")


def test_a_room_too_big_for_one_worker_gathers_on_two(
    srv: process.ServerProcess, connect: Callable[..., IRCClient]
) -> None:
    """40 members at four workers: one worker takes at most the average plus the slack
    (10 + 16), and the rest gather on a second worker instead of staying where the kernel
    put them (a full best worker is passed over for the next best)."""
    before = moves_logged(srv)
    room = [connect(f"big{i}") for i in range(40)]
    for c in room:
        c.send("JOIN #big")
        c.sync()
    deadline = time.monotonic() + 10
    while True:
        for c in room:
            c.sync()
        held = {worker_of(srv, c) for c in room}
        if len(held) <= 2 or time.monotonic() > deadline:
            break
    if srv.workers == 1:
        assert moves_logged(srv) == before and len(held) == 1
        return
    counts = sorted(sum(1 for c in room if worker_of(srv, c) == w) for w in held)
    assert counts == [14, 26], counts
    room[0].send("PRIVMSG #big :gathered")
    for c in room[1:]:
        c.expect(r"PRIVMSG #big :gathered$")


def test_lines_across_a_move_arrive_once_in_order(
    srv: process.ServerProcess, connect: Callable[..., IRCClient]
) -> None:
    """The mover floods the channel while it moves; a talker floods it privately and in the
    channel at the same time: every line arrives exactly once, each sender's in order. The
    mover reads nothing until its lines are through, through a small receive buffer: what
    the kernel would not take waits in the server (``outbuf``) when the move comes, and
    must travel with it."""
    a1, a2, mover, home = anchors_and_mover(srv, connect, "fl", rcvbuf=4096)
    for a in (a1, a2):
        a.send("JOIN #flood")
        a.sync()
    was = worker_of(srv, mover)
    out = ["JOIN #flood"] + [f"PRIVMSG #flood :m {i}" for i in range(FLOOD)]
    mover.send_raw("".join(line + "\r\n" for line in out).encode())
    talk = []
    for i in range(FLOOD):
        talk.append(f"PRIVMSG {mover.nick} :p {i}")
        talk.append(f"PRIVMSG #flood :c {i}")
    a1.send_raw("".join(line + "\r\n" for line in talk).encode())
    got_m = [int(a2.expect(r"PRIVMSG #flood :m (\d+)$").group(1)) for _ in range(FLOOD)]
    assert got_m == list(range(FLOOD)), "the mover's lines: lost, doubled or reordered"
    private: list[int] = []
    channel: list[int] = []
    while len(private) < FLOOD or (not channel or channel[-1] != FLOOD - 1):
        m = mover.expect(r"PRIVMSG \S+ :([pc]) (\d+)$")
        (private if m.group(1) == "p" else channel).append(int(m.group(2)))
    assert private == list(range(FLOOD))
    assert channel == list(range(channel[0], FLOOD)), "channel lines lost or doubled"
    assert not any(re.search(r":[pcm] \d+$", line) for line in mover.sync()), "a duplicate"
    if srv.workers > 1:
        assert was != home
        assert wait_on(srv, mover, home), "the mover did not move to its room's worker"


def test_session_survives_the_move(
    srv: process.ServerProcess, connect: Callable[..., IRCClient]
) -> None:
    a1, a2, mover, home = anchors_and_mover(srv, connect, "ss")
    for a in (a1, a2):
        a.send("JOIN #keep")
        a.sync()
    caps = "batch echo-message server-time labeled-response message-tags"
    mover.send(f"CAP REQ :{caps}")
    mover.expect(r"CAP \S+ ACK")
    mover.send("AWAY :gone fishing")
    mover.send(f"MONITOR + {a1.nick}")
    mover.expect(r" 730 ")
    mover.send("JOIN #keep")
    mover.expect(r" 366 ")
    if srv.workers > 1:
        assert wait_on(srv, mover, home)
    mover.send("CAP LIST")
    listed = mover.expect(r"CAP \S+ LIST :(.*)$").group(1).split()
    assert set(caps.split()) <= set(listed)
    mover.send("@label=moved1 PING :x")
    assert re.search(r"^@.*label=moved1.* PONG ", mover.expect(r"PONG .*:?x$").string)
    mover.send("PRIVMSG #keep :echo me")
    echo = mover.expect(r"PRIVMSG #keep :echo me$").string
    assert echo.startswith("@") and "time=" in echo, echo
    a2.expect(r"PRIVMSG #keep :echo me$")
    mover.send("MONITOR L")
    assert a1.nick in mover.expect(r" 732 ").string
    a2.send(f"WHOIS {mover.nick}")
    assert "gone fishing" in a2.expect(r" 301 ").string
    a1.send("QUIT")
    mover.expect(rf" 731 \S+ :?{a1.nick}")  # MONITOR still watches, on the new worker


def _cast(
    server: process.ServerProcess, pool: list[IRCClient]
) -> tuple[IRCClient, IRCClient, IRCClient, IRCClient]:
    """The crash tests' cast from ``pool`` (spread by the kernel): two clients on the worker
    holding the most, a mover on another worker, a watcher on a third. If the kernel put the
    whole pool on two workers (it happens: SO_REUSEPORT hashes, it does not deal), more
    clients join the pool until three hold some (the caller closes the pool)."""
    by_worker: dict[int | None, list[IRCClient]] = {}
    for c in pool:
        by_worker.setdefault(worker_of(server, c), []).append(c)
    while len(by_worker) < 3:
        assert len(pool) < 100, "100 connections on two workers"
        c = IRCClient(server.host, server.port, f"{pool[0].nick}x{len(pool)}")
        pool.append(c)
        by_worker.setdefault(worker_of(server, c), []).append(c)
    home = max(by_worker, key=lambda w: len(by_worker[w]))
    first, second = by_worker[home][:2]
    mover = next(c for w, cs in by_worker.items() if w != home for c in cs)
    old = worker_of(server, mover)
    watcher = next(c for w, cs in by_worker.items() if w not in (home, old) for c in cs)
    return first, second, mover, watcher


def _reset(client: IRCClient) -> None:
    """Hang up abruptly (RST), as a client that crashes."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def test_hanging_up_during_a_move_leaves_no_ghost(
    srv: process.ServerProcess, connect: Callable[..., IRCClient]
) -> None:
    a1, a2, mover, _home = anchors_and_mover(srv, connect, "hg")
    for a in (a1, a2):
        a.send("JOIN #gone")
        a.sync()
    movers = [mover] + [connect(f"hgm{i}") for i in range(5)]
    for i, m in enumerate(movers):
        m.send_raw(b"JOIN #gone\r\n" + b"PRIVMSG #gone :bye\r\n" * i)
        if i % 2:
            time.sleep(0.002 * i)  # (not a synchronisation: a spread of moments to hang up at)
        _reset(m)
    wait_nicks_free(srv.host, srv.port, [m.nick for m in movers])
    lines = a2.sync()
    for m in movers:
        quits = [line for line in a2.log if line.startswith(f":{m.nick}!") and " QUIT " in line]
        assert len(quits) <= 1, quits
    del lines


@pytest.mark.parametrize("crash_at", ["handoff", "arrival"])
def test_a_worker_dying_in_the_middle_of_a_hand_off_leaves_no_ghost(
    crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old worker dies after the sequencer decided the move and before it sent the
    session (``handoff``), or the new one as the session arrives (``arrival``): the mover's
    connection ends, and its nick is free again; everyone sees it quit once. With the old
    worker dead, the new one stops waiting for the session when the hub says so (B_DOWN),
    well within the waits here: its own deadline (HANDOFF_TIMEOUT) is far longer."""
    monkeypatch.setenv("FASTCHAT_TEST_CRASH_AT", crash_at)
    args = ["--placement", "affine", "--no-flood-control", "--test-hooks"]
    with process.running(args, workers=4) as server:
        pool = [IRCClient(server.host, server.port, f"cr{i}") for i in range(12)]
        try:
            a1, a2, mover, watcher = _cast(server, pool)
            for a in (a1, a2):
                a.send("JOIN #crash")
                a.sync()
            mover.send("JOIN #crash")
            mover.wait_closed(timeout=10)  # its worker died, with it or with the session
            wait_nicks_free(server.host, server.port, [mover.nick], timeout=10)
            watcher.sync()
            # (the server's log comes through its output pipe: waited for, not read at once)
            server.wait_log("dying")
            if crash_at == "handoff":
                server.wait_log("did not arrive from its old worker; quitting it")
        finally:
            for c in pool:
                c.close()


def test_a_client_whose_old_worker_is_far_behind_still_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old worker is stuck for longer than HANDOFF_SLOW between the E_MOVE and sending
    the session (as an overloaded worker on a small machine can be). The new worker waits
    for it, stalled, however long: the mover is not quit and its connection not closed (a
    deadline here once closed healthy connections under load); it arrives, joined, and gets
    what was said in the room meanwhile, once."""
    monkeypatch.setenv("FASTCHAT_TEST_CRASH_AT", "handoff-slow")
    args = ["--placement", "affine", "--no-flood-control", "--test-hooks"]
    with process.running(args, workers=4) as server:
        pool = [IRCClient(server.host, server.port, f"sl{i}") for i in range(12)]
        try:
            a1, a2, mover, watcher = _cast(server, pool)
            home = worker_of(server, a1)
            for a in (a1, a2, watcher):
                a.send("JOIN #slow")
                a.sync()
            mover.send("JOIN #slow")
            server.wait_log("stuck before a hand-off")
            a1.send("PRIVMSG #slow :while it moves")
            server.wait_log("still on its way from worker")
            assert wait_on(server, mover, home), "the mover never reached the room's worker"
            mover.send("PRIVMSG #slow :arrived")
            for c in (a1, a2, watcher):
                c.expect(r"PRIVMSG #slow :arrived$")
            mover.sync()
            watcher.sync()
            assert not [line for line in watcher.log if " QUIT " in line], watcher.log
            assert sum(line.endswith("PRIVMSG #slow :while it moves") for line in mover.log) == 1
            assert "did not arrive from its old worker" not in server.log_text()
        finally:
            for c in pool:
                c.close()


def test_a_client_may_move_to_a_worker_that_does_not_know_it_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The room's worker is far behind the bus (the test hook holds what the hub sends it
    from the mover's E_INTRO on, for 1.5 s): the mover registers on another worker, joins
    and is handed over before the room's worker has even heard of it. Its session waits
    there for the E_INTRO and the E_MOVE, and it is served (it was closed as a stranger's:
    ready clients lost in the bench's rooms setup at four workers)."""
    monkeypatch.setenv("FASTCHAT_TEST_CRASH_AT", "intro-lag")
    args = ["--placement", "affine", "--no-flood-control", "--test-hooks"]
    with process.running(args, workers=4) as server:
        clients = [IRCClient(server.host, server.port, f"lp{i}") for i in range(8)]
        try:
            by_worker: dict[int | None, list[IRCClient]] = {}
            for c in clients:
                by_worker.setdefault(worker_of(server, c), []).append(c)
            home = max(by_worker, key=lambda w: len(by_worker[w]))
            a1, a2 = by_worker[home][:2]
            for a in (a1, a2):
                a.send("JOIN #lag")
                a.sync()
            for attempt in range(40):  # (the kernel places it: until it is elsewhere)
                mover = IRCClient(server.host, server.port, f"lagm{attempt}")
                clients.append(mover)
                if worker_of(server, mover) != home:
                    break
            mover.send("JOIN #lag")
            server.wait_log("behind the bus")
            assert wait_on(server, mover, home), "the mover never reached the room's worker"
            a1.send("PRIVMSG #lag :hello")
            mover.expect(r"PRIVMSG #lag :hello$")
            mover.send("PRIVMSG #lag :here")
            a2.expect(r"PRIVMSG #lag :here$")
            assert "its move did not" not in server.log_text()
        finally:
            for c in clients:
                c.close()


@pytest.mark.parametrize("victim", ["old", "new"])
def test_killing_a_worker_during_a_move_leaves_no_ghost(
    srv: process.ServerProcess, connect: Callable[..., IRCClient], victim: str
) -> None:
    if srv.workers == 1:
        pytest.skip("a move needs two workers")
    a1, a2, mover, home = anchors_and_mover(srv, connect, f"k{victim[0]}")
    for a in (a1, a2):
        a.send("JOIN #kill")
        a.sync()
    old = worker_of(srv, mover)
    assert old is not None and home is not None
    for i in range(100):  # (a watcher on a third worker: the kernel places it)
        watcher = connect(f"kw{victim[0]}{i}")
        if worker_of(srv, watcher) not in (old, home):
            break
    else:
        raise AssertionError("100 connections on the two workers of the move")
    mover.send("JOIN #kill")
    os.kill(old if victim == "old" else home, signal.SIGKILL)
    # Whatever the moment the worker died at, the mover's nick is either free or held by a
    # live connection: no ghost.
    deadline = time.monotonic() + 15
    while True:
        watcher.send(f"ISON :{mover.nick}")
        online = watcher.expect(r" 303 \S+ :?(.*)$").group(1).split()
        if not online:
            break
        try:
            mover.sync(timeout=3)
            alive = True
        except (AssertionError, OSError):  # (closed: its worker died with it)
            alive = False
        if alive:
            break
        assert time.monotonic() < deadline, f"{mover.nick} is a ghost"
        watcher.sync()


def holders(srv: process.ServerProcess, client: IRCClient) -> list[int]:
    """The workers holding ``client``'s connection (one, or none once it is closed)."""
    port = client.sock.getsockname()[1]
    found = []
    for pid in srv.worker_pids():
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == port for c in conns):
            found.append(pid)
    return found


def channel_lines(client: IRCClient, chan: str, *ends: str) -> list[str]:
    """The PRIVMSG texts ``client`` receives in ``chan`` until it has had each of ``ends``."""
    got: list[str] = []
    while not set(ends) <= set(got):
        got.append(client.expect(rf"PRIVMSG {chan} :(.*)$", timeout=20).group(1))
    return got


@pytest.mark.parametrize(
    "crash_at", ["hub-move", "hub-move-src", "hub-move-dst", "hub-move-not-dst", "hub-move-none"]
)
def test_the_hub_dying_in_the_middle_of_a_hand_off(
    crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub decides a move and dies (SIGKILL-like) having sent it to every worker, to the
    old or the new one only, to every worker but the new one (the old one and the others: a
    third worker's replica has the move, the new worker's not), or to none; the supervisor
    starts a new hub, which replays what
    the workers resent. The mover ends up on exactly one worker (the move decided again if
    its R_MOVE was resent); everyone sees one state; a talker's lines in the
    mover's channel, sent around the crash, and the mover's own, arrive exactly once and in
    order, to the mover and to the others."""
    monkeypatch.setenv("FASTCHAT_TEST_CRASH_AT", crash_at)
    args = ["--placement", "affine", "--no-flood-control", "--test-hooks"]
    with process.running(args, workers=4) as server:
        pool = [IRCClient(server.host, server.port, f"hc{i}") for i in range(12)]
        try:
            talker, listener, mover, watcher = _cast(server, pool)
            for a in (talker, listener):
                a.send("JOIN #hubcrash")
                a.sync()
            hub = server.hub_pid()
            assert hub is not None
            mover.send_raw(
                b"JOIN #hubcrash\r\n"
                + b"".join(b"PRIVMSG #hubcrash :m %d\r\n" % i for i in range(FLOOD))
            )
            talker.send_raw(b"".join(b"PRIVMSG #hubcrash :c %d\r\n" % i for i in range(FLOOD)))
            server.wait_log(r"dying after deciding a move", timeout=10)
            deadline = time.monotonic() + 10
            while server.hub_pid() in (None, hub):
                assert time.monotonic() < deadline, "no new hub"
                watcher.sync()
            talker.send_raw(
                b"".join(b"PRIVMSG #hubcrash :c %d\r\n" % i for i in range(FLOOD, 2 * FLOOD))
                + b"PRIVMSG #hubcrash :c end\r\n"
            )
            heard = channel_lines(listener, "#hubcrash", "c end", f"m {FLOOD - 1}")
            want_c = [f"c {i}" for i in range(2 * FLOOD)] + ["c end"]
            assert [t for t in heard if t.startswith("c ")] == want_c, "the talker's lines"
            mine = [t for t in heard if t.startswith("m ")]
            assert mine == [f"m {i}" for i in range(len(mine))], "the mover's lines"
            try:
                got = channel_lines(mover, "#hubcrash", "c end")
            except (AssertionError, OSError) as exc:
                raise AssertionError(f"the mover was lost: {exc}\n{server.log_text()}") from None
            firsts = [t for t in got if t.startswith("c ")]
            assert firsts, "the mover heard nothing"
            start = int(firsts[0].split()[1])
            assert firsts == [f"c {i}" for i in range(start, 2 * FLOOD)] + ["c end"], (
                "the talker's lines to the mover: lost, doubled or reordered"
            )
            assert len(mine) == FLOOD, "the mover's lines were lost"
            assert len(holders(server, mover)) == 1, "held by more than one worker"
            mover.send("PRIVMSG #hubcrash :m after")
            listener.expect(r"PRIVMSG #hubcrash :m after$")
            for c in (watcher, listener):
                c.send("NAMES #hubcrash")
                names = c.expect(r" 353 .*:(.*)$").group(1).split()
                assert [n.lstrip("@+") for n in names].count(mover.nick) == 1
            noise = [
                ln
                for ln in listener.log
                if re.match(rf":{mover.nick}!\S+ (QUIT|JOIN #hubcrash)", ln)
            ]
            assert len(noise) == 1, f"the others saw the mover leave and come back: {noise}"
            assert not any(re.search(r":[cm] \d+$", line) for line in listener.sync())
            assert not any(re.search(r":[cm] \d+$", line) for line in mover.sync())
        finally:
            for c in pool:
                c.close()


BUSY_CONFIG = """\
autojoin = ""
flood_control = false
placement = "affine"

[[oper]]
name = "mover"
password = "{hash}"
privileges = ["wallops"]
"""

#: The work a client may have under way when its move is decided: each command, labeled, and
#: how its (one) labeled reply is recognised
WORK = {
    "ping": ("PING :busy", r" PONG "),
    "whois": ("WHOIS {anchor}", r"BATCH \+\S+ labeled-response"),
    "who": ("WHO {chan}", r"BATCH \+\S+ labeled-response"),
    "oper": ("OPER mover opensesame", r" 381 "),
    "chathistory": ("CHATHISTORY LATEST {chan} * 10", r"BATCH \+\S+ chathistory "),
}


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def busy_srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.ServerProcess]:
    from fastchat.server import passwords

    etc = tmp_path_factory.mktemp("busy")
    config = etc / "fastchat.toml"
    config.write_text(BUSY_CONFIG.format(hash=passwords.hash_password(b"opensesame")))
    args = ["--config", str(config), "--data-dir", str(etc)]
    with process.running(args, workers=request.param) as server:
        yield server


@pytest.fixture
def busy_connect(busy_srv: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    yield from _connector(busy_srv)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "after-join"])
@pytest.mark.parametrize("work", sorted(WORK))
def test_work_in_flight_at_a_move_is_answered_once_in_order(
    busy_srv: process.ServerProcess,
    busy_connect: Callable[..., IRCClient],
    work: str,
    pipelined: bool,
) -> None:
    """A client's move is decided while it has work under way, or just before it starts
    some: a labeled command, a WHOIS or WHO waiting for its read fence, an OPER password check
    (off the loop), a CHATHISTORY query (the store reader). Its answer comes once, on the
    client's connection, in the order the client asked (before the PING behind it), and the
    client still moves; its old worker never hands over a client with work in flight."""
    srv, connect = busy_srv, busy_connect
    if srv.workers == 1:
        pytest.skip("a move needs two workers")
    tag = f"w{work[:3]}{int(pipelined)}"
    a1, a2, mover, home = anchors_and_mover(srv, connect, tag)
    chan = f"#{tag}"
    for a in (a1, a2):
        a.send(f"JOIN {chan}")
        a.sync()
    a1.send(f"PRIVMSG {chan} :before")
    a2.expect(rf"PRIVMSG {chan} :before$")
    mover.send("CAP REQ :labeled-response batch message-tags server-time draft/chathistory")
    mover.expect(r"CAP \S+ ACK")
    command, answer = WORK[work]
    command = command.format(anchor=a1.nick, chan=chan)
    lines = f"@label=L1 {command}\r\n@label=L2 PING :behind\r\nPRIVMSG {chan} :after\r\n"
    before = srv.log_text().count("work in flight")
    if pipelined:
        mover.send_raw(f"JOIN {chan}\r\n{lines}".encode())
    else:
        mover.send(f"JOIN {chan}")
        mover.expect(rf" 366 {mover.nick} {chan} ")
        mover.send_raw(lines.encode())  # races the move's proposal
    got = mover.expect_until(r"label=L2.* PONG ", timeout=10)
    assert len([ln for ln in got if "label=L1" in ln]) == 1, got
    assert any(re.search(answer, ln) for ln in got), "\n".join(got)
    a2.expect(rf"PRIVMSG {chan} :after$")
    assert wait_on(srv, mover, home), "the mover did not move to its room's worker"
    assert not [ln for ln in mover.sync() if "label=L" in ln], "a reply came twice"
    assert srv.log_text().count("work in flight") == before
