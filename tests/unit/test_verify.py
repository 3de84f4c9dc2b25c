"""Email verification (draft/account-registration ``VERIFY``, ``register_verify``) in the pure
core, at one and two workers: REGISTER answers VERIFICATION_REQUIRED and the code goes to
the mail pool (here, :attr:`FakeNet.mailbox`), or to the log without an SMTP server; VERIFY
with it logs in; a wrong code, a registration expired, a mail that could not be sent. The
sequencer draws the code and decides; every worker agrees. No sockets.

The spec (https://ircv3.net/specs/extensions/account-registration): "REGISTER
VERIFICATION_REQUIRED <account> <message>: Sent by the server as a response to REGISTER when
further action is required to complete registration of the <account>"; "VERIFY SUCCESS
<account> <message>: Sent by the server when the ... VERIFY fully succeeded ... Afterward, the
client is assumed to be authenticated to the <account> as if it used SASL"; "FAIL VERIFY
INVALID_CODE <account> <message>: ... if the <code> in the VERIFY command is invalid or
expired".
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from fastchat.server import config
from fastchat.server.commands.context import MailOutcome
from fastchat.server.config import Config
from fastchat.server.engine.offload import VerificationMail
from fastchat.server.network.records import EAccount, EAccountDrop, EAccountVerify, make
from fastchat.server.network.state import VERIFY_TIMEOUT_MS, Account, State
from fastchat.server.runtime import mailer
from fastchat.server.runtime.storage import Storage
from fastchat.server.store import db, reader, schema
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
REQUIRED = "REGISTER VERIFICATION_REQUIRED {name} :Account created, pending verification: "
SENT = REQUIRED + "a code was sent to {email}"
LOGGED = REQUIRED + "ask the server's operators for its code"
INVALID = "FAIL VERIFY INVALID_CODE {name} :Invalid or expired verification code"


def verifying(workers: int, **config: object) -> FakeNet:
    """A network with email verification, mailing through an SMTP server (never reached:
    the FakeNet's mail pool keeps the mails)."""
    config.setdefault("smtp_server", ("mail.test", 25))
    return FakeNet(workers=workers, autojoin=(), register_verify=True, **config)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return verifying(request.param)


def register(net: FakeNet, nick: str = "ann", email: str = "ann@example.org") -> FakeClient:
    c = net.negotiated(0, nick, "draft/account-registration")
    c.send(f"REGISTER * {email} hunter2!")
    return c


def sasl(net: FakeNet, nick: str, account: str, password: str) -> list[str]:
    c = net.connect(net.last)
    c.send("CAP REQ :sasl", f"NICK {nick}", f"USER {nick} 0 * :{nick}", "AUTHENTICATE PLAIN")
    c.lines()
    c.send("AUTHENTICATE " + base64.b64encode(f"\0{account}\0{password}".encode()).decode())
    return c.lines()


def test_register_requires_verification_and_verify_logs_in(net: FakeNet) -> None:
    ann = register(net)
    assert ann.lines() == [f"{SRV} " + SENT.format(name="ann", email="ann@example.org")]
    (mail,) = net.mailbox
    assert (mail.to, mail.account) == (b"ann@example.org", b"ann")
    code = mail.code.decode()
    assert len(code) == 32 and int(code, 16) >= 0  # 128 bits, drawn by the sequencer
    sequencer = [net.state] if len(net.cores) > 1 else []  # (at 1 worker: the core's)
    for state in [*sequencer, *(core.state for core in net.cores)]:
        assert b"ann" not in state.accounts  # not an account yet: the same code everywhere
        assert state.pending[b"ann"].code == mail.code
    ann.send("VERIFY ann " + "0" * 32)
    assert ann.lines() == [f"{SRV} " + INVALID.format(name="ann")]
    ann.send(f"VERIFY ann {code}")
    assert ann.lines() == [
        f"{SRV} VERIFY SUCCESS ann :Account verified",
        f"{SRV} 900 ann ann!~ann@10.0.0.1 ann :You are now logged in as ann",
    ]
    for core in net.cores:
        assert b"ann" in core.state.accounts and b"ann" not in core.state.pending
        assert core.state.users[ann.client.uid].account == b"ann"
    ann.send(f"VERIFY ann {code}")  # logged in now
    assert ann.lines() == [
        f"{SRV} FAIL VERIFY ALREADY_AUTHENTICATED ann :You are already logged in"
    ]
    assert sasl(net, "later", "ann", "hunter2!")[-1].endswith("SASL authentication successful")


def test_an_account_awaiting_verification_is_unusable_and_its_name_taken(net: FakeNet) -> None:
    """ "the account exists but unverified": no SASL, no IDENTIFY, no second registration of
    its name (on any worker), no code for a name that awaits none."""
    register(net).lines()
    assert sasl(net, "x1", "ann", "hunter2!") == [f"{SRV} 904 x1 :SASL authentication failed"]
    bob = net.negotiated(net.last, "bob", "draft/account-registration")
    bob.send("REGISTER ann bob@example.org longenough", "NS IDENTIFY ann hunter2!")
    assert bob.lines() == [
        f"{SRV} FAIL REGISTER ACCOUNT_EXISTS ann :Account already exists",
        ":NickServ!NickServ@services. NOTICE bob :Invalid account credentials",
    ]
    bob.send("VERIFY bob " + net.mailbox[0].code.decode())  # another name's code
    assert bob.lines() == [f"{SRV} " + INVALID.format(name="bob")]
    assert len(net.mailbox) == 1


def test_the_code_is_the_proof_whoever_sends_it(net: FakeNet) -> None:
    """As in Ergo: VERIFY logs in the connection that sends the right code, not only the
    one that registered (the registrant may read its mail after reconnecting)."""
    register(net).send("QUIT")
    other = net.negotiated(net.last, "other")
    other.send(f"VERIFY ann {net.mailbox[0].code.decode()}")
    ip = f"10.0.0.{net.last + 1}"
    assert other.lines() == [
        f"{SRV} VERIFY SUCCESS ann :Account verified",
        f"{SRV} 900 other other!~other@{ip} ann :You are now logged in as ann",
    ]


def test_an_email_is_required() -> None:
    """Verification needs an address to mail: the capability says ``email-required`` and a
    REGISTER without one gets INVALID_EMAIL, as with ``register_requires_email``."""
    net = verifying(1)
    c = net.connect(0)
    c.send("CAP LS 302")
    assert "draft/account-registration=custom-account-name,email-required" in c.lines()[0]
    c.send("CAP REQ :draft/account-registration", "NICK dee", "USER d 0 * :d", "CAP END")
    c.lines()
    c.send("REGISTER * * longenough", "REGISTER * a@b,c@d longenough")
    assert c.lines() == [
        f"{SRV} FAIL REGISTER INVALID_EMAIL dee :An email address is required",
        f"{SRV} FAIL REGISTER INVALID_EMAIL dee :That is not an email address",
    ]
    assert net.mailbox == []


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_a_registration_expires_after_a_day(workers: int) -> None:
    """Unverified for VERIFY_TIMEOUT_MS (24 hours), it is forgotten: its code verifies
    nothing, and its name may be registered again (with a new code)."""
    net = verifying(workers)
    register(net).send("QUIT")  # (its nick would be its own to register)
    old = net.mailbox[0].code.decode()
    net.now += VERIFY_TIMEOUT_MS / 1000 - 1
    bob = net.negotiated(net.last, "bob", "draft/account-registration")
    bob.send("REGISTER ann bob@example.org longenough")
    assert bob.lines() == [f"{SRV} FAIL REGISTER ACCOUNT_EXISTS ann :Account already exists"]
    net.now += 1
    bob.send(f"VERIFY ann {old}")
    assert bob.lines() == [f"{SRV} " + INVALID.format(name="ann")]
    for core in net.cores:
        assert b"ann" not in core.state.pending  # dropped, from the store too
    bob.send("REGISTER ann bob@example.org longenough")
    assert bob.lines() == [f"{SRV} " + SENT.format(name="ann", email="bob@example.org")]
    assert net.mailbox[1].code != net.mailbox[0].code
    assert net.cores[0].state.pending[b"ann"].email == b"bob@example.org"


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_without_an_smtp_server_the_code_is_logged_not_sent(
    workers: int, caplog: pytest.LogCaptureFixture
) -> None:
    """For a small server, the operator reads the code in the log (WARNING) and passes it
    on; the client is never sent it."""
    net = verifying(workers, smtp_server=None)
    with caplog.at_level(logging.WARNING, logger="fastchat.core"):
        ann = register(net)
        got = ann.lines()
    assert got == [f"{SRV} " + LOGGED.format(name="ann")]
    assert net.mailbox == []
    code = net.cores[0].state.pending[b"ann"].code.decode()
    assert code in caplog.text and "awaits verification" in caplog.text
    assert not any(code in line for line in got)
    ann.send(f"VERIFY ann {code}")
    assert ann.lines()[0] == f"{SRV} VERIFY SUCCESS ann :Account verified"


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
@pytest.mark.parametrize(
    ("outcome", "reply"),
    [
        (MailOutcome.REFUSED, "INVALID_EMAIL ann :Mail to that address was refused"),
        (
            MailOutcome.FAILED,
            "TEMPORARILY_UNAVAILABLE ann :The verification mail could not be sent; try again later",
        ),
    ],
)
def test_a_mail_not_sent_frees_the_name(workers: int, outcome: MailOutcome, reply: str) -> None:
    """The spec's INVALID_EMAIL ("if it cannot send emails to the provided address") when
    the SMTP server refuses the address, TEMPORARILY_UNAVAILABLE when it cannot be used;
    either way the registration is dropped, so the registrant may try again at once."""
    net = verifying(workers)
    net.mail_outcome = outcome
    ann = register(net)
    assert ann.lines() == [f"{SRV} FAIL REGISTER " + reply]
    for core in net.cores:
        assert b"ann" not in core.state.pending and b"ann" not in core.state.accounts
    net.mail_outcome = MailOutcome.SENT
    ann.send("REGISTER * ann@example.net hunter2!")
    assert ann.lines() == [f"{SRV} " + SENT.format(name="ann", email="ann@example.net")]


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_the_registrant_waits_for_its_mail(workers: int) -> None:
    """Mailing blocks, so it runs off the loop; meanwhile the registrant's next lines wait
    (its ordering barrier), so they see the outcome. A registrant gone by then: a failed
    mail still frees the name."""
    net = verifying(workers)
    net.hold_checks = True
    bob = register(net, "bob", "bob@example.org")
    bob.send("PING :after")
    assert bob.lines() == []  # the hashing and the mail are still under way
    net.hold_checks = False
    net.pump()
    assert bob.lines() == [
        f"{SRV} " + SENT.format(name="bob", email="bob@example.org"),
        f"{SRV} PONG fastchat.local :after",
    ]

    net.hold_checks = True
    cat = register(net, "cat", "cat@example.org")
    for core in net.cores:  # the hashing only: the mail waits...
        while core.offload.checks:
            check = core.offload.checks.pop(0)
            core.offload.password_checked(check.ticket, check.run(), net.now)
    net.pump()
    assert [core.offload.mails for core in net.cores if core.offload.mails]
    cat.send("QUIT")  # ...and its registrant goes
    net.mail_outcome = MailOutcome.FAILED
    net.hold_checks = False
    net.pump()
    for core in net.cores:
        assert b"cat" not in core.state.pending


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_verify_before_connecting(workers: int) -> None:
    """With ``before-connect``, REGISTER and VERIFY before the connection registers; it is
    logged in to the account when it does. Without, VERIFY then gets
    COMPLETE_CONNECTION_REQUIRED."""
    net = verifying(workers, register_before_connect=True)
    c = net.connect(0)
    c.send("CAP LS 302", "CAP REQ :draft/account-registration", "NICK early")
    c.lines()
    c.send("REGISTER * early@example.org longenough")
    assert c.lines() == [f"{SRV} " + SENT.format(name="early", email="early@example.org")]
    c.send(f"VERIFY early {net.mailbox[0].code.decode()}")
    assert c.lines() == [
        f"{SRV} VERIFY SUCCESS early :Account verified",
        f"{SRV} 900 early early!*@10.0.0.1 early :You are now logged in as early",
    ]
    c.send("USER e 0 * :e", "CAP END")
    for core in net.cores:
        assert core.state.users[c.client.uid].account == b"early"
    late = verifying(workers).connect(0)
    late.send("NICK late", "VERIFY late 1234")
    assert late.lines() == [
        f"{SRV} FAIL VERIFY COMPLETE_CONNECTION_REQUIRED * "
        ":Finish connecting before verifying an account"
    ]


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
def test_nickserv_register_and_verify(workers: int) -> None:
    """NickServ REGISTER follows the same rules: with verification on, it waits for
    NickServ VERIFY (it cannot bypass verification)."""
    net = verifying(workers)
    ns = ":NickServ!NickServ@services. NOTICE ann :"
    ann = net.negotiated(net.last, "ann")
    ann.send("NS REGISTER hunter2! ann@example.org")
    assert ann.lines() == [
        ns + "Account created, pending verification: a code was sent to ann@example.org",
        ns + "Then send /msg NickServ VERIFY ann <code>",
    ]
    ann.send("NS VERIFY ann nope")
    assert ann.lines() == [ns + "Invalid or expired verification code"]
    ann.send("PRIVMSG NickServ :VERIFY ann " + net.mailbox[0].code.decode())
    ip = f"10.0.0.{net.last + 1}"
    assert ann.lines() == [
        ns + "Account ann verified",
        f"{SRV} 900 ann ann!~ann@{ip} ann :You are now logged in as ann",
        ns + "You are now logged in as ann",
    ]
    bob = net.negotiated(0, "bob")
    bob.send("NS REGISTER longenough")
    assert bob.lines() == [":NickServ!NickServ@services. NOTICE bob :An email address is required"]


def test_a_hub_restart_keeps_what_awaits_verification() -> None:
    """A worker's replica holds the registrations awaiting verification, with their codes
    (the snapshot carries them): a new hub that lost them takes them back from it."""
    net = verifying(2)
    register(net).lines()
    code = net.mailbox[0].code
    snap = net.cores[1].state.snapshot()
    fresh = FakeNet(workers=1)
    fresh.cores[0].state.load_snapshot(snap)
    assert fresh.cores[0].state.pending[b"ann"].code == code
    assert b"ann" not in fresh.cores[0].state.accounts


# -- the store -----------------------------------------------------------------------------------
def test_the_store_keeps_what_awaits_verification(tmp_path: Path) -> None:
    """A restart keeps a pending verification: the store writes the registration with its
    code (``verified`` 0), and a verification or a drop as they come; loading gives back
    the same state."""
    data = str(tmp_path)
    db.prepare(data)
    storage = Storage(data)
    storage.load(State())
    storage.record(make(EAccount, b"Ann", b"h1", b"a@x", b"c0de", 5))
    storage.record(make(EAccount, b"bob", b"h2", b"b@x", b"c0fe", 6))
    storage.record(make(EAccount, b"cat", b"h3", b"", b"", 7))
    storage.record(make(EAccount, b"dee", b"h4", b"d@x", b"d00d", 8))
    storage.record(make(EAccountVerify, b"bob", 9))
    storage.record(make(EAccountDrop, b"dee", 10))
    storage.close()
    rows = {r.name_folded: r for r in reader.load_accounts(db.path_in(data))}
    assert (rows["ann"].verified, rows["ann"].verify_code) == (False, "c0de")
    assert (rows["bob"].verified, rows["bob"].verify_code) == (True, "")
    assert (rows["cat"].verified, rows["cat"].verify_code) == (True, "")
    assert "dee" not in rows
    again = State()
    restarted = Storage(data)
    restarted.load(again)
    restarted.close()
    assert again.pending == {b"ann": Account(b"Ann", b"h1", b"a@x", 5, b"c0de")}
    assert again.accounts == {
        b"bob": Account(b"bob", b"h2", b"b@x", 6),
        b"cat": Account(b"cat", b"h3", b"", 7),
    }


def test_accounts_stored_before_verification_existed_stay_usable(tmp_path: Path) -> None:
    """Schema version 2 adds the code and marks every older account verified: they could
    all be used, and a file's accounts must not turn unusable when fastchat is upgraded."""
    data = str(tmp_path)
    path = db.prepare(data, schema.MIGRATIONS[:1])
    conn = db.connect(path)
    conn.execute("INSERT INTO accounts VALUES ('ann', 'Ann', 'h', '', 1, 0)")
    conn.close()
    db.prepare(data)
    (row,) = reader.load_accounts(path)
    assert (row.name, row.verified, row.verify_code) == ("Ann", True, "")


# -- the mail and its settings ---------------------------------------------------------------------
def test_the_mail_says_the_account_the_code_and_how_to_use_them() -> None:
    cfg = Config(server_name=b"irc.example.org")
    mail = VerificationMail(1, 2, b"ann@example.org", b"Ann", b"c0de" * 8)
    message = mailer.compose(cfg, mail)
    assert message["From"] == "fastchat@irc.example.org"
    assert message["To"] == "ann@example.org"
    assert message["Subject"] == "Verify your account Ann on irc.example.org"
    body = message.get_content()
    assert "/quote VERIFY Ann " + "c0de" * 8 in body
    assert "/msg NickServ VERIFY Ann " + "c0de" * 8 in body
    assert "within 24 hours" in body
    assert mailer.compose(Config(mail_from="irc@example.org"), mail)["From"] == "irc@example.org"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("", None),
        ("localhost", ("localhost", 25)),
        ("127.0.0.1:2525", ("127.0.0.1", 2525)),
        ("[::1]:2525", ("::1", 2525)),
        ("::1", ("::1", 25)),
    ],
)
def test_smtp_server_is_host_and_port(raw: str, value: object) -> None:
    assert config.from_mapping({"smtp_server": raw}).smtp_server == value


@pytest.mark.parametrize("raw", ["host:", ":25", "host:0", "host:99999", "[::1", "[::1]x"])
def test_a_bad_smtp_server_or_sender_is_refused(raw: str) -> None:
    with pytest.raises(config.ConfigError, match="setting 'smtp_server'"):
        config.from_mapping({"smtp_server": raw})
    with pytest.raises(config.ConfigError, match="setting 'mail_from'"):
        config.from_mapping({"mail_from": "not an address"})
