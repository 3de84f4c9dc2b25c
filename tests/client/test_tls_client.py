"""``fastchat client --tls`` (issue 13): the link speaks TLS and verifies the server's
certificate (the system's CAs, ``--tls-ca FILE``), ``--insecure`` skips that and says so on
screen, a certificate that cannot be verified stops the client with a message that says what
to do (no traceback), and ``--tls-cert`` shows a client certificate (CertFP). Against the real
server's TLS port, with its self-signed certificate."""

from __future__ import annotations

import argparse
import os
import select
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastchat.client import app
from fastchat.client.connection import Connected, Link, Received, Refused
from fastchat.server.runtime import process
from fastchat.server.runtime.tls import SELF_SIGNED_CERT, self_signed_pem
from tests.client.test_connection import run_until


@pytest.fixture(scope="module")
def server() -> Iterator[process.ServerProcess]:
    with process.running(["--tls-port", "-1"], workers=1) as srv:
        assert srv.tls_port and srv.own_data_dir
        yield srv


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    return parser.parse_args(list(argv))


def cafile(server: process.ServerProcess) -> str:
    assert server.own_data_dir is not None
    return os.path.join(server.own_data_dir, SELF_SIGNED_CERT)


def link_events(server: process.ServerProcess, host: str, *argv: str) -> list[object]:
    """Connect a Link made from the client's options; register; the events until the
    welcome (or until the link gives up)."""
    context = app.tls_context(options(host, *argv))
    assert context is not None
    sel = selectors.DefaultSelector()
    link = Link(host, server.tls_port, sel, tls=context)
    try:
        link.start()
        events: list[object] = list(run_until(link, sel, (Connected, Refused)))  # type: ignore[arg-type]
        if any(isinstance(e, Refused) for e in events):
            return events
        link.send(b"NICK tlsclient\r\nUSER u 0 * :u\r\nWHOIS tlsclient\r\n")
        deadline = time.monotonic() + 10
        while not any(
            isinstance(e, Received) and any(b" 318 " in x for x in e.lines) for e in events
        ):
            assert time.monotonic() < deadline, events
            events += run_until(link, sel, Received)
        return events
    finally:
        link.close()
        sel.close()


def received(events: list[object]) -> list[bytes]:
    return [x for e in events if isinstance(e, Received) for x in e.lines]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_ca_trusts_the_self_signed_certificate(server, host: str) -> None:
    """--tls-ca FILE: the server's self-signed certificate (made for its name, localhost and
    the loopback addresses) verifies, host name checked; the client registers over TLS."""
    lines = received(link_events(server, host, "--tls-ca", cafile(server)))
    assert any(b" 001 tlsclient " in x for x in lines), lines


def test_the_system_cas_refuse_a_self_signed_certificate(server) -> None:
    """--tls alone verifies against the system's CAs: a self-signed server is Refused (the
    link gives up), with OpenSSL's reason."""
    events = link_events(server, "localhost", "--tls")
    (refused,) = [e for e in events if isinstance(e, Refused)]
    assert "self-signed" in refused.reason or "self signed" in refused.reason


def test_insecure_connects_to_anything(server) -> None:
    lines = received(link_events(server, "127.0.0.1", "--insecure"))
    assert any(b" 001 tlsclient " in x for x in lines), lines


def test_a_client_certificate_is_shown_to_the_server(server, tmp_path: Path) -> None:
    """--tls-cert/--tls-key: the server sees the certificate (WHOIS 276 to oneself)."""
    cert_pem, key_pem = self_signed_pem("me")
    (tmp_path / "me.pem").write_bytes(cert_pem)
    (tmp_path / "me.key").write_bytes(key_pem)
    argv = [
        "--insecure",
        "--tls-cert",
        str(tmp_path / "me.pem"),
        "--tls-key",
        str(tmp_path / "me.key"),
    ]
    lines = received(link_events(server, "127.0.0.1", *argv))
    assert any(b" 276 tlsclient tlsclient :has client certificate fingerprint " in x for x in lines)


def run_client(
    server: process.ServerProcess, *argv: str, until: bytes
) -> tuple[subprocess.Popen[bytes], bytes]:
    """``fastchat client --plain`` with ``argv`` (stdin and stdout pipes); its output until
    ``until`` shows."""
    cmd = [sys.executable, "-m", "fastchat.cli", "client", *argv, "--nick", "piper", "--plain"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 15
    while until not in seen:
        if time.monotonic() > deadline or (
            proc.poll() is not None and not select.select([proc.stdout], [], [], 0)[0]
        ):
            proc.kill()
            proc.wait()
            raise AssertionError(seen.decode(errors="replace"))
        if select.select([proc.stdout], [], [], 0.05)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            seen += chunk
    return proc, seen


def test_the_client_stops_with_advice_when_it_cannot_verify(server) -> None:
    """Not a traceback: one message naming the cause and the options that help; exit 1."""
    proc, seen = run_client(server, "--tls", "localhost", str(server.tls_port), until=b"--insecure")
    try:
        assert proc.wait(10) == 1
        assert proc.stdout is not None
        seen += proc.stdout.read()
        text = seen.decode()
        assert "cannot verify the server's TLS certificate" in text and "--tls-ca FILE" in text
        assert "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_insecure_says_so_loudly_and_tls_ca_does_not(server) -> None:
    proc, seen = run_client(
        server, "--insecure", "127.0.0.1", str(server.tls_port), until=b"End of"
    )
    try:
        assert b"WARNING: --insecure: the server's certificate is NOT verified" in seen
        assert b"Connected over unverified TLS" in seen
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(10) == 0
    argv = ["--tls-ca", cafile(server), "localhost", str(server.tls_port)]
    proc, seen = run_client(server, *argv, until=b"End of")
    try:
        assert b"Connected over TLS" in seen and b"WARNING" not in seen
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(10) == 0


def test_unusable_tls_files_are_one_line_and_status_2(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fastchat.cli", "client", "--tls-ca", str(tmp_path / "none.pem")]
    done = subprocess.run([*cmd, "localhost", "--plain"], capture_output=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("fastchat client: cannot use the TLS files:")
    assert b"Traceback" not in done.stderr


def test_the_status_line_says_how_the_link_is_protected() -> None:
    from fastchat.client.session import Session, Transport

    assert Session("me", "h:6667").status_parts()[0] == "h:6667"
    assert Session("me", "h:6697", transport=Transport.TLS).status_parts()[0] == "h:6697 (TLS)"
    insecure = Session("me", "h:6697", transport=Transport.TLS_UNVERIFIED)
    assert insecure.status_parts()[0] == "h:6697 (TLS UNVERIFIED)"
