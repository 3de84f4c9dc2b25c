"""NickServ (issue 12) in the pure core, at one and two workers: REGISTER, IDENTIFY, INFO,
DROP, GHOST, HELP and their refusals; the reserved nick; nick protection (warn, rename after
the grace period, decided by the sequencer)."""

from __future__ import annotations

import pytest

from fastchat.server.config import OperBlock
from fastchat.server.network.records import RLogin, RPassword, RProtect, make
from fastchat.server.passwords import hash_password
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
NS = ":NickServ!NickServ@services. NOTICE"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def notices(c: FakeClient) -> list[str]:
    """The NickServ notices ``c`` received since last asked, their text only."""
    return [line.split(" :", 1)[1] for line in c.lines() if line.startswith(NS)]


def gone(c: FakeClient) -> None:
    """``c`` quits and its connection closes (as the shell would close it)."""
    c.send("QUIT")
    c.core.connection_lost(c.client, b"Client quit", c.net.now)
    c.net.pump()


def ns_registered(net: FakeNet, nick: str = "ann", worker: int = 0) -> FakeClient:
    c = net.user(nick, worker)
    c.send("PRIVMSG NickServ :REGISTER hunter2! ann@example.org")
    return c


def test_register_creates_the_account_and_logs_in(net: FakeNet) -> None:
    ann = ns_registered(net)
    assert ann.lines() == [
        f"{NS} ann :Account ann registered",
        f"{SRV} 900 ann ann!~ann@10.0.0.1 ann :You are now logged in as ann",
        f"{NS} ann :You are now logged in as ann",
    ]
    for core in net.cores:
        assert core.state.accounts[b"ann"].email == b"ann@example.org"
        assert core.state.users[ann.client.uid].account == b"ann"


def test_register_refusals_are_notices(net: FakeNet) -> None:
    ann = ns_registered(net)
    ann.lines()
    ann.send("NS REGISTER another1")  # the NS alias; logged in already
    bob = net.user("bob", net.last)
    bob.send("PRIVMSG NickServ :REGISTER shrt", "PRIVMSG NickServ :REGISTER")
    bob.send("PRIVMSG nickserv :REGISTER longenough not-an-email")
    assert notices(ann) == ["You are already logged in"]
    assert notices(bob) == [
        "A password needs at least 6 bytes",
        "Syntax: REGISTER <password> [email]",
        "That is not an email address",
    ]
    assert b"bob" not in net.cores[0].state.accounts


def test_identify_from_another_connection(net: FakeNet) -> None:
    ns_registered(net).lines()
    other = net.user("other", net.last)
    other.send("PRIVMSG NickServ :IDENTIFY ann wrongpass")
    assert notices(other) == ["Invalid account credentials"]
    other.send("PRIVMSG NickServ :IDENTIFY nobody hunter2!")
    assert notices(other) == ["Invalid account credentials"]
    other.send("PRIVMSG NickServ :IDENTIFY ann hunter2!")
    assert other.lines() == [
        f"{SRV} 900 other other!~other@10.0.0.{net.last + 1} ann :You are now logged in as ann",
        f"{NS} other :You are now logged in as ann",
    ]
    assert net.cores[0].state.users[other.client.uid].account == b"ann"
    other.send("PRIVMSG NickServ :IDENTIFY ann hunter2!")
    assert notices(other) == ["You are already logged in as ann"]


def test_identify_with_the_nick_as_account(net: FakeNet) -> None:
    gone(ns_registered(net))
    ann2 = net.user("ann", net.last)
    ann2.send("PRIVMSG NickServ :identify hunter2!")
    assert "You are now logged in as ann" in notices(ann2)


def test_info(net: FakeNet) -> None:
    ann = ns_registered(net)
    ann.lines()
    bob = net.user("bob", net.last)
    bob.send("PRIVMSG NickServ :INFO ann", "PRIVMSG NickServ :INFO nobody")
    assert notices(bob) == [
        "Account: ann",
        "Registered: 1970-01-12T13:46:40.000Z",
        "Logged in now: ann",
        "Account nobody is not registered",
    ]
    ann.send("PRIVMSG NickServ :INFO")  # one's own: the email too
    assert notices(ann)[2] == "Email: ann@example.org"


def test_drop_logs_everyone_out_and_forgets_the_account(net: FakeNet) -> None:
    ann = ns_registered(net)
    ann.lines()
    other = net.negotiated(net.last, "other", "account-notify")
    other.send("JOIN #x")
    ann.send("JOIN #x")
    other.send("PRIVMSG NickServ :IDENTIFY ann hunter2!")
    other.lines()
    ann.send("PRIVMSG NickServ :DROP wrongpass")
    assert notices(ann) == ["Invalid password"]
    ann.send("PRIVMSG NickServ :DROP bob hunter2!")
    assert notices(ann) == ["You can only drop your own account"]
    ann.send("PRIVMSG NickServ :DROP hunter2!")
    assert notices(ann) == ["Account ann has been dropped"]
    assert other.lines() == [
        ":ann!~ann@10.0.0.1 ACCOUNT *",
        f":other!~other@10.0.0.{net.last + 1} ACCOUNT *",
    ]
    for core in net.cores:
        assert b"ann" not in core.state.accounts
        assert core.state.users[ann.client.uid].account is None
        assert core.state.users[other.client.uid].account is None
    bob = net.user("bob")
    bob.send("PRIVMSG NickServ :DROP hunter2!")
    assert notices(bob) == ["You are not logged in"]


def test_passwd_changes_the_password_everywhere(net: FakeNet) -> None:
    ann = ns_registered(net)
    ann.lines()
    ann.send("PRIVMSG NickServ :PASSWD wrongpass newsecret1")
    assert notices(ann) == ["Invalid password"]
    ann.send(
        "PRIVMSG NickServ :PASSWD hunter2!",
        "PRIVMSG NickServ :PASSWD hunter2! newsecret1 newsecret2",
        "PRIVMSG NickServ :PASSWD hunter2! short",
    )
    assert notices(ann) == [
        "Syntax: PASSWD <current password> <new password> [new password]",
        "The new passwords do not match",
        "A password needs at least 6 bytes",
    ]
    old = net.cores[0].state.accounts[b"ann"].password_hash
    ann.send("PRIVMSG NickServ :PASSWD hunter2! newsecret1 newsecret1")
    assert notices(ann) == ["Password changed for ann"]
    hashes = {core.state.accounts[b"ann"].password_hash for core in net.cores}
    assert len(hashes) == 1 and old not in hashes  # the same new hash in every replica
    assert net.cores[0].state.users[ann.client.uid].account == b"ann"  # still logged in
    other = net.user("other", net.last)
    other.send("PRIVMSG NickServ :IDENTIFY ann hunter2!")
    assert notices(other) == ["Invalid account credentials"]
    other.send("PRIVMSG NickServ :IDENTIFY ann newsecret1")
    assert notices(other) == ["You are now logged in as ann"]
    bob = net.user("bob")
    bob.send("PRIVMSG NickServ :PASSWD hunter2! newsecret1")
    assert notices(bob) == ["You are not logged in"]


def test_passwd_is_decided_by_the_sequencer() -> None:
    """A worker's PASSWD request changes nothing unless its asker is logged in to that
    account when the sequencer decides it (another connection may have dropped the account
    while the passwords were checked)."""
    net = FakeNet(workers=2, autojoin=())
    ann = ns_registered(net)
    ann.lines()
    bob = net.user("bob", net.last)
    before = net.cores[0].state.accounts[b"ann"].password_hash
    net.sequencer.handle(net.last, make(RPassword, bob.client.uid, b"ann", b"scrypt$forged"), 0)
    net.sequencer.handle(ann.worker, make(RPassword, ann.client.uid, b"zed", b"scrypt$x"), 0)
    net.pump()
    assert notices(bob) == ["You are not logged in to ann"]
    assert notices(ann) == ["You are not logged in to zed"]
    assert all(c.state.accounts[b"ann"].password_hash == before for c in net.cores)


@pytest.mark.parametrize("workers", [1, 2])
def test_saset_password_by_an_operator_with_the_privilege(workers: int) -> None:
    """NickServ SASET <account> PASSWORD <new>: an IRC operator with ``accounts`` resets any
    account's password without the old one; others get 481; an unknown account a notice."""
    opers = (
        OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"accounts"})),
        OperBlock(b"helper", hash_password(b"help", n=16), (b"*@*",), frozenset({"wallops"})),
    )
    net = FakeNet(workers=workers, autojoin=(), opers=opers)
    ns_registered(net).lines()
    ada = net.user("ada", net.last)
    ada.send("PRIVMSG NickServ :SASET ann PASSWORD reset-pass1")
    assert ada.lines() == [f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"]
    ada.send("OPER helper help", "PRIVMSG NickServ :SASET ann PASSWORD reset-pass1")
    assert ada.lines()[-1] == f"{SRV} 481 ada :Permission Denied- You're not an IRC operator"
    ada.send("OPER admin secret")
    ada.lines()
    ada.send(
        "PRIVMSG NickServ :SASET ann PASSWORD short",
        "PRIVMSG NickServ :SASET nobody PASSWORD reset-pass1",
        "PRIVMSG NickServ :SASET ann PASSWORD reset-pass1",
    )
    assert notices(ada) == [
        "A password needs at least 6 bytes",
        "Account nobody does not exist",
        "Password changed for ann",
    ]
    other = net.user("other", 0)
    other.send("PRIVMSG NickServ :IDENTIFY ann reset-pass1")
    assert notices(other) == ["You are now logged in as ann"]


def test_ghost(net: FakeNet) -> None:
    ann = ns_registered(net)
    ann.send("NICK ann_away")
    ann.lines()
    ghost = net.user("ann", net.last)  # warned: ann is registered
    bob = net.user("bob", net.last)
    ann.send("PRIVMSG NickServ :GHOST bob", "PRIVMSG NickServ :GHOST nobody")
    assert notices(ann) == ["The nick bob is not yours", "No one is using the nick nobody"]
    ann.send("PRIVMSG NickServ :GHOST ann")
    assert notices(ann) == ["ann has been ghosted"]
    assert b"ann" not in net.cores[0].state.nicks and ghost.client.closed
    bob.send("PRIVMSG NickServ :GHOST ann_away")
    assert notices(bob) == ["You are not logged in"]


def test_help_and_unknown(net: FakeNet) -> None:
    bob = net.user("bob")
    bob.send("PRIVMSG NickServ :HELP")
    assert notices(bob)[1].startswith("REGISTER <password> [email]")
    bob.send("PRIVMSG NickServ :FROB", "NOTICE NickServ :HELP")
    assert notices(bob) == ["Unknown command FROB. Send HELP for a list of commands"]


def test_echo_message_clients_see_their_line(net: FakeNet) -> None:
    bob = net.negotiated(0, "bob", "echo-message")
    bob.send("PRIVMSG NickServ :INFO nobody")
    assert bob.lines() == [
        ":bob!~bob@10.0.0.1 PRIVMSG NickServ :INFO nobody",
        f"{NS} bob :Account nobody is not registered",
    ]


def test_the_nick_is_reserved_and_shows_in_whois(net: FakeNet) -> None:
    bob = net.user("bob")
    bob.send("NICK nickserv")
    assert bob.lines() == [f"{SRV} 433 bob nickserv :Nickname is reserved for services"]
    bob.send("REGISTER NickServ * longenough")
    assert bob.lines() == [f"{SRV} FAIL REGISTER ACCOUNT_EXISTS NickServ :Account already exists"]
    c = net.connect(0)
    c.send("NICK NickServ")
    assert c.lines() == [f"{SRV} 433 * NickServ :Nickname is reserved for services"]
    bob.send("WHOIS NickServ")
    assert bob.lines() == [
        f"{SRV} 311 bob NickServ NickServ services. * :Nickname services",
        f"{SRV} 312 bob NickServ fastchat.local :fastchat IRC server",
        f"{SRV} 313 bob NickServ :is a network service",
        f"{SRV} 318 bob NickServ :End of /WHOIS list.",
    ]


# -- nick protection ----------------------------------------------------------------------------
WARNING = "This nick is registered: if it is yours, send /msg NickServ IDENTIFY <password>"


def arrives(net: FakeNet, nick: str) -> tuple[FakeClient, list[str]]:
    """A client that registers with ``nick`` on the last worker, and its NickServ notices."""
    c = net.connect(net.last)
    return c, [x.split(" :", 1)[1] for x in c.register(nick) if x.startswith(NS)]


def tick(net: FakeNet, seconds: float) -> None:
    net.now += seconds
    for core in net.cores:
        core.tick(net.now)
    net.pump()


def test_warn_on_registration_and_nick_change(net: FakeNet) -> None:
    gone(ns_registered(net))
    c, told = arrives(net, "ann")
    assert told == [WARNING]
    bob = net.user("bob")
    bob.send("NICK ANN_")
    bob.send("NICK Ann")
    assert notices(bob) == []  # ann is taken
    gone(c)
    bob.send("NICK Ann")
    assert notices(bob) == [WARNING]
    tick(net, 60)  # warn only: never renamed
    assert net.cores[0].state.users[bob.client.uid].nick == b"Ann"


def test_no_warning_when_logged_in_or_off() -> None:
    net = FakeNet(workers=1, autojoin=(), nick_protection="off")
    gone(ns_registered(net))
    assert arrives(net, "ann")[1] == []
    net = FakeNet(workers=2, autojoin=())
    ann = ns_registered(net)
    ann.send("NICK other", "NICK ann")
    assert notices(ann) == ["Account ann registered", "You are now logged in as ann"]


@pytest.mark.parametrize("workers", [1, 2])
def test_rename_after_the_grace_period(workers: int) -> None:
    net = FakeNet(workers=workers, autojoin=(), nick_protection="rename")
    gone(ns_registered(net))
    c, told = arrives(net, "ann")
    assert told == [WARNING + "; otherwise it will be changed in 30 seconds"]
    tick(net, 29)
    assert net.cores[0].state.users[c.client.uid].nick == b"ann"
    tick(net, 2)
    guest = b"Guest%05d" % (c.client.uid % 100000)
    for core in net.cores:
        assert core.state.users[c.client.uid].nick == guest
    assert c.lines() == [f":ann!~ann@10.0.0.{net.last + 1} NICK :{guest.decode()}"]


@pytest.mark.parametrize("workers", [1, 2])
def test_identified_in_time_is_not_renamed(workers: int) -> None:
    net = FakeNet(workers=workers, autojoin=(), nick_protection="rename")
    gone(ns_registered(net))
    c = net.user("ann", net.last)
    c.send("PRIVMSG NickServ :IDENTIFY hunter2!")
    tick(net, 31)
    assert net.cores[0].state.users[c.client.uid].nick == b"ann"


def test_the_sequencer_decides_the_rename() -> None:
    """The worker asked for the rename, but the user logged in meanwhile (its worker had not
    applied it yet): the sequencer's truth wins, no rename."""
    net = FakeNet(workers=2, autojoin=(), nick_protection="rename")
    gone(ns_registered(net))
    c = net.user("ann", 1)
    net.sequencer.handle(1, make(RLogin, c.client.uid, b"ann", b"nickserv"), 0)
    net.sequencer.handle(1, make(RProtect, c.client.uid, b"ann"), 0)
    net.pump()
    assert net.cores[0].state.users[c.client.uid].nick == b"ann"
