"""CertFP and SASL EXTERNAL in the pure core (issue 13), at one and two workers: NickServ
CERT ADD/DEL/LIST and its refusals (decided by the sequencer: one certificate, one account),
the fingerprint travelling with the user (WHOIS 276 on another worker, to the user and to
operators only), AUTHENTICATE EXTERNAL during and after registration."""

from __future__ import annotations

import base64

import pytest

from fastchat.server.network.records import E_ACCOUNTCERTS, STATE_EVENTS
from tests.unit.fakenet import FakeClient, FakeNet

NS = ":NickServ!NickServ@services. NOTICE"
FP1 = "ab" * 32
FP2 = "cd" * 32


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def notices(c: FakeClient) -> list[str]:
    return [line.split(" :", 1)[1] for line in c.lines() if line.startswith(NS)]


def with_cert(net: FakeNet, worker: int, certfp: str) -> FakeClient:
    """A connection that came over TLS with a certificate of fingerprint ``certfp`` (what
    the shell sets when the handshake is done), not registered yet."""
    c = net.connect(worker)
    c.client.secure = True
    c.client.certfp = certfp.encode()
    return c


def registered_account(net: FakeNet, nick: str, worker: int = 0, certfp: str = "") -> FakeClient:
    c = with_cert(net, worker, certfp) if certfp else net.connect(worker)
    c.register(nick)
    c.send(f"PRIVMSG NickServ :REGISTER hunter2! {nick}@example.org")
    c.lines()
    return c


def test_cert_add_list_del(net: FakeNet) -> None:
    ann = registered_account(net, "ann", certfp=FP1)
    ann.send("NS CERT ADD", f"NS CERT ADD {FP2.upper()}", "NS CERT LIST")
    assert notices(ann) == [
        f"Added certificate fingerprint {FP1} to ann",
        f"Added certificate fingerprint {FP2} to ann",
        f"Certificate fingerprint: {FP1}",
        f"Certificate fingerprint: {FP2}",
    ]
    for core in net.cores:
        assert core.state.accounts[b"ann"].certfps == (FP1.encode(), FP2.encode())
    ann.send(f"NS CERT DEL {FP1}", "NS CERT LIST")
    assert notices(ann) == [
        f"Removed certificate fingerprint {FP1} from ann",
        f"Certificate fingerprint: {FP2}",
    ]


def test_cert_refusals(net: FakeNet) -> None:
    anon = net.user("anon", 0)
    anon.send("NS CERT LIST", "NS CERT", "NS CERT ADD")
    assert notices(anon) == [
        "You are not logged in",
        "Syntax: CERT LIST | CERT ADD [fingerprint] | CERT DEL <fingerprint>",
        "You are not logged in",
    ]
    ann = registered_account(net, "ann")
    ann.send("NS CERT ADD", "NS CERT ADD 12:34", f"NS CERT DEL {FP1}", f"NS CERT ADD {FP1}")
    ann.send(f"NS CERT ADD {FP1}")
    assert notices(ann) == [
        "Name a fingerprint: you are not connected with a certificate",
        "A fingerprint is a SHA-256 hash: 64 hexadecimal digits",
        "No such certificate fingerprint on your account",
        f"Added certificate fingerprint {FP1} to ann",
        "That certificate fingerprint is already yours",
    ]
    bob = registered_account(net, "bob", net.last)
    bob.send(f"NS CERT ADD {FP1}")
    assert notices(bob) == ["That certificate fingerprint is registered to another account"]
    assert net.cores[net.last].state.accounts[b"bob"].certfps == ()


def test_certfp_travels_with_the_user_to_whois(net: FakeNet) -> None:
    """276 on every worker, to the user itself and to operators only; a client without a
    certificate has none."""
    ann = with_cert(net, 0, FP1)
    ann.register("ann")
    ann.send("WHOIS ann")
    assert any(f" 276 ann ann :has client certificate fingerprint {FP1}" in x for x in ann.lines())
    bob = net.user("bob", net.last)
    bob.send("WHOIS ann")
    assert not any(" 276 " in x for x in bob.lines())
    for core in net.cores:
        assert core.state.users[ann.client.uid].certfp == FP1.encode()
    assert all(u.certfp == b"" for u in net.cores[0].state.users.values() if u.nick == b"bob")


def sasl_external(c: FakeClient, authzid: str = "") -> list[str]:
    c.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE EXTERNAL")
    assert "AUTHENTICATE +" in c.lines()
    c.send("AUTHENTICATE " + (base64.b64encode(authzid.encode()).decode() or "+"))
    return c.lines()


def test_sasl_external_during_and_after_registration(net: FakeNet) -> None:
    owner = registered_account(net, "owner", certfp=FP1)
    owner.send("NS CERT ADD")
    assert notices(owner) == [f"Added certificate fingerprint {FP1} to owner"]

    back = with_cert(net, net.last, FP1)
    replies = sasl_external(back)
    assert any(" 900 * " in x and "You are now logged in as owner" in x for x in replies)
    assert any(" 903 * :SASL authentication successful" in x for x in replies)
    back.send("NICK back", "USER b 0 * :b", "CAP END")
    back.lines()
    assert net.cores[0].state.users[back.client.uid].account == b"owner"

    named = with_cert(net, 0, FP1)
    assert any(" 903 " in x for x in sasl_external(named, "OWNER"))

    late = with_cert(net, net.last, FP1)
    late.register("late")
    late.send("CAP REQ :sasl", "AUTHENTICATE EXTERNAL", "AUTHENTICATE +")
    lines = late.lines()
    assert any(" 900 late " in x for x in lines) and any(" 903 late " in x for x in lines)


@pytest.mark.parametrize(
    ("certfp", "authzid"),
    [("", ""), (FP2, ""), (FP1, "someone"), (FP1, "not base64!")],
    ids=["no-cert", "unknown-cert", "other-authzid", "bad-base64"],
)
def test_sasl_external_failures(net: FakeNet, certfp: str, authzid: str) -> None:
    owner = registered_account(net, "owner", certfp=FP1)
    owner.send("NS CERT ADD")
    c = with_cert(net, net.last, certfp) if certfp else net.connect(net.last)
    c.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE EXTERNAL")
    c.lines()
    encoded = authzid if authzid == "not base64!" else base64.b64encode(authzid.encode()).decode()
    c.send("AUTHENTICATE " + (encoded or "+"))
    (fail,) = [x for x in c.lines() if " 90" in x]
    assert " 904 * :SASL authentication failed" in fail
    assert not c.client.account


def test_a_change_of_fingerprints_is_state() -> None:
    """Every worker and the hub apply E_ACCOUNTCERTS (and the store keeps it)."""
    assert E_ACCOUNTCERTS in STATE_EVENTS
