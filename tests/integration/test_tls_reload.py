"""Reloading the TLS certificate (issue 13): REHASH from an operator and SIGHUP to the
supervisor read --tls-cert/--tls-key again in every worker, at one and at four workers. New
connections get the new certificate, connections already made go on; a file that cannot be
used keeps the old certificate, says so in the log, and REHASH tells the operator."""

from __future__ import annotations

import hashlib
import os
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from fastchat.server.runtime.tls import self_signed_pem
from tests.ircclient import IRCClient

CONFIG = """\
autojoin = ""
flood_control = false

[[oper]]
name = "admin"
password = "{hash}"
privileges = ["rehash"]
"""
DEADLINE = 15.0


def install(folder: Path) -> str:
    """A new self-signed certificate in ``folder``'s cert.pem and key.pem; its fingerprint."""
    cert_pem, key_pem = self_signed_pem("fastchat.local")
    # written aside, then renamed: a worker reading mid-way never sees half a file
    for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem)):
        (folder / (name + ".new")).write_bytes(data)
        os.replace(folder / (name + ".new"), folder / name)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.decode())).hexdigest()


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[process.ServerProcess, Path, str]]:
    (tmp_path / "fastchat.toml").write_text(
        CONFIG.format(hash=passwords.hash_password(b"secret", n=16))
    )
    first = install(tmp_path)
    args = [
        "--config", str(tmp_path / "fastchat.toml"),
        "--tls-port", "-1",
        "--tls-cert", str(tmp_path / "cert.pem"),
        "--tls-key", str(tmp_path / "key.pem"),
    ]  # fmt: skip
    with process.running(args, workers=request.param) as srv:
        assert srv.tls_port, srv.log_text()
        yield srv, tmp_path, first


def tls_client(srv: process.ServerProcess, nick: str) -> tuple[IRCClient, str]:
    """A registered TLS client (verifying nothing: the certificate changes under it), and
    the fingerprint of the certificate the server showed it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client = IRCClient(srv.host, srv.tls_port, nick, tls=context)
    assert isinstance(client.sock, ssl.SSLSocket)
    der = client.sock.getpeercert(binary_form=True)
    assert der is not None
    return client, hashlib.sha256(der).hexdigest()


def every_worker_shows(srv: process.ServerProcess, certfp: str) -> None:
    """New TLS connections, until one has landed on each worker: all get ``certfp``."""
    seen: set[int | None] = set()
    workers = set(srv.worker_pids())
    for attempt in range(32 * srv.workers):
        client, shown = tls_client(srv, f"probe{attempt}")
        try:
            assert shown == certfp
            seen.add(srv.worker_of(client.sock.getsockname()[1]))
        finally:
            client.close()
        if workers <= seen:
            return
    raise AssertionError(f"connections never reached every worker: {seen} of {workers}")


def test_rehash_and_sighup_reload_the_certificate(setup) -> None:
    srv, folder, first = setup
    oper, shown = tls_client(srv, "oper")
    assert shown == first
    oper.send("OPER admin secret")
    oper.expect(r" 381 oper ")
    every_worker_shows(srv, first)

    # REHASH: every worker takes the new certificate; the connection made before goes on
    mark = len(srv.log_text())
    second = install(folder)
    oper.send("REHASH")
    oper.expect(r" 382 oper \S+ :Rehashing")
    srv.wait_log(r"worker \d+: TLS certificate reloaded", srv.workers, mark, DEADLINE)
    every_worker_shows(srv, second)
    oper.sync()

    # SIGHUP to the supervisor does the same
    mark = len(srv.log_text())
    third = install(folder)
    os.kill(srv.pid, signal.SIGHUP)
    srv.wait_log(r"worker \d+: TLS certificate reloaded", srv.workers, mark, DEADLINE)
    every_worker_shows(srv, third)
    oper.sync()


@pytest.mark.parametrize("damage", ["garbage", "missing key", "other key"])
def test_a_broken_certificate_keeps_the_old_one(setup, damage: str) -> None:
    """REHASH with a certificate that cannot be used: the operator is told why in a NOTICE,
    nothing changes (every worker still shows the old certificate); SIGHUP likewise, and
    each worker says so in the log."""
    srv, folder, first = setup
    oper, _ = tls_client(srv, "oper")
    oper.send("OPER admin secret")
    oper.expect(r" 381 oper ")
    if damage == "garbage":
        (folder / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot one\n")
    elif damage == "missing key":
        (folder / "key.pem").unlink()
    else:  # a valid certificate whose key is not that file's
        (folder / "cert.pem").write_bytes(self_signed_pem("fastchat.local")[0])
    mark = len(srv.log_text())
    oper.send("REHASH")
    oper.expect(r"NOTICE oper :.*the TLS certificate cannot be used, the old one stays: ")
    srv.wait_log(r"worker \d+: the TLS certificate cannot be used", srv.workers, mark, DEADLINE)
    every_worker_shows(srv, first)

    mark = len(srv.log_text())
    os.kill(srv.pid, signal.SIGHUP)
    srv.wait_log(r"worker \d+: the TLS certificate cannot be used", srv.workers, mark, DEADLINE)
    every_worker_shows(srv, first)
    oper.sync()
