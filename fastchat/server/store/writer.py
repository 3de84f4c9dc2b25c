"""The store's one writing connection, in a thread of its own, fed by a queue.

The loop that runs the sequencer hands the :class:`Writer` *write operations*, plain tuples
whose first item names them (:data:`OPS`). Each is a deterministic consequence of a decision
already taken: the writer reads no clock and draws no random number, so what it writes is
what every worker was told. :meth:`Writer.submit` appends to a queue and returns: the loop
never waits on SQLite. The thread takes everything queued (up to ``max_batch`` runs)
into ONE transaction, commits, and takes what came meanwhile: one commit per batch, so the
commits keep pace with any load: at ordinary rates each commit carries the few operations
that came while the last one ran (a millisecond or so); a saturated writer commits every
``max_batch`` (1,000) runs, about every 15 ms (BENCHMARKS.md); an idle one sleeps on its
condition variable.

Errors: a write that fails with :class:`sqlite3.OperationalError` (the file is locked by
another process, the disk is full, an I/O error) crashes nothing and loses no order: the
transaction is rolled back, the writer turns unhealthy (:meth:`Writer.status`: ``healthy``,
``last_error``), logs it once, and tries the same batch again (with whatever was queued
behind it) after a backoff that doubles up to :data:`MAX_BACKOFF`. While unhealthy, if more
than ``max_queued`` runs wait, the oldest *history* operations are dropped and counted
(``dropped``); account operations are never dropped. Bounds count runs, not operations
(:func:`weight`): a hub's "message_segment" holds many runs, one per message it forwarded
whole, and counted as one it would have let the backlog, and a batch's transaction, grow by
the segment's length. Any other error (a constraint an
operation breaks, a value of the wrong type) is that operation's: the batch is then written
one operation per transaction, and only the operations that fail are skipped, logged and
counted (``failed``). After :meth:`Writer.close`, nothing submitted is written.

Telling the loop: the loop polls :meth:`Writer.status` (a snapshot under a lock), and may
give ``on_change``, which the writer thread calls whenever ``healthy`` flips: it runs on the
writer's thread, so it must only do something thread-safe, such as writing a byte to the
loop's wake-up socket (as ``runtime/worker.py``'s ``_wake`` does for password checks).

Waiting for the writes (the history barrier): every operation submitted is eventually
*settled*: committed, skipped for its own error, or dropped. :attr:`Writer.submitted` counts
the operations submitted so far; :meth:`Writer.wake_when_settled` asks for ``on_settled`` (on
the writer's thread, like ``on_change``) once that many are settled, so the loop can hold a
query until everything decided before it is in the file (``runtime/storage.py``).

Owns: the writing connection and every statement that changes the file while the server runs.
Must never: decide anything, read the clock for what it writes, or block the thread that
submits (``submit`` takes a lock only long enough to append).
"""

from __future__ import annotations

import collections
import logging
import marshal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fastchat.server.network.markers import MAX_MARKERS
from fastchat.server.network.records import SEG_FIELDS
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
    # (name, name_folded, certfps): the account's TLS client certificate fingerprints, all
    # of them, separated by spaces (NickServ CERT ADD/DEL)
    "account_certfps": 3,
    # (name, account_folded, target_folded, time_ms): an account's read marker of a target
    # (IRCv3 draft/read-marker) moves forward to time_ms (never back); the account keeps
    # the markers.MAX_MARKERS latest, as every replica does
    "marker_put": 4,
    # (name, target_folded, msgid, time_ms): a message withdrawn (IRCv3 message-redaction):
    # the selectors leave it out from now on; time_ms is the message's own
    "redact": 4,
    # (name, target_folded, time_ms, sender_uid, first, account, tags, lines): a run of
    # messages as the sequencer delivered it (a D_CHAN or D_USER record's fields, bytes as
    # on the wire; target_folded is a channel's folded name or a schema.dm_target), written
    # as one row of ``runs`` (store/schema.py): the writer does O(1) per run, whatever its
    # length; a run already stored is ignored (a replay writes nothing twice)
    "message_run": 8,
    # the same, for a run a new hub decided again (the old one was killed: the workers
    # resent what not every worker had received): written unless the old hub's writer
    # wrote it (the same sender_uid, first and target, in the last RERUN_WINDOW_MS), so the
    # history has it once, under the msgid most members saw
    "message_rerun": 8,
    # (name, time_ms, payload): a hub's segment of channel messages approved whole (network/
    # records.py's RChanSeg: the marshal of a flat list, per message its channel, sender,
    # lines, first, notice and account), each written as its "message_run" would be
    "message_segment": 3,
    # (name, before_ms, keep_per_target): delete the runs older than before_ms, and those
    # wholly beyond the newest keep_per_target messages of each target (0: no count limit)
    "prune": 3,
}

#: The operations that may be dropped when the backlog is too long while unhealthy.
_DROPPABLE = frozenset({"message_run", "message_rerun", "message_segment"})

#: How far back a run decided again is looked for (it was decided by the hub before, which
#: lived until moments before: a worker resends only what not every worker had received).
RERUN_WINDOW_MS = 600_000

#: An account's read markers beyond the latest MAX_MARKERS (by time, then target, as the
#: replicas keep them: network/markers.py) go; only when it has more than that
_MARKERS_TRIM = (
    "DELETE FROM read_markers WHERE account_folded = ?1 "
    "AND (SELECT COUNT(*) FROM read_markers WHERE account_folded = ?1) > ?2 "
    "AND target_folded NOT IN (SELECT target_folded FROM read_markers "
    "WHERE account_folded = ?1 ORDER BY time_ms DESC, target_folded DESC LIMIT ?2)"
)
_MARKERS_DROP = "DELETE FROM read_markers WHERE account_folded = ?"

_SQL = {
    "account_put": f"INSERT OR REPLACE INTO accounts ({schema.ACCOUNT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "account_password": "UPDATE accounts SET password_hash = ? WHERE name_folded = ?",
    "account_verified": "UPDATE accounts SET verified = ?, verify_code = '' WHERE name_folded = ?",
    "account_pending": f"INSERT OR REPLACE INTO accounts ({schema.ACCOUNT_COLUMNS}, verify_code) "
    "VALUES (?, ?, ?, ?, ?, 0, ?)",
    "account_drop": "DELETE FROM accounts WHERE name_folded = ?",
    "account_certfps": "UPDATE accounts SET certfps = ? WHERE name_folded = ?",
    "redact": "INSERT OR IGNORE INTO redactions (target_folded, msgid, time_ms) VALUES (?, ?, ?)",
    "marker_put": "INSERT INTO read_markers (account_folded, target_folded, time_ms) "
    "VALUES (?, ?, ?) ON CONFLICT (account_folded, target_folded) "
    "DO UPDATE SET time_ms = MAX(time_ms, excluded.time_ms)",
}
_RUN = (
    "INSERT OR IGNORE INTO runs "
    "(target_folded, time_ms, sender_uid, first, count, account, tags, lines) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_WRITTEN = (
    "SELECT 1 FROM runs WHERE sender_uid = ? AND first = ? AND target_folded = ? "
    "AND time_ms >= ? LIMIT 1"
)
_MORE_ROWS = ", (?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_INSERT = 100  # 800 parameters: far below SQLite's limit, few distinct statements
_DM_PEER = "INSERT OR IGNORE INTO dm_peers (owner_folded, peer_folded) VALUES (?, ?)"
_PRUNE_OLD = "DELETE FROM runs WHERE time_ms < ?"
_PRUNE_REDACTIONS = "DELETE FROM redactions WHERE time_ms < ?"
# a run goes when the messages newer than all of its own are keep_per_target or more
_PRUNE_COUNT = (
    "DELETE FROM runs WHERE id IN (SELECT id FROM (SELECT id, SUM(count) OVER "
    "(PARTITION BY target_folded ORDER BY time_ms DESC, id DESC) - count AS newer FROM runs) "
    "WHERE newer >= ?)"
)

#: Seconds between checkpoints of the WAL into the database file (see Writer._checkpoints)
CHECKPOINT_EVERY = 1.0

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


def run_row(op: Op) -> tuple[Any, ...]:
    """The ``runs`` row of a "message_run" operation (see :data:`OPS`). Its lines are
    counted by their LF: no line holds one but at its end (the line buffer splits on it),
    and a one-byte count takes half the time of one of CR LF (on the writer's process, per
    run: bench/FINDINGS.md, issue 14 session 7)."""
    _, target, time_ms, sender, first, account, tags, lines = op
    return (
        target if isinstance(target, str) else target.decode("utf-8", "replace"),
        time_ms, sender, first, lines.count(b"\n") or 1,
        account.decode("utf-8", "replace"), tags.decode("utf-8", "replace"), lines,
    )  # fmt: skip


def weight(op: Op) -> int:
    """The runs ``op`` writes, what the backlog's bound and a batch's size count: a
    "message_segment" one per message of its payload (read from the marshalled list's header,
    its type byte then its length, without loading it), any other operation one."""
    if op[0] != "message_segment":
        return 1
    payload: bytes = op[2]
    if payload[:1] in _MARSHAL_LIST:
        return max(1, int.from_bytes(payload[1:5], "little") // SEG_FIELDS)
    return max(1, len(marshal.loads(payload)) // SEG_FIELDS)  # (another marshal version)


#: marshal's type byte of a list (TYPE_LIST, and with FLAG_REF set), then a 4-byte length
_MARSHAL_LIST = (b"[", b"\xdb")


def segment_rows(op: Op) -> list[tuple[Any, ...]]:
    """The ``runs`` rows of a "message_segment" operation: one per message, as its
    "message_run" (channel, time, sender, first, account, no tags, lines) would give."""
    _, time_ms, payload = op
    items = marshal.loads(payload)
    return [
        run_row(("message_run", items[i], time_ms, items[i + 1], items[i + 3], items[i + 5],
                 b"", items[i + 2]))
        for i in range(0, len(items), SEG_FIELDS)
    ]  # fmt: skip


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
    settled: int = 0  # operations committed, skipped or dropped, in all


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
        on_settled: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.on_change = on_change
        self.on_settled = on_settled
        self.submitted = 0  # operations submitted, in all (the submitting thread's count)
        self._settled = 0  # operations committed, skipped or dropped, in all
        self._wake_at = 0  # call on_settled once _settled reaches this (0: nobody waits)
        self._stopping = threading.Event()  # the checkpointing thread's signal to stop
        # (monotonic time, submitted count) of each submit not settled yet, and how long the
        # last batches took from their oldest submit to their commit (ms; see delays())
        self._stamps: collections.deque[tuple[float, int]] = collections.deque()
        self._delays: collections.deque[float] = collections.deque(maxlen=100_000)
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
        """Start the writing thread (once), and the checkpointing one."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fastchat-store-writer")
            self._thread.daemon = True  # a writer stuck on a dead disk never holds up exit
            self._thread.start()
            checkpointer = threading.Thread(target=self._checkpoints, name="fastchat-store-wal")
            checkpointer.daemon = True
            checkpointer.start()

    def submit(self, op: Op) -> None:
        """Queue one write operation (see :data:`OPS`); never blocks on the database.
        Raises ValueError for a malformed operation (our code's mistake, not the disk's)."""
        if OPS.get(op[0]) != len(op):
            raise ValueError(f"store: malformed write operation {op[:1]!r} of {len(op)} items")
        with self._cond:
            self._queue.append(op)
            self.submitted += 1
            self._stamps.append((time.monotonic(), self.submitted))
            self._cond.notify()

    def submit_many(self, ops: Iterable[Op]) -> None:
        """Queue several operations, in order, under one lock (a loop turn's worth)."""
        ops = list(ops)
        for op in ops:
            if OPS.get(op[0]) != len(op):
                raise ValueError(f"store: malformed write operation {op[:1]!r} of {len(op)} items")
        with self._cond:
            self._queue.extend(ops)
            self.submitted += len(ops)
            self._stamps.append((time.monotonic(), self.submitted))
            self._cond.notify()

    def delays(self) -> list[float]:
        """How long each of the last batches (up to 100,000) waited, from the submit of its
        oldest operation to its commit, in milliseconds: what a SIGKILL could lose at most
        (see README, "Durability")."""
        with self._cond:
            return list(self._delays)

    def wake_when_settled(self, count: int) -> bool:
        """True if ``count`` operations are settled already; else False, and ``on_settled``
        will be called (on the writer's thread) once they are. One request at a time: a
        later call replaces an earlier one (the loop asks for the oldest it waits for)."""
        with self._cond:
            if self._settled >= count:
                return True
            self._wake_at = count
            return False

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
        self._stopping.set()
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
                    room = self.max_batch - sum(map(weight, self._batch))
                    while self._queue and room > 0:
                        op = self._queue.popleft()
                        self._batch.append(op)
                        room -= weight(op)
                try:
                    if conn is None:
                        conn = db.connect(self.path)
                        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoints
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

    def _checkpoints(self) -> None:
        """Copy the WAL into the database file every CHECKPOINT_EVERY seconds, on a
        connection of its own: the writer's connection never checkpoints (its commits would
        wait for the copy and its fsync: 27 ms at p99 on this machine, against 1.4 without;
        BENCHMARKS.md), and PASSIVE lets commits go on meanwhile. Stops with the writer."""
        conn: sqlite3.Connection | None = None
        try:
            while True:
                if self._stopping.wait(CHECKPOINT_EVERY):
                    return
                try:
                    if conn is None:
                        conn = db.connect(self.path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as e:  # the writer reports what is wrong with the file
                    log.debug("store: checkpoint: %s", e)
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
            wake = self._settle(len(batch))
            batch.clear()
        self._woken(wake)

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
                    wake = self._settle(1)
                    batch.pop(0)
                self._woken(wake)
                continue
            with self._cond:
                self._committed += 1
                self._commits += 1
                wake = self._settle(1)
                batch.pop(0)
            self._woken(wake)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # consecutive runs of messages go to one executemany (the hot path: nearly
            # every operation is one)
            runs: list[tuple[Any, ...]] = []
            for op in batch:
                if op[0] == "message_run":
                    runs.append(run_row(op))
                    continue
                if op[0] == "message_segment":
                    runs += segment_rows(op)
                    continue
                if runs:
                    self._runs(conn, runs)
                    runs = []
                if op[0] == "message_rerun":
                    row = run_row(op)
                    since = row[1] - RERUN_WINDOW_MS
                    if conn.execute(_WRITTEN, (row[2], row[3], row[0], since)).fetchone() is None:
                        self._runs(conn, [row])
                    continue
                self._other(conn, op)
            if runs:
                self._runs(conn, runs)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as e:  # the rollback SQLite did itself, on some errors
                    log.debug("store: rollback: %s", e)
            raise

    @staticmethod
    def _runs(conn: sqlite3.Connection, runs: list[tuple[Any, ...]]) -> None:
        # One statement of up to _ROWS_PER_INSERT rows: one step, not one per row
        for i in range(0, len(runs), _ROWS_PER_INSERT):
            chunk = runs[i : i + _ROWS_PER_INSERT]
            conn.execute(_RUN + _MORE_ROWS * (len(chunk) - 1), [v for row in chunk for v in row])
        peers = []
        for run in runs:
            parties = schema.maybe_dm_parties(run[0])
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
        elif name in ("account_password", "account_verified", "account_certfps"):
            value = int(bool(op[2])) if name == "account_verified" else op[2]
            conn.execute(_SQL[name], (value, op[1]))
        elif name == "account_drop":
            conn.execute(_SQL[name], (op[1],))
            conn.execute(_MARKERS_DROP, (op[1],))
        elif name == "redact":
            conn.execute(_SQL[name], op[1:])
        elif name == "marker_put":
            conn.execute(_SQL[name], op[1:])
            conn.execute(_MARKERS_TRIM, (op[1], MAX_MARKERS))
        elif name == "prune":
            conn.execute(_PRUNE_OLD, (op[1],))
            conn.execute(_PRUNE_REDACTIONS, (op[1],))
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
            # in runs (weight): an O(backlog) sum, once per failed attempt (>= 50 ms apart)
            excess = sum(map(weight, self._queue)) + sum(map(weight, self._batch))
            excess -= self.max_queued
            wake = False
            if excess > 0:
                dropped = self._drop_history(excess)
                self._dropped += dropped
                wake = self._settle(dropped)
                log.error(
                    "store: backlog over %d: dropped %d history writes", self.max_queued, dropped
                )
            status = self._status_locked() if flipped else None
        self._woken(wake)
        if status is not None:
            log.error("store: writing %s failed, retrying: %s", self.path, text)
            self._tell(status)

    def _drop_history(self, excess: int) -> int:
        """Drop the oldest droppable operations (the batch's first, then the queue's) until
        they held ``excess`` runs or more, keeping the order of the rest; returns how many
        operations went. Under the lock."""
        dropped = runs = 0
        kept_batch: list[Op] = []
        for op in self._batch:
            if runs < excess and op[0] in _DROPPABLE:
                dropped += 1
                runs += weight(op)
            else:
                kept_batch.append(op)
        self._batch[:] = kept_batch
        if runs < excess:
            kept: collections.deque[Op] = collections.deque()
            for op in self._queue:
                if runs < excess and op[0] in _DROPPABLE:
                    dropped += 1
                    runs += weight(op)
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

    def _settle(self, count: int) -> bool:
        """``count`` more operations are settled (under the lock): True if someone waits
        for no more than that (see :meth:`wake_when_settled`)."""
        self._settled += count
        stamps = self._stamps
        if stamps and stamps[0][1] <= self._settled:
            oldest = stamps[0][0]
            while stamps and stamps[0][1] <= self._settled:
                stamps.popleft()
            self._delays.append((time.monotonic() - oldest) * 1000)
        if self._wake_at and self._settled >= self._wake_at:
            self._wake_at = 0
            return True
        return False

    def _woken(self, wake: bool) -> None:
        if wake and self.on_settled is not None:
            try:
                self.on_settled()
            except Exception:
                log.exception("store: the writer's on_settled callback failed")

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
            self._settled,
        )

    def _tell(self, status: WriterStatus) -> None:
        if self.on_change is not None:
            try:
                self.on_change(status)
            except Exception:
                log.exception("store: the writer's on_change callback failed")
