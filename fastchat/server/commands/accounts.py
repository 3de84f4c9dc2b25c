"""Accounts (issue 12): IRCv3 SASL ``AUTHENTICATE`` (PLAIN) and draft/account-registration
``REGISTER``.

Owns: the SASL exchange (mechanism, base64 chunks of at most 400 bytes, ``*`` to abort, the
PLAIN message), checking a password against the account's hash and hashing a new one (both
off the loop: scrypt), and the numerics and standard replies of both commands.
Must never: decide that an account exists or who is logged in (the sequencer does: REGISTER
and a login after registration are requests; a login during registration rides on the
registration, ``RRegister.account``), or store anything itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_valid_nick
from fastchat.irc.message import Message
from fastchat.server.caps import sasl
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import RAccount, RLogin, make
from fastchat.server.render import lines

#: The built-in service's nick, folded (commands/nickserv.py): no account may take it
SERVICE_FOLDED = b"nickserv"
#: The spec: the client "MUST split" its response into chunks of 400 bytes (base64)
CHUNK = 400
#: The most base64 an exchange may send in all (PLAIN needs far less); over it: 905
MAX_SASL = 4 * CHUNK
#: Checked when the account does not exist, so that an unknown account takes as long as a
#: wrong password (a timing leak would tell which accounts exist)
DUMMY_HASH = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43


def _fail(ctx: Context, client: Client, code: bytes, *context: bytes, why: bytes) -> None:
    server = ctx.config.server_name
    ctx.send(client, lines.standard_reply(server, b"FAIL", b"REGISTER", code, why, context))


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
    an empty chunk), ``AUTHENTICATE *`` to abort."""
    arg = msg.params[0]
    if client.account or (client.user is not None and client.user.account is not None):
        ctx.reply(client, N.ERR_SASLALREADY, b"You have already authenticated using SASL")
        return
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
    _plain(ctx, client, data)


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
        if client.user is None:
            # during registration: the registration carries it (RRegister.account)
            client.account = account.name
            logged_in(ctx, client, account.name)
            ctx.reply(client, N.RPL_SASLSUCCESS, b"SASL authentication successful")
        else:
            ctx.submit(make(RLogin, client.uid, account.name, b"sasl-late"))

    stored = account.password_hash.decode() if account is not None else DUMMY_HASH
    ctx.check_password(client, password, stored, checked)


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
        name = client.nick
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
        key in ctx.state.accounts
        or key == SERVICE_FOLDED
        or (holder is not None and holder is not user)
    ):
        fail(b"ACCOUNT_EXISTS", name, b"Account already exists")
        return
    if email == b"*" and cfg.register_requires_email:
        fail(b"INVALID_EMAIL", name, b"An email address is required")
        return
    if email != b"*" and (b"@" not in email.strip(b"@") or len(email) > 254):
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


def registered(ctx: Context, client: Client, account: bytes) -> None:
    """What a REGISTER that created ``account`` answers (the sequencer logged it in)."""
    server = ctx.config.server_name
    ctx.send(client, b":%s REGISTER SUCCESS %s :Account created\r\n" % (server, account))
    logged_in(ctx, client, account)


COMMANDS = (
    Command(b"AUTHENTICATE", authenticate, 1, needs_registration=False, capability=sasl.NAME),
    # needs_registration=False: before registration it answers FAIL, as the spec asks
    Command(b"REGISTER", register, 3, needs_registration=False),
)
