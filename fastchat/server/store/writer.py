"""The store's one writing connection, in a thread of its own, fed by a queue.

The loop that runs the sequencer hands the :class:`Writer` *write operations*, plain tuples
whose first item names them (:data:`OPS`). Each is a deterministic consequence of a decision
already taken: the writer reads no clock and draws no random number, so what it writes is
what every worker was told. :meth:`Writer.submit` appends to a queue and returns: the loop
never waits on SQLite. The thread takes everything queued (up to ``max_batch`` operations)
into ONE transaction, commits, and takes what came meanwhile: one commit per batch, so the
commits keep pace with any load: at ordinary rates each commit carries the few operations
that came while the last one ran (a millisecond or so); a saturated writer commits every
``max_batch`` (1,000) operations, about every 15 ms (BENCHMARKS.md); an idle one sleeps on its
condition variable.

Errors: a write that fails with :class:`sqlite3.OperationalError` (the file is locked by
another process, the disk is full, an I/O error) crashes nothing and loses no order: the
transaction is rolled back, the writer turns unhealthy (:meth:`Writer.status`: ``healthy``,
``last_error``), logs it once, and tries the same batch again (with whatever was queued
behind it) after a backoff that doubles up to :data:`MAX_BACKOFF`. While unhealthy, if more
than ``max_queued`` operations wait, the oldest *history* operations are dropped and counted
(``dropped``); account operations are never dropped. Any other error (a constraint an
operation breaks, a value of the wrong type) is that operation's: the batch is then written
one operation per transaction, and only the operations that fail are skipped, logged and
counted (``failed``). After :meth:`Writer.close`, nothing submitted is written.

Telling the loop: the loop polls :meth:`Writer.status` (a snapshot under a lock), and may
give ``on_change``, which the writer thread calls whenever ``healthy`` flips: it runs on the
writer's thread, so it must only do something thread-safe, such as writing a byte to the
loop's wake-up socket (as ``runtime/worker.py``'s ``_wake`` does for password checks).

Owns: the writing connection and every statement that changes the file while the server runs.
Must never: decide anything, read the clock for what it writes, or block the thread that
submits (``submit`` takes a lock only long enough to append).
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fastchat.server.store import db, schema

log = logging.getLogger("fastchat.store")

Op = tuple[Any, ...]
"""A write operation: ``(name, *fields)``, one of :data:`OPS`."""

#: Every write operation: its name, how many items the tuple has (the name included), and
#: what it writes. Times are the sequencer's milliseconds; names are folded as IRC folds them.
OPS: dict[str, int] = {
    # (name, name_folded, name, password_hash, email, created_ms, verified): create or replace
    "account_put": 7,
    # (name, name_folded, password_hash)
    "account_password": 3,
    # (name, name_folded, verified): a registration awaiting verification verified (its code
    # is forgotten)
    "account_verified": 3,
    # (name, name_folded, name, password_hash, email, created_ms, verify_code): a registration
    # awaiting verification (draft/account-registration VERIFY): verified 0, and its code
    "account_pending": 7,
    # (name, name_folded): the account goes (its history stays, under its sender's name)
    "account_drop": 2,
    # (name, target_folded, msgid, time_ms, sender, account, kind, tags, text): a message;
    # target_folded is a channel's folded name or schema.dm_target(a, b); a msgid already
    # stored is ignored (a replay writes nothing twice)
    "message": 9,
    # (name, before_ms, keep_per_target): delete the messages older than before_ms, and
    # beyond the newest keep_per_target of each target (0: no count limit)
    "prune": 3,
}

#: The operations that may be dropped when the backlog is too long while unhealthy.
_DROPPABLE = frozenset({"message"})

_SQL = {
    "account_put": f"INSERT OR REPLACE INTO accounts ({schema.ACCOUNT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "account_password": "UPDATE accounts SET password_hash = ? WHERE name_folded = ?",
    "account_verified": "UPDATE accounts SET verified = ?, verify_code = '' WHERE name_folded = ?",
    "account_pending": f"INSERT OR REPLACE INTO accounts ({schema.ACCOUNT_COLUMNS}, verify_code) "
    "VALUES (?, ?, ?, ?, ?, 0, ?)",
    "account_drop": "DELETE FROM accounts WHERE name_folded = ?",
    "message": "INSERT OR IGNORE INTO history "
    "(target_folded, msgid, time_ms, sender, account, kind, tags, text) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}
_DM_PEER = "INSERT OR IGNORE INTO dm_peers (owner_folded, peer_folded) VALUES (?, ?)"
_PRUNE_OLD = "DELETE FROM history WHERE time_ms < ?"
_PRUNE_COUNT = (
    "DELETE FROM history WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
    "(PARTITION BY target_folded ORDER BY time_ms DESC, id DESC) AS n FROM history) "
    "WHERE n > ?)"
)

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


class WriterStatus(NamedTuple):
    """What the loop may show operators about the writer."""

    healthy: bool
    last_error: str  # '' while nothing failed yet
    queued: int  # operations not committed yet
    committed: int  # operations committed, in all
    commits: int  # transactions committed, in all
    dropped: int  # history operations dropped while unhealthy
    failed: int  # operations skipped for an error of their own (a constraint they broke)
    retries: int  # failed attempts at a batch (a locked file, a full disk), in all


class Writer:
    """The writing thread of the store file at ``path`` (made by :func:`db.prepare`).

    Nothing runs until :meth:`start`; :meth:`submit` may be called before (the operations wait).
    """

    def __init__(
        self,
        path: str,
        *,
        max_batch: int = 1000,
        max_queued: int = 200_000,
        on_change: Callable[[WriterStatus], None] | None = None,
    ) -> None:
        self.path = path
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.on_change = on_change
        self._cond = threading.Condition()
        self._queue: collections.deque[Op] = collections.deque()
        self._batch: list[Op] = []  # taken from the queue, not committed yet (writer thread)
        self._thread: threading.Thread | None = None
        self._closing = False
        self._deadline = 0.0
        self._healthy = True
        self._last_error = ""
        self._committed = 0
        self._commits = 0
        self._dropped = 0
        self._failed = 0
        self._retries = 0

    # -- the loop's side -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the writing thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fastchat-store-writer")
            self._thread.daemon = True  # a writer stuck on a dead disk never holds up exit
            self._thread.start()

    def submit(self, op: Op) -> None:
        """Queue one write operation (see :data:`OPS`); never blocks on the database.
        Raises ValueError for a malformed operation (our code's mistake, not the disk's)."""
        if OPS.get(op[0]) != len(op):
            raise ValueError(f"store: malformed write operation {op[:1]!r} of {len(op)} items")
        with self._cond:
            self._queue.append(op)
            self._cond.notify()

    def submit_many(self, ops: Iterable[Op]) -> None:
        """Queue several operations, in order, under one lock (a loop turn's worth)."""
        ops = list(ops)
        for op in ops:
            if OPS.get(op[0]) != len(op):
                raise ValueError(f"store: malformed write operation {op[:1]!r} of {len(op)} items")
        with self._cond:
            self._queue.extend(ops)
            self._cond.notify()

    def status(self) -> WriterStatus:
        """A snapshot, for the loop to poll (thread-safe)."""
        with self._cond:
            return self._status_locked()

    def close(self, timeout: float = 5.0) -> bool:
        """Write everything queued and stop the thread, waiting at most ``timeout`` seconds
        (on SIGTERM: nothing a client saw is lost, unless the disk refuses it that long).
        True if everything was committed. Safe to call twice."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deadline = time.monotonic() + timeout
            self._cond.notify()
        self.start()  # operations submitted before start are written too
        assert self._thread is not None
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        with self._cond:
            return not self._thread.is_alive() and not self._queue and not self._batch

    # -- the writer's thread -------------------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        backoff = FIRST_BACKOFF
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._batch and not self._closing:
                        self._cond.wait()
                    if not self._queue and not self._batch:
                        return  # closing, and all written
                    if self._closing and time.monotonic() >= self._deadline:
                        log.error(
                            "store: closing with %d operations not written: %s",
                            len(self._queue) + len(self._batch),
                            self._last_error,
                        )
                        return
                    room = self.max_batch - len(self._batch)
                    while self._queue and room > 0:
                        self._batch.append(self._queue.popleft())
                        room -= 1
                try:
                    if conn is None:
                        conn = db.connect(self.path)
                    self._write(conn, self._batch)
                except sqlite3.OperationalError as e:
                    self._failing(e)
                    self._back_off(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                backoff = FIRST_BACKOFF
                self._recovered()
        except Exception as e:  # our bug: say so where operators look, rather than die mute
            log.exception("store: the writer stopped")
            with self._cond:
                self._healthy = False
                self._last_error = f"the writer stopped: {type(e).__name__}: {e}"
                status = self._status_locked()
            self._tell(status)
        finally:
            if conn is not None:
                conn.close()

    def _back_off(self, seconds: float) -> None:
        """Wait before trying again: ``seconds``, or until close()'s deadline if sooner; the
        submits meanwhile do not cut it short (a full disk must not be retried per message)."""
        until = time.monotonic() + seconds
        with self._cond:
            while True:
                left = (min(until, self._deadline) if self._closing else until) - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _write(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        """Commit ``batch`` in one transaction and empty it; if an operation breaks a
        constraint, commit the batch one operation per transaction instead, skipping those."""
        try:
            self._transaction(conn, batch)
        except sqlite3.OperationalError:
            raise
        except Exception:  # an operation's own fault (a constraint, a value of the wrong type)
            self._one_by_one(conn, batch)
            return
        with self._cond:
            self._committed += len(batch)
            self._commits += 1
            batch.clear()

    def _one_by_one(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        while batch:
            op = batch[0]
            try:
                self._transaction(conn, [op])
            except sqlite3.OperationalError:
                raise  # retried from this operation on
            except Exception as e:
                log.error("store: skipped write operation %s: %s: %s", op[0], type(e).__name__, e)
                with self._cond:
                    self._failed += 1
                    batch.pop(0)
                continue
            with self._cond:
                self._committed += 1
                self._commits += 1
                batch.pop(0)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # a run of messages goes to executemany: one statement step per row, no Python
            # round trip per row beyond the tuple slice (the hot path: one per PRIVMSG)
            run: list[Op] = []
            for op in batch:
                if op[0] == "message":
                    run.append(op)
                    continue
                if run:
                    self._messages(conn, run)
                    run = []
                self._other(conn, op)
            if run:
                self._messages(conn, run)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as e:  # the rollback SQLite did itself, on some errors
                    log.debug("store: rollback: %s", e)
            raise

    @staticmethod
    def _messages(conn: sqlite3.Connection, run: list[Op]) -> None:
        conn.executemany(_SQL["message"], [op[1:] for op in run])
        peers = []
        for op in run:
            parties = schema.maybe_dm_parties(op[1])
            if parties is not None:
                peers.append(parties)
                peers.append((parties[1], parties[0]))
        if peers:
            conn.executemany(_DM_PEER, peers)

    @staticmethod
    def _other(conn: sqlite3.Connection, op: Op) -> None:
        name = op[0]
        if name == "account_put":
            conn.execute(_SQL[name], (*op[1:6], int(bool(op[6]))))
        elif name == "account_pending":
            conn.execute(_SQL[name], op[1:])
        elif name in ("account_password", "account_verified"):
            value = op[2] if name == "account_password" else int(bool(op[2]))
            conn.execute(_SQL[name], (value, op[1]))
        elif name == "account_drop":
            conn.execute(_SQL[name], (op[1],))
        elif name == "prune":
            conn.execute(_PRUNE_OLD, (op[1],))
            if op[2] > 0:
                conn.execute(_PRUNE_COUNT, (op[2],))

    def _failing(self, error: sqlite3.OperationalError) -> None:
        """A write failed for a reason outside the operations: turn (or stay) unhealthy,
        and, past the backlog's bound, drop the oldest history operations."""
        text = f"{type(error).__name__}: {error}"
        with self._cond:
            flipped = self._healthy
            self._healthy = False
            self._retries += 1
            self._last_error = text
            excess = len(self._queue) + len(self._batch) - self.max_queued
            if excess > 0:
                dropped = self._drop_history(excess)
                self._dropped += dropped
                log.error(
                    "store: backlog over %d: dropped %d history writes", self.max_queued, dropped
                )
            status = self._status_locked() if flipped else None
        if status is not None:
            log.error("store: writing %s failed, retrying: %s", self.path, text)
            self._tell(status)

    def _drop_history(self, excess: int) -> int:
        """Drop up to ``excess`` of the oldest droppable operations (the batch's first, then
        the queue's), keeping the order of the rest. Under the lock."""
        dropped = 0
        kept_batch: list[Op] = []
        for op in self._batch:
            if dropped < excess and op[0] in _DROPPABLE:
                dropped += 1
            else:
                kept_batch.append(op)
        self._batch[:] = kept_batch
        if dropped < excess:
            kept: collections.deque[Op] = collections.deque()
            for op in self._queue:
                if dropped < excess and op[0] in _DROPPABLE:
                    dropped += 1
                else:
                    kept.append(op)
            self._queue = kept
        return dropped

    def _recovered(self) -> None:
        with self._cond:
            if self._healthy:
                return
            self._healthy = True
            status = self._status_locked()
        log.warning("store: writing %s works again", self.path)
        self._tell(status)

    def _status_locked(self) -> WriterStatus:
        return WriterStatus(
            self._healthy,
            self._last_error,
            len(self._queue) + len(self._batch),
            self._committed,
            self._commits,
            self._dropped,
            self._failed,
            self._retries,
        )

    def _tell(self, status: WriterStatus) -> None:
        if self.on_change is not None:
            try:
                self.on_change(status)
            except Exception:
                log.exception("store: the writer's on_change callback failed")
