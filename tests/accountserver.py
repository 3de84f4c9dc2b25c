"""For tests of real clients logging in with SASL: a server whose store holds an account made
beforehand with ``fastchat accounts create`` (as an administrator would; for SASL EXTERNAL,
with a client certificate's fingerprint added by ``fastchat accounts cert add``), and a raw
observer that sees accounts on the wire (extended-join, account-tag)."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

ACCOUNT = "sasluser"
PASSWORD = "correct horse battery"  # a space in it, as passphrases have
#: NickServ's notice to a user who takes a registered nick without being logged in to it
NICK_PROTECTION = "This nick is registered: if it is yours, send /msg NickServ IDENTIFY"


@contextlib.contextmanager
def running_with_account(data: Path, workers: int) -> Iterator[process.ServerProcess]:
    """A server on ``data`` (a fresh directory) that holds ``ACCOUNT`` with ``PASSWORD``,
    made with the CLI before the server starts; stopped however the block ends."""
    create = ["accounts", "create", "--data-dir", str(data), "--password-stdin", ACCOUNT]
    # its output is left to pytest's capture, shown if this fails
    subprocess.run(
        [sys.executable, "-m", "fastchat.cli", *create],
        input=f"{PASSWORD}\n".encode(),
        check=True,
        timeout=60,
    )
    with process.running(["--no-flood-control", "--data-dir", str(data)], workers) as srv:
        yield srv


def observer(connect: Callable[..., IRCClient]) -> IRCClient:
    """A raw client in #lobby that sees accounts on JOINs (extended-join) and messages
    (account-tag); its own JOIN is back, so every later JOIN to #lobby reaches it."""
    obs = connect(register=False)
    obs.request_caps("extended-join account-tag")
    obs.send("CAP END")
    obs.register("observer")
    obs.expect(r"^(@\S+ )?:observer!\S+ JOIN #lobby \* :")
    return obs


def tags(line: str) -> list[str]:
    """The tags of a raw line (``@a=b;c``): ``["a=b", "c"]``."""
    return line[1:].split(" ", 1)[0].split(";") if line.startswith("@") else []


class CertAccount(NamedTuple):
    """A server with a TLS port whose store holds ``ACCOUNT`` with the fingerprint of a
    client certificate: the server, its data directory (``tls-cert.pem`` is the server's
    self-signed certificate), the client's certificate and key files, and the client
    certificate's fingerprint (SHA-256, lowercase hex)."""

    server: process.ServerProcess
    data: Path
    cert: Path
    key: Path
    certfp: str


def fingerprint(pem: bytes) -> str:
    """The SHA-256 of a PEM certificate's DER form, lowercase hex (as WHOIS 276 shows it)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()


@contextlib.contextmanager
def running_with_cert_account(data: Path, client: Path, workers: int) -> Iterator[CertAccount]:
    """A server on ``data`` (a fresh directory) with a TLS port, holding ``ACCOUNT`` and, as
    one of its fingerprints, that of a client certificate made in ``client`` (``cert.pem``,
    ``key.pem``), both made with the CLI before the server starts, as an administrator
    would; stopped however the block ends."""
    from fastchat.server.runtime.tls import self_signed_pem

    cert_pem, key_pem = self_signed_pem("tls-user")
    cert, key = client / "cert.pem", client / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    cli = [sys.executable, "-m", "fastchat.cli", "accounts"]
    where = ["--data-dir", str(data)]
    create = [*cli, "create", *where, "--password-stdin", ACCOUNT]
    subprocess.run(create, input=f"{PASSWORD}\n".encode(), check=True, timeout=60)
    certfp = fingerprint(cert_pem)
    subprocess.run([*cli, "cert", "add", *where, ACCOUNT, certfp], check=True, timeout=60)
    args = ["--no-flood-control", "--data-dir", str(data), "--tls-port", "-1"]
    with process.running(args, workers) as srv:
        assert srv.tls_port, srv.log_text()
        yield CertAccount(srv, data, cert, key, certfp)
