"""SASL ``SCRAM-SHA-256`` (RFC 5802, RFC 7677): logging in without sending the password.

Owns: the keys an account keeps for it (:func:`keys_of`, made by
:func:`fastchat.server.passwords.account_hash`), and the server's side of the exchange, as a
state machine over the messages' bytes (:class:`Exchange`): the client's first message
(``n,,n=<name>,r=<nonce>``), the server's (``r=<nonce+ours>,s=<salt>,i=<iterations>``), the
client's final (``c=biws,r=...,p=<proof>``) and the server's (``v=<signature>``).
Must never: touch a socket, log a proof, or say whether an account exists (an unknown name
gets a salt of its own, made from a secret, and fails where a wrong password fails).

The server checks a proof with two HMACs and a hash: the stored key is
``H(HMAC(SaltedPassword, "Client Key"))``, so nothing it keeps logs anyone in, and nothing
the client sends can be replayed (the nonce is half ours). Channel binding (``p=`` in the
GS2 header) is not offered: ``SCRAM-SHA-256-PLUS`` is not listed, and a client that asks for
it is refused, as RFC 5802 §6 wants.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from fastchat.irc.casemap import fold

MECHANISM = b"SCRAM-SHA-256"
#: PBKDF2 rounds for a new account's keys: RFC 7677's minimum (a client computes them
#: once per login; the server never does, after the account is made)
ITERATIONS = 4096
_SALT_BYTES = 16
#: What makes an unknown name's salt (per process: a name's salt may differ between two
#: workers, which says nothing an attacker can use without the secret)
_SECRET = secrets.token_bytes(32)


class Keys(NamedTuple):
    """What an account keeps for SCRAM-SHA-256."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


#: What an unknown name's proof is checked against (it matches nothing: no SHA-256 is zeros)
_NO_KEYS = Keys(b"", ITERATIONS, bytes(32), bytes(32))


def saslprep(password: bytes) -> bytes:
    """RFC 4013 SASLprep of a UTF-8 password, as both sides must apply it (RFC 7677):
    non-ASCII spaces become spaces, what maps to nothing goes, then NFKC. A password that is
    not UTF-8 is used as it is (what the client sends is all there is to go on)."""
    try:
        text = password.decode("utf-8")
    except UnicodeDecodeError:
        return password
    if text.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else "" if stringprep.in_table_b1(ch) else ch
        for ch in text
    )
    return unicodedata.normalize("NFKC", mapped).encode("utf-8")


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_keys(password: bytes, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of ``password``'s SCRAM-SHA-256 keys:
    ``scram-sha-256$<iterations>$<salt>$<stored key>$<server key>`` (base64)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server = _hmac(salted, b"Server Key")
    return f"scram-sha-256${iterations}${_b64(salt)}${_b64(stored)}${_b64(server)}"


def keys_of(stored: str) -> Keys | None:
    """The SCRAM keys in an account's stored password (``passwords.account_hash``'s form),
    or None: an account made before SCRAM was offered keeps only its scrypt hash, and logs
    in with PLAIN until its password is set again."""
    for part in stored.split(";")[1:]:
        fields = part.split("$")
        if len(fields) == 5 and fields[0] == "scram-sha-256" and fields[1].isdigit():
            try:
                salt, stored_key, server_key = (base64.b64decode(f) for f in fields[2:])
            except (binascii.Error, ValueError):
                return None
            return Keys(salt, int(fields[1]), stored_key, server_key)
    return None


def _fields(message: bytes) -> dict[bytes, bytes] | None:
    """``a=1,b=2`` as a dict (a value may hold ``=``); None if a field has no ``=``."""
    out: dict[bytes, bytes] = {}
    for item in message.split(b","):
        key, eq, value = item.partition(b"=")
        if not eq or len(key) != 1:
            return None
        out[key] = value
    return out


def _unescape(name: bytes) -> bytes | None:
    """RFC 5802's saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` is wrong."""
    out = name.replace(b"=2C", b",").replace(b"=3D", b"=")
    return None if b"=" in out else out


class Exchange:
    """One SCRAM-SHA-256 exchange, the server's side. Feed it each client message in turn
    (:meth:`first`, then :meth:`final`); each answers the bytes to send, or None: the
    exchange failed (904)."""

    __slots__ = ("_bare", "_keys", "_nonce", "_server_first", "name")

    def __init__(self) -> None:
        self.name = b""  # the account name the client gave
        self._keys: Keys | None = None
        self._bare = b""
        self._nonce = b""
        self._server_first = b""

    def first(self, message: bytes, lookup: Callable[[bytes], Keys | None]) -> bytes | None:
        """The client's first message; ``lookup(name)`` gives the named account's keys (None:
        no such account, or none for SCRAM). Answers the server's first message."""
        header, sep, bare = message.partition(b",")
        authzid, sep2, bare = bare.partition(b",")
        if not sep or not sep2 or header not in (b"n", b"y"):  # "p=": channel binding
            return None
        fields = _fields(bare)
        if fields is None or b"m" in fields:  # (m: an extension nobody defined)
            return None
        name = _unescape(fields.get(b"n", b""))
        nonce = fields.get(b"r", b"")
        if not name or not nonce or b"," in nonce:
            return None
        if authzid and (authzid[:2] != b"a=" or _unescape(authzid[2:]) != name):
            return None  # logging in as someone else: not here
        self.name = name
        self._keys = keys = lookup(name)
        self._bare = bare
        self._nonce = nonce + base64.b64encode(secrets.token_bytes(18))
        if keys is None:  # a salt that looks like any other, the same for the name each time
            salt, rounds = _hmac(_SECRET, fold(name))[:_SALT_BYTES], ITERATIONS
        else:
            salt, rounds = keys.salt, keys.iterations
        self._server_first = b"r=%s,s=%s,i=%d" % (self._nonce, base64.b64encode(salt), rounds)
        return self._server_first

    def final(self, message: bytes) -> bytes | None:
        """The client's final message. Answers the server's final one (``v=...``) if the
        proof is right, else None."""
        without_proof, sep, proof_field = message.rpartition(b",")
        fields = _fields(message)
        if not sep or fields is None or not proof_field.startswith(b"p="):
            return None
        if fields.get(b"c") not in (b"biws", b"eSws") or fields.get(b"r") != self._nonce:
            return None  # (c: the GS2 header "n,," or "y,,", base64; no channel binding)
        try:
            proof = base64.b64decode(fields[b"p"], validate=True)
        except (binascii.Error, ValueError):
            return None
        keys = self._keys or _NO_KEYS  # (an unknown name is checked all the same: no timing)
        auth = b"%s,%s,%s" % (self._bare, self._server_first, without_proof)
        if len(proof) != len(keys.stored_key):
            return None
        signature = _hmac(keys.stored_key, auth)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        matched = hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key)
        if not matched or self._keys is None:
            return None
        return b"v=" + base64.b64encode(_hmac(keys.server_key, auth))
