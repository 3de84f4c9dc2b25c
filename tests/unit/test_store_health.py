"""The store's health (issue 12: "A full disk or a locked database file is logged and
reported to operators; clients keep chatting (history marked as unavailable), nothing
crashes, and writing resumes when it can").

In the pure core, through FakeNet at one worker (the sequencer in the worker) and at three
(an in-memory hub): an E_STORE with a notice reaches every IRC operator on every worker as a
server NOTICE and nobody else; a report without one (the counts moved) tells nobody; while
the writer fails, every worker's state says the history is unavailable, CHATHISTORY answers
``FAIL CHATHISTORY MESSAGE_ERROR`` and the channel keeps chatting; STATS S shows the report
to operators. Then the process side (``runtime/storage.py``) with a real writer on a file
another connection locks: one report with a notice per flip, however many retries, a notice
that counts the history writes dropped meanwhile, and the flip told before a held query runs.
"""

from __future__ import annotations

import doctest
import select
import selectors
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fastchat.server.config import Config, OperBlock
from fastchat.server.network.records import B_SNAPSHOT, E_STORE, BHello, EStore, make
from fastchat.server.network.state import State, StoreStatus
from fastchat.server.passwords import hash_password
from fastchat.server.runtime import storage as storage_module
from fastchat.server.runtime.bus import Link, encode
from fastchat.server.runtime.hub import Hub
from fastchat.server.runtime.storage import Storage, StoreReport
from fastchat.server.store import db
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
OPERS = (OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"kill"})),)
CAPS = ("draft/chathistory", "batch", "server-time", "message-tags")
FAILED = b"store: writing history failed: database is locked; retrying; 3 writes queued"
WORKS = b"store: writing works again; 0 history writes were dropped while it failed"


@pytest.fixture(params=[1, 3], ids=["1worker", "3workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, opers=OPERS, autojoin=(), chathistory_max=50)


def oper(net: FakeNet, nick: str, worker: int) -> FakeClient:
    c = net.user(nick, worker)
    c.send("OPER admin secret")
    assert f"{SRV} 381 {nick} :You are now an IRC operator" in c.lines()
    return c


def failing(net: FakeNet) -> None:
    net.store_report(False, b"database is locked", 3, 10, 0, FAILED)


# -- the notice: every operator, on every worker, once per flip ----------------------------------


def test_a_flip_is_a_server_notice_to_every_operator_on_every_worker(net: FakeNet) -> None:
    """The writer's health flips: each operator (user mode +o), on whichever worker, gets one
    NOTICE saying so; a user who is no operator gets nothing."""
    ada, bea = oper(net, "ada", 0), oper(net, "bea", net.last)
    carl = net.user("carl", net.last)
    net.store_report(True, b"", 0, 0, 0)  # the report at start: no flip, no notice
    assert ada.lines() == bea.lines() == carl.lines() == []
    failing(net)
    assert ada.lines() == [f"{SRV} NOTICE ada :*** {FAILED.decode()}"]
    assert bea.lines() == [f"{SRV} NOTICE bea :*** {FAILED.decode()}"]
    assert carl.lines() == []
    net.store_report(True, b"database is locked", 0, 13, 0, WORKS)
    assert ada.lines() == [f"{SRV} NOTICE ada :*** {WORKS.decode()}"]
    assert bea.lines() == [f"{SRV} NOTICE bea :*** {WORKS.decode()}"]
    assert carl.lines() == []


def test_a_report_of_counts_tells_nobody_and_updates_every_replica(net: FakeNet) -> None:
    """Between flips, the counts are reported (at most once a second) without a notice:
    nobody is told, every worker's state has them (STATS S)."""
    ada = oper(net, "ada", net.last)
    failing(net)
    ada.lines()
    net.store_report(False, b"database is locked", 40, 10, 0)
    assert ada.lines() == []
    for core in net.cores:
        assert core.state.store == StoreStatus(
            False, b"database is locked", 40, 10, 0, int(net.now * 1000)
        )
        assert not core.state.history_available


def test_no_report_means_the_history_is_available() -> None:
    """A network with no store (or before its first report) is not "unavailable": CHATHISTORY
    answers from what there is."""
    assert State().history_available


def test_an_operator_with_a_labeled_command_open_gets_the_notice_beside_its_reply() -> None:
    """The notice is a line nobody asked for: never part of a labeled command's reply."""
    net = FakeNet(workers=1, opers=OPERS, autojoin=())
    ada = net.negotiated(0, "ada", "labeled-response", "batch")
    ada.send("OPER admin secret")
    ada.lines()
    net.hold_checks = True  # an OPER whose password check is under way: its label is open
    ada.send("@label=L1 OPER admin secret")
    failing(net)
    assert ada.lines() == [f"{SRV} NOTICE ada :*** {FAILED.decode()}"]
    net.hold_checks = False
    net.pump()
    assert all("NOTICE" not in line for line in ada.lines())


def test_a_worker_that_says_hello_gets_the_last_report_after_its_snapshot() -> None:
    """The report is not in the snapshot: the hub sends a worker that (re)connects its last
    one right after it, without the notice (whoever was told was told already)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=2), listener, None)
        hub.sequencer.store_status(False, b"database is locked", 5, 1, 0, FAILED, 1_000)
        worker_end, hub_end = socket.socketpair()
        try:
            worker_end.sendall(encode([make(BHello, 0, None, (), 0, {}, ())]))
            link = Link(hub_end)
            hub._from_pending(link, {hub_end: link})
            assert [r[0] for r in hub.out[0]][:2] == [B_SNAPSHOT, E_STORE]
            assert hub.out[0][1] == make(EStore, False, b"database is locked", 5, 1, 0, b"", 1_000)
        finally:
            worker_end.close()
            hub_end.close()


# -- CHATHISTORY while unavailable -----------------------------------------------------------------


def members(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    alice = net.negotiated(0, "alice", *CAPS)
    bob = net.user("bob", net.last)
    for c in (alice, bob):
        c.send("JOIN #Hist")
        c.lines()
    alice.lines()
    return alice, bob


def test_chathistory_fails_while_the_writer_fails_and_chat_goes_on(net: FakeNet) -> None:
    """While the store's writer fails, CHATHISTORY answers ``FAIL CHATHISTORY MESSAGE_ERROR
    <subcommand> <target> :History is temporarily unavailable`` (TARGETS too) without asking
    the store; messages are still delivered; once it works again, the store is asked."""
    alice, bob = members(net)
    failing(net)
    for core in net.cores:
        assert not core.state.history_available
    bob.send("PRIVMSG #hist :still here")
    assert alice.lines()[-1].endswith(f" :bob!~bob@10.0.0.{net.last + 1} PRIVMSG #hist :still here")
    alice.send(
        "CHATHISTORY LATEST #hist * 10",
        "CHATHISTORY BEFORE #hist timestamp=2025-01-01T00:00:00.000Z 10",
        "CHATHISTORY TARGETS timestamp=2025-01-01T00:00:00.000Z "
        "timestamp=2026-01-01T00:00:00.000Z 10",
    )
    assert alice.lines() == [
        f"{SRV} FAIL CHATHISTORY MESSAGE_ERROR LATEST #Hist :History is temporarily unavailable",
        f"{SRV} FAIL CHATHISTORY MESSAGE_ERROR BEFORE #Hist :History is temporarily unavailable",
        f"{SRV} FAIL CHATHISTORY MESSAGE_ERROR TARGETS :History is temporarily unavailable",
    ]
    assert not net.cores[0].offload.queries
    net.store_report(True, b"database is locked", 0, 14, 0, WORKS)
    alice.send("CHATHISTORY LATEST #hist * 10")
    [query] = net.cores[0].offload.queries
    assert query.query == ("latest", "#hist", None, 10)


def test_a_malformed_request_is_still_told_so(net: FakeNet) -> None:
    """Unavailability is checked last: a request that could never be answered says why."""
    alice, _ = members(net)
    failing(net)
    alice.send("CHATHISTORY LATEST #hist * none", "CHATHISTORY LATEST #elsewhere * 5")
    assert [line.split(" :")[0] for line in alice.lines()] == [
        f"{SRV} FAIL CHATHISTORY INVALID_PARAMS LATEST",
        f"{SRV} FAIL CHATHISTORY INVALID_TARGET LATEST #elsewhere",
    ]


# -- STATS S ---------------------------------------------------------------------------------------


def test_stats_s_shows_the_store_to_operators_only(net: FakeNet) -> None:
    """STATS S (operators): the store's state as last reported, in RPL_STATSDEBUG (249)
    lines, then 219; anyone else gets 481 and 219 is not sent."""
    ada, carl = oper(net, "ada", net.last), net.user("carl", 0)
    ada.send("STATS S")
    assert ada.lines() == [
        f"{SRV} 249 ada S :store: none (nothing is kept)",
        f"{SRV} 219 ada S :End of /STATS report",
    ]
    failing(net)
    ada.lines()
    ada.send("STATS S")
    assert ada.lines() == [
        f"{SRV} 249 ada S :store: failing; 3 writes queued, 10 committed, 0 dropped",
        f"{SRV} 249 ada S :store: last error: database is locked",
        f"{SRV} 219 ada S :End of /STATS report",
    ]
    net.store_report(True, b"", 0, 7, 0)
    ada.send("STATS S")
    assert ada.lines()[:2] == [
        f"{SRV} 249 ada S :store: healthy; 0 writes queued, 7 committed, 0 dropped",
        f"{SRV} 249 ada S :store: last error: none",
    ]
    carl.send("STATS S")
    assert carl.lines() == [f"{SRV} 481 carl :Permission Denied- You're not an IRC operator"]


# -- the sequencer's process: runtime/storage.py with a real writer ----------------------------------


def message(n: int) -> tuple[object, ...]:
    return ("message_run", "#a", 1_000 + n, 1, n, b"", b"", b":n!u@h PRIVMSG #a :hi\r\n")


class Told:
    """What a Storage announces (the loop would hand it to the sequencer)."""

    def __init__(self) -> None:
        self.reports: list[StoreReport] = []

    def __call__(self, report: StoreReport) -> None:
        self.reports.append(report)

    def notices(self) -> list[str]:
        return [r.notice.decode() for r in self.reports if r.notice]


SELECTORS: dict[int, selectors.BaseSelector] = {}


def storage_of(tmp_path: Path, told: Told, max_queued: int | None = None) -> Storage:
    db.prepare(str(tmp_path))
    storage = Storage(str(tmp_path))
    storage.announce = told
    if max_queued is not None:
        storage.max_queued = max_queued
    storage.load(State())
    sel = selectors.DefaultSelector()
    storage.watch(sel, None)  # as a loop does
    SELECTORS[id(storage)] = sel
    return storage


def until(condition: Callable[[], bool], storage: Storage) -> None:
    """Wait for ``condition`` with a deadline, running the loop's side of the storage (its
    handler of the writing process's socket) meanwhile: the process's reports change what the
    condition reads."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the writer never got there"
        for _key, mask in SELECTORS[id(storage)].select(0.05):
            storage.on_wakeup(mask)


def until_read(condition: Callable[[], bool], storage: Storage) -> None:
    """Like :func:`until`, but only reading the process's reports, as a loop that has not
    yet run its handler for them (nothing is told to the network)."""
    writer = storage.writer
    assert writer is not None and writer.sock is not None
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the writer never got there"
        select.select([writer.sock], [], [], 0.05)
        writer.on_readable()


def locked(tmp_path: Path) -> sqlite3.Connection:
    """Another connection holding the write lock: the writer's BEGIN IMMEDIATE times out
    with "database is locked"."""
    lock = sqlite3.connect(db.path_in(str(tmp_path)), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    return lock


def test_one_report_with_a_notice_per_flip_however_many_retries(tmp_path: Path) -> None:
    told = Told()
    storage = storage_of(tmp_path, told)
    writer = storage.writer
    assert writer is not None
    assert told.reports == [StoreReport(True, b"", 0, 0, 0, b"")]  # at start: STATS S has it
    lock = locked(tmp_path)
    try:
        writer.submit_many(message(n) for n in range(3))
        until(lambda: storage.failing, storage)
        assert told.notices() == [
            "store: writing history failed: database is locked; retrying; 3 writes queued"
        ]
        writer.submit(message(3))
        until(lambda: writer.status().retries >= 3, storage)  # it keeps trying, unhealthy
        storage.check_health()
        storage.maybe_report(10_000)  # the counts moved: reported, with no notice
        assert told.reports[-1] == StoreReport(False, b"database is locked", 4, 0, 0, b"")
        assert len(told.notices()) == 1
    finally:
        lock.execute("ROLLBACK")
    until(lambda: not storage.failing, storage)
    assert told.notices()[1:] == [
        "store: writing works again; 0 history writes were dropped while it failed"
    ]
    until(lambda: writer.status().queued == 0, storage)
    storage.maybe_report(20_000)  # the last error stays, for STATS S
    assert told.reports[-1][:5] == (True, b"database is locked", 0, 4, 0)
    storage.close()


def test_the_recovery_notice_counts_what_was_dropped_meanwhile(tmp_path: Path) -> None:
    """Past the backlog's bound, the writer drops the oldest history writes while it fails;
    the notice of its recovery says how many."""
    told = Told()
    storage = storage_of(tmp_path, told, max_queued=2)
    writer = storage.writer
    assert writer is not None
    lock = locked(tmp_path)
    try:
        writer.submit_many(message(n) for n in range(10))
        until(lambda: storage.failing, storage)
    finally:
        lock.execute("ROLLBACK")
    until(lambda: not storage.failing, storage)
    dropped = writer.status().dropped
    assert dropped >= 8
    assert told.notices()[-1] == (
        f"store: writing works again; {dropped} history writes were dropped while it failed"
    )
    storage.close()


def test_a_held_query_learns_of_the_failure_first(tmp_path: Path) -> None:
    """A flip the loop has not been woken for yet is told before a query waiting for the
    history barrier runs, so the query sees the history unavailable."""
    told = Told()
    storage = storage_of(tmp_path, told)
    writer = storage.writer
    assert writer is not None
    order: list[str] = []
    storage.announce = lambda report: order.append("failing" if not report.healthy else "ok")
    lock = locked(tmp_path)
    try:
        writer.submit(message(0))
        until_read(lambda: not writer.status().healthy, storage)  # not told yet
        storage.when_stored(lambda: order.append("query"))
        assert order == ["failing", "query"]
    finally:
        lock.execute("ROLLBACK")
    storage.close()


def test_counts_are_reported_at_most_once_a_second(tmp_path: Path) -> None:
    told = Told()
    storage = storage_of(tmp_path, told)
    writer = storage.writer
    assert writer is not None
    storage.maybe_report(1_000)
    assert len(told.reports) == 1  # nothing moved since the report at start
    writer.submit(message(0))
    until(lambda: writer.status().committed == 1, storage)
    storage.maybe_report(1_500)  # within the second
    assert len(told.reports) == 1
    storage.maybe_report(2_000)
    assert told.reports[-1] == StoreReport(True, b"", 0, 1, 0, b"")
    storage.close()


def test_doctests() -> None:
    """The notices' wording, as runtime/storage.py's docstrings show it."""
    result = doctest.testmod(storage_module, verbose=False, report=True)
    assert result.attempted and not result.failed
