"""Queries of the store, answered off the loop: history by CHATHISTORY selector, and accounts.

The loop asks with :meth:`Reader.ask` ``(query, ticket)``, which returns at once; a thread
with its own read-only connection (WAL: readers never wait for the writer, nor it for them)
runs the query and puts ``Answer(ticket, rows, error)`` on a thread-safe queue, then writes
a byte to the reader's wake-up socket, :attr:`Reader.wakeup`, which the loop registers with
its selector for reading (the same pattern as ``runtime/worker.py``'s ``_wake_r``/``_wake_w``
for password checks). The loop then calls :meth:`Reader.answers`, which empties the socket
and gives every answer that is ready. At start-up, :func:`load_accounts` reads every account
synchronously.

Queries (tuples, first item the selector; a *reference* is an ``int``, Unix milliseconds, or
a ``str``, a msgid; every history answer is oldest first, at most ``limit`` rows):

- ``("latest", target, after, limit)``: the newest messages, only those after ``after`` (a
  reference, or None for no bound);
- ``("before", target, ref, limit)``: the newest messages before ``ref``;
- ``("after", target, ref, limit)``: the oldest messages after ``ref``;
- ``("around", target, ref, limit)``: up to ``limit // 2`` messages before ``ref``, and the rest
  from ``ref`` on (a msgid's own message included);
- ``("between", target, ref1, ref2, limit)``: messages strictly between, counted from
  ``ref1``: the oldest ones if ``ref1`` is the earlier, else the newest;
- ``("targets", from_ms, to_ms, limit, for_targets, dm_owner)``: ``(target_folded,
  latest_ms)`` of each target among ``for_targets`` (channels the asker may read) and the
  private conversations of ``dm_owner`` (a folded name, or None) whose latest message lies
  strictly between the two times (a target with a later message is left out), in the order of those times, counted from ``from_ms``;
- ``("message", target, msgid)``: the one message ``msgid`` of ``target`` (what REDACT
  checks), or none;
- ``("accounts",)``: every :class:`schema.AccountRow`; ``("account", name_folded)``: a list
  of none or one.

A msgid not found in the target gives no rows (the caller answers as it wishes). A redacted
message (IRCv3 message-redaction, the ``redactions`` table) is in no answer.

Owns: the read-only connections and every SELECT the server runs while it serves.
Must never: write the file, or be asked from inside the thread that answers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from fastchat.server.caps import message_tags
from fastchat.server.store import db, schema
from fastchat.server.store.schema import AccountRow, HistoryRow

log = logging.getLogger("fastchat.store")

Query = tuple[Any, ...]
Ref = int | str
# A message's place in its target's order: (time_ms, run id, index in the run). A bound made
# from a time is a place no message has: (t, 0, -1) lies before every message of that
# millisecond (run ids start at 1), (t, _MAX_ID, 0) after them all.
_Key = tuple[int, int, int]
_MAX_ID = (1 << 63) - 1
_END: _Key = (_MAX_ID, _MAX_ID, 0)

_RUNS = f"SELECT {schema.RUN_COLUMNS} FROM runs WHERE target_folded = ? "


class Answer(NamedTuple):
    """The answer to the query asked under ``ticket``: its rows, or the error that stopped
    it (then no rows)."""

    ticket: int
    rows: list[Any]
    error: str


# -- the queries, on any connection ----------------------------------------------------------
def _messages(run: tuple[Any, ...]) -> list[tuple[_Key, HistoryRow]]:
    """The messages of a stored run (a ``runs`` row, :data:`schema.RUN_COLUMNS`), oldest
    first, each with its place."""
    run_id, target, time_ms, sender_uid, first, account, tags, blob = run
    prefix = message_tags.msgid_prefix(time_ms, sender_uid).decode()
    lines = blob.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        source, kind, _target, text = line.split(b" ", 3)
        message = HistoryRow(
            target, f"{prefix}{first + i:x}", time_ms, source[1:].decode("utf-8", "replace"),
            account, kind.decode(), tags, text[1:],
        )  # fmt: skip
        out.append(((time_ms, run_id, i), message))
    return out


def _redacted(conn: sqlite3.Connection, target: str) -> set[str]:
    """The msgids of ``target``'s messages that were redacted (IRCv3 message-redaction):
    every selector leaves them out. Few, and one indexed range: read once per selector."""
    query = "SELECT msgid FROM redactions WHERE target_folded = ?"
    return {msgid for (msgid,) in conn.execute(query, (target,))}


def message(conn: sqlite3.Connection, target: str, msgid: str) -> list[HistoryRow]:
    """The message ``msgid`` of ``target``, as one row; none if the target has no such
    message (or it was redacted): what REDACT checks first."""
    key = _msgid_key(conn, target, msgid)
    if key is None or msgid in _redacted(conn, target):
        return []
    run = conn.execute(_RUNS + "AND id = ?", (target, key[1])).fetchone()
    return [] if run is None else [m for _, m in _messages(run) if m.msgid == msgid]


def _msgid_key(conn: sqlite3.Connection, target: str, msgid: str) -> _Key | None:
    """The place of the message ``msgid`` in ``target``; None if the target has none such."""
    parsed = message_tags.maybe_parse_msgid(msgid)
    if parsed is None:
        return None
    time_ms, sender_uid, seq = parsed
    row = conn.execute(
        "SELECT id, first, count FROM runs WHERE target_folded = ? AND time_ms = ? "
        "AND sender_uid = ? AND first <= ? ORDER BY first DESC LIMIT 1",
        (target, time_ms, sender_uid, seq),
    ).fetchone()
    if row is None or seq >= row[1] + row[2]:
        return None
    return time_ms, row[0], seq - row[1]


def _bounds(conn: sqlite3.Connection, target: str, ref: Ref) -> tuple[_Key, _Key] | None:
    """The places just before and just after ``ref``: for a time, before every message of
    that millisecond and after them all; for a msgid, its message's own place (so that
    strict comparisons leave it out). None for a msgid the target does not have."""
    if isinstance(ref, int):
        return (ref, 0, -1), (ref, _MAX_ID, 0)
    key = _msgid_key(conn, target, ref)
    return None if key is None else (key, key)


def _newest_below(
    conn: sqlite3.Connection, target: str, high: _Key, low: _Key | None, n: int
) -> list[HistoryRow]:
    """The newest ``n`` messages strictly between ``low`` and ``high``, oldest first: the
    runs that may hold some, newest first, split until ``n`` are found."""
    if n <= 0:
        return []
    sql = _RUNS + "AND (time_ms, id) <= (?, ?) "
    args: list[Any] = [target, high[0], high[1]]
    if low is not None:
        sql += "AND (time_ms, id) >= (?, ?) "
        args += low[:2]
    found: list[HistoryRow] = []
    hidden = _redacted(conn, target)
    for run in conn.execute(sql + "ORDER BY time_ms DESC, id DESC", args):
        for key, message in reversed(_messages(run)):
            if key < high and (low is None or key > low) and message.msgid not in hidden:
                found.append(message)
                if len(found) == n:
                    return found[::-1]
    return found[::-1]


def _oldest_above(
    conn: sqlite3.Connection,
    target: str,
    low: _Key,
    high: _Key | None,
    n: int,
    inclusive: bool = False,
) -> list[HistoryRow]:
    """The oldest ``n`` messages after ``low`` (``inclusive``: from it) and below ``high``."""
    if n <= 0:
        return []
    sql = _RUNS + "AND (time_ms, id) >= (?, ?) "
    args: list[Any] = [target, low[0], low[1]]
    if high is not None:
        sql += "AND (time_ms, id) <= (?, ?) "
        args += high[:2]
    found: list[HistoryRow] = []
    hidden = _redacted(conn, target)
    for run in conn.execute(sql + "ORDER BY time_ms, id", args):
        for key, message in _messages(run):
            if message.msgid in hidden:
                continue
            if (key >= low if inclusive else key > low) and (high is None or key < high):
                found.append(message)
                if len(found) == n:
                    return found
    return found


def latest(
    conn: sqlite3.Connection, target: str, after: Ref | None, limit: int
) -> list[HistoryRow]:
    low = None
    if after is not None:
        bounds = _bounds(conn, target, after)
        if bounds is None:
            return []
        low = bounds[1]
    return _newest_below(conn, target, _END, low, limit)


def before(conn: sqlite3.Connection, target: str, ref: Ref, limit: int) -> list[HistoryRow]:
    bounds = _bounds(conn, target, ref)
    return [] if bounds is None else _newest_below(conn, target, bounds[0], None, limit)


def after(conn: sqlite3.Connection, target: str, ref: Ref, limit: int) -> list[HistoryRow]:
    bounds = _bounds(conn, target, ref)
    return [] if bounds is None else _oldest_above(conn, target, bounds[1], None, limit)


def around(conn: sqlite3.Connection, target: str, ref: Ref, limit: int) -> list[HistoryRow]:
    bounds = _bounds(conn, target, ref)
    if bounds is None:
        return []
    older = _newest_below(conn, target, bounds[0], None, limit // 2)
    newer = _oldest_above(conn, target, bounds[0], None, limit - len(older), inclusive=True)
    return older + newer


def between(
    conn: sqlite3.Connection, target: str, ref1: Ref, ref2: Ref, limit: int
) -> list[HistoryRow]:
    first, second = _bounds(conn, target, ref1), _bounds(conn, target, ref2)
    if first is None or second is None:
        return []
    if first[0] <= second[0]:
        return _oldest_above(conn, target, first[1], second[0], limit)
    return _newest_below(conn, target, first[0], second[1], limit)


def targets(
    conn: sqlite3.Connection,
    from_ms: int,
    to_ms: int,
    limit: int,
    for_targets: Iterable[str],
    dm_owner: str | None,
) -> list[tuple[str, int]]:
    """One indexed seek per target (its last message in the window), then the order."""
    names = set(for_targets)
    if dm_owner is not None:
        peers = conn.execute("SELECT peer_folded FROM dm_peers WHERE owner_folded = ?", (dm_owner,))
        names.update(schema.dm_target(dm_owner, peer) for (peer,) in peers)
    low, high = min(from_ms, to_ms), max(from_ms, to_ms)
    found: list[tuple[str, int]] = []
    for name in names:
        # the target's latest message, which must itself lie in the window (a target whose
        # latest is later is not listed: the spec's "updated" targets)
        row = conn.execute(
            "SELECT MAX(time_ms) FROM runs WHERE target_folded = ?", (name,)
        ).fetchone()
        if row[0] is not None and low < row[0] < high:
            found.append((name, row[0]))
    found.sort(key=lambda t: (t[1], t[0]))
    if from_ms <= to_ms:
        return found[:limit]
    return found[-limit:] if limit > 0 else []


def _account(row: tuple[Any, ...]) -> AccountRow:
    return AccountRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


def accounts(conn: sqlite3.Connection) -> list[AccountRow]:
    rows = conn.execute(f"SELECT {schema.ACCOUNT_ROW_COLUMNS} FROM accounts ORDER BY name_folded")
    return [_account(row) for row in rows]


def account(conn: sqlite3.Connection, name_folded: str) -> list[AccountRow]:
    rows = conn.execute(
        f"SELECT {schema.ACCOUNT_ROW_COLUMNS} FROM accounts WHERE name_folded = ?",
        (name_folded,),
    )
    return [_account(row) for row in rows]


_QUERIES: dict[str, Any] = {
    "latest": latest,
    "before": before,
    "after": after,
    "around": around,
    "between": between,
    "targets": targets,
    "message": message,
    "accounts": accounts,
    "account": account,
}


def run(conn: sqlite3.Connection, query: Query) -> list[Any]:
    """Answer ``query`` (see the module's docstring) on ``conn``, synchronously."""
    function = _QUERIES.get(query[0])
    if function is None:
        raise ValueError(f"store: unknown query {query[0]!r}")
    return list(function(conn, *query[1:]))


def load_markers(path: str) -> list[tuple[str, str, int]]:
    """Every account's read markers, ``(account_folded, target_folded, time_ms)``, oldest
    first, read synchronously: for start-up, like :func:`load_accounts`."""
    conn = db.connect(path, readonly=True)
    try:
        query = "SELECT account_folded, target_folded, time_ms FROM read_markers ORDER BY time_ms"
        return [(a, t, ms) for a, t, ms in conn.execute(query)]
    finally:
        conn.close()


def load_accounts(path: str) -> list[AccountRow]:
    """Every account, read synchronously: for start-up, before the loop serves anyone."""
    conn = db.connect(path, readonly=True)
    try:
        return accounts(conn)
    finally:
        conn.close()


# -- the thread --------------------------------------------------------------------------------
class Reader:
    """Threads that answer queries on the store file at ``path``, each with its own read-only
    connection; answers come back through :meth:`answers`, announced on :attr:`wakeup`."""

    def __init__(self, path: str, *, threads: int = 1) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[tuple[Query, int] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self.wakeup, self._wake_w = socket.socketpair()
        self.wakeup.setblocking(False)
        self._wake_w.setblocking(False)
        self._threads = [
            threading.Thread(target=self._run, name=f"fastchat-store-reader{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False
        self.pending = 0  # queries asked and not yet taken back by answers()

    def ask(self, query: Query, ticket: int) -> None:
        """Queue ``query``; its :class:`Answer` comes back under ``ticket``. Never blocks."""
        self.pending += 1
        self._jobs.put((query, ticket))

    def answers(self) -> list[Answer]:
        """Every answer ready (after the loop saw :attr:`wakeup` readable), in the order
        they were finished; empties the wake-up socket first, so none is missed."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.wakeup.recv(512):
                pass
        ready: list[Answer] = []
        while True:
            try:
                ready.append(self._answers.get_nowait())
            except queue.Empty:
                self.pending -= len(ready)
                return ready

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads once the queries asked so far are answered. Safe twice."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self.wakeup.close()
        self._wake_w.close()

    def _run(self) -> None:
        # The connection opens as the thread starts, not at its first query: opening it
        # (SQLite's caches, the WAL index, this thread's malloc arena) costs about 0.45 MB
        # once, and paid at the first JOIN's replay it looked like memory per connection
        # in the idle benchmark (bench/FINDINGS.md, issue 14); a failure here is retried
        # at the first query, which then answers with the error.
        conn: sqlite3.Connection | None = None
        try:
            conn = db.connect(self.path, readonly=True)
        except sqlite3.Error as e:
            log.error("store: cannot open %s for reading yet: %s", self.path, e)
        try:
            while (job := self._jobs.get()) is not None:
                query, ticket = job
                try:
                    if conn is None:
                        conn = db.connect(self.path, readonly=True)
                    answer = Answer(ticket, run(conn, query), "")
                except (sqlite3.Error, ValueError, TypeError) as e:
                    log.error("store: query %r failed: %s", query[:1], e)
                    answer = Answer(ticket, [], f"{type(e).__name__}: {e}")
                self._answers.put(answer)
                with contextlib.suppress(OSError):  # a full socketpair is awake already
                    self._wake_w.send(b"\0")
        finally:
            if conn is not None:
                conn.close()
