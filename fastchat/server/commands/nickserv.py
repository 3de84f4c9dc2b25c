"""NickServ (issue 12): the accounts service for clients that know neither draft/account-
registration's ``REGISTER`` nor SASL: ``PRIVMSG NickServ :<command> ...`` (or the ``NS`` and
``NICKSERV`` commands), answered by NOTICEs from :data:`SOURCE`. Also nick protection: a
user who takes a registered account's nick without being logged in to it is asked to
IDENTIFY, and with ``nick_protection = rename`` renamed after the grace period.

Owns: parsing NickServ's commands (``REGISTER``, ``VERIFY``, ``IDENTIFY``, ``INFO``, ``DROP``,
``GHOST``, ``CERT``, ``PASSWD``, ``HELP``), their local refusals, its notices, and the
worker's side of nick protection (the warning, and asking for the rename when the grace
period is over).
Must never: decide that an account exists, who is logged in, who is disconnected or renamed
(the sequencer does: R_ACCOUNT, R_VERIFY, R_LOGIN, R_ACCOUNTDROP, R_GHOST, R_PROTECT,
R_CERTFP, R_PASSWORD), or
check a password on the loop (``ctx.check_password`` runs it elsewhere). REGISTER's and
VERIFY's rules are commands/accounts.py's (``accounts.create``, ``accounts.verify_code``,
``accounts.mail_code``), not repeated here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.irc.message import Message
from fastchat.server.commands import accounts
from fastchat.server.commands.context import Context, MailOutcome
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import (
    RAccountDrop,
    RCertfp,
    RGhost,
    RLogin,
    RPassword,
    RProtect,
    make,
)
from fastchat.server.network.state import User, maybe_certfp
from fastchat.server.render import dates, lines

#: The service's nick (reserved: no user may take it), and where its notices come from
NICK = b"NickServ"
FOLDED = accounts.SERVICE_FOLDED
HOST = b"services."
SOURCE = b"NickServ!NickServ@" + HOST
REALNAME = b"Nickname services"

#: Per local uid: when nick protection renames it (``rename``), and the nick it was warned for
Deadlines = dict[int, tuple[float, bytes]]

_HELP = (
    b"NickServ lets you register your nick as an account and log in to it:",
    b"REGISTER <password> [email]   register your current nick as an account",
    b"VERIFY <account> <code>       complete a registration with the code mailed for it",
    b"IDENTIFY [account] <password> log in to an account (your nick's if none is named)",
    b"INFO [account]                when an account was registered, who is logged in to it",
    b"DROP <password>               delete the account you are logged in to",
    b"GHOST <nick>                  disconnect whoever uses your account's nick",
    b"CERT LIST                     the TLS client certificates that log in to your account",
    b"CERT ADD [fingerprint]        add one (by default the one you are connected with)",
    b"CERT DEL <fingerprint>        remove one",
    b"PASSWD <current> <new> [new]  change the password of the account you are logged in to",
    b"SASET <account> PASSWORD <new> an operator (privilege accounts) resets a password",
    b"HELP                          this list",
)


def notice(ctx: Context, client: Client, text: bytes) -> None:
    """One NOTICE from NickServ to ``client``."""
    ctx.send(client, lines.notice(SOURCE, client.name, text))


def message(ctx: Context, client: Client, text: bytes) -> None:
    """``PRIVMSG NickServ :<text>`` from a registered local client (engine/relay.py routes
    it here instead of to a user)."""
    words = text.split()
    if not words:
        notice(ctx, client, b"Send HELP for a list of commands")
        return
    handler = _COMMANDS.get(words[0].upper())
    if handler is None:
        notice(ctx, client, b"Unknown command %s. Send HELP for a list of commands" % words[0])
        return
    handler(ctx, client, words[1:])


def command(ctx: Context, client: Client, msg: Message) -> None:
    """``NS <command> ...`` / ``NICKSERV <command> ...``: the same as a PRIVMSG to NickServ."""
    message(ctx, client, b" ".join(msg.params))


def whois(ctx: Context, client: Client) -> None:
    """WHOIS NickServ: a service (313 says so), on this server."""
    ctx.reply(client, N.RPL_WHOISUSER, NICK, NICK, HOST, b"*", REALNAME)
    ctx.reply(client, N.RPL_WHOISSERVER, NICK, ctx.config.server_name, ctx.config.server_info)
    ctx.reply(client, N.RPL_WHOISOPERATOR, NICK, b"is a network service")
    ctx.reply(client, N.RPL_ENDOFWHOIS, NICK, b"End of /WHOIS list.")


def _register(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``REGISTER <password> [email]``: the current nick becomes an account, by the rules and
    path of draft/account-registration's REGISTER."""
    if not args:
        notice(ctx, client, b"Syntax: REGISTER <password> [email]")
        return
    email = args[1] if len(args) > 1 else b"*"

    def fail(code: bytes, context: bytes, why: bytes) -> None:
        notice(ctx, client, why)

    accounts.create(ctx, client, client.nick, email, args[0], b"nickserv", fail)


def _verify(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``VERIFY <account> <code>``: complete a registration awaiting verification, by the
    rules and path of draft/account-registration's VERIFY."""
    if len(args) < 2:
        notice(ctx, client, b"Syntax: VERIFY <account> <code>")
        return

    def fail(code: bytes, context: bytes, why: bytes) -> None:
        notice(ctx, client, why)

    accounts.verify_code(ctx, client, args[0], args[1], b"nickserv", fail)


def awaiting_verification(
    ctx: Context, client: Client | None, uid: int, account: bytes, email: bytes, code: bytes
) -> None:
    """NickServ REGISTER's answer when verification is required (``register_verify``):
    notices saying where the code went and how to use it, once it is mailed; or why the
    registration failed."""

    def answer(outcome: MailOutcome) -> None:
        assert client is not None
        if outcome is MailOutcome.REFUSED:
            notice(
                ctx, client, b"Mail to %s was refused: account %s not registered" % (email, account)
            )
        elif outcome is MailOutcome.FAILED:
            notice(ctx, client, b"The verification mail could not be sent; try again later")
        else:
            notice(ctx, client, accounts.pending_text(outcome, email))
            notice(ctx, client, b"Then send /msg NickServ VERIFY %s <code>" % account)

    accounts.mail_code(ctx, client, uid, account, email, code, answer)


def _identify(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``IDENTIFY [account] <password>``: log in (the sequencer does, as for SASL after
    registration); a wrong password or an unknown account get the same notice."""
    if not args:
        notice(ctx, client, b"Syntax: IDENTIFY [account] <password>")
        return
    user = client.user
    if user is not None and user.account is not None:
        notice(ctx, client, b"You are already logged in as " + user.account)
        return
    name, password = (args[0], args[1]) if len(args) > 1 else (client.nick, args[0])
    account = ctx.state.accounts.get(fold(name))

    def checked(matched: bool) -> None:
        if not matched or account is None:
            notice(ctx, client, b"Invalid account credentials")
            return
        ctx.submit(make(RLogin, client.uid, account.name, b"nickserv"))

    stored = account.password_hash.decode() if account is not None else accounts.DUMMY_HASH
    ctx.check_password(client, password, stored, checked)


def _info(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``INFO [account]``: when it was registered, and who is logged in to it now."""
    user = client.user
    mine = user.account if user is not None else None
    name = args[0] if args else (mine or client.nick)
    key = fold(name)
    account = ctx.state.accounts.get(key)
    if account is None:
        notice(ctx, client, b"Account %s is not registered" % name)
        return
    notice(ctx, client, b"Account: " + account.name)
    notice(ctx, client, b"Registered: " + dates.iso8601(account.created))
    if account.email and mine is not None and fold(mine) == key:
        notice(ctx, client, b"Email: " + account.email)  # only to its owner
    # a rare command: a walk over the users is fine here
    on = [u.nick for u in ctx.state.users.values() if u.account and fold(u.account) == key]
    if on:
        notice(ctx, client, b"Logged in now: " + b" ".join(sorted(on)))
    else:
        notice(ctx, client, b"Nobody is logged in to it now")


def _drop(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``DROP [account] <password>``: delete the account one is logged in to (naming it is
    optional; naming another one is refused)."""
    user = client.user
    if not args:
        notice(ctx, client, b"Syntax: DROP <password>")
        return
    mine = user.account if user is not None else None
    if mine is None:
        notice(ctx, client, b"You are not logged in")
        return
    if len(args) > 1 and fold(args[0]) != fold(mine):
        notice(ctx, client, b"You can only drop your own account")
        return
    account = ctx.state.accounts.get(fold(mine))
    if account is None:
        notice(ctx, client, b"Account %s does not exist" % mine)
        return

    def checked(matched: bool) -> None:
        if not matched:
            notice(ctx, client, b"Invalid password")
            return
        ctx.submit(make(RAccountDrop, client.uid, account.name))

    ctx.check_password(client, args[-1], account.password_hash.decode(), checked)


def _ghost(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``GHOST <nick>``: disconnect whoever uses a nick of one's account (the sequencer
    decides whether it is one's own)."""
    if not args:
        notice(ctx, client, b"Syntax: GHOST <nick>")
        return
    user = client.user
    if user is None or user.account is None:
        notice(ctx, client, b"You are not logged in")
        return
    ctx.submit(make(RGhost, client.uid, args[0]))


def _cert(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``CERT LIST``, ``CERT ADD [fingerprint]``, ``CERT DEL <fingerprint>`` (Ergo's syntax,
    without its operators' account argument): the TLS client certificates (SHA-256
    fingerprints, as WHOIS 276 shows them) that log in to one's account with SASL EXTERNAL.
    ADD without a fingerprint adds the certificate one is connected with."""
    verb = args[0].upper() if args else b""
    user = client.user
    if verb not in (b"LIST", b"ADD", b"DEL"):
        notice(ctx, client, b"Syntax: CERT LIST | CERT ADD [fingerprint] | CERT DEL <fingerprint>")
        return
    account = ctx.state.accounts.get(fold(user.account)) if user and user.account else None
    if account is None:
        notice(ctx, client, b"You are not logged in")
        return
    if verb == b"LIST":
        if not account.certfps:
            notice(ctx, client, b"No certificate fingerprints on %s" % account.name)
        for fp in account.certfps:
            notice(ctx, client, b"Certificate fingerprint: " + fp)
        return
    certfp: bytes | None
    if len(args) > 1:
        certfp = maybe_certfp(args[1])
    elif verb == b"ADD" and client.certfp:
        certfp = client.certfp
    else:
        notice(ctx, client, b"Name a fingerprint: you are not connected with a certificate")
        return
    if certfp is None:
        notice(ctx, client, b"A fingerprint is a SHA-256 hash: 64 hexadecimal digits")
        return
    ctx.submit(make(RCertfp, client.uid, verb == b"ADD", certfp))


def _passwd(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``PASSWD <current> <new> [<new again>]`` (Ergo's, its confirmation optional): a new
    password for the account one is logged in to. The current one is asked for, so a
    connection left open cannot take the account over; the new one follows REGISTER's rule."""
    if len(args) not in (2, 3):
        notice(ctx, client, b"Syntax: PASSWD <current password> <new password> [new password]")
        return
    current, new = args[0], args[1]
    if len(args) == 3 and args[2] != new:
        notice(ctx, client, b"The new passwords do not match")
        return
    user = client.user
    account = ctx.state.accounts.get(fold(user.account)) if user and user.account else None
    if account is None:
        notice(ctx, client, b"You are not logged in")
        return
    shortest = ctx.config.password_min_length
    if len(new) < shortest:
        notice(ctx, client, b"A password needs at least %d bytes" % shortest)
        return
    name = account.name

    def hashed(stored: str) -> None:
        ctx.submit(make(RPassword, client.uid, name, stored.encode()))

    def checked(matched: bool) -> None:
        if not matched:
            notice(ctx, client, b"Invalid password")
            return
        ctx.hash_password(client, new, hashed)

    ctx.check_password(client, current, account.password_hash.decode(), checked)


def _saset(ctx: Context, client: Client, args: list[bytes]) -> None:
    """``SASET <account> PASSWORD <new>`` (Anope's syntax): an IRC operator with the
    ``accounts`` privilege sets any account's password, without knowing the old one (a
    user who forgot it). The sequencer checks the privilege again; logged (``ctx.audit``)."""
    if len(args) != 3 or args[1].upper() != b"PASSWORD":
        notice(ctx, client, b"Syntax: SASET <account> PASSWORD <new password>")
        return
    if "accounts" not in client.privileges:
        ctx.reply(client, N.ERR_NOPRIVILEGES, b"Permission Denied- You're not an IRC operator")
        return
    name, new = args[0], args[2]
    shortest = ctx.config.password_min_length
    if len(new) < shortest:
        notice(ctx, client, b"A password needs at least %d bytes" % shortest)
        return
    ctx.audit(client, "NickServ SASET PASSWORD " + name.decode("utf-8", "replace"))

    def hashed(stored: str) -> None:
        ctx.submit(make(RPassword, client.uid, name, stored.encode(), True))

    ctx.hash_password(client, new, hashed)


def _help(ctx: Context, client: Client, args: list[bytes]) -> None:
    for text in _HELP:
        notice(ctx, client, text)


_COMMANDS: dict[bytes, Callable[[Context, Client, list[bytes]], None]] = {
    b"REGISTER": _register,
    b"VERIFY": _verify,
    b"IDENTIFY": _identify,
    b"LOGIN": _identify,
    b"INFO": _info,
    b"DROP": _drop,
    b"GHOST": _ghost,
    b"CERT": _cert,
    b"PASSWD": _passwd,
    b"SASET": _saset,
    b"HELP": _help,
}


# -- nick protection ------------------------------------------------------------------------------
def took_nick(ctx: Context, client: Client, user: User, deadlines: Deadlines) -> None:
    """Local ``user`` has just taken its nick (registered with it, or changed to it): if it
    is a registered account's name and it is not logged in to it, NickServ asks it to
    IDENTIFY (``nick_protection`` ``warn`` or ``rename``); ``rename`` also notes when the
    grace period ends (see :func:`enforce`)."""
    mode = ctx.config.nick_protection
    key = fold(user.nick)
    if mode == "off" or key not in ctx.state.accounts:
        deadlines.pop(user.uid, None)
        return
    logged_in = user.account or client.account  # (SASL during registration: not yet applied)
    if logged_in and fold(logged_in) == key:
        return
    text = b"This nick is registered: if it is yours, send /msg NickServ IDENTIFY <password>"
    if mode == "rename":
        grace = ctx.config.nick_protection_grace
        deadlines[user.uid] = (ctx.now + grace, user.nick)
        text += b"; otherwise it will be changed in %d seconds" % grace
    notice(ctx, client, text)


def enforce(
    ctx: Context,
    deadlines: Deadlines,
    clients: dict[int, Client],
    moving: set[int] | frozenset[int] = frozenset(),
) -> None:
    """At the worker's tick: for each local client whose grace period is over and that still
    uses the nick without being logged in to it, ask the sequencer to rename it (R_PROTECT:
    it decides, with the truth of the moment). Not while the client's move to another worker
    is being decided (``moving``, engine/placement.py): the rename would be work in flight
    under its barrier when it leaves; the deadline travels with it, and the new worker
    renames it."""
    now = ctx.now
    for uid, (deadline, nick) in list(deadlines.items()):
        if now < deadline or uid in moving:
            continue
        del deadlines[uid]
        client = clients.get(uid)
        user = client.user if client is not None else None
        if client is None or client.closed or user is None or fold(user.nick) != fold(nick):
            continue
        if user.account is not None and fold(user.account) == fold(nick):
            continue
        ctx.submit(make(RProtect, uid, nick))


COMMANDS = (
    Command(b"NS", command, 1, reads=True),
    Command(b"NICKSERV", command, 1, reads=True),
)
