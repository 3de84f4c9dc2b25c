"""CertFP (issue 13) after the hub dies: the new hub rebuilds the network from the workers'
replicas, fingerprints included, and a worker that starts after it learns them from its
snapshot: an operator there still sees the TLS user's 276 in WHOIS, and the account's
fingerprint still logs in with SASL EXTERNAL."""

from __future__ import annotations

import base64
import os
import signal
import ssl
from pathlib import Path

from fastchat.server import passwords
from fastchat.server.runtime import process
from fastchat.server.runtime.tls import self_signed_pem
from tests.accountserver import fingerprint
from tests.hardening.harness import client_on_worker, wait_for
from tests.ircclient import IRCClient

CONFIG = """\
autojoin = ""
flood_control = false
tls_port = -1

[[oper]]
name = "admin"
password = "{hash}"
privileges = ["see"]
"""


def test_fingerprints_survive_a_hub_sigkill_and_reach_a_new_worker(tmp_path: Path) -> None:
    (tmp_path / "fastchat.toml").write_text(
        CONFIG.format(hash=passwords.hash_password(b"secret", n=16))
    )
    cert_pem, key_pem = self_signed_pem("holder")
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "c.key").write_bytes(key_pem)
    certfp = fingerprint(cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")

    with process.running(["--config", str(tmp_path / "fastchat.toml")], workers=2) as server:
        holder = IRCClient(server.host, server.tls_port, "holder", tls=context)
        holder.send("NS REGISTER a-good-password")
        holder.expect(r" 900 holder ")
        holder.send("NS CERT ADD")
        holder.expect(r"NOTICE holder :Added certificate fingerprint")
        home = server.worker_of(holder.sock.getsockname()[1])
        other = next(pid for pid in server.worker_pids() if pid != home)

        old_hub = server.hub_pid()
        assert old_hub is not None
        os.kill(old_hub, signal.SIGKILL)
        wait_for(lambda: server.hub_pid() not in (None, old_hub), 5.0, "a new hub")
        holder.sync()  # (its worker is linked to the new hub again)
        os.kill(other, signal.SIGKILL)  # its replacement loads the new hub's snapshot
        wait_for(lambda: len(set(server.worker_pids()) - {home, other}) == 1, 10.0, "a new worker")
        (new,) = set(server.worker_pids()) - {home, other}

        oper = client_on_worker(server, new, "oper")
        oper.send("OPER admin secret")
        oper.expect(r" 381 oper ")
        oper.send("WHOIS holder")
        lines = oper.expect_until(r" 318 oper holder ")
        assert (
            f":fastchat.local 276 oper holder :has client certificate fingerprint {certfp}" in lines
        )

        again = IRCClient(server.host, server.tls_port, tls=context)
        again.send("CAP LS 302")
        again.send("CAP REQ :sasl")
        again.expect(r"CAP \* ACK :sasl")
        again.send("AUTHENTICATE EXTERNAL")
        again.expect(r"^AUTHENTICATE \+$")
        again.send("AUTHENTICATE " + base64.b64encode(b"holder").decode())
        again.expect(r" 903 \* :SASL authentication successful")
        for client in (holder, oper, again):
            client.close()
