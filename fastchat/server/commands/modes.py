"""MODE: user modes and channel modes (RFC 2812 §3.1.5, §3.2.3).

Owns: reading modes from the replica (RPL_UMODEIS, RPL_CHANNELMODEIS, the access lists) and
turning changes into requests: user modes are network state (others' WHO, NAMES and LUSERS
depend on +i and +o), so both kinds go through the sequencer, which validates channel changes.
Must never: change the state directly.
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_channel
from fastchat.irc.message import Message
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client, user_of
from fastchat.server.network import access
from fastchat.server.network.records import RMode, RUmode, make
from fastchat.server.render import replies


def mode(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.5 user modes and §3.2.3 channel modes."""
    target = msg.params[0]
    cfg = ctx.config
    if not is_channel(target):
        if fold(target) != fold(client.name):
            if ctx.state.user_by_nick(target) is None:
                raise N.IRCError(N.ERR_NOSUCHNICK, target, b"No such nick/channel")
            raise N.IRCError(N.ERR_USERSDONTMATCH, b"Can't change mode for other users")
        if len(msg.params) == 1:
            ctx.reply(client, N.RPL_UMODEIS, b"+" + user_of(client).modes)
            return
        _user_mode(ctx, client, msg.params[1])
        return
    chan = ctx.state.channel(target)
    if chan is None:
        raise N.IRCError(N.ERR_NOSUCHCHANNEL, target, b"No such channel")
    if len(msg.params) == 1:
        s, n = cfg.server_name, client.name
        ctx.send(
            client,
            replies.numeric_tokens(s, n, N.RPL_CHANNELMODEIS, chan.name, *chan.mode_string()),
        )
        ctx.send(
            client,
            replies.numeric_tokens(s, n, N.RPL_CREATIONTIME, chan.name, b"%d" % chan.created),
        )
        return
    modestring = msg.params[1]
    letter = modestring.lstrip(b"+")
    if (
        len(letter) == 1
        and letter in access.LIST_MODES
        and len(msg.params) == 2
        and access.may_list(chan, letter, chan.members.get(client.uid))
    ):  # a list, from the replica (the sequencer answers a refusal, or an override)
        for reply in access.list_replies(chan, letter, cfg.server_name):
            ctx.reply(client, *reply)
        return
    ctx.submit(make(RMode, client.uid, target, modestring, tuple(msg.params[2:])))


def _user_mode(ctx: Context, client: Client, modestring: bytes) -> None:
    """RFC 2812 §3.1.5: ``+i``/``-i``, ``+w``/``-w``, ``-o`` on oneself. The change goes
    through the sequencer, since others' replies depend on it (WHO, NAMES and LUSERS hide or
    count invisible users and operators; -o drops the privileges on every worker); the echo
    comes with the event. ``+o`` is ignored ("If a user attempts to make themselves an
    operator using the "+o" flag, the attempt should be ignored": only OPER gives it).
    Unknown letters get 501 at once."""
    adding = True
    modes = set(user_of(client).modes)
    changed = bytearray()
    sign = b""
    unknown = False
    for letter in modestring:
        c = bytes((letter,))
        if c in b"+-":
            adding = c == b"+"
            continue
        if c not in replies.USER_MODES:
            unknown = True
            continue
        if (letter in modes) == adding or (c == b"o" and adding):
            continue
        want = b"+" if adding else b"-"
        if want != sign:
            changed += want
            sign = want
        changed += c
        (modes.add if adding else modes.discard)(letter)
    if unknown:
        ctx.reply(client, N.ERR_UMODEUNKNOWNFLAG, b"Unknown MODE flag")
    if changed:
        ctx.submit(make(RUmode, client.uid, bytes(sorted(modes)), bytes(changed)))


COMMANDS = (Command(b"MODE", mode, 1, reads=True),)
