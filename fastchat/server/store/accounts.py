"""The ``fastchat accounts`` command line's work on the store file: create, list, change a
password, delete, while the server may or may not run.

Each change is one short transaction on its own connection (SQLite's locking keeps it apart
from a running server's writer); a running server may only see a change at its next start.

Owns: the account names this command line accepts (the rules of a nick, as NICK checks them:
:func:`casemap.is_valid_nick`) and what it does to the ``accounts`` table.
Must never: prompt, print or hash (the CLI prompts, :mod:`fastchat.server.passwords` hashes),
nor run inside the server.
"""

from __future__ import annotations

import sqlite3

from fastchat.irc import casemap
from fastchat.server.store import db, reader
from fastchat.server.store.schema import ACCOUNT_COLUMNS, AccountRow

#: How long a command waits for a running server's writer to let go of the file.
LOCK_WAIT = 10.0


class AccountError(Exception):
    """A request the store refuses politely (a name taken, unknown or invalid)."""


def check_name(name: str, max_len: int) -> str:
    """The folded form of ``name`` if it may name an account (a valid nick); else raises
    :class:`AccountError`."""
    raw = name.encode()
    if not casemap.is_valid_nick(raw, max_len):
        raise AccountError(
            f"{name!r} cannot name an account: an account's name follows the rules of a nick "
            f"(a letter or one of []\\`_^{{|}} first, then letters, digits, those or '-'; "
            f"at most {max_len} characters)"
        )
    return casemap.fold(raw).decode()


def _connect(path: str) -> sqlite3.Connection:
    conn = db.connect(path)
    conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT * 1000)}")
    return conn


def create(
    path: str, name: str, password_hash: str, email: str, created_ms: int, max_len: int
) -> AccountRow:
    """Add the account ``name``, usable at once (an operator made it: verified); raises
    :class:`AccountError` if the name is invalid or taken (in any case: names are compared
    folded; a registration awaiting verification holds its name too)."""
    folded = check_name(name, max_len)
    row = AccountRow(folded, name, password_hash, email, created_ms, True)
    conn = _connect(path)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (*row[:5], int(row.verified)),
            )
    except sqlite3.IntegrityError as e:
        raise AccountError(f"the account {name!r} already exists") from e
    finally:
        conn.close()
    return row


def list_all(path: str) -> list[AccountRow]:
    conn = _connect(path)
    try:
        return reader.accounts(conn)
    finally:
        conn.close()


def set_password(path: str, name: str, password_hash: str, max_len: int) -> None:
    """Change the password of ``name``; :class:`AccountError` if there is no such account."""
    _change(
        path,
        name,
        max_len,
        "UPDATE accounts SET password_hash = ? WHERE name_folded = ?",
        password_hash,
    )


def delete(path: str, name: str, max_len: int) -> None:
    """Delete the account ``name``; :class:`AccountError` if there is no such account."""
    _change(path, name, max_len, "DELETE FROM accounts WHERE name_folded = ?")


def _change(path: str, name: str, max_len: int, sql: str, *values: str) -> None:
    folded = check_name(name, max_len)
    conn = _connect(path)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(sql, (*values, folded)).rowcount
    finally:
        conn.close()
    if changed == 0:
        raise AccountError(f"there is no account {name!r}")


def exists(path: str, name: str, max_len: int) -> bool:
    conn = _connect(path)
    try:
        return bool(reader.account(conn, check_name(name, max_len)))
    finally:
        conn.close()


def certfps(path: str, name: str, max_len: int) -> list[str]:
    """The certificate fingerprints of ``name``; :class:`AccountError` if there is no such
    account."""
    conn = _connect(path)
    try:
        rows = reader.account(conn, check_name(name, max_len))
    finally:
        conn.close()
    if not rows:
        raise AccountError(f"there is no account {name!r}")
    return rows[0].certfps.split()


def change_certfp(path: str, name: str, certfp: str, add: bool, max_len: int) -> None:
    """Add the certificate fingerprint ``certfp`` (as :func:`state.maybe_certfp` gives it) to
    ``name``, or remove it; :class:`AccountError` if there is no such account, if another
    account holds it (a certificate logs in to one account), or if there is nothing to do."""
    folded = check_name(name, max_len)
    conn = _connect(path)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            rows = reader.account(conn, folded)
            if not rows:
                raise AccountError(f"there is no account {name!r}")
            have = rows[0].certfps.split()
            if add:
                if certfp in have:
                    raise AccountError(f"{name!r} already has the fingerprint {certfp}")
                for other in reader.accounts(conn):
                    if certfp in other.certfps.split():
                        raise AccountError(f"the account {other.name!r} has {certfp} already")
                have.append(certfp)
            else:
                if certfp not in have:
                    raise AccountError(f"{name!r} has no fingerprint {certfp}")
                have.remove(certfp)
            conn.execute(
                "UPDATE accounts SET certfps = ? WHERE name_folded = ?", (" ".join(have), folded)
            )
    finally:
        conn.close()
