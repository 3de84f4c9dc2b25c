"""TLS client certificates (issue 13): CertFP in WHOIS (276), NickServ CERT, SASL EXTERNAL,
against the real server at one and at four workers, with real self-signed client
certificates (the case Python's ``ssl`` refuses by itself: see ``runtime/tls.py``)."""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server import passwords
from fastchat.server.runtime import process
from fastchat.server.runtime.tls import SELF_SIGNED_CERT, self_signed_pem
from tests.ircclient import IRCClient, wait_nicks_free

CONFIG = """\
autojoin = ""
flood_control = false
tls_port = -1

[[oper]]
name = "admin"
password = "{admin}"
privileges = ["see"]
"""

Connect = Callable[..., IRCClient]


class ClientCert:
    """A self-signed client certificate in files, and its fingerprint as servers show it."""

    def __init__(self, folder: Path, name: str) -> None:
        cert_pem, key_pem = self_signed_pem(name)
        self.cert = folder / f"{name}.pem"
        self.key = folder / f"{name}.key"
        self.cert.write_bytes(cert_pem)
        self.key.write_bytes(key_pem)
        der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
        self.certfp = hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientCert]:
    folder = tmp_path_factory.mktemp("certs")
    return {name: ClientCert(folder, name) for name in ("one", "two", "three", "four")}


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.ServerProcess]:
    path = tmp_path_factory.mktemp("etc") / "fastchat.toml"
    path.write_text(CONFIG.format(admin=passwords.hash_password(b"secret", n=16)))
    with process.running(["--config", str(path)], workers=request.param) as srv:
        assert srv.tls_port, srv.log_text()
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Connect]:
    """``connect("nick", cert=certs["one"])``: over TLS (with that client certificate, or
    none), or ``tls=False``; ``register=False`` to negotiate first. Closed at the end."""
    clients: list[IRCClient] = []
    assert server.own_data_dir is not None
    cafile = os.path.join(server.own_data_dir, SELF_SIGNED_CERT)

    def make(
        nick: str, cert: ClientCert | None = None, tls: bool = True, register: bool = True
    ) -> IRCClient:
        context = None
        if tls:
            context = ssl.create_default_context(cafile=cafile)
            if cert is not None:
                context.load_cert_chain(cert.cert, cert.key)
        port = server.tls_port if tls else server.port
        client = IRCClient(server.host, port, nick, tls=context, register=register)
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick]
    for client in clients:
        client.close()
    wait_nicks_free(server.host, server.port, nicks)


def elsewhere(
    server: process.ServerProcess, than: IRCClient, make: Callable[[str], IRCClient]
) -> IRCClient:
    """A client from ``make(nick)`` on another worker than ``than`` (at one worker, the only
    one): the kernel spreads connections, so connect until one lands elsewhere."""
    avoid = server.worker_of(than.sock.getsockname()[1]) if server.workers > 1 else None
    for attempt in range(64):
        client = make(f"w{attempt}")
        if avoid is None or server.worker_of(client.sock.getsockname()[1]) != avoid:
            return client
        client.send("QUIT")
        client.wait_closed()
    raise AssertionError("every connection landed on the same worker")


def register_account(client: IRCClient, password: str = "a-good-password") -> None:
    client.send(f"NS REGISTER {password}")
    client.expect(rf" 900 {client.nick} \S+ {client.nick} :You are now logged in")


def sasl_external(client: IRCClient, authzid: str = "") -> str:
    """SASL EXTERNAL during registration; the 90x line that answers."""
    client.send("CAP LS 302")
    client.expect(r"CAP \* LS :.*sasl=PLAIN,EXTERNAL")
    client.send("CAP REQ :sasl")
    client.expect(r"CAP \* ACK :sasl")
    client.send("AUTHENTICATE EXTERNAL")
    client.expect(r"^AUTHENTICATE \+$")
    client.send("AUTHENTICATE " + (base64.b64encode(authzid.encode()).decode() or "+"))
    return client.expect(r" 90[0-9] ").string


def test_whois_shows_the_certfp_to_the_user_and_operators_only(server, connect, certs) -> None:
    """Modern IRC RPL_WHOISCERTFP (276) "<nick> :has client certificate fingerprint <fp>",
    SHA-256 in lowercase hex, shown to the user itself and to operators (as Ergo does),
    also when the asker is on another worker; nobody else sees it, and a client without a
    certificate has none."""
    one = certs["one"]
    holder = connect("holder", cert=one)
    holder.send("WHOIS holder")
    holder.expect(rf" 276 holder holder :has client certificate fingerprint {one.certfp}$")
    holder.expect(r" 318 holder holder ")

    other = elsewhere(server, holder, lambda nick: connect("o" + nick, tls=False))
    other.send("WHOIS holder")
    assert not any(" 276 " in x for x in other.expect_until(rf" 318 {other.nick} holder "))
    other.send("OPER admin secret")
    other.expect(rf" 381 {other.nick} ")
    other.send("WHOIS holder")
    lines = other.expect_until(rf" 318 {other.nick} holder ")
    assert any(f" 276 {other.nick} holder :" in x and one.certfp in x for x in lines), lines

    bare = connect("bare")  # TLS, no certificate: it got in, and has no fingerprint
    bare.send("WHOIS bare")
    assert not any(" 276 " in x for x in bare.expect_until(r" 318 bare bare "))
    other.send("WHOIS bare")
    assert not any(" 276 " in x for x in other.expect_until(rf" 318 {other.nick} bare "))


def test_cert_add_then_sasl_external_logs_in(server, connect, certs) -> None:
    """NickServ CERT ADD (of the certificate one is connected with), CERT LIST; then a new
    connection with that certificate logs in with SASL EXTERNAL during registration (900,
    903) and WHOIS shows the account; an authzid naming the account works too."""
    two = certs["two"]
    owner = connect("certowner", cert=two)
    register_account(owner)
    owner.send("NS CERT ADD")
    owner.expect(rf"NOTICE certowner :Added certificate fingerprint {two.certfp} to certowner$")
    owner.send("NS CERT LIST")
    owner.expect(rf"NOTICE certowner :Certificate fingerprint: {two.certfp}$")

    back = connect("returning", cert=two, register=False)
    assert " 900 " in sasl_external(back)
    back.expect(r" 903 \* :SASL authentication successful")
    back.send("CAP END")
    back.register("returning")
    watcher = elsewhere(server, back, lambda nick: connect("x" + nick, tls=False))
    watcher.send("WHOIS returning")
    watcher.expect(rf" 330 {watcher.nick} returning certowner :is logged in as$")

    named = connect("named", cert=two, register=False)
    assert " 900 " in sasl_external(named, authzid="CertOwner")


def test_sasl_external_fails_with_a_wrong_cert_none_or_another_authzid(
    server, connect, certs
) -> None:
    """904 for a certificate no account holds, for a connection without one (TLS or not),
    and for an authzid naming an account that does not hold the certificate; after each,
    the client can still register, logged in to nothing."""
    four, three = certs["four"], certs["three"]
    owner = connect("fpowner")  # (naming a fingerprint needs no certificate)
    register_account(owner)
    colons = ":".join(four.certfp[i : i + 2] for i in range(0, 64, 2)).upper()
    owner.send("NS CERT ADD " + colons)  # as openssl prints it: stored lowercase, bare
    owner.expect(rf"NOTICE fpowner :Added certificate fingerprint {four.certfp} to fpowner$")

    for nick, client in (
        ("wrongcert", connect("wrongcert", cert=three, register=False)),
        ("nocert", connect("nocert", register=False)),
        ("plain", connect("plain", tls=False, register=False)),
    ):
        assert " 904 " in sasl_external(client), nick
        client.send("CAP END")
        client.register(nick)
        client.send(f"WHOIS {nick}")
        assert not any(" 330 " in x for x in client.expect_until(rf" 318 {nick} {nick} "))
    other = connect("otherauthz", cert=four, register=False)
    assert " 904 " in sasl_external(other, authzid="wrongcert")


def test_cert_add_del_refusals(server, connect, certs) -> None:
    """CERT needs a login; a fingerprint another account holds is refused; a malformed one
    is refused; DEL removes, and SASL EXTERNAL with that certificate then fails."""
    one = certs["one"]
    anon = connect("anon", cert=one)
    anon.send("NS CERT LIST")
    anon.expect(r"NOTICE anon :You are not logged in$")

    first = connect("firstacc", cert=one)
    register_account(first)
    first.send("NS CERT ADD")
    first.expect(r"NOTICE firstacc :Added certificate fingerprint")
    second = connect("secondacc", cert=one)
    register_account(second)
    second.send("NS CERT ADD " + one.certfp)
    second.expect(r"NOTICE secondacc :That certificate fingerprint is registered to another")
    second.send("NS CERT ADD nothex")
    second.expect(r"NOTICE secondacc :A fingerprint is a SHA-256 hash")
    second.send("NS CERT DEL " + one.certfp)
    second.expect(r"NOTICE secondacc :No such certificate fingerprint on your account$")

    first.send("NS CERT DEL " + one.certfp)
    first.expect(rf"NOTICE firstacc :Removed certificate fingerprint {one.certfp} from firstacc$")
    first.send("NS CERT LIST")
    first.expect(r"NOTICE firstacc :No certificate fingerprints on firstacc$")
    gone = connect("gone", cert=one, register=False)
    assert " 904 " in sasl_external(gone)


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_certfps_survive_a_restart_and_the_cli_adds_one(
    workers: int, tmp_path: Path, certs: dict[str, ClientCert]
) -> None:
    """The store keeps an account's fingerprints (schema version 4): after a restart, SASL
    EXTERNAL still logs in; one added with ``fastchat accounts cert add`` while the server
    is stopped works at the next start."""
    import subprocess
    import sys

    one, three = certs["one"], certs["three"]
    args = ["--no-flood-control", "--tls-port", "-1", "--data-dir", str(tmp_path)]
    cafile = str(tmp_path / SELF_SIGNED_CERT)

    def tls_client(srv: process.ServerProcess, nick: str, cert: ClientCert) -> IRCClient:
        context = ssl.create_default_context(cafile=cafile)
        context.load_cert_chain(cert.cert, cert.key)
        return IRCClient(srv.host, srv.tls_port, nick, tls=context, register=nick == "keeper")

    with (
        process.running(args, workers=workers) as srv,
        tls_client(srv, "keeper", one) as keeper,
    ):
        register_account(keeper)
        keeper.send("NS CERT ADD")
        keeper.expect(r"NOTICE keeper :Added certificate fingerprint")
    cli = [sys.executable, "-m", "fastchat.cli", "accounts", "cert", "add", "keeper"]
    subprocess.run([*cli, three.certfp, "--data-dir", str(tmp_path)], check=True)
    with process.running(args, workers=workers) as srv:
        for nick, cert in (("again", one), ("cli", three)):
            with tls_client(srv, nick, cert) as client:
                assert " 900 " in sasl_external(client, authzid="keeper"), nick
