"""Accounts (issue 12): IRCv3 SASL ``AUTHENTICATE`` (PLAIN, EXTERNAL, SCRAM-SHA-256) and
draft/account-registration ``REGISTER`` and ``VERIFY``.

Owns: the SASL exchange (mechanism, base64 chunks of at most 400 bytes, ``*`` to abort, the
PLAIN message, SCRAM's steps through fastchat/server/scram.py), checking a password against
the account's hash and hashing a new one (both off the loop: scrypt), email verification's worker side (``register_verify``: mailing the
code the sequencer drew, off the loop, and freeing the name if the mail cannot be sent), and
the numerics and standard replies of these commands.
Must never: decide that an account exists, that a code is right, or who is logged in (the
sequencer does: REGISTER, VERIFY and a login after registration are requests; a login during
registration rides on the registration, ``RRegister.account``), draw a code, send a code to a
client, or store anything itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_valid_nick
from fastchat.irc.message import Message
from fastchat.server import scram
from fastchat.server.caps import sasl
from fastchat.server.commands.context import Context, MailOutcome
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import RAccount, RLogin, RPendingDrop, RVerify, make

#: The built-in service's nick, folded (commands/nickserv.py): no account may take it
SERVICE_FOLDED = b"nickserv"
#: The spec: the client "MUST split" its response into chunks of 400 bytes (base64)
CHUNK = 400
#: The most base64 an exchange may send in all (PLAIN needs far less); over it: 905
MAX_SASL = 4 * CHUNK
#: Checked when the account does not exist, so that an unknown account takes as long as a
#: wrong password (a timing leak would tell which accounts exist)
DUMMY_HASH = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43


def _fail(
    ctx: Context,
    client: Client,
    code: bytes,
    *context: bytes,
    why: bytes,
    command: bytes = b"REGISTER",
) -> None:
    ctx.fail(client, command, code, why, *context)


def _response(
    ctx: Context, client: Client, command: bytes, status: bytes, account: bytes, text: bytes
) -> None:
    """draft/account-registration's own replies: ``<command> <status> <account> :<text>``
    (``REGISTER SUCCESS``, ``REGISTER VERIFICATION_REQUIRED``, ``VERIFY SUCCESS``)."""
    server = ctx.config.server_name
    ctx.send(client, b":%s %s %s %s :%s\r\n" % (server, command, status, account, text))


def _mask(client: Client) -> bytes:
    return b"%s!%s@%s" % (client.name, client.username or b"*", client.host)


def logged_in(ctx: Context, client: Client, account: bytes) -> None:
    """900 RPL_LOGGEDIN: "You are now logged in as <account>"."""
    ctx.reply(
        client, N.RPL_LOGGEDIN, _mask(client), account, b"You are now logged in as " + account
    )


# -- SASL ----------------------------------------------------------------------------------------
def authenticate(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 SASL 3.1 ``AUTHENTICATE <mechanism>``, then ``AUTHENTICATE <base64>`` (``+`` for
    an empty chunk), ``AUTHENTICATE *`` to abort. At any time, logged in or not (SASL 3.2:
    "Servers SHOULD allow a client, authenticated or otherwise, to reauthenticate"): a
    success switches the connection to the account it proved; a failure keeps the one it
    was logged in to."""
    arg = msg.params[0]
    if arg == b"*":
        if client.sasl is not None:
            client.sasl = None
            ctx.reply(client, N.ERR_SASLABORTED, b"SASL authentication aborted")
        else:
            ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
        return
    if client.sasl is None:  # the mechanism
        if arg.upper() not in sasl.MECHANISMS:
            mechs = b",".join(sasl.MECHANISMS)
            ctx.reply(client, N.RPL_SASLMECHS, mechs, b"are available SASL mechanisms")
            ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
            return
        client.sasl = b""
        client.sasl_mechanism = arg.upper()
        client.sasl_state = None
        ctx.send(client, b"AUTHENTICATE +\r\n")
        return
    if len(arg) > CHUNK:  # a chunk longer than the spec allows
        client.sasl = None
        ctx.reply(client, N.ERR_SASLTOOLONG, b"SASL message too long")
        return
    if len(client.sasl) + len(arg) > MAX_SASL:  # chunks without end: no mechanism needs it
        client.sasl = None
        ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
        return
    if arg != b"+":
        client.sasl += arg
    if len(arg) == CHUNK:
        return  # more follows (a last chunk of exactly 400 is followed by "+")
    data, client.sasl = client.sasl, None
    if client.sasl_mechanism == b"EXTERNAL":
        _external(ctx, client, data)
    elif client.sasl_mechanism == scram.MECHANISM:
        _scram(ctx, client, data)
    else:
        _plain(ctx, client, data)


def _succeed(ctx: Context, client: Client, name: bytes) -> None:
    """The client proved it owns the account ``name``: before registration, 900 and 903 now
    and the registration carries it; after, the sequencer logs it in (and answers)."""
    if client.user is None:
        # during registration: the registration carries it (RRegister.account)
        client.account = name
        logged_in(ctx, client, name)
        ctx.reply(client, N.RPL_SASLSUCCESS, b"SASL authentication successful")
    else:
        ctx.submit(make(RLogin, client.uid, name, b"sasl-late"))


def _external(ctx: Context, client: Client, data: bytes) -> None:
    """RFC 4422 appendix A EXTERNAL: the TLS client certificate is the credential; the
    message is an authorization identity (empty: whichever account holds the certificate,
    else that account, which must hold it). No certificate, or one no account holds: 904."""
    try:
        authzid = base64.b64decode(data, validate=True)
    except binascii.Error:
        authzid = None
    account = ctx.state.account_by_certfp(client.certfp)
    if authzid is None or account is None or (authzid and fold(authzid) != fold(account.name)):
        why = b"SASL authentication failed" if client.certfp else b"SASL authentication "
        if not client.certfp:
            why += b"failed: you are not connected with a TLS client certificate"
        ctx.reply(client, N.ERR_SASLFAIL, why)
        return
    _succeed(ctx, client, account.name)


def _plain(ctx: Context, client: Client, data: bytes) -> None:
    """RFC 4616 PLAIN: ``authzid NUL authcid NUL passwd``; authzid empty or the authcid."""
    try:
        authzid, authcid, password = base64.b64decode(data, validate=True).split(b"\0")
    except (binascii.Error, ValueError):
        ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
        return
    account = ctx.state.accounts.get(fold(authcid)) if authcid else None
    if authzid and fold(authzid) != fold(authcid):
        account = None  # logging in as someone else: not for PLAIN here

    def checked(matched: bool) -> None:
        if not matched or account is None:
            ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
            return
        _succeed(ctx, client, account.name)

    stored = account.password_hash.decode() if account is not None else DUMMY_HASH
    ctx.check_password(client, password, stored, checked)


def _scram(ctx: Context, client: Client, data: bytes) -> None:
    """RFC 5802 / RFC 7677 SCRAM-SHA-256, one client message at a time: the first (the
    server answers its nonce, the account's salt and iterations), the final (the server
    checks the proof and answers its own signature), then ``+`` (logged in: 900, 903). A
    malformed message, a wrong proof or an account without SCRAM keys: 904, like PLAIN's."""
    exchange = client.sasl_state
    try:
        message = base64.b64decode(data, validate=True)
    except binascii.Error:
        message = None
    answer: bytes | None = None
    if message is not None and exchange is None:
        exchange = client.sasl_state = scram.Exchange()

        def lookup(name: bytes) -> scram.Keys | None:
            account = ctx.state.accounts.get(fold(name))
            return scram.keys_of(account.password_hash.decode()) if account else None

        answer = exchange.first(message, lookup)
    elif message is not None and isinstance(exchange, scram.Exchange):
        answer = exchange.final(message)
        if answer is not None:
            account = ctx.state.accounts.get(fold(exchange.name))
            client.sasl_state = account.name if account is not None else None
    elif message == b"" and isinstance(exchange, bytes):  # "+" after the server's final
        client.sasl_state = None
        _succeed(ctx, client, exchange)
        return
    if answer is None:
        client.sasl_state = None
        ctx.reply(client, N.ERR_SASLFAIL, b"SASL authentication failed")
        return
    client.sasl = b""  # the exchange goes on: the client's next message
    encoded = base64.b64encode(answer)
    for at in range(0, len(encoded), CHUNK):
        ctx.send(client, b"AUTHENTICATE %s\r\n" % encoded[at : at + CHUNK])
    if len(encoded) % CHUNK == 0:
        ctx.send(client, b"AUTHENTICATE +\r\n")


# -- draft/account-registration -------------------------------------------------------------------
def register(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 draft/account-registration ``REGISTER <account> <email> <password>``; ``*``
    for the current nick, ``*`` for no email."""
    user = client.user
    cfg = ctx.config
    if user is None and not cfg.register_before_connect:
        why = b"Finish connecting before registering an account"
        _fail(ctx, client, b"COMPLETE_CONNECTION_REQUIRED", b"*", why=why)
        return
    name, email, password = msg.params[0], msg.params[1], msg.params[2]
    if name == b"*":
        name = client.nick or client.refused_nick  # (one someone holds: ACCOUNT_EXISTS)
        if not name:
            _fail(ctx, client, b"NEED_NICK", b"*", why=b"Send NICK first, or name the account")
            return

    def fail(code: bytes, context: bytes, why: bytes) -> None:
        _fail(ctx, client, code, context, why=why)

    create(ctx, client, name, email, password, b"register", fail)


def create(
    ctx: Context,
    client: Client,
    name: bytes,
    email: bytes,
    password: bytes,
    how: bytes,
    fail: Callable[[bytes, bytes, bytes], None],
) -> None:
    """Check a new account ``name`` (``email`` ``*`` for none) and, if it may be, hash the
    password off the loop and ask the sequencer to create it (``how``: who answers, see
    RAccount). A refusal goes to ``fail(code, context, description)``, the codes being
    draft/account-registration's: REGISTER answers FAIL with them, NickServ a notice."""
    user = client.user
    cfg = ctx.config
    if (user is not None and user.account is not None) or client.account:
        fail(b"ALREADY_AUTHENTICATED", name, b"You are already logged in")
        return
    if not is_valid_nick(name, ctx.config.nicklen):
        fail(b"BAD_ACCOUNT_NAME", name, b"Account names follow the nick rules")
        return
    holder = ctx.state.nicks.get(fold(name))
    key = fold(name)
    if (
        ctx.state.account_taken(key, int(ctx.now * 1000))
        or key == SERVICE_FOLDED
        or (holder is not None and holder is not user)
    ):
        fail(b"ACCOUNT_EXISTS", name, b"Account already exists")
        return
    if email == b"*" and (cfg.register_requires_email or cfg.register_verify):
        fail(b"INVALID_EMAIL", name, b"An email address is required")
        return
    if email != b"*" and not is_email(email):
        fail(b"INVALID_EMAIL", name, b"That is not an email address")
        return
    shortest = ctx.config.password_min_length
    if len(password) < shortest:
        fail(b"WEAK_PASSWORD", name, b"A password needs at least %d bytes" % shortest)
        return
    address = b"" if email == b"*" else email

    def hashed(stored: str) -> None:
        ctx.submit(make(RAccount, client.uid, name, stored.encode(), address, how))

    ctx.hash_password(client, password, hashed)


#: What no address we mail may hold: what would make it two addresses, or a display name
#: and an address, in a header (RFC 5322's specials but "." and "@"; spaces, controls).
_NOT_IN_EMAIL = frozenset(b' ,;:<>()[]\\"') | frozenset(range(32)) | {127}


def is_email(email: bytes) -> bool:
    """Is ``email`` one plain address, ``local@domain`` (at most 254 bytes: RFC 5321's
    path limit), that a mail can be sent to as it is?

    >>> is_email(b"ann@example.org"), is_email(b"a@b,c@d"), is_email(b"@x"), is_email(b"a@")
    (True, False, False, False)
    """
    local, _, domain = email.partition(b"@")
    return (
        email.count(b"@") == 1
        and bool(local and domain)
        and len(email) <= 254
        and not _NOT_IN_EMAIL.intersection(email)
    )


def registered(ctx: Context, client: Client, account: bytes) -> None:
    """What a REGISTER that created ``account`` answers (the sequencer logged it in)."""
    _response(ctx, client, b"REGISTER", b"SUCCESS", account, b"Account created")
    logged_in(ctx, client, account)


# -- email verification (register_verify) ---------------------------------------------------------
def verify(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 draft/account-registration ``VERIFY <account> <code>``: completes a registration
    that ``REGISTER VERIFICATION_REQUIRED`` answered, with the code mailed for it; the
    sender is then logged in to the account, as by ``REGISTER SUCCESS``."""
    if client.user is None and not ctx.config.register_before_connect:
        why = b"Finish connecting before verifying an account"
        _fail(ctx, client, b"COMPLETE_CONNECTION_REQUIRED", b"*", why=why, command=b"VERIFY")
        return

    def fail(code: bytes, context: bytes, why: bytes) -> None:
        _fail(ctx, client, code, context, why=why, command=b"VERIFY")

    verify_code(ctx, client, msg.params[0], msg.params[1], b"verify", fail)


def verify_code(
    ctx: Context,
    client: Client,
    account: bytes,
    code: bytes,
    how: bytes,
    fail: Callable[[bytes, bytes, bytes], None],
) -> None:
    """Ask the sequencer whether ``code`` verifies ``account`` (``how``: who answers, see
    RVerify); it decides, and answers INVALID_CODE itself. A refusal here goes to
    ``fail(code, context, description)``, as for :func:`create`."""
    user = client.user
    if (user is not None and user.account is not None) or client.account:
        fail(b"ALREADY_AUTHENTICATED", account, b"You are already logged in")
        return
    ctx.submit(make(RVerify, client.uid, account, code, how))


def verified(ctx: Context, client: Client, account: bytes) -> None:
    """What a VERIFY that verified ``account`` answers (the sequencer logged it in)."""
    _response(ctx, client, b"VERIFY", b"SUCCESS", account, b"Account verified")
    logged_in(ctx, client, account)


def mail_code(
    ctx: Context,
    client: Client | None,
    uid: int,
    account: bytes,
    email: bytes,
    code: bytes,
    answer: Callable[[MailOutcome], None],
) -> None:
    """The sequencer made ``account`` await verification with ``code`` (D_PENDING): mail
    the code to ``email`` off the loop (or log it, with no SMTP server), then, if the
    registrant ``uid`` is still here (``client``), ``answer(outcome)``. A mail that could
    not be sent drops the registration (R_PENDINGDROP), so its name is free again at once
    rather than for a day: the registrant may try again."""

    def mailed(outcome: MailOutcome) -> None:
        if outcome in (MailOutcome.REFUSED, MailOutcome.FAILED):
            ctx.submit(make(RPendingDrop, uid, account, code))
        if client is not None:
            answer(outcome)

    ctx.send_verification(client, account, email, code, mailed)


def awaiting_verification(
    ctx: Context, client: Client | None, uid: int, account: bytes, email: bytes, code: bytes
) -> None:
    """REGISTER's answer when verification is required: ``REGISTER VERIFICATION_REQUIRED
    <account> :...`` once the code is mailed; ``FAIL REGISTER INVALID_EMAIL`` if the SMTP
    server refused the address, ``TEMPORARILY_UNAVAILABLE`` if it could not be used."""

    def answer(outcome: MailOutcome) -> None:
        assert client is not None
        if outcome is MailOutcome.REFUSED:
            why = b"Mail to that address was refused"
            _fail(ctx, client, b"INVALID_EMAIL", account, why=why)
        elif outcome is MailOutcome.FAILED:
            why = b"The verification mail could not be sent; try again later"
            _fail(ctx, client, b"TEMPORARILY_UNAVAILABLE", account, why=why)
        else:
            text = pending_text(outcome, email)
            _response(ctx, client, b"REGISTER", b"VERIFICATION_REQUIRED", account, text)

    mail_code(ctx, client, uid, account, email, code, answer)


def pending_text(outcome: MailOutcome, email: bytes) -> bytes:
    """What a registrant is told of its code: where it went."""
    if outcome is MailOutcome.SENT:
        return b"Account created, pending verification: a code was sent to " + email
    return b"Account created, pending verification: ask the server's operators for its code"


COMMANDS = (
    Command(b"AUTHENTICATE", authenticate, 1, needs_registration=False, capability=sasl.NAME),
    # needs_registration=False: before registration they answer FAIL, as the spec asks
    Command(b"REGISTER", register, 3, needs_registration=False),
    Command(b"VERIFY", verify, 2, needs_registration=False),
)
