"""The history barrier (runtime/storage.py): a continuation held until the store's writer has
settled every operation submitted before it, woken through the loop's socket; released at
once when nothing waits to be written, and while the writer fails (waiting would stall the
client for nothing: the history is unavailable)."""

from __future__ import annotations

import os
import selectors
import signal
import sqlite3
import threading
from pathlib import Path

from fastchat.server.network.state import State
from fastchat.server.runtime.storage import Storage
from fastchat.server.store import db
from fastchat.server.store.writer import Writer


def message(n: int) -> tuple[object, ...]:
    return ("message_run", "#a", 1_000 + n, 1, n, b"", b"", b":n!u@h PRIVMSG #a :hi\r\n")


def test_the_writer_calls_on_settled_once_the_count_is_reached(tmp_path: Path) -> None:
    settled = threading.Event()
    writer = Writer(db.prepare(str(tmp_path)), on_settled=settled.set)
    writer.submit_many(message(n) for n in range(3))
    assert writer.submitted == 3
    assert not writer.wake_when_settled(3)  # not started: nothing settled
    writer.start()
    assert settled.wait(10)
    assert writer.wake_when_settled(3)
    assert writer.close()


SELECTORS: dict[int, selectors.BaseSelector] = {}


def storage_of(tmp_path: Path) -> Storage:
    db.prepare(str(tmp_path))
    storage = Storage(str(tmp_path))
    storage.load(State())
    sel = selectors.DefaultSelector()
    storage.watch(sel, None)  # as a loop does
    SELECTORS[id(storage)] = sel
    return storage


def wake(storage: Storage) -> None:
    """One turn of a loop that watches only the store's writing process."""
    events = SELECTORS[id(storage)].select(10)
    assert events, "the writing process never woke the loop"
    for _key, mask in events:
        storage.on_wakeup(mask)


def test_a_query_waits_for_the_writes_before_it_and_no_longer(tmp_path: Path) -> None:
    storage = storage_of(tmp_path)
    assert storage.writer is not None
    ran: list[str] = []
    storage.when_stored(lambda: ran.append("nothing pending"))
    assert ran == ["nothing pending"]
    # another connection holds the write lock: the writer waits inside SQLite (its busy
    # timeout), healthy, with our operations in hand
    lock = sqlite3.connect(db.path_in(str(tmp_path)), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for n in range(10):
            storage.writer.submit(message(n))
        storage.when_stored(lambda: ran.append("first"))
        storage.writer.submit(message(10))
        storage.when_stored(lambda: ran.append("second"))
        assert ran == ["nothing pending"]
    finally:
        lock.execute("ROLLBACK")
    while len(ran) < 3:
        wake(storage)
    assert ran == ["nothing pending", "first", "second"]  # in the order they were held
    storage.close()
    rows = sqlite3.connect(db.path_in(str(tmp_path))).execute("SELECT COUNT(*) FROM runs")
    assert rows.fetchone()[0] == 11


def test_a_failing_writer_releases_what_waits(tmp_path: Path) -> None:
    storage = storage_of(tmp_path)
    assert storage.writer is not None
    lock = sqlite3.connect(db.path_in(str(tmp_path)), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        storage.writer.submit(message(0))
        ran: list[str] = []
        storage.when_stored(lambda: ran.append("held"))
        assert ran == []
        while not ran:  # the busy timeout runs out: the writer turns unhealthy, says so
            wake(storage)
        assert not storage.writer.status().healthy
        storage.when_stored(lambda: ran.append("at once"))
        assert ran == ["held", "at once"]
    finally:
        lock.execute("ROLLBACK")
    storage.close()


def test_no_store_runs_everything_at_once() -> None:
    storage = Storage(None)
    storage.load(State())
    ran: list[int] = []
    storage.when_stored(lambda: ran.append(1))
    assert ran == [1] and storage.writer is None


def test_a_writing_process_that_dies_is_replaced(tmp_path: Path) -> None:
    """The loop sees the socket close: what waited is released (the writer is unhealthy
    until the new process reports), another process starts, and writes go on."""
    storage = storage_of(tmp_path)
    writer = storage.writer
    assert writer is not None
    lock = sqlite3.connect(db.path_in(str(tmp_path)), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # nothing gets written: the operation stays in flight
    writer.submit(message(0))
    ran: list[str] = []
    storage.when_stored(lambda: ran.append("held"))
    first = writer.pid
    os.kill(first, signal.SIGKILL)
    while not ran:
        wake(storage)
    lock.execute("ROLLBACK")
    assert writer.pid not in (0, first)
    assert writer.status().dropped == 1 and not writer.status().healthy
    while not writer.status().healthy:  # until the new process reports
        wake(storage)
    writer.submit(message(1))
    storage.when_stored(lambda: ran.append("after"))
    while len(ran) < 2:
        wake(storage)
    assert writer.status().healthy
    storage.close()
    rows = sqlite3.connect(db.path_in(str(tmp_path))).execute("SELECT first FROM runs")
    assert rows.fetchall() == [(1,)]
