"""User queries and presence: WHO, WHOIS, WHOWAS, ISON, USERHOST, AWAY (RFC 2812 §3.6, §4),
SETNAME (IRCv3 setname).

Owns: answering who is who from the local replica, which holds the whole network (the read
barrier makes the answer current at several workers), and AWAY and SETNAME, changes the
sequencer decides. Must never: change the state directly.
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_channel
from fastchat.irc.message import Message, truncate_utf8
from fastchat.server.caps import metadata, multi_prefix, pre_away
from fastchat.server.commands import nickserv
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client, user_of
from fastchat.server.network.access import mask_matches
from fastchat.server.network.records import RAway, RSetname, make
from fastchat.server.network.state import REALNAMELEN, Channel, User, seen_by, shown, visible
from fastchat.server.render import replies


def who(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.6.1 WHO [<mask> [o]]: a channel's members, a nick, or nicks matching a mask;
    with ``o``, only IRC operators. Invisible users (+i) are left out for those who share no
    channel with them, except when asked for by their exact nick (Modern IRC; as Solanum and
    InspIRCd do). An IRC operator with the ``see`` privilege sees invisible users and secret
    channels too. A channel's members show every prefix to a client that negotiated IRCv3
    multi-prefix.

    IRCv3 WHOX: a second parameter ``[o]%<fields>[,<token>]`` asks for RPL_WHOSPCRPL with
    those fields instead of RPL_WHOREPLY (:func:`whox_query`); the same users are listed."""
    cfg = ctx.config
    me = user_of(client)
    see = "see" in client.privileges
    mask = msg.param(0, b"*") or b"*"
    flags, percent, fields = msg.param(1).partition(b"%")
    opers_only = b"o" in flags
    found: list[tuple[User, Channel | None]] = []
    every_prefix = False
    if is_channel(mask):
        chan = ctx.state.channel(mask)
        if chan is not None and (see or visible(chan, client.uid)):
            member = see or client.uid in chan.members
            every_prefix = bool(ctx.caps.bit(multi_prefix.NAME) & client.caps)
            hidden = set() if see else chan.hidden  # delayed join (+D): shown to itself
            for uid in chan.members:
                u = ctx.state.users.get(uid)
                if (
                    u is not None
                    and (member or b"i" not in u.modes)
                    and (uid not in hidden or uid == client.uid)
                ):
                    found.append((u, chan))
    else:
        exact = ctx.state.user_by_nick(mask)
        if exact is not None:
            found.append((exact, None))
        elif mask not in (b"0", b"*"):
            pattern = mask if b"!" in mask else mask + b"!*@*"
            for u in ctx.state.users.values():
                if mask_matches(pattern, u) and (see or seen_by(me, u)):
                    found.append((u, None))
        else:
            # "WHO 0"/"WHO *": users who share a channel with the asker (RFC 2812 §3.6.1)
            seen: set[int] = {me.uid} if me.channels else set()
            for chan in me.channels:
                seen.update(shown(chan))  # delayed join (+D): not its hidden members
            for uid in seen:
                u = ctx.state.users.get(uid)
                if u is not None:
                    found.append((u, None))
    if opers_only:
        found = [(u, c) for u, c in found if b"o" in u.modes]
    nick = client.name
    if percent:
        query = whox_query(fields)
        out = [
            replies.whox_line(cfg, nick, u, c, query, every_prefix, see or u is me)
            for u, c in found
        ]
    else:
        out = [replies.who_line(cfg, nick, u, c, every_prefix) for u, c in found]
    out.append(replies.numeric(cfg.server_name, nick, N.RPL_ENDOFWHO, mask, b"End of WHO list"))
    ctx.send_lines(client, out)


def whox_query(spec: bytes) -> replies.WhoxQuery:
    """IRCv3 WHOX: what follows the ``%``, ``<fields>[,<token>]``. Letters that are no
    standard field are ignored ("Servers MUST ignore any non-standard field they don't
    support"), and the fields come back in the reply's order whatever order they were asked
    in. "The token MUST contain only digit characters and MUST contain at most 3
    characters": any other token (or none) is returned as ``0``, as Solanum does.

    >>> whox_query(b"rnt,42")
    WhoxQuery(fields=b'tnr', token=b'42')
    >>> whox_query(b"tn,1234").token, whox_query(b"tn,x").token, whox_query(b"tn").token
    (b'0', b'0', b'0')
    """
    letters, _, token = spec.partition(b",")
    fields = bytes(c for c in replies.WHOX_FIELDS if c in letters)
    if not (token.isdigit() and token.isascii() and len(token) <= 3):
        token = b"0"
    return replies.WhoxQuery(fields, token)


def whois(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.6.2 WHOIS [<server>] <nickmask>. Secret channels are listed to those on
    them, and to an IRC operator with the ``see`` privilege. Every prefix on each channel
    for a client that negotiated IRCv3 multi-prefix."""
    target = msg.params[-1]
    cfg = ctx.config
    see = "see" in client.privileges
    every_prefix = bool(ctx.caps.bit(multi_prefix.NAME) & client.caps)
    with_metadata = bool(ctx.caps.bit(metadata.NAME) & client.caps)  # IRCv3 metadata-3: 760
    for nick_ in target.split(b",")[:1]:
        u = ctx.state.user_by_nick(nick_)
        if u is None and fold(nick_) == nickserv.FOLDED:
            nickserv.whois(ctx, client)
            continue
        if u is None:
            ctx.reply(client, N.ERR_NOSUCHNICK, nick_, b"No such nick/channel")
            ctx.reply(client, N.RPL_ENDOFWHOIS, nick_, b"End of /WHOIS list.")
            continue
        me = user_of(client)
        ctx.send_lines(
            client,
            replies.whois(
                cfg,
                client.name,
                u,
                [c.key for c in me.channels],
                see,
                every_prefix,
                see_certfp=u is me or b"o" in me.modes,
                metadata=ctx.state.metadata.of(u.uid).items() if with_metadata else (),
            ),
        )


def whowas(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.6.3 WHOWAS <nickname> [<count>]: who used a nick before, newest first.

    Modern IRC: "up to ``<count>`` replies will be returned (or all of them if no ``<count>``
    parameter is given)", and a count that is not positive asks for all; no nick gets 431.
    The history is network state, fed by every nick change and quit on every worker."""
    asked = msg.param(0).split(b",", 1)[0]
    if not asked:
        ctx.reply(client, N.ERR_NONICKNAMEGIVEN, b"No nickname given")
        return
    try:
        limit = int(msg.param(1) or b"0")
    except ValueError:
        limit = 0  # not a number: a full search, as for any count that is not positive
    entries = ctx.state.whowas_of(asked)
    if limit > 0:
        entries = entries[:limit]
    ctx.send_lines(client, replies.whowas(ctx.config, client.name, asked, entries))


def ison(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §4.9 ISON <nickname>{ <nickname>}."""
    found = []
    for word in b" ".join(msg.params).split():  # nicks in any number of parameters
        u = ctx.state.user_by_nick(word)
        if u is not None:
            found.append(u.nick)
    s = ctx.config.server_name
    ctx.send(client, next(replies.word_lines(s, client.name, N.RPL_ISON, found)))


def userhost(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §4.8 USERHOST <nickname>{ <nickname>} (up to 5).

    Modern IRC RPL_USERHOST: ``nickname [ isop ] "=" isaway hostname``, where ``*`` "is
    included if the user ... has registered as an operator" (user mode +o, network state)
    and ``-`` means away, ``+`` not."""
    out = []
    for word in msg.params[:5]:
        u = ctx.state.user_by_nick(word)
        if u is not None:
            isop = b"*" if b"o" in u.modes else b""
            isaway = b"-" if u.away else b"+"
            out.append(b"%s%s=%s%s@%s" % (u.nick, isop, isaway, u.username, u.host))
    s = ctx.config.server_name
    ctx.send(client, next(replies.word_lines(s, client.name, N.RPL_USERHOST, out)))


def away(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §4.1 AWAY [<text>]: 306 when marked away, 305 when back (sent on the event).

    Before registration, only for a client that negotiated IRCv3 draft/pre-away (else 451):
    the message is kept and the registration carries it, so the user is away from its first
    moment (306 then comes with the welcome); ``AWAY`` without one is answered 305 now."""
    text = truncate_utf8(msg.param(0), ctx.config.awaylen)
    if client.user is not None:
        ctx.submit(make(RAway, client.uid, text))
    elif not client.caps & ctx.caps.bit(pre_away.NAME):
        ctx.reply(client, N.ERR_NOTREGISTERED, b"You have not registered")
    else:
        client.pre_away = text
        if not text:
            ctx.reply(client, N.RPL_UNAWAY, b"You are no longer marked as being away")


def setname(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 setname SETNAME :<realname>: a new realname, which the sequencer makes network
    state (WHOIS and WHO show it on every worker). The user and its channel peers that
    negotiated setname get ``SETNAME :<realname>`` (``Replica._e_setname``); an empty realname,
    or one longer than ISUPPORT NAMELEN, gets ``FAIL SETNAME INVALID_REALNAME``.

    The spec: "Servers MUST check the realname for validity (taking length limits into
    consideration)". Several parameters are one realname, joined by spaces (what a client
    that sends ``/setname Jane Doe`` as a raw line means; Ergo does the same)."""
    realname = b" ".join(msg.params)
    if not realname:
        why = b"Realname is not valid: it is empty"
    elif len(realname) > REALNAMELEN:
        why = b"Realname is not valid: longer than %d bytes (NAMELEN)" % REALNAMELEN
    else:
        ctx.submit(make(RSetname, client.uid, realname))
        return
    ctx.fail(client, b"SETNAME", b"INVALID_REALNAME", why)


COMMANDS = (
    Command(b"WHO", who, reads=True),
    Command(b"WHOIS", whois, 1, reads=True),
    Command(b"WHOWAS", whowas, reads=True),
    Command(b"ISON", ison, 1, reads=True),
    Command(b"USERHOST", userhost, 1, reads=True),
    Command(b"AWAY", away, needs_registration=False),
    Command(b"SETNAME", setname, 1),
)
