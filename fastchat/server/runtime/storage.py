"""The store as the sequencer's process uses it: accounts and channel history kept across
restarts, the accounts awaiting email verification with their code; a dropped account
(NickServ DROP, an expired registration) is deleted.

Owns: opening the store file in ``data_dir`` (the supervisor prepared it: made the folder,
migrated the schema), loading what the network starts from (every account, as E_ACCOUNT
events applied before anything is decided), and turning the sequencer's decisions worth
keeping into the store's write operations, handed once per loop turn to its writing
process (``runtime/writerproc.py``: a process of its own, so SQLite never waits for the
loop's GIL nor the loop for SQLite).
Must never: decide anything (every write is a consequence of an event the sequencer already
decided: no clock, no random choice here), or write on the loop's thread.

History: every channel message the sequencer delivers (a D_CHAN record: a run of one
sender's PRIVMSG/NOTICE lines, or one) is handed to the writer as it is, with the sender's
account: :meth:`Storage.channel` does O(1) work on the loop, and the writing process writes
the run as one row (``store/schema.py``). It also notes each channel's last kept run
(:attr:`Storage.kept`), which the sequencer reads when it decides a JOIN: the joiner's
replay of the history ends there. TAGMSG and STATUSMSG (``PRIVMSG
@#chan``, seen by some members only) are not kept. A private message (D_USER, not its echo)
is kept when one of its parties is logged in, under :func:`schema.dm_target` of the two
parties (``commands/history.py``'s ``dm_party``: an account, or a nick of no account).

The history barrier: a query of the history (CHATHISTORY) must see every message decided
before it, though the writer commits a few milliseconds later. :meth:`Storage.when_stored`
holds a continuation until every operation submitted so far is settled (written, or given
up on), and runs it then; at once when nothing waits to be written, when no history is kept,
or while the writer is failing (the history is unavailable: waiting would only stall the
client). The writing process reports on the socket the loop watches (:meth:`Storage.watch`)
once the count asked for is settled; :meth:`Storage.on_wakeup` runs what waited. The hub
holds the ``D_STORED`` of an ``R_HISTSYNC`` this way; at one worker, the worker does.

Health (a full disk, a locked file, an I/O error): the writer crashes nothing, keeps what
it was given and retries (``store/writer.py``). This side tells the network: at start, at
every flip of the writer's health (its process reports on the socket the loop watches), and at
most once a second while its counts move, it hands :attr:`Storage.announce` a
:class:`StoreReport`; the loop turns it into an E_STORE through the sequencer
(``Sequencer.store_status``), so every worker knows whether the history can be read
(CHATHISTORY answers FAIL meanwhile) and what STATS S shows. A flip's report carries the
server notice every operator gets: one per flip, whatever the number of retries between.

Only the process that runs the sequencer keeps the store, as with the K-line file: the hub
at several workers, the one worker at ``--workers 1``. Workers learn the accounts from the
hub's snapshot.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import marshal
import selectors
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import repeat
from typing import Any, NamedTuple

from fastchat.irc.casemap import fold
from fastchat.server.caps import message_tags
from fastchat.server.commands.history import user_party
from fastchat.server.network.records import (
    D_CHAN,
    D_USER,
    E_ACCOUNT,
    E_ACCOUNTCERTS,
    E_ACCOUNTDROP,
    E_ACCOUNTPASSWORD,
    E_ACCOUNTVERIFY,
    E_MARKREAD,
    E_REDACT,
    SEG_FIELDS,
    EAccount,
    EAccountCerts,
    EAccountDrop,
    EAccountPassword,
    EAccountVerify,
    EMarkread,
    ERedact,
    Record,
    make,
)
from fastchat.server.network.state import State, User
from fastchat.server.runtime.writerproc import WriterProcess
from fastchat.server.store import db, reader, schema
from fastchat.server.store.writer import Op, WriterStatus

log = logging.getLogger("fastchat.store")

PRUNE_EVERY_MS = 3_600_000
MAX_QUEUED = 200_000  # runs of messages waiting while the writer fails (store/writer.py)
#: Storage.flush hands the writer what waits once this many operations do...
FLUSH_OPS = 256
#: ... or once the oldest has waited this long (seconds): what a SIGKILL can lose, at most
FLUSH_AFTER = 0.005
#: How often, at most, the writer's counts are reported when they moved (STATS S); a flip of
#: its health is reported at once.
REPORT_EVERY_MS = 1_000

#: The events whose consequences are stored
STORED = frozenset(
    {
        E_ACCOUNT,
        E_ACCOUNTDROP,
        E_ACCOUNTVERIFY,
        E_ACCOUNTCERTS,
        E_ACCOUNTPASSWORD,
        E_MARKREAD,
        E_REDACT,
    }
)


class StoreReport(NamedTuple):
    """What the network is told of the store's writer (the fields of an E_STORE but its
    time, which the sequencer stamps)."""

    healthy: bool
    error: bytes  # the last failure's reason (b"": none yet)
    queued: int
    committed: int
    dropped: int
    notice: bytes  # for every operator, on a flip; b"" otherwise


def _reported(status: WriterStatus) -> tuple[object, ...]:
    """What of the writer's status a report carries (not its commits, failures, retries)."""
    return status.healthy, status.last_error, status.queued, status.committed, status.dropped


def _no_one(report: StoreReport) -> None:
    """Where reports go until the loop says (a store nobody is told about)."""


def reason(status: WriterStatus) -> str:
    """The last failure's reason as an operator reads it: SQLite's words, without the
    exception's name (``OperationalError: database is locked`` -> ``database is locked``)."""
    return status.last_error.removeprefix("OperationalError: ")


def health_notice(status: WriterStatus, dropped_meanwhile: int) -> str:
    """The server notice of a flip of the writer's health (``dropped_meanwhile``: the history
    writes dropped since it began failing).

    >>> failing = WriterStatus(False, "OperationalError: database is locked", 3, 9, 9, 0, 0, 1)
    >>> health_notice(failing, 0)
    'store: writing history failed: database is locked; retrying; 3 writes queued'
    >>> health_notice(failing._replace(healthy=True, queued=0), 2)
    'store: writing works again; 2 history writes were dropped while it failed'
    """
    if status.healthy:
        return (
            f"store: writing works again; {dropped_meanwhile} history writes were dropped "
            "while it failed"
        )
    # the writer's thread died of our bug (it says so in last_error): nothing retries
    retrying = "" if status.last_error.startswith("the writer stopped") else "retrying; "
    return (
        f"store: writing history failed: {reason(status)}; {retrying}{status.queued} writes queued"
    )


class Kept(Mapping[bytes, Record]):
    """Each channel's last message kept (its D_CHAN, by folded name), in the order handed
    over. A message of a segment (D_CHANSEG) is noted as (the segment, where it starts in
    its payload's list): one entry per channel of the segment, set in C; the D_CHAN is made
    only when read (a JOIN: EJoin.kept). Holds a segment's payload as long as it has some
    channel's last message: at most one segment per channel."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # a D_CHAN record, or (a D_CHANSEG record, the start of the message in its items)
        self._last: dict[bytes, Record] = {}

    def note(self, record: Record) -> None:
        """A D_CHAN kept: the last of its channel."""
        self._last[record[1]] = record

    def later(self, record: Record, last: dict[bytes, int]) -> None:
        """A D_CHANSEG kept: ``last``, each of its channels -> where its last message starts
        in the payload's list (RChanSeg.last)."""
        self._last.update(zip(last, zip(repeat(record), last.values()), strict=False))

    def __getitem__(self, key: bytes) -> Record:
        found = self._last[key]
        if len(found) != 2:
            return found
        seg, i = found
        items = marshal.loads(seg[1])
        record = (D_CHAN, key, items[i + 1], items[i + 2], items[i + 3], b"", 0, seg[2])
        self._last[key] = record  # (the payload may go)
        return record

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)


class Storage:
    """The store of one sequencer process (``data_dir`` None: nothing is kept)."""

    def __init__(
        self, data_dir: str | None, history: bool = True, days: int = 0, limit: int = 0
    ) -> None:
        self.path = db.path_in(data_dir) if data_dir else None
        self.writer: WriterProcess | None = None
        self.history = history
        self._users: dict[int, User] = {}  # the sequencer's state's (set by load)
        # The operations decided this loop turn, handed to the writer together by flush():
        # one lock and one wake-up of its thread per turn, not per message
        self._ops: list[Op] = []
        self._pending_since: float | None = None  # when flush() first saw _ops waiting
        # _ops.append, once the writer runs and history is kept
        self._submit: Callable[[Op], None] = self._nowhere
        self.days = days  # retention: history_days, history_limit (0: none)
        self.limit = limit
        self._prune_at = 0  # Unix ms: the next pruning (maybe_prune)
        self._run_op = "message_run"  # "message_rerun" while a new hub replays (replaying)
        # the writer's bound on operations waiting while it fails (store/writer.py)
        self.max_queued = MAX_QUEUED
        # the history barrier: (operations submitted then, what runs once they are settled)
        self._held: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()
        # the loop's selector, what it dispatches on, and the events it watches (see watch)
        self._sel: selectors.BaseSelector | None = None
        self._data: Any = None
        self._events = 0
        # health: the loop's way to tell the network (set before load()), what it was last
        # told, the writer's ``dropped`` when it began failing, and the next report of counts
        self.announce: Callable[[StoreReport], None] = _no_one
        self._told: WriterStatus | None = None
        self._dropped_at_failure = 0
        self._report_at = 0
        # Each channel's last message kept (its D_CHAN, by folded name), in the order they
        # were handed over, which is the sequencer's: its JOINs read it (Sequencer.kept: the
        # end of the joiner's replay, exactly). O(1) per run; the msgid is made only then.
        self.kept = Kept()

    def maybe_prune(self, now_ms: int) -> None:
        """At most hourly, and at the first call: delete the history beyond its retention
        (``history_days``, ``history_limit``), on the writer's thread. ``now_ms`` is the
        shell's clock: what pruning keeps is no decision any worker renders."""
        if now_ms < self._prune_at or not (self.days or self.limit):
            return
        self._prune_at = now_ms + PRUNE_EVERY_MS
        before = now_ms - self.days * 86_400_000 if self.days else 0
        self._submit(("prune", before, self.limit))

    @staticmethod
    def _nowhere(op: Op) -> None:
        pass

    def load(self, state: State) -> None:
        """Before anything is decided: every stored account, into ``state``; then start the
        writing process (forked from this one before it starts any thread)."""
        if self.path is None:
            return
        rows = reader.load_accounts(self.path)
        for row in rows:
            # not verified: a registration awaiting its VERIFY, with the code that was mailed
            # (the sequencer forgets it if it expired meanwhile: it decides, not the loader)
            code = b"" if row.verified else row.verify_code.encode()
            created = make(
                EAccount, row.name.encode(), row.password_hash.encode(), row.email.encode(),
                code, row.created_ms,
            )  # fmt: skip
            state.apply(created)
            if row.certfps:
                certfps = tuple(row.certfps.encode().split())
                state.apply(make(EAccountCerts, row.name.encode(), certfps, row.created_ms))
        markers = reader.load_markers(self.path)
        for account, target, ms in markers:
            state.apply(make(EMarkread, account.encode(), 0, target.encode(), ms, ms))
        log.info(
            "store %s: %d accounts, %d awaiting verification, %d read markers",
            self.path,
            len(state.accounts),
            len(state.pending),
            len(markers),
        )
        self.writer = WriterProcess(self.path, self.max_queued)
        self.writer.start()
        self._users = state.users
        if self.history:
            self._submit = self._ops.append
        self._tell(self.writer.status())  # healthy, nothing written yet: STATS S has it

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        """While a new hub decides again what the workers resent (``runtime/hub.py``'s
        ``_replay``): the old hub may have written some of those runs already, so the writer
        writes each one only if it has not (``store/writer.py``'s "message_rerun")."""
        self._run_op = "message_rerun"
        try:
            yield
        finally:
            self._run_op = "message_run"

    def flush(self, force: bool = False) -> None:
        """Hand the writer what the loop decided (the loops call it once a turn): once
        :data:`FLUSH_OPS` operations wait, or the oldest has waited :data:`FLUSH_AFTER`
        seconds, or ``force`` (the history barrier, a stop). At a low rate every message was
        a frame, a wake-up of the writing process and a transaction of its own, about 300 µs
        of CPU each, which on a small machine delayed the relay itself (BENCHMARKS.md,
        "History"); a few milliseconds' wait makes them one."""
        if not self._ops:
            return
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        if force or len(self._ops) >= FLUSH_OPS or now - self._pending_since >= FLUSH_AFTER:
            assert self.writer is not None
            self.writer.submit_many(self._ops)
            self._ops.clear()
            self._pending_since = None
            self._interest()

    def flush_in(self, longest: float) -> float:
        """How long the loop may sleep before :meth:`flush` is due: ``longest`` when nothing
        waits to be handed over."""
        if self._pending_since is None:
            return longest
        return max(0.0, min(longest, self._pending_since + FLUSH_AFTER - time.monotonic()))

    # -- the loop's watch on the writing process -----------------------------------------------
    def watch(self, sel: selectors.BaseSelector, data: Any) -> None:
        """Have the loop's selector watch the writing process's socket (readable: it
        reports; writable: it takes the frames that wait), calling :meth:`on_wakeup`
        through ``data`` (whatever the loop's dispatch expects). Nothing without a store."""
        if self.writer is None or self.writer.sock is None:
            return
        self._sel, self._data = sel, data
        sel.register(self.writer.sock, selectors.EVENT_READ, data)
        self._events = selectors.EVENT_READ

    def _interest(self) -> None:
        writer, sel = self.writer, self._sel
        if writer is None or sel is None or writer.sock is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writer.wants_write else 0)
        if events != self._events:
            sel.modify(writer.sock, events, self._data)
            self._events = events

    # -- health ----------------------------------------------------------------------------------
    def check_health(self) -> None:
        """Tell the network (:attr:`announce`) if the writer's health flipped since it was
        last told: at once, one report per flip (a flip and back between two looks is no
        news: the writer logged both)."""
        writer = self.writer
        if writer is None:
            return
        status = writer.status()
        if self._told is None or status.healthy != self._told.healthy:
            self._tell(status)

    @property
    def failing(self) -> bool:
        """Was the network last told that writing fails?"""
        return self._told is not None and not self._told.healthy

    def maybe_report(self, now_ms: int) -> None:
        """At most once a second (``now_ms``: the shell's clock): tell the network the
        writer's state if any of it moved since it was last told (STATS S); a flip found
        here is told as in :meth:`check_health`."""
        writer = self.writer
        if writer is None or now_ms < self._report_at:
            return
        self._report_at = now_ms + REPORT_EVERY_MS
        status = writer.status()
        if self._told is None or _reported(status) != _reported(self._told):
            self._tell(status)

    def _tell(self, status: WriterStatus) -> None:
        told = self._told
        was_healthy = told.healthy if told is not None else True
        self._told = status
        notice = ""
        if status.healthy != was_healthy:
            if not status.healthy:  # the writer drops nothing while healthy: count from here
                self._dropped_at_failure = told.dropped if told is not None else 0
            notice = health_notice(status, status.dropped - self._dropped_at_failure)
            (log.warning if status.healthy else log.error)("%s (operators told)", notice)
        self.announce(
            StoreReport(
                status.healthy,
                reason(status).encode(errors="replace"),
                status.queued,
                status.committed,
                status.dropped,
                notice.encode(),
            )
        )

    # -- the history barrier ---------------------------------------------------------------------
    def when_stored(self, then: Callable[[], None]) -> None:
        """Run ``then`` once everything submitted to the writer so far is settled: at once
        if it is (or nothing is kept, or the writer is failing), else from :meth:`on_wakeup`.
        A flip of the writer's health not told yet is told first, so that the query ``then``
        makes sees it (CHATHISTORY's FAIL while writing fails)."""
        writer = self.writer
        if writer is None:
            then()
            return
        self.check_health()
        if self.failing:
            then()
            return
        self.flush(force=True)
        need = writer.submitted
        if self._held:
            self._held.append((need, then))  # after the earlier ones: their order is kept
            return
        if writer.wake_when_settled(need):
            then()
            return
        self._held.append((need, then))

    def on_wakeup(self, mask: int = 0) -> None:
        """The loop's handler of the writing process's socket (see :meth:`watch`): it takes
        the frames that wait, or reports that it settled what someone waited for, or that its
        health changed, or it died (another is started). Tells the network of a flip, runs
        every continuation whose writes are settled (all of them while the writer fails), and
        asks to be woken for the next."""
        writer = self.writer
        assert writer is not None and writer.sock is not None
        if mask & selectors.EVENT_WRITE:
            writer.on_writable()
        if mask & selectors.EVENT_READ or not mask:
            writer.on_readable()
        if writer.died:
            if self._sel is not None:
                self._sel.unregister(writer.sock)
            writer.restart()
            if self._sel is not None:
                self._sel.register(writer.sock, selectors.EVENT_READ, self._data)
                self._events = selectors.EVENT_READ
        self.check_health()
        held, failing = self._held, self.failing
        while held and (failing or writer.wake_when_settled(held[0][0])):
            held.popleft()[1]()
        self._interest()

    def channel(self, record: Record) -> None:
        """A D_CHAN the sequencer decided (hot: once per run of messages; see the module's
        docstring). TAGMSG and STATUSMSG (``flags``) are not kept."""
        if record[6] or not self.history:
            return
        self.kept.note(record)
        user = self._users.get(record[2])
        account = user.account if user is not None and user.account else b""
        # (DChan: kind, channel, sender, line, first, tags, flags, time)
        self._submit(
            (self._run_op, record[1], record[7], record[2], record[4], account, record[5],
             record[3])
        )  # fmt: skip

    def segment(self, record: Record, last: dict[bytes, int]) -> None:
        """A D_CHANSEG the sequencer forwarded whole (hot: once per segment): one operation
        for the writer, which writes each message as its run (store/writer.py), and for
        :attr:`kept`, one entry per channel (``last``: RChanSeg.last), the message itself
        found only when a JOIN asks. The accounts are the sender's worker's, as its replica
        held them at the segment's epoch: the hub's state, since the epoch held."""
        if not self.history:
            return
        if not last:  # (a worker without history: its ``last`` is empty; not so here)
            items = marshal.loads(record[1])
            starts = range(0, len(items), SEG_FIELDS)
            last = dict(zip(items[::SEG_FIELDS], starts, strict=True))
        self.kept.later(record, last)
        self._submit(("message_segment", record[2], record[1]))

    def private(self, record: Record) -> None:
        """A D_USER the sequencer decided: kept if a party is logged in (not the echo)."""
        if record[6]:  # TAGMSG, or the echo (ECHO): the delivery is kept, once
            return
        users = self._users
        target, sender = users.get(record[1]), users.get(record[2])
        if target is None or sender is None or not (target.account or sender.account):
            return
        key = schema.dm_target(user_party(target), user_party(sender))
        account = sender.account or b""
        # (DUser: kind, target, sender, line, first, tags, flags, time)
        self._submit(
            (self._run_op, key, record[7], record[2], record[4], account, record[5], record[3])
        )

    def record(self, event: Record) -> None:
        """An event the sequencer decided: what of it the store keeps goes to the writer."""
        if event[0] == D_CHAN:
            self.channel(event)
            return
        if event[0] == D_USER:
            self.private(event)
            return
        if self.writer is None or event[0] not in STORED:
            return
        if event[0] == E_ACCOUNTDROP:  # NickServ DROP
            self._ops.append(("account_drop", fold(EAccountDrop._make(event).name).decode()))
            return
        if event[0] == E_ACCOUNTCERTS:  # NickServ CERT ADD/DEL
            certs = EAccountCerts._make(event)
            self._ops.append(
                ("account_certfps", fold(certs.name).decode(), b" ".join(certs.certfps).decode())
            )
            return
        if event[0] == E_REDACT:  # a message left out of the history from now on
            r = ERedact._make(event)
            parsed = message_tags.maybe_parse_msgid(r.msgid.decode("utf-8", "replace"))
            if parsed is not None and r.stored:
                stored = r.stored.decode("utf-8", "replace")
                self._ops.append(("redact", stored, r.msgid.decode(), parsed[0]))
            return
        if event[0] == E_MARKREAD:  # an account's (a connection's own are not kept)
            m = EMarkread._make(event)
            if m.owner:
                self._ops.append(("marker_put", m.owner.decode(), fold(m.target).decode(), m.ms))
            return
        if event[0] == E_ACCOUNTPASSWORD:  # NickServ PASSWD
            changed = EAccountPassword._make(event)
            key = fold(changed.name).decode()
            self._ops.append(("account_password", key, changed.password_hash.decode()))
            return
        if event[0] == E_ACCOUNTVERIFY:
            verified = fold(EAccountVerify._make(event).name).decode()
            self._ops.append(("account_verified", verified, True))
            return
        e = EAccount._make(event)
        if e.code:  # awaiting verification: kept with its code, so a restart keeps it
            self._ops.append(
                (
                    "account_pending",
                    fold(e.name).decode(),
                    e.name.decode(),
                    e.password_hash.decode(),
                    e.email.decode(errors="replace"),
                    e.time,
                    e.code.decode(),
                )
            )
            return
        self._ops.append(
            (
                "account_put",
                fold(e.name).decode(),
                e.name.decode(),
                e.password_hash.decode(),
                e.email.decode(errors="replace"),
                e.time,
                True,
            )
        )

    def close(self) -> None:
        """Write everything submitted (a graceful stop loses nothing), then stop the writing
        process."""
        if self.writer is not None:
            self.flush(force=True)
            if self._sel is not None and self.writer.sock is not None:
                self._sel.unregister(self.writer.sock)
                self._sel = None
            if not self.writer.close():
                log.error("store %s: some writes could not be made before stopping", self.path)
            self.writer = None
