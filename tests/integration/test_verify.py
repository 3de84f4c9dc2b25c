"""Email verification (draft/account-registration ``VERIFY``, ``--register-verify``) on a real
server, at one worker and at four, mailing through a tiny SMTP sink written here (stdlib
``socketserver``, on a free port, stopped at the end): the mail arrives with the code, the
account is unusable until ``VERIFY`` with it, and a restart keeps a pending verification.
Without an SMTP server the code is in the server's log. Raw sockets; synchronised by
PING/PONG and by waiting on the sink's queue.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import queue
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from fastchat.server.commands.context import MailOutcome
from fastchat.server.config import Config
from fastchat.server.engine.offload import VerificationMail
from fastchat.server.runtime import mailer, process
from tests.ircclient import IRCClient

#: Addresses at this domain are refused by the sink (550 at RCPT TO)
REFUSED = "refused.example"
CODE = re.compile(r"^Verification code: ([0-9a-f]{32})\r?$", re.MULTILINE)


class SmtpSink:
    """Just enough of an SMTP server (RFC 5321) for smtplib: it keeps every mail in
    :attr:`mails` and refuses the recipients at :data:`REFUSED`."""

    def __init__(self) -> None:
        self.mails: queue.Queue[EmailMessage] = queue.Queue()
        mails = self.mails

        class Session(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO", b"MAIL", b"RSET", b"NOOP"):
                        self.reply("250 ok")
                    elif verb == b"RCPT":
                        refused = REFUSED.encode() in line.lower()
                        self.reply("550 no such mailbox" if refused else "250 ok")
                    elif verb == b"DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b".") else chunk
                        mails.put(email.message_from_bytes(data, policy=email.policy.default))
                        self.reply("250 queued")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="smtp-sink")
        self.thread.start()

    def next_mail(self, timeout: float = 10.0) -> EmailMessage:
        return self.mails.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink()
    try:
        yield s
    finally:
        s.close()


def _verifying(sink: SmtpSink) -> list[str]:
    return [
        "--no-flood-control",
        "--register-verify",
        "--smtp-server",
        f"127.0.0.1:{sink.port}",
        "--server-name",
        "irc.test",
    ]


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, sink: SmtpSink) -> Iterator[process.ServerProcess]:
    with process.running(_verifying(sink), workers=request.param) as srv:
        yield srv


def connected(srv: process.ServerProcess, nick: str, caps: str = "") -> IRCClient:
    c = IRCClient(srv.host, srv.port, register=False)
    c.nick = nick
    if caps:
        c.request_caps(caps)
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    if caps:
        c.send("CAP END")
    c.expect(r" 376 | 422 ")
    return c


def sasl_works(srv: process.ServerProcess, nick: str, account: str, password: str) -> bool:
    c = IRCClient(srv.host, srv.port, register=False)
    c.nick = nick
    try:
        c.request_caps("sasl")
        c.send(f"NICK {nick}")
        c.send("USER u 0 * :u")
        c.sasl_plain(account, password)
        return " 903 " in c.expect(r" 90[34] ").string
    finally:
        c.close()


def mailed_code(sink: SmtpSink, to: str, account: str) -> str:
    mail = sink.next_mail()
    assert mail["To"] == to
    assert mail["From"] == "fastchat@irc.test"
    assert mail["Subject"] == f"Verify your account {account} on irc.test"
    body = mail.get_content()
    found = CODE.search(body)
    assert found, body
    assert f"VERIFY {account} {found.group(1)}" in body
    return found.group(1)


def test_register_mails_a_code_and_verify_logs_in(
    server: process.ServerProcess, sink: SmtpSink
) -> None:
    """The spec: "REGISTER VERIFICATION_REQUIRED <account> <message>" when "further action
    is required", then "VERIFY SUCCESS <account> <message>": "the client is assumed to be
    authenticated to the <account> as if it used SASL". Until then the account is no
    account: SASL refuses it, and nobody else may register its name."""
    reg = connected(server, "vreg", "draft/account-registration")
    other = connected(server, "vother", "draft/account-registration")
    try:
        reg.send("REGISTER vacc vacc@example.org correct-horse")
        reg.expect(
            r"^:irc\.test REGISTER VERIFICATION_REQUIRED vacc :Account created, pending "
            r"verification: a code was sent to vacc@example\.org$"
        )
        code = mailed_code(sink, "vacc@example.org", "vacc")
        for i in range(4):  # spread over the workers
            assert not sasl_works(server, f"early{i}", "vacc", "correct-horse")
        other.send("REGISTER vacc other@example.org correct-horse")
        other.expect(r" FAIL REGISTER ACCOUNT_EXISTS vacc :")
        reg.send("VERIFY vacc " + "0" * 32)
        reg.expect(r" FAIL VERIFY INVALID_CODE vacc :Invalid or expired verification code$")
        reg.send(f"VERIFY vacc {code}")
        reg.expect(r"^:irc\.test VERIFY SUCCESS vacc :Account verified$")
        reg.expect(r" 900 vreg vreg!\S+ vacc :You are now logged in as vacc$")
        assert all(code not in line for line in reg.log + other.log)  # only the mail had it
        for i in range(4):
            assert sasl_works(server, f"late{i}", "vacc", "correct-horse")
        other.send("WHOIS vreg")
        other.expect(r" 330 vother vreg vacc :is logged in as$")
        assert sink.mails.empty()
    finally:
        reg.close()
        other.close()


def test_a_refused_address_frees_the_name(server: process.ServerProcess, sink: SmtpSink) -> None:
    """The spec's INVALID_EMAIL: "if it cannot send emails to the provided address". The
    registration is dropped: the same name may be registered again at once."""
    c = connected(server, "vref", "draft/account-registration")
    try:
        c.send(f"REGISTER vref nobody@{REFUSED} correct-horse")
        c.expect(r" FAIL REGISTER INVALID_EMAIL vref :Mail to that address was refused$")
        c.send("REGISTER vref vref@example.org correct-horse")
        c.expect(r" REGISTER VERIFICATION_REQUIRED vref :")
        assert mailed_code(sink, "vref@example.org", "vref")
    finally:
        c.close()


def test_the_mailer_tells_sent_refused_and_failed(sink: SmtpSink) -> None:
    """runtime/mailer.py against the sink, and against a port where nothing listens."""
    mail = VerificationMail(1, 2, b"ann@example.org", b"ann", b"c0de" * 8)
    config = Config(smtp_server=("127.0.0.1", sink.port), server_name=b"irc.test")
    assert mailer.send(config, mail) == (MailOutcome.SENT, "")
    assert mailed_code(sink, "ann@example.org", "ann") == "c0de" * 8
    refused = mail._replace(to=f"ann@{REFUSED}".encode())
    assert mailer.send(config, refused)[0] is MailOutcome.REFUSED
    with socket.socket() as s:  # a free port: nothing listens there once it is closed
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    outcome, error = mailer.send(
        dataclasses.replace(config, smtp_server=("127.0.0.1", closed)), mail
    )
    assert outcome is MailOutcome.FAILED and "ConnectionRefusedError" in error
    assert sink.mails.empty()


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_a_restart_keeps_a_pending_verification(
    workers: int, tmp_path: Path, sink: SmtpSink
) -> None:
    """The store keeps the registration with its code: after a restart the mailed code
    still verifies it (and it is still no account before that)."""
    args = [*_verifying(sink), "--data-dir", str(tmp_path)]
    with process.running(args, workers=workers) as srv:
        c = connected(srv, "keeper", "draft/account-registration")
        c.send("REGISTER * keeper@example.org first-pass")
        c.expect(r" REGISTER VERIFICATION_REQUIRED keeper :")
        c.close()
        code = mailed_code(sink, "keeper@example.org", "keeper")
    with process.running(args, workers=workers) as srv:
        assert not sasl_works(srv, "k1", "keeper", "first-pass")
        c = connected(srv, "k2")
        try:
            c.send(f"VERIFY keeper {code}")
            c.expect(r" VERIFY SUCCESS keeper :Account verified$")
        finally:
            c.close()
    with process.running(args, workers=workers) as srv:
        assert sasl_works(srv, "k3", "keeper", "first-pass")


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_without_an_smtp_server_the_operator_reads_the_code_in_the_log(workers: int) -> None:
    """ "For a small server the operator reads it from the log": at WARNING, so the default
    log level shows it; the client is told to ask, and is never sent the code."""
    with process.running(["--no-flood-control", "--register-verify"], workers=workers) as srv:
        c = connected(srv, "small", "draft/account-registration")
        try:
            c.send("REGISTER * small@example.org correct-horse")
            c.expect(
                r" REGISTER VERIFICATION_REQUIRED small :Account created, pending "
                r"verification: ask the server's operators for its code$"
            )
            pattern = re.compile(r"WARNING.* account small .*its code, which is ([0-9a-f]{32})")
            # the log line is written before the reply, and read by the output pump thread
            code = srv.wait_log(pattern)[0].group(1)
            assert all(code not in line for line in c.log)
            c.send(f"VERIFY small {code}")
            c.expect(r" VERIFY SUCCESS small :Account verified$")
        finally:
            c.close()
