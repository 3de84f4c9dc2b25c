"""The store as the sequencer's process uses it: accounts and channel history kept across
restarts; a dropped account (NickServ DROP) is deleted.

Owns: opening the store file in ``data_dir`` (the supervisor prepared it: made the folder,
migrated the schema), loading what the network starts from (every account, as E_ACCOUNT
events applied before anything is decided), and turning the sequencer's decisions worth
keeping into the store's write operations, handed to its writing thread.
Must never: decide anything (every write is a consequence of an event the sequencer already
decided: no clock, no random choice here), or write on the loop's thread (the
:class:`~fastchat.server.store.writer.Writer` thread does, in batches).

History: every channel message the sequencer delivers (a D_CHAN record: a run of one
sender's PRIVMSG/NOTICE lines, or one) is handed to the writer as it is, with the sender's
account: :meth:`Storage.channel` does O(1) work on the loop, and the writer's thread splits
the run into rows (sender mask, command, text, msgid). It also notes each channel's last
kept run (:attr:`Storage.kept`), which the sequencer reads when it decides a JOIN: the
joiner's replay of the history ends there. TAGMSG and STATUSMSG (``PRIVMSG
@#chan``, seen by some members only) are not kept. A private message (D_USER, not its echo)
is kept when one of its parties is logged in, under :func:`schema.dm_target` of the two
parties (``commands/history.py``'s ``dm_party``: an account, or a nick of no account).

The history barrier: a query of the history (CHATHISTORY) must see every message decided
before it, though the writer commits a few milliseconds later. :meth:`Storage.when_stored`
holds a continuation until every operation submitted so far is settled (written, or given
up on), and runs it then; at once when nothing waits to be written, when no history is kept,
or while the writer is failing (the history is unavailable: waiting would only stall the
client). The writer's thread wakes the loop through :attr:`Storage.wakeup` (a socket the
loop watches); :meth:`Storage.on_wakeup` runs what waited. The hub holds the ``D_DONE`` of an
``R_HISTSYNC`` this way; at one worker, the worker holds the query itself.

Only the process that runs the sequencer keeps the store, as with the K-line file: the hub
at several workers, the one worker at ``--workers 1``. Workers learn the accounts from the
hub's snapshot.
"""

from __future__ import annotations

import collections
import logging
import socket
from collections.abc import Callable

from fastchat.irc.casemap import fold
from fastchat.server.commands.history import dm_party
from fastchat.server.network.records import (
    D_CHAN,
    D_USER,
    E_ACCOUNT,
    E_ACCOUNTDROP,
    EAccount,
    EAccountDrop,
    Record,
    make,
)
from fastchat.server.network.state import State, User
from fastchat.server.store import db, reader, schema
from fastchat.server.store.writer import Writer

log = logging.getLogger("fastchat.store")

PRUNE_EVERY_MS = 3_600_000

#: The events whose consequences are stored
STORED = frozenset({E_ACCOUNT, E_ACCOUNTDROP})


class Storage:
    """The store of one sequencer process (``data_dir`` None: nothing is kept)."""

    def __init__(
        self, data_dir: str | None, history: bool = True, days: int = 0, limit: int = 0
    ) -> None:
        self.path = db.path_in(data_dir) if data_dir else None
        self.writer: Writer | None = None
        self.history = history
        self._users: dict[int, User] = {}  # the sequencer's state's (set by load)
        self._submit = self._nowhere  # the writer's submit, once it runs and history is kept
        self.days = days  # retention: history_days, history_limit (0: none)
        self.limit = limit
        self._prune_at = 0  # Unix ms: the next pruning (maybe_prune)
        # the history barrier: (operations submitted then, what runs once they are settled)
        self._held: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()
        self.wakeup: socket.socket | None = None  # the loop watches it (once load() ran)
        self._wake_w: socket.socket | None = None  # the writer's thread writes a byte to it
        # Each channel's last message kept (its D_CHAN, by folded name), in the order they
        # were handed over, which is the sequencer's: its JOINs read it (Sequencer.kept: the
        # end of the joiner's replay, exactly). O(1) per run; the msgid is made only then.
        self.kept: dict[bytes, Record] = {}

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
    def _nowhere(op: tuple[object, ...]) -> None:
        pass

    def load(self, state: State) -> None:
        """Before anything is decided: every stored account, into ``state``; then start the
        writing thread (after the fork: threads do not survive one)."""
        if self.path is None:
            return
        rows = reader.load_accounts(self.path)
        for row in rows:
            created = make(
                EAccount, row.name.encode(), row.password_hash.encode(), row.email.encode(),
                row.created_ms,
            )  # fmt: skip
            state.apply(created)
        log.info("store %s: %d accounts", self.path, len(rows))
        self.wakeup, self._wake_w = socket.socketpair()
        self.wakeup.setblocking(False)
        self._wake_w.setblocking(False)
        self.writer = Writer(
            self.path, on_change=lambda status: self._wake(), on_settled=self._wake
        )
        self.writer.start()
        self._users = state.users
        if self.history:
            self._submit = self.writer.submit

    # -- the history barrier ---------------------------------------------------------------------
    def when_stored(self, then: Callable[[], None]) -> None:
        """Run ``then`` once everything submitted to the writer so far is settled: at once
        if it is (or nothing is kept, or the writer is failing), else from :meth:`on_wakeup`."""
        writer = self.writer
        if writer is None or not writer.status().healthy:
            then()
            return
        need = writer.submitted
        if self._held:
            self._held.append((need, then))  # after the earlier ones: their order is kept
            return
        if writer.wake_when_settled(need):
            then()
            return
        self._held.append((need, then))

    def on_wakeup(self, mask: int = 0) -> None:
        """The loop's handler of :attr:`wakeup`: the writer settled what someone waited for,
        or its health changed. Runs every continuation whose writes are settled (all of
        them while the writer fails), and asks to be woken for the next."""
        assert self.wakeup is not None and self.writer is not None
        try:
            while self.wakeup.recv(4096):
                pass
        except BlockingIOError:
            pass
        held, writer = self._held, self.writer
        failing = not writer.status().healthy
        while held and (failing or writer.wake_when_settled(held[0][0])):
            held.popleft()[1]()

    def _wake(self) -> None:
        """The writer's thread: wake the loop (a byte on the socket it watches)."""
        try:
            assert self._wake_w is not None
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a byte is waiting already (or the loop is gone)

    def channel(self, record: Record) -> None:
        """A D_CHAN the sequencer decided (hot: once per run of messages; see the module's
        docstring). TAGMSG and STATUSMSG (``flags``) are not kept."""
        if record[6] or not self.history:
            return
        self.kept[record[1]] = record
        user = self._users.get(record[2])
        account = user.account if user is not None and user.account else b""
        # (DChan: kind, channel, sender, line, first, tags, flags, time)
        self._submit(
            ("message_run", record[1], record[7], record[2], record[4], account, record[5],
             record[3])
        )  # fmt: skip

    def private(self, record: Record) -> None:
        """A D_USER the sequencer decided: kept if a party is logged in (not the echo)."""
        if record[6]:  # TAGMSG, or the echo (ECHO): the delivery is kept, once
            return
        users = self._users
        target, sender = users.get(record[1]), users.get(record[2])
        if target is None or sender is None or not (target.account or sender.account):
            return
        key = schema.dm_target(
            dm_party(fold(target.account) if target.account else None, fold(target.nick)),
            dm_party(fold(sender.account) if sender.account else None, fold(sender.nick)),
        )
        account = sender.account or b""
        # (DUser: kind, target, sender, line, first, tags, flags, time)
        self._submit(
            ("message_run", key, record[7], record[2], record[4], account, record[5], record[3])
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
            self.writer.submit(("account_drop", fold(EAccountDrop._make(event).name).decode()))
            return
        e = EAccount._make(event)
        self.writer.submit(
            (
                "account_put",
                fold(e.name).decode(),
                e.name.decode(),
                e.password_hash.decode(),
                e.email.decode(errors="replace"),
                e.time,
                False,
            )
        )

    def close(self) -> None:
        """Write everything submitted (a graceful stop loses nothing), then stop the thread."""
        if self.writer is not None:
            if not self.writer.close():
                log.error("store %s: some writes could not be made before stopping", self.path)
            self.writer = None
        for sock in (self.wakeup, self._wake_w):
            if sock is not None:
                sock.close()
        self.wakeup = self._wake_w = None
