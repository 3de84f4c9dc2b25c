"""Mailing verification codes (draft/account-registration ``VERIFY``, ``register_verify``).

Owns: the verification mail's text and headers, and handing it to the configured SMTP server
(``smtp_server``) with :mod:`smtplib`: plain SMTP, no TLS and no login, as a relay on the same
host or network (Postfix, an smarthost) accepts. Which failure is which: the server refusing
the address (:attr:`MailOutcome.REFUSED`: the registrant gave a bad one) or anything else
(:attr:`MailOutcome.FAILED`: our side, worth trying again later).
Must never: run on a loop that serves clients (it blocks on the network for up to
:data:`TIMEOUT` seconds: the worker runs it on its mail pool), or decide anything: the code
was drawn by the sequencer, and the engine answers the client with the outcome.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid

from fastchat.server.commands.context import MailOutcome
from fastchat.server.config import Config
from fastchat.server.engine.offload import VerificationMail
from fastchat.server.network.state import VERIFY_TIMEOUT_MS

VERIFY_HOURS = VERIFY_TIMEOUT_MS // 3_600_000

#: Seconds to wait on the SMTP server (connecting, and each command): the registrant's next
#: lines wait that long at worst (its ordering barrier).
TIMEOUT = 20.0


def sender(config: Config) -> str:
    """The ``From`` address: ``mail_from``, else ``fastchat@`` and the server's name."""
    return config.mail_from or "fastchat@" + config.server_name.decode(errors="replace")


def compose(config: Config, mail: VerificationMail) -> EmailMessage:
    """The verification mail: the account, the code, and the two ways to use it."""
    server = config.server_name.decode(errors="replace")
    account = mail.account.decode(errors="replace")
    code = mail.code.decode()
    message = EmailMessage()
    message["From"] = sender(config)
    message["To"] = mail.to.decode(errors="replace")
    message["Subject"] = f"Verify your account {account} on {server}"
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = make_msgid(domain=sender(config).rpartition("@")[2])
    message.set_content(
        f"Someone, probably you, registered the account {account} on the IRC server {server}\n"
        f"with this address.\n"
        f"\n"
        f"Account: {account}\n"
        f"Verification code: {code}\n"
        f"\n"
        f"To verify the account, send from your IRC client:\n"
        f"\n"
        f"    /quote VERIFY {account} {code}\n"
        f"or\n"
        f"    /msg NickServ VERIFY {account} {code}\n"
        f"\n"
        f"If it was not you, do nothing: an account not verified within {VERIFY_HOURS} hours\n"
        f"is forgotten.\n"
    )
    return message


def send(config: Config, mail: VerificationMail) -> tuple[MailOutcome, str]:
    """Mail ``mail`` through ``config.smtp_server`` (blocking): the outcome, and why it
    failed (for the log; '' when sent)."""
    assert config.smtp_server is not None
    host, port = config.smtp_server
    try:
        message = compose(config, mail)
    except (ValueError, TypeError) as e:  # an address no header can hold
        return MailOutcome.REFUSED, f"cannot write a mail to {mail.to!r}: {e}"
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
            # the one envelope recipient, whatever the To header could be read as
            smtp.send_message(message, to_addrs=[mail.to.decode(errors="replace")])
    except smtplib.SMTPRecipientsRefused as e:
        return MailOutcome.REFUSED, f"{host}:{port} refused the address: {e.recipients}"
    except (smtplib.SMTPException, OSError) as e:
        return MailOutcome.FAILED, f"{host}:{port}: {type(e).__name__}: {e}"
    return MailOutcome.SENT, ""
