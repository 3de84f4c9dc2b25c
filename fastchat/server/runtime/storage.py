"""The store as the sequencer's process uses it: accounts (and, next, history) kept across
restarts, those awaiting email verification with their code; a dropped account (NickServ
DROP, an expired registration) is deleted.

Owns: opening the store file in ``data_dir`` (the supervisor prepared it: made the folder,
migrated the schema), loading what the network starts from (every account, as E_ACCOUNT
events applied before anything is decided), and turning the sequencer's decisions worth
keeping into the store's write operations, handed to its writing thread.
Must never: decide anything (every write is a consequence of an event the sequencer already
decided: no clock, no random choice here), or write on the loop's thread (the
:class:`~fastchat.server.store.writer.Writer` thread does, in batches).

Only the process that runs the sequencer keeps the store, as with the K-line file: the hub
at several workers, the one worker at ``--workers 1``. Workers learn the accounts from the
hub's snapshot.
"""

from __future__ import annotations

import logging

from fastchat.irc.casemap import fold
from fastchat.server.network.records import (
    E_ACCOUNT,
    E_ACCOUNTDROP,
    E_ACCOUNTVERIFY,
    EAccount,
    EAccountDrop,
    EAccountVerify,
    Record,
    make,
)
from fastchat.server.network.state import State
from fastchat.server.store import db, reader
from fastchat.server.store.writer import Writer

log = logging.getLogger("fastchat.store")

#: The events whose consequences are stored
STORED = frozenset({E_ACCOUNT, E_ACCOUNTDROP, E_ACCOUNTVERIFY})


class Storage:
    """The store of one sequencer process (``data_dir`` None: nothing is kept)."""

    def __init__(self, data_dir: str | None) -> None:
        self.path = db.path_in(data_dir) if data_dir else None
        self.writer: Writer | None = None

    def load(self, state: State) -> None:
        """Before anything is decided: every stored account, into ``state``; then start the
        writing thread (after the fork: threads do not survive one)."""
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
        log.info(
            "store %s: %d accounts, %d awaiting verification",
            self.path,
            len(state.accounts),
            len(state.pending),
        )
        self.writer = Writer(self.path)
        self.writer.start()

    def record(self, event: Record) -> None:
        """An event the sequencer decided: what of it the store keeps goes to the writer."""
        if self.writer is None or event[0] not in STORED:
            return
        if event[0] == E_ACCOUNTDROP:  # NickServ DROP
            self.writer.submit(("account_drop", fold(EAccountDrop._make(event).name).decode()))
            return
        if event[0] == E_ACCOUNTVERIFY:
            verified = fold(EAccountVerify._make(event).name).decode()
            self.writer.submit(("account_verified", verified, True))
            return
        e = EAccount._make(event)
        if e.code:  # awaiting verification: kept with its code, so a restart keeps it
            self.writer.submit(
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
        self.writer.submit(
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
        """Write everything submitted (a graceful stop loses nothing), then stop the thread."""
        if self.writer is not None:
            if not self.writer.close():
                log.error("store %s: some writes could not be made before stopping", self.path)
            self.writer = None
