"""Messages: PRIVMSG and NOTICE (RFC 2812 §3.3), the general path.

Owns: checking a message's parameters and targets and formatting its line once per target.
The commonest shape (one target, plain text) never gets here: the engine's relay takes it
on a fast path that produces the same bytes (:func:`fastchat.server.render.lines.message_fast`).
Must never: decide whether the target may receive it (the replica, then the sequencer, do).
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.message import Message
from fastchat.server.caps import message_tags
from fastchat.server.caps.message_tags import client_tags
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client, user_of
from fastchat.server.network.records import TAGMSG
from fastchat.server.render import lines


def _message(ctx: Context, client: Client, msg: Message, is_notice: bool) -> None:
    me = user_of(client)
    if not msg.params or not msg.params[0]:
        if is_notice:
            return
        raise N.IRCError(N.ERR_NORECIPIENT, b"No recipient given (%s)" % msg.command)
    if len(msg.params) < 2 or not msg.params[1]:
        if is_notice:
            return
        raise N.IRCError(N.ERR_NOTEXTTOSEND, b"No text to send")
    targets = _targets(ctx, client, msg, is_notice)
    text = msg.params[1]
    tags = client_tags(msg.tags, ctx.config.client_tag_deny)
    mask = me.mask
    for target in targets:
        line = lines.message(mask, msg.command, target, text)
        ctx.relay_message(client, target, line, is_notice, tags)


def _targets(ctx: Context, client: Client, msg: Message, quiet: bool) -> list[bytes]:
    """The targets of a message (``a,b``), at most MAXTARGETS of them (else 407, unless
    ``quiet``: a NOTICE is never answered with an error)."""
    targets = [t for t in msg.params[0].split(b",") if t]
    if len(targets) > ctx.config.max_targets:
        if not quiet:
            ctx.reply(
                client,
                N.ERR_TOOMANYTARGETS,
                msg.params[0],
                b"Too many targets (max %d)" % ctx.config.max_targets,
            )
        return []
    return targets


def privmsg(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.3.1 PRIVMSG <msgtarget>{,<msgtarget>} <text>."""
    _message(ctx, client, msg, False)


def notice(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.3.2 NOTICE: like PRIVMSG, but never answered with an error."""
    _message(ctx, client, msg, True)


def tagmsg(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 message-tags ``TAGMSG <msgtarget>``: a message made only of client-only tags
    (typing notifications, reactions), relayed like a PRIVMSG, in the same order and with a
    msgid, to the recipients that negotiated message-tags; never answered with
    ERR_NOTEXTTOSEND. Without a tag worth relaying it is dropped, as Ergo does."""
    me = user_of(client)
    if not msg.params[0]:
        raise N.IRCError(N.ERR_NORECIPIENT, b"No recipient given (TAGMSG)")
    tags = client_tags(msg.tags, ctx.config.client_tag_deny)
    if not tags:
        return
    for target in _targets(ctx, client, msg, False):
        ctx.relay_message(client, target, lines.tagmsg(me.mask, target), True, tags, TAGMSG)


COMMANDS = (
    Command(b"PRIVMSG", privmsg),
    Command(b"NOTICE", notice),
    Command(b"TAGMSG", tagmsg, min_params=1, capability=message_tags.NAME),
)
