"""IRCv3 ``sts`` (issue 13): Strict Transport Security, advertised in ``CAP LS 302`` with a
value that depends on the connection, at one and at four workers; never requested; and the
start-up checks that keep a policy from locking clients out (the self-signed certificate)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime import process
from fastchat.server.runtime.tls import self_signed_pem
from tests.ircclient import IRCClient


def insecure() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def cap_ls(srv: process.ServerProcess, tls: bool) -> list[str]:
    """The tokens of ``CAP LS 302`` on a plain or a TLS connection."""
    port = srv.tls_port if tls else srv.port
    with IRCClient(srv.host, port, tls=insecure() if tls else None) as client:
        client.send("CAP LS 302")
        tokens: list[str] = []
        while True:
            line = client.expect(r"CAP \* LS ").string
            tokens += line.split(" :", 1)[1].split()
            if " LS * :" not in line:
                return tokens


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.ServerProcess]:
    folder = tmp_path_factory.mktemp("cert")
    cert_pem, key_pem = self_signed_pem("fastchat.local")
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    args = [
        "--tls-port", "-1",
        "--tls-cert", str(folder / "cert.pem"),
        "--tls-key", str(folder / "key.pem"),
        "--sts-duration", "2592000",
        "--sts-preload",
    ]  # fmt: skip
    with process.running(args, workers=request.param) as srv:
        yield srv


def test_plain_connections_are_told_the_tls_port(server) -> None:
    """The spec: on an insecure connection the value holds ``port``, "the port number for
    secure connections" (the one picked by --tls-port -1, as it is open)."""
    assert f"sts=port={server.tls_port}" in cap_ls(server, tls=False)


def test_tls_connections_are_told_the_policy(server) -> None:
    """On a secure connection: ``duration`` (seconds) and ``preload``."""
    assert "sts=duration=2592000,preload" in cap_ls(server, tls=True)


def test_sts_cannot_be_requested(server) -> None:
    """The spec: "Clients MUST NOT request this capability"; servers MAY answer NAK."""
    with IRCClient(server.host, server.port) as client:
        client.send("CAP REQ :sts")
        client.expect(r"CAP \* NAK :sts$")
        client.send("CAP REQ :sts multi-prefix")  # all or nothing
        client.expect(r"CAP \* NAK :sts multi-prefix$")


def test_a_self_signed_certificate_of_ones_own_is_warned_about(server) -> None:
    assert "--sts-duration with a self-signed certificate" in server.log_text()


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_no_policy_no_sts(workers: int) -> None:
    """Without --sts-duration, ``sts`` is not listed at all, on either kind of connection."""
    with process.running(["--tls-port", "-1"], workers=workers) as srv:
        assert not [t for t in cap_ls(srv, tls=False) if t.startswith("sts")]
        assert not [t for t in cap_ls(srv, tls=True) if t.startswith("sts")]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--tls-port", "-1", "--sts-duration", "60"], "would lock clients out"),
        (["--sts-duration", "60"], "an sts policy needs a TLS port"),
    ],
    ids=["self-signed", "no-tls-port"],
)
def test_a_policy_that_cannot_work_refuses_to_start(
    args: list[str], why: str, tmp_path: Path
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "fastchat.cli",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
    ]
    done = subprocess.run([*cmd, *args], capture_output=True, timeout=60)
    assert done.returncode == 2, done
    assert why in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_duration_zero_clears_policies_even_self_signed() -> None:
    """``--sts-duration 0`` tells clients to forget the policy: allowed with any certificate."""
    with process.running(["--tls-port", "-1", "--sts-duration", "0"], workers=1) as srv:
        assert "sts=duration=0" in cap_ls(srv, tls=True)
        assert f"sts=port={srv.tls_port}" in cap_ls(srv, tls=False)


def test_not_listed_before_cap_302(server) -> None:
    """A client that did not ask ``CAP LS 302`` would not see the policy (the value)."""
    with IRCClient(server.host, server.port) as client:
        client.send("CAP LS")
        line = client.expect(r"CAP \* LS :").string
        assert "sts" not in line.split(" :", 1)[1].split()
