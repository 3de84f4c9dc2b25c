"""CertFP's machinery (``runtime/tls.py``): a server context that asks for any client
certificate and takes self-signed ones, the fingerprint's form, and the start-up probe that
decides whether the listener may ask (handshakes in memory, no sockets)."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest

from fastchat.server.network.state import maybe_certfp
from fastchat.server.runtime import tls


def _files(folder: Path, name: str) -> tuple[str, str, str]:
    cert_pem, key_pem = tls.self_signed_pem(name)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return (
        str(cert),
        str(key),
        hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.decode())).hexdigest(),
    )


def _client(cert: tuple[str, str, str] | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(cert[0], cert[1])
    return context


def test_the_probe_passes_here() -> None:
    """On this Python and OpenSSL the listener asks for certificates (else CertFP is off
    and the integration tests of CertFP and SASL EXTERNAL would fail too)."""
    assert tls.certfp_available()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_self_signed_client_certificate_is_taken_and_none_is_fine(
    tmp_path: Path, version: ssl.TLSVersion
) -> None:
    server_cert = _files(tmp_path, "server")
    mine = _files(tmp_path, "client")
    server = tls.server_context(server_cert[0], server_cert[1])
    client = _client(mine)
    client.maximum_version = version
    assert tls._handshake_in_memory(server, client) == mine[2].encode()
    assert tls._handshake_in_memory(server, _client()) == b""


def test_without_the_callback_python_refuses_a_self_signed_client_certificate(
    tmp_path: Path,
) -> None:
    """Why the callback exists: CERT_OPTIONAL alone fails the handshake of a self-signed
    client certificate (the test above would fail without it)."""
    server_cert = _files(tmp_path, "server")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_cert[0], server_cert[1])
    server.verify_mode = ssl.CERT_OPTIONAL
    with pytest.raises(ssl.SSLError):
        tls._handshake_in_memory(server, _client(_files(tmp_path, "client")))


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (b"ab" * 32, b"ab" * 32),
        (b"AB" * 32, b"ab" * 32),
        (b":".join([b"Ab"] * 32), b"ab" * 32),
        (b"ab" * 31, None),
        (b"xy" * 32, None),
        (b"", None),
    ],
)
def test_maybe_certfp(typed: bytes, stored: bytes | None) -> None:
    assert maybe_certfp(typed) == stored
