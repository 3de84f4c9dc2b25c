"""Connection registration commands: CAP, PASS, NICK, USER, QUIT (RFC 2812 §3.1).

Owns: what these commands mean; each feeds the registration state machine
(:mod:`fastchat.server.registration`) and acts on its outcome, and the last one given asks the
sequencer to register the connection (R_REGISTER). NICK after registration (a rename) lives
here too: one command, one row.
Must never: change ``Client.phase`` except through :func:`advance`.
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_valid_nick
from fastchat.irc.message import MAX_LINE, Message, truncate_utf8
from fastchat.server.commands.accounts import SERVICE_FOLDED
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import RNick, RRegister, make
from fastchat.server.network.state import REALNAMELEN
from fastchat.server.registration import Input, Outcome, Phase, advance
from fastchat.server.render import lines

#: The longest QUIT reason kept (InspIRCd's default ``maxquit``): the QUIT line the channels
#: see and the ERROR line the client gets stay within 512 bytes.
QUITLEN = 255


def feed(client: Client, event: Input) -> bool:
    """Feed ``event`` to ``client``'s registration; True if the input is to be taken.
    Raises 462 ERR_ALREADYREGISTERED where the table says so."""
    client.phase, outcome = advance(client.phase, event)
    if outcome is Outcome.ALREADY_REGISTERED:
        raise N.IRCError(N.ERR_ALREADYREGISTERED, b"You may not reregister")
    return outcome is Outcome.ACCEPT


def cap(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 capability negotiation (https://ircv3.net/specs/extensions/capability-negotiation):
    LS [302], LIST, REQ (all or nothing: ACK or NAK), END. LS and REQ before registration
    suspend it until END. ``CAP LS 302`` also enables the capabilities the registry marks
    ``implicit_302`` (cap-notify)."""
    sub = msg.params[0].upper()
    server, name = ctx.config.server_name, client.name
    if sub == b"LS":
        feed(client, Input.CAP_START)
        version = msg.param(1)
        if version.isdigit() and int(version) > client.cap_version:
            client.cap_version = int(version)
        if client.cap_version >= 302 and ctx.caps.implicit_302 & ~client.caps:
            # IRCv3 cap-notify: "MUST be implicitly enabled" by CAP LS 302
            ctx.set_caps(client, client.caps | ctx.caps.implicit_302)
        ctx.send_lines(
            client,
            _cap_lines(
                ctx, client, b"LS", ctx.caps.ls_tokens(client.cap_version, ctx.config, client)
            ),
        )
    elif sub == b"LIST":
        ctx.send_lines(client, _cap_lines(ctx, client, b"LIST", ctx.caps.names(client.caps)))
    elif sub == b"REQ":
        feed(client, Input.CAP_START)
        wanted = msg.param(1)
        # what CAP LS 302 enabled implicitly may not be disabled (IRCv3 cap-notify)
        locked = ctx.caps.implicit_302 if client.cap_version >= 302 else 0
        after = ctx.caps.request(client.caps, wanted.split(), locked) if wanted.strip() else None
        if after is None:
            ctx.send(client, lines.cap(server, name, b"NAK", wanted))
        else:
            ctx.set_caps(client, after)
            ctx.send(client, lines.cap(server, name, b"ACK", wanted))
    elif sub == b"END":
        if feed(client, Input.CAP_END):
            try_register(ctx, client)
    else:
        ctx.reply(client, N.ERR_INVALIDCAPCMD, sub, b"Invalid CAP command")


def _cap_lines(ctx: Context, client: Client, sub: bytes, tokens: list[bytes]) -> list[bytes]:
    """CAP LS or LIST, in as many lines as needed: from version 302, every line but the last
    says ``*`` before its list (IRCv3 "Multiline replies to CAP LS and CAP LIST"); a client
    that did not ask for 302 gets one line with what fits."""
    server, name = ctx.config.server_name, client.name
    room = MAX_LINE - len(lines.cap(server, name, sub, b"*", b""))
    out: list[bytes] = []
    batch: list[bytes] = []
    used = -1
    for token in tokens:
        if batch and used + 1 + len(token) > room and client.cap_version >= 302:
            out.append(lines.cap(server, name, sub, b"*", b" ".join(batch)))
            batch, used = [], -1
        batch.append(token)
        used += 1 + len(token)
    out.append(lines.cap(server, name, sub, b" ".join(batch)))
    return out


def pass_(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.1: "The optional password can and MUST be set before any attempt to
    register the connection is made." """
    if feed(client, Input.PASS):
        client.password = msg.params[0]


def nick(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.2 NICK: set the nickname (registration) or change it (via the sequencer)."""
    if not msg.params or not msg.params[0]:
        raise N.IRCError(N.ERR_NONICKNAMEGIVEN, b"No nickname given")
    new = msg.params[0]
    if not is_valid_nick(new, ctx.config.nicklen):
        raise N.IRCError(N.ERR_ERRONEUSNICKNAME, new, b"Erroneous nickname")
    holder = ctx.state.nicks.get(fold(new))
    if fold(new) == SERVICE_FOLDED:  # NickServ's (commands/nickserv.py): reserved
        raise N.IRCError(N.ERR_NICKNAMEINUSE, new, b"Nickname is reserved for services")
    user = client.user
    if user is None:
        if not feed(client, Input.NICK):
            return
        if holder is not None:
            client.refused_nick = new  # (REGISTER * names it: commands/accounts.py)
            raise N.IRCError(N.ERR_NICKNAMEINUSE, new, b"Nickname is already in use")
        client.nick = new
        try_register(ctx, client)
        return
    if new == user.nick:
        return
    if holder is not None and holder is not user:
        raise N.IRCError(N.ERR_NICKNAMEINUSE, new, b"Nickname is already in use")
    ctx.submit(make(RNick, client.uid, new))


def user(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.3 USER <user> <mode> <unused> <realname>. Modern IRC: an empty username
    or realname is ERR_NEEDMOREPARAMS. A username keeps its ASCII letters, digits, ``-``,
    ``_`` and ``.`` (a byte of a multibyte character alone would not be UTF-8); one with
    none of them is ERR_INVALIDUSERNAME, as Ergo answers it."""
    if client.username:  # a second USER before registration completes
        raise N.IRCError(N.ERR_ALREADYREGISTERED, b"You may not reregister")
    if not feed(client, Input.USER):
        return
    raw = msg.params[0]
    if not raw or not msg.params[3]:
        raise N.IRCError(N.ERR_NEEDMOREPARAMS, b"USER", b"Not enough parameters")
    username = bytes(c for c in raw if c < 128 and (chr(c).isalnum() or c in b"-_."))[:18]
    if not username:
        raise N.IRCError(N.ERR_INVALIDUSERNAME, b"Your username is not valid")
    client.username = b"~" + username[:17]
    client.realname = truncate_utf8(msg.params[3], REALNAMELEN)
    try_register(ctx, client)


def try_register(ctx: Context, client: Client) -> None:
    """Ask the sequencer to register ``client`` once it has given NICK and USER (and, if it
    started capability negotiation, CAP END); a wrong connection password closes it."""
    if client.phase is not Phase.NEW or not client.nick or not client.username:
        return
    password = ctx.config.password
    if password is not None and client.password != password:
        ctx.reply(client, N.ERR_PASSWDMISMATCH, b"Password incorrect")
        ctx.disconnect(client, b"Bad password")
        return
    feed(client, Input.READY)
    ctx.submit(
        make(
            RRegister,
            client.uid,
            client.nick,
            client.username,
            client.host,
            client.realname,
            client.account,  # what SASL proved, if anything (IRCv3 sasl)
            client.certfp,  # its TLS client certificate's fingerprint, if any (CertFP)
            client.pre_away,  # its AWAY before registering (IRCv3 draft/pre-away), if any
        )
    )


def quit_(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.7: the server acknowledges with ERROR and closes; channels see QUIT."""
    reason = truncate_utf8(msg.param(0), QUITLEN)
    ctx.disconnect(
        client,
        b"Quit: " + reason if reason else b"Client quit",
        quit_message=b"Quit: " + reason if reason else b"Client Quit",
    )


COMMANDS = (
    Command(b"CAP", cap, 1, needs_registration=False),
    Command(b"PASS", pass_, 1, needs_registration=False),
    Command(b"NICK", nick, needs_registration=False, reads=True),
    Command(b"USER", user, 4, needs_registration=False),
    Command(b"QUIT", quit_, needs_registration=False),
)
