"""The store's file and writer: schema versions and migrations, WAL, and the writing thread's
batching, ordering, flushing, and behaviour while the file is locked."""

from __future__ import annotations

import marshal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.store import db, reader, schema
from fastchat.server.store.writer import Op, Writer, WriterStatus, weight


@pytest.fixture
def path(tmp_path: Path) -> str:
    return db.prepare(str(tmp_path / "data"))


def connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def message(n: int, target: str = "#a", time_ms: int | None = None) -> Op:
    """A run of one message, ``m<n>`` (sender 1's n-th)."""
    return ("message_run", target, n if time_ms is None else time_ms, 1, n, b"", b"",
            b":alice!a@host PRIVMSG %s :m%d\r\n" % (target.encode(), n))  # fmt: skip


def texts(path: str) -> list[str]:
    """Every stored message's text, in the order of the runs."""
    out = []
    for (lines,) in connect(path).execute("SELECT lines FROM runs ORDER BY id"):
        out += [line.rsplit(b" :", 1)[1].decode() for line in lines.split(b"\r\n")[:-1]]
    return out


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (another thread changes what it reads) until true, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- the file ---------------------------------------------------------------------------------
def test_prepare_makes_the_directory_and_a_current_wal_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b"
    path = db.prepare(str(data_dir))
    assert path == str(data_dir / "fastchat.db")
    conn = connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.version(conn) == schema.VERSION == len(schema.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"accounts", "runs", "dm_peers"} <= tables
    assert db.connect(path).execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_prepare_again_changes_nothing(path: str) -> None:
    connect(path).execute(
        f"INSERT INTO accounts ({schema.ACCOUNT_COLUMNS}) VALUES ('a', 'A', 'h', '', 1, 0)"
    )
    assert db.prepare(str(Path(path).parent)) == path
    assert reader.load_accounts(path)[0].name == "A"


def test_an_older_file_gets_the_missing_migrations(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    path = db.prepare(data_dir, schema.MIGRATIONS[:1])
    connect(path).execute("INSERT INTO accounts VALUES ('a', 'A', 'h', '', 1, 0)")
    newer = (
        *schema.MIGRATIONS,
        ("ALTER TABLE accounts ADD COLUMN note TEXT NOT NULL DEFAULT ''", "CREATE TABLE t (x)"),
        ("CREATE INDEX t_x ON t (x)",),
    )
    conn = db.connect(path)
    assert db.migrate(conn, path, newer) == 1
    assert db.version(conn) == len(newer)
    assert conn.execute("SELECT name, note FROM accounts").fetchall() == [("A", "")]


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = db.prepare(str(tmp_path))
    broken = (*schema.MIGRATIONS, ("CREATE TABLE half (x)", "NOT SQL AT ALL"))
    with pytest.raises(db.StoreError, match="syntax error"):
        db.prepare(str(tmp_path), broken)
    conn = connect(path)
    assert db.version(conn) == schema.VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None


def test_a_file_from_a_newer_version_is_refused(path: str) -> None:
    connect(path).execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    newer = f"schema version {schema.VERSION + 1} is newer than this fastchat knows"
    with pytest.raises(db.StoreError, match=newer):
        db.prepare(str(Path(path).parent))


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fastchat.db").write_bytes(b"not a database, really not" * 100)
    with pytest.raises(db.StoreError, match=r"fastchat\.db: .*file is not a database"):
        db.prepare(str(tmp_path))


def test_a_data_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(db.StoreError, match="cannot create the data directory"):
        db.prepare(str(tmp_path / "file" / "data"))


def test_dm_target_is_the_same_either_way() -> None:
    key = schema.dm_target("bob", "alice")
    assert key == schema.dm_target("alice", "bob")
    assert schema.maybe_dm_parties(key) == ("alice", "bob")
    assert schema.maybe_dm_parties("#lobby") is None


# -- the writer -------------------------------------------------------------------------------
@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    """Writers a test made; each is closed at the end."""
    made: list[Writer] = []
    yield made
    for writer in made:
        writer.close(1.0)


def test_queued_operations_are_written_in_few_transactions(
    path: str, writers: list[Writer]
) -> None:
    writer = Writer(path, max_batch=1000)
    writers.append(writer)
    for n in range(10_000):
        writer.submit(message(n))
    writer.start()
    assert writer.close()
    status = writer.status()
    assert (status.committed, status.commits, status.queued) == (10_000, 10, 0)
    assert texts(path) == [f"m{n}" for n in range(10_000)]


def test_a_running_writer_batches_what_comes_while_it_commits(
    path: str, writers: list[Writer]
) -> None:
    writer = Writer(path)
    writers.append(writer)
    writer.start()
    for n in range(20_000):
        writer.submit(message(n))
    assert writer.close()
    status = writer.status()
    assert status.committed == 20_000
    assert status.commits < 2_000  # batches, not one commit per operation
    assert texts(path) == [f"m{n}" for n in range(20_000)]


def test_operations_apply_in_order(path: str, writers: list[Writer]) -> None:
    writer = Writer(path)
    writers.append(writer)
    writer.start()
    writer.submit_many(
        [
            ("account_put", "alice", "Alice", "h1", "a@x", 5, False),
            ("account_put", "bob", "Bob", "h2", "", 6, False),
            ("account_password", "alice", "h3"),
            ("account_verified", "alice", True),
            ("account_drop", "bob"),
            ("account_put", "bob", "BOB", "h4", "", 7, True),
            ("account_certfps", "alice", "ab cd"),
            ("account_certfps", "alice", "cd"),
            message(1),
        ]
    )
    assert writer.close()
    assert reader.load_accounts(path) == [
        schema.AccountRow("alice", "Alice", "h3", "a@x", 5, True, "", "cd"),
        schema.AccountRow("bob", "BOB", "h4", "", 7, True),
    ]


def test_version_3_accounts_get_no_certificate_fingerprints(tmp_path: Path) -> None:
    """Version 4 (TLS client certificates): accounts of an older file keep everything and
    hold no fingerprint."""
    path = db.prepare(str(tmp_path), schema.MIGRATIONS[:3])
    connect(path).execute("INSERT INTO accounts VALUES ('a', 'A', 'h', '', 1, 1, '')")
    conn = db.connect(path)
    assert db.migrate(conn, path) == 3
    assert reader.accounts(conn) == [schema.AccountRow("a", "A", "h", "", 1, True, "", "")]


def test_close_writes_everything_queued_and_is_safe_twice(path: str) -> None:
    writer = Writer(path)
    writer.start()
    writer.submit_many(message(n) for n in range(500))
    assert writer.close()
    assert writer.close()
    assert len(texts(path)) == 500


def test_close_without_start_still_writes(path: str) -> None:
    writer = Writer(path)
    writer.submit(message(1))
    assert writer.close()
    assert texts(path) == ["m1"]


def test_a_replayed_run_is_written_once(path: str) -> None:
    writer = Writer(path)
    writer.submit_many([message(1), message(2), message(1)])
    assert writer.close()
    assert texts(path) == ["m1", "m2"]


def test_a_malformed_operation_is_refused_at_once(path: str) -> None:
    writer = Writer(path)
    with pytest.raises(ValueError, match="malformed write operation"):
        writer.submit(("message_run", "#a"))
    with pytest.raises(ValueError, match="malformed"):
        writer.submit(("launch_missiles",))
    assert writer.close()


def test_an_operation_breaking_a_constraint_is_skipped_alone(path: str) -> None:
    writer = Writer(path)
    bad = ("account_put", "x", None, "h", "", 1, False)  # accounts.name is NOT NULL
    wrong_type = ("prune", "yesterday", None)
    unbindable = ("message_run", "#a", 9, 1, 9, b"", b"", [b"text"])
    writer.submit_many([message(1), bad, wrong_type, unbindable, message(2)])
    assert writer.close()
    assert texts(path) == ["m1", "m2"]
    assert writer.status().failed == 3
    assert writer.status().healthy


def test_prune_by_age_and_by_count(path: str) -> None:
    writer = Writer(path)
    writer.submit_many(message(n, "#a") for n in range(10))
    writer.submit_many(message(n, "#b") for n in range(10, 13))
    writer.submit(("prune", 2, 0))  # older than 2 ms
    writer.submit(("prune", 0, 5))  # the newest 5 of each target
    assert writer.close()
    assert texts(path) == ["m5", "m6", "m7", "m8", "m9", "m10", "m11", "m12"]


def test_prune_by_count_keeps_whole_runs(path: str) -> None:
    """A run goes whole, once the newer messages are enough: the newest 3 of #a here are in
    runs of 2 and 2, so 4 stay."""
    writer = Writer(path)
    for first in (0, 2, 4):
        lines = b"".join(b":a!b@c PRIVMSG #a :m%d\r\n" % n for n in (first, first + 1))
        writer.submit(("message_run", "#a", 10 + first, 1, first, b"", b"", lines))
    writer.submit(("prune", 0, 3))
    assert writer.close()
    assert texts(path) == ["m2", "m3", "m4", "m5"]


def test_private_messages_record_both_parties_peers(path: str) -> None:
    writer = Writer(path)
    key = schema.dm_target("bob", "alice")
    writer.submit_many([message(1, key), message(2, key), message(3, "#a")])
    assert writer.close()
    peers = connect(path).execute("SELECT * FROM dm_peers ORDER BY 1").fetchall()
    assert peers == [("alice", "bob"), ("bob", "alice")]


def test_a_locked_file_makes_the_writer_unhealthy_until_it_is_free(path: str) -> None:
    """Another process holds the write lock: nothing crashes, the status says so, and once
    the lock goes, everything is written, in order."""
    changes: list[WriterStatus] = []
    lock = connect(path)
    lock.execute("BEGIN EXCLUSIVE")
    writer = Writer(path, on_change=changes.append)
    writer.start()
    writer.submit(("account_put", "alice", "Alice", "h", "", 1, False))
    writer.submit_many(message(n) for n in range(100))
    wait_until(lambda: not writer.status().healthy)
    status = writer.status()
    assert "database is locked" in status.last_error
    assert status.queued == 101 and status.committed == 0
    writer.submit_many(message(n) for n in range(100, 200))
    lock.execute("ROLLBACK")
    assert writer.close()
    assert writer.status().healthy
    assert [c.healthy for c in changes] == [False, True]
    assert texts(path) == [f"m{n}" for n in range(200)]
    assert [a.name for a in reader.load_accounts(path)] == ["Alice"]


def test_a_long_outage_drops_the_oldest_history_never_accounts(path: str) -> None:
    lock = connect(path)
    lock.execute("BEGIN EXCLUSIVE")
    writer = Writer(path, max_queued=50)
    writer.start()
    writer.submit_many(message(n) for n in range(40))
    writer.submit(("account_put", "alice", "Alice", "h", "", 1, False))
    writer.submit_many(message(n) for n in range(40, 80))
    wait_until(lambda: writer.status().dropped > 0)
    lock.execute("ROLLBACK")
    assert writer.close()
    status = writer.status()
    assert status.dropped == 31  # 81 queued, bound 50
    assert texts(path) == [f"m{n}" for n in range(31, 80)]
    assert [a.name for a in reader.load_accounts(path)] == ["Alice"]


def segment(first: int, count: int, target: bytes = b"#a") -> Op:
    """A hub's "message_segment" of ``count`` one-line runs, ``m<first>``... (sender 1's)."""
    items: list[object] = []
    for n in range(first, first + count):
        line = b":alice!a@host PRIVMSG %s :m%d\r\n" % (target, n)
        items += [target, 1, line, n, False, b""]
    return ("message_segment", first, marshal.dumps(items))


def test_a_segment_weighs_its_runs() -> None:
    assert weight(segment(0, 40)) == 40
    assert weight(segment(0, 1)) == 1
    assert weight(message(3)) == 1
    # another marshal version's list header: counted by loading it
    other = ("message_segment", 0, marshal.dumps(tuple(marshal.loads(segment(0, 7)[2]))))
    assert weight(other) == 7


def test_the_backlog_bound_counts_a_segments_runs(path: str) -> None:
    """A long outage with the hub's segments queued: the bound is in runs, so ten segments
    of ten runs past a bound of 50 drop the oldest five segments, not nothing (counted as
    operations, ten of them would have sat far below it)."""
    lock = connect(path)
    lock.execute("BEGIN EXCLUSIVE")
    writer = Writer(path, max_queued=50)
    writer.start()
    writer.submit_many(segment(n, 10) for n in range(0, 100, 10))
    wait_until(lambda: writer.status().dropped > 0)
    lock.execute("ROLLBACK")
    assert writer.close()
    assert writer.status().dropped == 5  # operations: five segments, 50 runs
    assert texts(path) == [f"m{n}" for n in range(50, 100)]


def test_a_batch_is_bounded_in_runs(path: str) -> None:
    writer = Writer(path, max_batch=100)
    for n in range(0, 1000, 50):
        writer.submit(segment(n, 50))
    writer.start()
    assert writer.close()
    status = writer.status()
    assert (status.committed, status.commits) == (20, 10)  # two segments a transaction
    assert texts(path) == [f"m{n}" for n in range(1000)]


def test_a_full_disk_is_retried_with_backoff_not_per_submit(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that comes at once (a full disk) is not retried at every submit: the writer
    waits, doubling the wait; once the disk has room, everything is written in order."""
    full = threading.Event()
    full.set()
    transaction = Writer._transaction

    def maybe_full(self: Writer, conn: sqlite3.Connection, batch: list[Op]) -> None:
        if full.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        transaction(self, conn, batch)

    monkeypatch.setattr(Writer, "_transaction", maybe_full)
    writer = Writer(path)
    writer.start()
    writer.submit(message(0))
    wait_until(lambda: not writer.status().healthy)
    for n in range(1, 31):  # 0.3 s of submits, one each 10 ms
        writer.submit(message(n))
        time.sleep(0.01)
    status = writer.status()
    assert status.last_error == "OperationalError: database or disk is full"
    assert status.retries <= 5  # 0.05 + 0.1 + 0.2 s of backoff, not 30 retries
    full.clear()
    assert writer.close()
    assert writer.status().healthy
    assert texts(path) == [f"m{n}" for n in range(31)]


def test_close_gives_up_at_its_deadline_when_the_file_stays_locked(path: str) -> None:
    lock = connect(path)
    lock.execute("BEGIN EXCLUSIVE")
    writer = Writer(path)
    writer.start()
    writer.submit(message(1))
    started = time.monotonic()
    assert not writer.close(0.5)
    assert time.monotonic() - started < 3
    lock.execute("ROLLBACK")


def test_submit_never_waits_for_the_database(path: str) -> None:
    """While the file is locked, submitting stays as fast as appending to a list."""
    lock = connect(path)
    lock.execute("BEGIN EXCLUSIVE")
    writer = Writer(path)
    writer.start()
    started = time.monotonic()
    for n in range(10_000):
        writer.submit(message(n))
    assert time.monotonic() - started < 1.0
    lock.execute("ROLLBACK")
    assert writer.close()
    assert threading.active_count() >= 1


def test_a_run_decided_again_is_written_only_if_the_old_hub_did_not(path: str) -> None:
    """After a hub is killed, the new one decides again what not every worker had received,
    at its own time: "message_rerun" writes such a run only if no run of that sender, first
    message and target is in the file already (the old hub's writer got to it)."""
    writer = Writer(path)
    writer.submit_many([message(1, time_ms=1000), message(2, time_ms=1000)])
    again = [
        ("message_rerun", *message(2, time_ms=1500)[1:]),  # written by the old hub: skipped
        ("message_rerun", *message(3, time_ms=1500)[1:]),  # not: written now
        ("message_rerun", *message(3, "#b", time_ms=1500)[1:]),  # another target: written
    ]
    writer.submit_many(again)
    assert writer.close()
    rows = connect(path).execute("SELECT target_folded, first, time_ms FROM runs ORDER BY id")
    assert rows.fetchall() == [("#a", 1, 1000), ("#a", 2, 1000), ("#a", 3, 1500), ("#b", 3, 1500)]
