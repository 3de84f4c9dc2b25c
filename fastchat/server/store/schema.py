"""The store's tables, their ordered migrations, and the rows queries give back.

Owns: the SQL that makes each schema version (:data:`MIGRATIONS`; version N is the first N
scripts, recorded in ``PRAGMA user_version``), the shape of an account row and a history row,
and the key a private conversation is stored under (:func:`dm_target`).
Must never: open a file or run a statement (that is :mod:`.db`), or change a script once
released: a new version is a new script at the end, so every file, whatever its version, can
be brought to the current one.

History and the CHATHISTORY selectors (IRCv3 ``chathistory``): the history is kept as the
sequencer delivered it, one row of ``runs`` per *run* (one sender's consecutive lines to one
target, decided at one time: a D_CHAN or D_USER record), its lines as the members got them
(``:nick!user@host PRIVMSG|NOTICE <target> :<text>\r\n`` each) and what their msgids share:
line ``i`` of a run has the msgid ``<time_ms>-<sender_uid>-<first + i>`` (hexadecimal; see
``caps/message_tags.py``). A busy channel's runs hold tens of lines each (BENCHMARKS.md), so
the writer inserts a row per run, not per message: that is what lets it keep pace with the
relay. A target's messages are ordered by ``(time_ms, id, i)``: the sequencer's stamp, then
the order the writer got the runs in (the sequencer's order), then the line's place in its
run. Every selector is a range of that order within one target, so the one index
``runs_target_time (target_folded, time_ms, id)`` answers them all by a seek and a walk
(``store/reader.py`` splits the runs it meets and trims their ends): LATEST (the end,
backwards), BEFORE/AFTER/AROUND/BETWEEN (a bound, either way; a msgid bound is first turned
into its run: the runs of its target and millisecond, a seek), and TARGETS (for each target
asked about, its latest run: one seek per target). The UNIQUE index ``runs_msgid (sender_uid,
first, target_folded, time_ms)`` keeps a run from being written twice, and finds whether a run
a new hub decides again (after the old one was killed) was written already. A private conversation has one target, :func:`dm_target` of its two parties, and the
writer records each party's peers in ``dm_peers``, so TARGETS can find a user's
conversations without scanning the history.
"""

from __future__ import annotations

from typing import NamedTuple

#: The scripts, oldest first: script ``i`` takes a file from version ``i`` to ``i + 1``. Each
#: is a tuple of statements (run in one transaction with the version's update, which
#: ``executescript`` would not allow).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: accounts and history
        """CREATE TABLE accounts (
            name_folded TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            email TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            verified INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            target_folded TEXT NOT NULL,
            msgid TEXT UNIQUE,
            time_ms INTEGER NOT NULL,
            sender TEXT NOT NULL,
            account TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '',
            text BLOB NOT NULL
        )""",
        "CREATE INDEX history_target_time ON history (target_folded, time_ms, id)",
        """CREATE TABLE dm_peers (
            owner_folded TEXT NOT NULL,
            peer_folded TEXT NOT NULL,
            PRIMARY KEY (owner_folded, peer_folded)
        ) WITHOUT ROWID""",
    ),
    (  # 2: registrations awaiting email verification (draft/account-registration VERIFY):
        # ``verified`` 0 and the code mailed; every account made before could be used at once
        "ALTER TABLE accounts ADD COLUMN verify_code TEXT NOT NULL DEFAULT ''",
        "UPDATE accounts SET verified = 1",
    ),
    (  # 3: the history as runs (see the module's docstring). Version 1's history table was
        # never written by a released fastchat (history came with version 3): it goes empty.
        "DROP TABLE history",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            target_folded TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            sender_uid INTEGER NOT NULL,
            first INTEGER NOT NULL,
            count INTEGER NOT NULL,
            account TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '',
            lines BLOB NOT NULL
        )""",
        "CREATE INDEX runs_target_time ON runs (target_folded, time_ms, id)",
        "CREATE UNIQUE INDEX runs_msgid ON runs (sender_uid, first, target_folded, time_ms)",
    ),
    (  # 4: TLS client certificate fingerprints an account may log in with (SASL EXTERNAL,
        # NickServ CERT): SHA-256, lowercase hex, separated by spaces ('' for none)
        "ALTER TABLE accounts ADD COLUMN certfps TEXT NOT NULL DEFAULT ''",
    ),
    (  # 5: IRCv3 draft/read-marker: up to when each account has read each target (Unix ms)
        """CREATE TABLE read_markers (
            account_folded TEXT NOT NULL,
            target_folded TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            PRIMARY KEY (account_folded, target_folded)
        ) WITHOUT ROWID""",
    ),
    (  # 6: IRCv3 draft/message-redaction: messages withdrawn, left out of every selector's
        # answer (time_ms: the message's, from its msgid, so that pruning can drop them too)
        """CREATE TABLE redactions (
            target_folded TEXT NOT NULL,
            msgid TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            PRIMARY KEY (target_folded, msgid)
        ) WITHOUT ROWID""",
    ),
)

#: The version this code reads and writes.
VERSION = len(MIGRATIONS)

_DM_SEPARATOR = "\n"  # in no nick, channel or account name


def dm_target(a_folded: str, b_folded: str) -> str:
    """The target a private conversation between two (folded) names is stored under: the
    same whichever of them speaks.

    >>> dm_target("bob", "alice") == dm_target("alice", "bob")
    True
    """
    low, high = sorted((a_folded, b_folded))
    return f"{low}{_DM_SEPARATOR}{high}"


def maybe_dm_parties(target: str) -> tuple[str, str] | None:
    """The two parties of a :func:`dm_target`, or None for a channel's target."""
    low, sep, high = target.partition(_DM_SEPARATOR)
    return (low, high) if sep else None


class AccountRow(NamedTuple):
    """One row of ``accounts``. ``verified`` False: a registration awaiting its ``VERIFY``
    with ``verify_code`` (``register_verify``), which nobody may log in to yet."""

    name_folded: str
    name: str
    password_hash: str  # passwords.hash_password's form
    email: str
    created_ms: int
    verified: bool
    verify_code: str = ""
    certfps: str = ""  # TLS client certificate fingerprints, separated by spaces


class HistoryRow(NamedTuple):
    """One message of the history, as the selectors give it back (a line of a run)."""

    target_folded: str
    msgid: str
    time_ms: int
    sender: str  # nick!user@host
    account: str  # '' when the sender was logged in to none
    kind: str  # PRIVMSG, NOTICE or TAGMSG
    tags: str  # the client-only tags, as on the wire ('' for none)
    text: bytes


#: The columns of a run the selectors read, in the order ``store/reader.py`` takes them.
RUN_COLUMNS = "id, target_folded, time_ms, sender_uid, first, account, tags, lines"
ACCOUNT_COLUMNS = "name_folded, name, password_hash, email, created_ms, verified"
#: The columns of :class:`AccountRow`, in order, for SELECTs (``ACCOUNT_COLUMNS``, which
#: ``account_put`` writes, the code of a registration awaiting verification, and the
#: certificate fingerprints).
ACCOUNT_ROW_COLUMNS = ACCOUNT_COLUMNS + ", verify_code, certfps"
