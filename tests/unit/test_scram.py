"""SASL SCRAM-SHA-256 (fastchat/server/scram.py): RFC 7677's example, whole exchanges
against a client written here from RFC 5802's formulas, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from fastchat.server import passwords, scram

#: RFC 7677 §3's example exchange ("user", "pencil")
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_BARE = b"n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_NONCE = b"rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = b"r=" + RFC_NONCE + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = b"c=biws,r=" + RFC_NONCE + b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _keys(password: bytes, salt: bytes | None = None) -> scram.Keys:
    keys = scram.keys_of("scrypt$x;" + scram.make_keys(password, salt))
    assert keys is not None
    return keys


def test_rfc_7677_example() -> None:
    """The server's keys for "pencil" and the RFC's salt check the RFC's proof and sign
    with the RFC's server signature (the nonces set as the RFC's, not drawn)."""
    exchange = scram.Exchange()
    assert exchange.first(b"n,," + RFC_BARE, lambda name: _keys(b"pencil", RFC_SALT))
    exchange._nonce, exchange._server_first = RFC_NONCE, RFC_SERVER_FIRST
    assert exchange.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    wrong = RFC_CLIENT_FINAL[:-8] + b"AAAAAAA="
    assert exchange.final(wrong) is None


class Client:
    """RFC 5802 §3, the client's side, written apart from the server's."""

    def __init__(self, name: bytes, password: bytes) -> None:
        self.name, self.password = name, password
        self.bare = b"n=" + name + b",r=clientnonce123"

    def first(self) -> bytes:
        return b"n,," + self.bare

    def final(self, server_first: bytes) -> bytes:
        fields = dict(item.split(b"=", 1) for item in server_first.split(b","))
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password, base64.b64decode(fields[b"s"]), int(fields[b"i"])
        )
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = b"c=biws,r=" + fields[b"r"]
        self.auth = b",".join((self.bare, server_first, without_proof))
        signature = hmac.new(stored, self.auth, hashlib.sha256).digest()
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return without_proof + b",p=" + base64.b64encode(proof)

    def verifies(self, server_final: bytes) -> bool:
        expected = hmac.new(self.server_key, self.auth, hashlib.sha256).digest()
        return server_final == b"v=" + base64.b64encode(expected)


ACCOUNTS = {b"alice": _keys(b"s3cret"), b"old": None}


@pytest.mark.parametrize(
    ("name", "password", "ok"),
    [
        (b"alice", b"s3cret", True),
        (b"alice", b"wrong", False),
        (b"nobody", b"s3cret", False),  # no such account: fails at the proof, not before
        (b"old", b"s3cret", False),  # an account stored before SCRAM: PLAIN only
    ],
)
def test_an_exchange(name: bytes, password: bytes, ok: bool) -> None:
    client = Client(name, password)
    exchange = scram.Exchange()
    server_first = exchange.first(client.first(), ACCOUNTS.get)
    assert server_first is not None and server_first.startswith(b"r=clientnonce123")
    server_final = exchange.final(client.final(server_first))
    assert (server_final is not None) is ok
    if ok:
        assert server_final is not None and client.verifies(server_final)
        assert exchange.name == name


def test_an_unknown_name_gets_a_salt_of_its_own_every_time() -> None:
    """Nothing in the first answer tells an unknown name from an account."""

    def salt_of(name: bytes) -> bytes:
        answer = scram.Exchange().first(b"n,,n=" + name + b",r=x", ACCOUNTS.get)
        assert answer is not None
        return dict(f.split(b"=", 1) for f in answer.split(b","))[b"s"]

    assert salt_of(b"nobody") == salt_of(b"NOBODY") != salt_of(b"someone")
    assert len(base64.b64decode(salt_of(b"nobody"))) == len(ACCOUNTS[b"alice"].salt)


@pytest.mark.parametrize(
    "first",
    [
        b"p=tls-unique,,n=alice,r=x",  # channel binding: not offered
        b"n,a=bob,n=alice,r=x",  # as someone else
        b"n,,n=alice",  # no nonce
        b"n,,r=x",  # no name
        b"n,,m=ext,n=alice,r=x",  # an extension nobody defined
        b"n,,n=al=ice,r=x",  # a bad escape
        b"",
        b"garbage",
    ],
)
def test_a_bad_first_message_fails(first: bytes) -> None:
    assert scram.Exchange().first(first, ACCOUNTS.get) is None


def test_a_final_message_for_another_nonce_fails() -> None:
    client = Client(b"alice", b"s3cret")
    exchange = scram.Exchange()
    server_first = exchange.first(client.first(), ACCOUNTS.get)
    assert server_first is not None
    other = server_first.replace(b"r=clientnonce123", b"r=clientnonce124", 1)
    assert exchange.final(client.final(other)) is None


def test_saslprep() -> None:
    """RFC 4013: a soft hyphen maps to nothing, a no-break space to a space, then NFKC."""
    assert scram.saslprep("I\u00adX".encode()) == b"IX"
    assert scram.saslprep("a\u00a0b".encode()) == b"a b"
    assert scram.saslprep("\u2168".encode()) == b"IX"
    assert scram.saslprep(b"plain") == b"plain"
    assert scram.saslprep(b"\xff\xfe") == b"\xff\xfe"


def test_an_account_hash_checks_passwords_and_carries_scram_keys() -> None:
    stored = passwords.account_hash(b"hunter2")
    assert passwords.verify(b"hunter2", stored) and not passwords.verify(b"hunter3", stored)
    keys = scram.keys_of(stored)
    assert keys is not None and keys.iterations == scram.ITERATIONS
    assert scram.keys_of(passwords.hash_password(b"hunter2")) is None
