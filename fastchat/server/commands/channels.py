"""Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE (RFC 2812 §3.2).

Owns: what these commands mean: queries answered from the local replica (which holds the
whole network), changes turned into requests for the sequencer, which decides them in the
network's one order. Must never: change the state directly, touch a socket or read the clock.
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.casemap import is_valid_channel
from fastchat.irc.message import Message, truncate_utf8
from fastchat.server.caps import multi_prefix, userhost_in_names
from fastchat.server.commands import elist
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client, user_of
from fastchat.server.network.records import RInvite, RJoin, RKick, RPart, RTopic, make
from fastchat.server.network.state import visible
from fastchat.server.render import replies


def join(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.1 JOIN <channel>{,<channel>} [<key>{,<key>}], and ``JOIN 0``."""
    me = user_of(client)
    if msg.params[0] == b"0":
        for chan in list(me.channels):
            ctx.submit(make(RPart, client.uid, chan.name, b""))
        return
    keys = msg.param(1).split(b",")
    for i, name in enumerate(msg.params[0].split(b",")):
        if not name:
            continue
        if not is_valid_channel(name, ctx.config.channellen):
            ctx.reply(client, N.ERR_NOSUCHCHANNEL, name, b"No such channel")
            continue
        ctx.submit(make(RJoin, client.uid, name, keys[i] if i < len(keys) else b""))


def part(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.2 PART <channel>{,<channel>} [<reason>]."""
    reason = truncate_utf8(msg.param(1), ctx.config.kicklen)
    for name in msg.params[0].split(b","):
        if name:
            ctx.submit(make(RPart, client.uid, name, reason))


def topic(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.4 TOPIC <channel> [<topic>]: query from the replica, change via sequencer."""
    name = msg.params[0]
    if len(msg.params) > 1:
        ctx.submit(make(RTopic, client.uid, name, msg.params[1]))
        return
    chan = ctx.state.channel(name)
    if chan is None:
        raise N.IRCError(N.ERR_NOSUCHCHANNEL, name, b"No such channel")
    if b"s" in chan.modes and client.uid not in chan.members:
        raise N.IRCError(N.ERR_NOTONCHANNEL, chan.name, b"You're not on that channel")
    ctx.send_lines(client, replies.topic(ctx.config, client.name, chan))


def names(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.5 NAMES [<channel>{,<channel>}]; with no argument, every visible channel.
    The 353s of each visible channel named, then one 366 for the whole parameter (as Solanum
    and InspIRCd answer ``NAMES #a,#b``, and irctest checks); a channel that does not exist,
    or is secret and we are not on it, adds no line (Modern IRC). An IRC operator with the
    ``see`` privilege sees secret channels and invisible users as a member would. The forms
    of IRCv3 multi-prefix and userhost-in-names for a client that negotiated them."""
    cfg = ctx.config
    see = "see" in client.privileges
    every_prefix = bool(ctx.caps.bit(multi_prefix.NAME) & client.caps)
    userhost = bool(ctx.caps.bit(userhost_in_names.NAME) & client.caps)
    if not msg.params:
        chans, end = list(ctx.state.channels.values()), b"*"
    else:
        wanted = [name for name in msg.params[0].split(b",") if name]
        chans = [c for name in wanted if (c := ctx.state.channel(name)) is not None]
        end = b",".join(wanted) or b"*"
    for chan in chans:
        if see or visible(chan, client.uid):
            # from outside, invisible users are not listed
            outside = not see and client.uid not in chan.members
            ctx.send_lines(
                client,
                replies.name_replies(
                    cfg,
                    client.name,
                    ctx.state,
                    chan,
                    outside,
                    multi_prefix=every_prefix,
                    userhost=userhost,
                    asker=client.uid,
                    see=see,
                ),
            )
    ctx.send(client, replies.end_of_names(cfg, client.name, end))


def list_(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.6 LIST [<term>{,<term>}]: 321, 322 per channel, 323; the terms are
    channel names, or the searches of ISUPPORT ``ELIST`` (commands/elist.py: masks, user
    counts, creation and topic times). Secret channels are listed to their members, and to
    an IRC operator with ``see``."""
    s, n = ctx.config.server_name, client.name
    see = "see" in client.privileges
    channels = ctx.state.channels
    if msg.params and msg.params[0]:
        search = elist.parse(msg.params[0])
        if search.masks or not search.names:
            chans = list(channels.values())
        else:  # (names only: looked up, in the order asked)
            chans = [c for c in map(channels.get, search.names) if c is not None]
        now = ctx.now
        chans = [c for c in chans if elist.matches(search, c, now)]
    else:
        chans = list(channels.values())
    out = [replies.numeric(s, n, N.RPL_LISTSTART, b"Channel", b"Users  Name")]
    for chan in chans:
        if see or visible(chan, client.uid):
            out.append(
                replies.numeric(s, n, N.RPL_LIST, chan.name, b"%d" % len(chan.members), chan.topic)
            )
    out.append(replies.numeric(s, n, N.RPL_LISTEND, b"End of /LIST"))
    ctx.send_lines(client, out)


def kick(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.8 KICK <channel>{,<channel>} <user>{,<user>} [<comment>]: "either one
    channel parameter and multiple user parameter, or as many channel parameters as there
    are user parameters" (else 461); at most MAXTARGETS kicks (``TARGMAX=KICK:<n>``, else
    407). Without a comment, the comment is "the nickname of the user issuing the KICK"."""
    comment = msg.param(2) or user_of(client).nick
    chans = msg.params[0].split(b",")
    users = msg.params[1].split(b",")
    if len(chans) == 1:
        chans = chans * len(users)
    elif len(chans) != len(users):
        ctx.reply(client, N.ERR_NEEDMOREPARAMS, b"KICK", b"One channel, or one per user")
        return
    if len(users) > ctx.config.max_targets:
        why = b"Too many targets (max %d)" % ctx.config.max_targets
        ctx.reply(client, N.ERR_TOOMANYTARGETS, msg.params[1], why)
        return
    for chan, target in zip(chans, users, strict=True):
        if chan and target:
            ctx.submit(make(RKick, client.uid, chan, target, comment))


def invite(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.7 INVITE <nickname> <channel>; and, without parameters, Modern IRC's
    list of the channels one is invited to (336 each, then 337)."""
    if not msg.params:
        uid = client.uid
        name = client.name
        out = [
            replies.numeric_tokens(ctx.config.server_name, name, N.RPL_INVITELIST, chan.name)
            for chan in ctx.state.channels.values()
            if uid in chan.invites
        ]
        end = N.RPL_ENDOFINVITELIST
        out.append(replies.numeric(ctx.config.server_name, name, end, b"End of /INVITE list"))
        ctx.send_lines(client, out)
        return
    if len(msg.params) < 2:
        raise N.IRCError(N.ERR_NEEDMOREPARAMS, b"INVITE", b"Not enough parameters")
    ctx.submit(make(RInvite, client.uid, msg.params[0], msg.params[1]))


COMMANDS = (
    Command(b"JOIN", join, 1),
    Command(b"PART", part, 1),
    Command(b"TOPIC", topic, 1, reads=True),
    Command(b"NAMES", names, reads=True),
    Command(b"LIST", list_, reads=True),
    Command(b"KICK", kick, 2),
    Command(b"INVITE", invite, reads=True),  # (without parameters: a list, read)
)
