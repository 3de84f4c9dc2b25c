"""Accounts (issue 12) in the pure core, at one and two workers: draft/account-registration
REGISTER, SASL PLAIN during and after registration, and what a login shows: WHOIS 330, the
account tag, account-notify, extended-join. The sequencer decides; every worker agrees."""

from __future__ import annotations

import base64

import pytest

from tests.unit.fakenet import FakeClient, FakeNet, tags_of
from tests.unit.test_scram import Client as ScramClient

SRV = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def registered_account(net: FakeNet, name: str = "ann", password: str = "hunter2!") -> FakeClient:
    c = net.negotiated(0, name, "draft/account-registration")
    c.send(f"REGISTER * {name}@example.org {password}")
    return c


def sasl_login(net: FakeNet, worker: int, nick: str, account: str, password: str) -> FakeClient:
    c = net.connect(worker)
    c.send("CAP LS 302", "CAP REQ :sasl", f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    c.lines()
    c.send("AUTHENTICATE PLAIN")
    assert c.lines() == ["AUTHENTICATE +"]
    c.send("AUTHENTICATE " + plain(account, password))
    return c


def test_register_creates_the_account_and_logs_in(net: FakeNet) -> None:
    ann = registered_account(net)
    assert ann.lines() == [
        f"{SRV} REGISTER SUCCESS ann :Account created",
        f"{SRV} 900 ann ann!~ann@10.0.0.1 ann :You are now logged in as ann",
    ]
    for core in net.cores:
        assert b"ann" in core.state.accounts and core.state.users[ann.client.uid].account == b"ann"


def test_register_refusals(net: FakeNet) -> None:
    registered_account(net).lines()
    bob = net.negotiated(net.last, "bob")
    bob.send("REGISTER ann * longenough", "REGISTER bob * shrt", "REGISTER 1bad * longenough")
    bob.send("REGISTER bob not-an-email longenough")
    assert bob.lines() == [
        f"{SRV} FAIL REGISTER ACCOUNT_EXISTS ann :Account already exists",
        f"{SRV} FAIL REGISTER WEAK_PASSWORD bob :A password needs at least 6 bytes",
        f"{SRV} FAIL REGISTER BAD_ACCOUNT_NAME 1bad :Account names follow the nick rules",
        f"{SRV} FAIL REGISTER INVALID_EMAIL bob :That is not an email address",
    ]
    ann2 = net.connect(0)
    ann2.send("REGISTER x * longenough")
    assert ann2.lines() == [
        f"{SRV} FAIL REGISTER COMPLETE_CONNECTION_REQUIRED * "
        ":Finish connecting before registering an account"
    ]


def test_two_registrations_of_one_name_at_once_one_wins() -> None:
    """Both workers' replicas say the name is free; the sequencer decides: one is created,
    the other gets FAIL ACCOUNT_EXISTS."""
    net = FakeNet(workers=2, autojoin=())
    a = net.negotiated(0, "a1", "draft/account-registration")
    b = net.negotiated(1, "b1", "draft/account-registration")
    net.hold_checks = True
    a.send("REGISTER same * longenough")
    b.send("REGISTER same * longenough")
    net.hold_checks = False
    net.pump()
    got = a.lines() + b.lines()
    assert sum("REGISTER SUCCESS same" in x for x in got) == 1
    assert sum("FAIL REGISTER ACCOUNT_EXISTS same" in x for x in got) == 1


def test_sasl_plain_during_registration(net: FakeNet) -> None:
    registered_account(net).send("QUIT")
    c = sasl_login(net, net.last, "annie", "ann", "hunter2!")
    assert c.lines() == [
        f"{SRV} 900 annie annie!~annie@10.0.0.{net.last + 1} ann :You are now logged in as ann",
        f"{SRV} 903 annie :SASL authentication successful",
    ]
    c.send("CAP END")
    assert any(" 001 annie " in x for x in c.lines())
    for core in net.cores:
        assert core.state.users[c.client.uid].account == b"ann"
    w = net.negotiated(0, "w")
    w.send("WHOIS annie")
    assert f"{SRV} 330 w annie ann :is logged in as" in w.lines()


@pytest.mark.parametrize("password", ["hunter2!", "wrong-one"])
def test_sasl_scram_sha_256(net: FakeNet, password: str) -> None:
    """RFC 7677 through AUTHENTICATE, on the last worker (the account was made on the first):
    the server's first message, its signature after the right proof, then 900 and 903 once
    the client says ``+``; a wrong proof gets 904 at once; after either, a new exchange
    starts afresh."""
    registered_account(net).lines()
    c = net.connect(net.last)
    c.send("CAP LS 302", "CAP REQ :sasl", "NICK sc", "USER sc 0 * :sc")
    c.lines()
    client = ScramClient(b"ann", password.encode())
    c.send("AUTHENTICATE SCRAM-SHA-256")
    assert c.lines() == ["AUTHENTICATE +"]
    c.send("AUTHENTICATE " + base64.b64encode(client.first()).decode())
    (first,) = c.lines()
    server_first = base64.b64decode(first.split(" ")[1])
    c.send("AUTHENTICATE " + base64.b64encode(client.final(server_first)).decode())
    if password != "hunter2!":
        assert c.lines() == [f"{SRV} 904 sc :SASL authentication failed"]
    else:
        (final,) = c.lines()
        assert client.verifies(base64.b64decode(final.split(" ")[1]))
        c.send("AUTHENTICATE +")
        assert c.lines() == [
            f"{SRV} 900 sc sc!~sc@{c.client.ip.decode()} ann :You are now logged in as ann",
            f"{SRV} 903 sc :SASL authentication successful",
        ]
    assert c.client.sasl_state is None


def test_sasl_failures(net: FakeNet) -> None:
    registered_account(net).lines()
    bad = sasl_login(net, net.last, "x1", "ann", "wrong-password")
    assert bad.lines() == [f"{SRV} 904 x1 :SASL authentication failed"]
    nobody = sasl_login(net, net.last, "x2", "nobody", "whatever1")
    assert nobody.lines() == [f"{SRV} 904 x2 :SASL authentication failed"]
    c = net.connect(0)
    c.send("CAP REQ :sasl", "NICK x3", "USER x 0 * :x", "AUTHENTICATE SCRAM-SHA-1")
    assert c.lines()[-2:] == [
        f"{SRV} 908 x3 PLAIN,EXTERNAL,SCRAM-SHA-256 :are available SASL mechanisms",
        f"{SRV} 904 x3 :SASL authentication failed",
    ]
    c.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert c.lines() == ["AUTHENTICATE +", f"{SRV} 906 x3 :SASL authentication aborted"]
    c.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + "A" * 401)
    assert c.lines() == ["AUTHENTICATE +", f"{SRV} 905 x3 :SASL message too long"]
    c.send("AUTHENTICATE PLAIN", "AUTHENTICATE !!notbase64")
    assert c.lines() == ["AUTHENTICATE +", f"{SRV} 904 x3 :SASL authentication failed"]


def test_sasl_after_registration_and_again(net: FakeNet) -> None:
    """SASL after registration; then again (SASL 3.2 reauthentication): to the same account
    it is answered and changes nothing, to another the new one replaces it everywhere, and
    a failure keeps the one it has."""
    registered_account(net).lines()
    bob = net.negotiated(0, "bob", "draft/account-registration")
    bob.send("REGISTER bob * bob-secret")
    late = net.negotiated(net.last, "late", "sasl", "account-notify")
    late.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("ann", "hunter2!"))
    me = f"late!~late@10.0.0.{net.last + 1}"
    assert late.lines() == [
        "AUTHENTICATE +",
        f"{SRV} 900 late {me} ann :You are now logged in as ann",
        f"{SRV} 903 late :SASL authentication successful",
        f":{me} ACCOUNT ann",
    ]
    late.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("ann", "hunter2!"))
    assert late.lines() == [
        "AUTHENTICATE +",
        f"{SRV} 900 late {me} ann :You are now logged in as ann",
        f"{SRV} 903 late :SASL authentication successful",
    ]
    late.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("bob", "wrong-one"))
    assert late.lines() == ["AUTHENTICATE +", f"{SRV} 904 late :SASL authentication failed"]
    late.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("bob", "bob-secret"))
    assert late.lines() == [
        "AUTHENTICATE +",
        f"{SRV} 900 late {me} bob :You are now logged in as bob",
        f"{SRV} 903 late :SASL authentication successful",
        f":{me} ACCOUNT bob",
    ]
    assert all(core.state.users[late.client.uid].account == b"bob" for core in net.cores)


def test_what_a_login_shows_to_others(net: FakeNet) -> None:
    """account-tag on its messages, account-notify to peers, extended-join's account."""
    watcher = net.negotiated(net.last, "watcher", "account-tag", "account-notify", "extended-join")
    watcher.send("JOIN #c")
    ann = net.negotiated(0, "ann", "draft/account-registration")
    ann.send("JOIN #c")
    watcher.lines()
    ann.send("REGISTER * * hunter2!!")
    assert watcher.lines() == ["@account=ann :ann!~ann@10.0.0.1 ACCOUNT ann"]
    ann.send("PRIVMSG #c :hello")
    (line,) = watcher.raw_lines()
    assert tags_of(line)[b"account"] == b"ann"
    ann.send("PART #c", "JOIN #c")
    assert watcher.lines()[-1] == "@account=ann :ann!~ann@10.0.0.1 JOIN #c ann :ann"


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_register_before_connecting(workers: int) -> None:
    """With ``register_before_connect`` (CAP value ``before-connect``), a connection may
    REGISTER before it registers itself, and is logged in to the account when it does; a
    nick someone else is using cannot be registered from under them (no land grabs); with
    ``register_requires_email`` an address is needed."""
    net = FakeNet(workers=workers, autojoin=(), register_before_connect=True)
    holder = net.negotiated(net.last, "root")
    c = net.connect(0)
    c.send("CAP LS 302", "CAP REQ :draft/account-registration", "NICK root")
    first = c.lines()
    assert "draft/account-registration=custom-account-name,before-connect" in first[0]
    assert first[-1].startswith(f"{SRV} 433 * root ")
    # REGISTER * names the nick asked for, though refused (irctest RegisterNoLandGrabs)
    c.send("REGISTER * * longenough")
    assert c.lines() == [f"{SRV} FAIL REGISTER ACCOUNT_EXISTS root :Account already exists"]
    c.send("REGISTER root * longenough", "NICK early", "REGISTER * * longenough")
    assert c.lines() == [
        f"{SRV} FAIL REGISTER ACCOUNT_EXISTS root :Account already exists",
        f"{SRV} REGISTER SUCCESS early :Account created",
        f"{SRV} 900 early early!*@10.0.0.1 early :You are now logged in as early",
    ]
    c.send("USER e 0 * :e", "CAP END")
    for core in net.cores:
        assert core.state.users[c.client.uid].account == b"early"
    del holder
    strict = FakeNet(workers=workers, autojoin=(), register_requires_email=True)
    d = strict.negotiated(0, "dee", "draft/account-registration")
    d.send("REGISTER * * longenough")
    assert d.lines() == [f"{SRV} FAIL REGISTER INVALID_EMAIL dee :An email address is required"]
