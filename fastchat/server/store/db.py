"""Opening the store file: the data directory, WAL, the schema version and its migrations.

Durability: the file is in WAL mode with ``synchronous=NORMAL``. A committed transaction is in
the write-ahead log when COMMIT returns, so it survives the process dying in any way (SIGKILL,
a crash); but the log is only fsynced at checkpoints, so an OS crash or a power cut may lose
the last transactions committed before it (never corrupting the file: it comes back as it was
at some earlier commit). That is the trade SQLite documents for WAL: commits cost no fsync.

Owns: making the data directory, opening connections with the store's pragmas, and bringing
a file to :data:`schema.VERSION` (all missing migrations in one transaction), or refusing it.
Must never: be called on a loop that serves clients, except once at start-up (opening and
migrating blocks).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from fastchat.server.store import schema

FILE_NAME = "fastchat.db"
#: The page size of a new store file (see prepare)
PAGE_SIZE = 16384
#: How long a statement waits for another connection's lock before "database is locked".
BUSY_TIMEOUT = 0.2


class StoreError(Exception):
    """The store cannot be used: a data directory that cannot be made, a file that is not a
    database, or one from a newer fastchat. The message says which, and where."""


def path_in(data_dir: str) -> str:
    """The store file of ``data_dir``."""
    return os.path.join(data_dir, FILE_NAME)


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` with the store's settings: no implicit transactions (the
    caller says ``BEGIN``), ``synchronous=NORMAL`` (per connection; see the module's
    docstring), a short busy timeout. ``readonly`` opens it read-only (it must exist)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def version(conn: sqlite3.Connection) -> int:
    """The file's schema version (0: a new, empty file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(
    conn: sqlite3.Connection, path: str, migrations: Sequence[Sequence[str]] = schema.MIGRATIONS
) -> int:
    """Bring the file to ``len(migrations)``: every missing script, in order, and the new
    version, in one transaction (a failure leaves the file as it was). Returns the version the
    file had. Raises :class:`StoreError` for a file from a newer version."""
    conn.execute("BEGIN IMMEDIATE")  # the version is read under the lock that writes it
    try:
        found = version(conn)
        if found > len(migrations):
            raise StoreError(
                f"{path}: schema version {found} is newer than this fastchat knows "
                f"({len(migrations)}); run the fastchat that wrote it, or a newer one"
            )
        for script in migrations[found:]:
            for statement in script:
                conn.execute(statement)
        if found != len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations):d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def prepare(data_dir: str, migrations: Sequence[Sequence[str]] = schema.MIGRATIONS) -> str:
    """Make ``data_dir`` if missing, open (or create) its store file in WAL mode and bring it
    to the current schema; returns the file's path. Raises :class:`StoreError` saying what
    is wrong and where."""
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the data directory {data_dir!r}: {e.strerror}") from e
    path = path_in(data_dir)
    try:
        conn = connect(path)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot open: {e}") from e
    try:
        # A new file's pages are 16 KiB, not 4: a run of a busy channel's messages (4-5 KiB)
        # fits in one, and the writer and its checkpoints handle a quarter of the pages
        # (BENCHMARKS.md, "History"). A file that exists keeps its size (only VACUUM changes
        # it). Before WAL, which freezes it.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE:d}")
        # WAL persists in the file; it cannot change inside a transaction, so it comes first
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot use write-ahead logging (journal mode {mode})")
        migrate(conn, path, migrations)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: {e}") from e
    finally:
        conn.close()
    return path
