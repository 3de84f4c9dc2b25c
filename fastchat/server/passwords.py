"""Password hashes: scrypt (``hashlib.scrypt``), stored as one self-describing string.

Owns: the stored form ``scrypt$N$r$p$<salt>$<hash>`` (salt and hash in unpadded base64, as
``fastchat mkpasswd`` prints it for the config file) and checking a password against it in
constant time.
Must never: run on a loop that serves clients or routes messages: a check costs tens of
milliseconds of CPU by design. The worker runs it off its loop and brings the answer back
as a record (blocking work is an effect).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from fastchat.server import scram

#: scrypt cost: N=2**14, r=8, p=1 (16 MiB, ~50 ms): the parameters RFC 7914 and OWASP suggest
#: for interactive logins.
N, R, P = 1 << 14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: bytes, *, salt: bytes | None = None, n: int = N) -> str:
    """The stored form of ``password`` (a fresh random salt unless one is given)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(
        password, salt=salt, n=n, r=R, p=P, maxmem=256 * n * R, dklen=_HASH_BYTES
    )
    return f"scrypt${n}${R}${P}${_b64(salt)}${_b64(digest)}"


def account_hash(password: bytes) -> str:
    """What an account keeps of its password: the scrypt hash, then ``;`` and the keys
    SASL ``SCRAM-SHA-256`` checks a login with (:func:`fastchat.server.scram.make_keys`), so
    that a client can log in without sending the password. :func:`verify` reads the first
    part; an account stored before SCRAM has only that. (The config's oper passwords are
    :func:`hash_password`'s alone: OPER sends the password.)"""
    return hash_password(password) + ";" + scram.make_keys(password)


def is_hash(stored: str) -> bool:
    """Is ``stored`` a well-formed hash (what the config loader accepts)?"""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        return False
    n = int(parts[1])
    try:
        return n > 1 and n & (n - 1) == 0 and bool(_unb64(parts[4])) and bool(_unb64(parts[5]))
    except ValueError:
        return False


def verify(password: bytes, stored: str) -> bool:
    """Does ``password`` match ``stored``? Constant time in the password's content (the
    digests are compared with :func:`hmac.compare_digest`); False for a malformed hash."""
    stored = stored.split(";", 1)[0]  # (an account's SCRAM keys follow: account_hash)
    if not is_hash(stored):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    expected = _unb64(digest)
    got = hashlib.scrypt(
        password,
        salt=_unb64(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=256 * int(n) * int(r) + (1 << 20),
        dklen=len(expected),
    )
    return hmac.compare_digest(got, expected)
