"""The store's queries: every CHATHISTORY selector (LATEST, BEFORE, AFTER, AROUND, BETWEEN,
TARGETS) gives the right messages, oldest first, within its limit; and the Reader answers
them off the caller's thread, by ticket, waking a selector."""

from __future__ import annotations

import os
import select
import selectors
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastchat.server.caps import message_tags
from fastchat.server.runtime.readerproc import ReaderProcess
from fastchat.server.store import db, reader, schema
from fastchat.server.store.writer import Writer

#: #a's messages m0..m9 and their times (ties at 100 and 300: the writer's order decides),
#: stored as runs the way the sequencer delivers them: m0-m1 one run, m3-m5 another
TIMES = [100, 100, 200, 300, 300, 300, 400, 500, 600, 700]
RUNS_A = [(0, 2), (2, 1), (3, 3), (6, 1), (7, 1), (8, 1), (9, 1)]  # (first, count)
ALICE, BOB = 1, 2  # sender uids
DM = schema.dm_target("alice", "bob")
#: each message's name in these tests -> its msgid (``<time>-<sender uid>-<seq>``, hex)
MSGIDS: dict[str, str] = {}


def lines(kind: bytes, target: bytes, texts: list[bytes], source: bytes) -> bytes:
    return b"".join(b":%s %s %s :%s\r\n" % (source, kind, target, t) for t in texts)


def run_of(name: str, target: str, time_ms: int, uid: int, first: int, texts: list[bytes],
           *, kind: bytes = b"PRIVMSG", account: bytes = b"", tags: bytes = b"",
           source: bytes = b"alice!a@h") -> tuple[Any, ...]:  # fmt: skip
    for i in range(len(texts)):
        MSGIDS[f"{name}{first + i}"] = message_tags.msgid(time_ms, uid, first + i).decode()
    blob = lines(kind, target.encode() if target.startswith("#") else b"bob", texts, source)
    return ("message_run", target, time_ms, uid, first, account, tags, blob)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = db.prepare(str(tmp_path_factory.mktemp("store")))
    writer = Writer(path)
    for first, count in RUNS_A:
        texts = [b"%d" % n for n in range(first, first + count)]
        writer.submit(run_of("m", "#a", TIMES[first], ALICE, first, texts))
    for n, t in enumerate([150, 350, 650]):
        writer.submit(
            run_of("b", "#b", t, BOB, n, [b"b"], kind=b"NOTICE", account=b"bob", tags=b"+x=1",
                   source=b"bob!b@h")
        )  # fmt: skip
    for n, t in enumerate([50, 450]):
        writer.submit(run_of("d", DM, t, BOB, n, [b"hi"], source=b"bob!b@h"))
    writer.submit(
        ("message_run", schema.dm_target("carol", "dave"), 500, 3, 0, b"", b"",
         b":c TAGMSG dave :\r\n")
    )  # fmt: skip
    writer.submit(("account_put", "alice", "Alice", "hash", "a@x", 5, True))
    assert writer.close()
    return path


@pytest.fixture
def conn(path: str) -> Iterator[sqlite3.Connection]:
    conn = db.connect(path, readonly=True)
    yield conn
    conn.close()


def ids(rows: list[Any]) -> list[str]:
    """The test names of the messages (m3, b1...) in ``rows``."""
    names = {msgid: name for name, msgid in MSGIDS.items()}
    return [names[row.msgid] for row in rows]


def m(*ns: int) -> list[str]:
    return [f"m{n}" for n in ns]


def real(query: tuple[Any, ...]) -> tuple[Any, ...]:
    """``query`` with the test names of its references turned into msgids."""
    return tuple(MSGIDS.get(x, x) if isinstance(x, str) else x for x in query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (("latest", "#a", None, 3), m(7, 8, 9)),
        (("latest", "#a", None, 100), m(*range(10))),
        (("latest", "#a", 300, 100), m(6, 7, 8, 9)),  # after 300 ms
        (("latest", "#a", "m4", 2), m(8, 9)),
        (("latest", "#a", "m9", 5), []),
        (("before", "#a", "m5", 3), m(2, 3, 4)),
        (("before", "#a", 300, 10), m(0, 1, 2)),  # strictly before the millisecond
        (("before", "#a", 100, 10), []),
        (("before", "#a", "m1", 10), m(0)),  # the writer's order breaks a tie of times
        (("after", "#a", "m1", 2), m(2, 3)),
        (("after", "#a", 300, 10), m(6, 7, 8, 9)),
        (("after", "#a", "m3", 2), m(4, 5)),
        (("after", "#a", 700, 10), []),
        (("around", "#a", "m5", 4), m(3, 4, 5, 6)),  # the msgid's own message included
        (("around", "#a", "m5", 3), m(4, 5, 6)),
        (("around", "#a", 300, 4), m(1, 2, 3, 4)),
        (("around", "#a", "m0", 4), m(0, 1, 2, 3)),  # nothing before: more after
        (("around", "#a", "m9", 4), m(7, 8, 9)),
        (("between", "#a", "m1", "m6", 10), m(2, 3, 4, 5)),
        (("between", "#a", "m1", "m6", 2), m(2, 3)),  # counted from the first reference
        (("between", "#a", "m6", "m1", 2), m(4, 5)),  # ... which may be the later one
        (("between", "#a", "m6", "m1", 10), m(2, 3, 4, 5)),  # oldest first, either way
        (("between", "#a", 100, 400, 10), m(2, 3, 4, 5)),
        (("between", "#a", 400, 100, 1), m(5)),
        (("between", "#a", 300, 300, 10), []),
        (("latest", "#a", "nope", 10), []),  # an unknown msgid: no rows
        (("before", "#a", "b1", 10), []),  # another target's msgid is unknown here
        (("after", "#nobody", 0, 10), []),
        (("latest", DM, None, 10), ["d0", "d1"]),
    ],
)
def test_history_selectors(
    conn: sqlite3.Connection, query: tuple[Any, ...], expected: list[str]
) -> None:
    assert ids(reader.run(conn, real(query))) == expected


def test_history_rows_carry_every_column(conn: sqlite3.Connection) -> None:
    (row,) = reader.run(conn, ("latest", "#b", None, 1))
    assert row == schema.HistoryRow(
        "#b", MSGIDS["b2"], 650, "bob!b@h", "bob", "NOTICE", "+x=1", b"b"
    )
    rows = reader.run(conn, ("latest", "#a", None, 5))  # runs split into their lines
    assert [(r.sender, r.kind, r.text, r.time_ms) for r in rows[:3]] == [
        ("alice!a@h", "PRIVMSG", b"5", 300),  # the end of the run m3-m5
        ("alice!a@h", "PRIVMSG", b"6", 400),
        ("alice!a@h", "PRIVMSG", b"7", 500),
    ]


@pytest.mark.parametrize(
    "msgid",
    ["64-1-a", "64-1-2", "64-9-0", "12c-1-6", "m1", "64-1-0-0", "64-01-0x"],
)
def test_a_msgid_that_is_not_in_the_target_finds_nothing(
    conn: sqlite3.Connection, msgid: str
) -> None:
    """Beyond a run's end (64-1-2: m0-m1 are 64-1-0 and 64-1-1), another sender, another
    time, not ours at all."""
    assert reader.run(conn, ("after", "#a", msgid, 10)) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (("targets", 0, 1000, 10, ["#a", "#b"], "alice"), [(DM, 450), ("#b", 650), ("#a", 700)]),
        (("targets", 0, 1000, 10, ["#a", "#b"], None), [("#b", 650), ("#a", 700)]),
        (("targets", 0, 1000, 10, [], "bob"), [(DM, 450)]),
        (("targets", 0, 1000, 2, ["#a", "#b"], "alice"), [(DM, 450), ("#b", 650)]),
        (("targets", 1000, 0, 2, ["#a", "#b"], "alice"), [("#b", 650), ("#a", 700)]),
        # a target's latest message overall, if it lies in the window (the spec, and
        # irctest's testChathistoryTargetsExcludesUpdatedTargets: not one that was updated)
        (("targets", 0, 600, 10, ["#a", "#b"], "alice"), [(DM, 450)]),
        (("targets", 700, 2000, 10, ["#a", "#b", "#nobody"], "alice"), []),
        (("targets", 0, 1000, 10, [], "zed"), []),
    ],
)
def test_targets(conn: sqlite3.Connection, query: tuple[Any, ...], expected: list[Any]) -> None:
    assert reader.run(conn, query) == expected


def test_account_queries(conn: sqlite3.Connection, path: str) -> None:
    alice = schema.AccountRow("alice", "Alice", "hash", "a@x", 5, True)
    assert reader.run(conn, ("accounts",)) == [alice]
    assert reader.run(conn, ("account", "alice")) == [alice]
    assert reader.run(conn, ("account", "bob")) == []
    assert reader.load_accounts(path) == [alice]


def test_an_unknown_query_is_our_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="unknown query"):
        reader.run(conn, ("drop tables",))


def test_the_reader_answers_by_ticket_and_wakes_a_selector(path: str) -> None:
    store_reader = reader.Reader(path, threads=2)
    sel = selectors.DefaultSelector()
    sel.register(store_reader.wakeup, selectors.EVENT_READ)
    try:
        store_reader.ask(("latest", "#a", None, 2), 1)
        store_reader.ask(("account", "alice"), 2)
        store_reader.ask(("before", "#a", MSGIDS["m3"], 1), 3)
        store_reader.ask(("nonsense",), 4)
        store_reader.ask(("latest", "#a", None, "x"), 5)  # a bad argument: an error, no crash
        answers: dict[int, reader.Answer] = {}
        while len(answers) < 5:
            assert sel.select(timeout=10), "no wake-up"
            answers.update((a.ticket, a) for a in store_reader.answers())
        assert ids(answers[1].rows) == m(8, 9) and answers[1].error == ""
        assert [a.name for a in answers[2].rows] == ["Alice"]
        assert ids(answers[3].rows) == m(2)
        assert answers[4].rows == [] and "unknown query" in answers[4].error
        assert answers[5].rows == [] and answers[5].error
        assert store_reader.answers() == []
    finally:
        sel.close()
        store_reader.close()
        store_reader.close()


def test_readers_do_not_wait_for_a_writer_holding_the_lock(path: str, tmp_path: Path) -> None:
    """WAL: a query is answered while another connection holds the write lock."""
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        conn = db.connect(path, readonly=True)
        assert ids(reader.run(conn, ("latest", "#a", None, 1))) == m(9)
        conn.close()
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def _answers_until(proc: ReaderProcess, tickets: int) -> dict[int, reader.Answer]:
    got: dict[int, reader.Answer] = {}
    deadline = time.monotonic() + 10
    while len(got) < tickets and not proc.died:
        assert time.monotonic() < deadline, "no answer"
        assert proc.sock is not None
        select.select([proc.sock], [], [], 1)
        got.update((a.ticket, a) for a in proc.answers())
    return got


def test_the_reading_process_answers_by_ticket_and_survives_its_death(path: str) -> None:
    """The worker's reading process (runtime/readerproc.py): answers by ticket; killed, it
    answers what it had not with an error (the clients' barriers lift), and another starts."""
    proc = ReaderProcess(path)
    try:
        proc.ask(("latest", "#a", None, 2), 1)
        proc.ask(("account", "alice"), 2)
        got = _answers_until(proc, 2)
        assert ids(got[1].rows) == m(8, 9) and [a.name for a in got[2].rows] == ["Alice"]
        proc.ask(("latest", "#a", None, 1), 3)
        os.kill(proc.link.pid, signal.SIGKILL)
        got = {}
        while not proc.died:
            got.update(_answers_until(proc, 2))
        got.update((a.ticket, a) for a in proc.answers())
        assert list(got) == [3]  # answered, or an error: never lost
        assert got[3].error in ("", "the store's reading process died")
        proc.restart()
        proc.ask(("latest", "#a", None, 1), 4)
        assert ids(_answers_until(proc, 1)[4].rows) == m(9)
    finally:
        proc.close()
