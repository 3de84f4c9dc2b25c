"""IRCv3 ``draft/message-redaction``: ``REDACT <channel> <msgid> [:<reason>]``.

Owns: the command's checks on the worker (the asker is on the channel, or the other party
exists; the msgid is one of ours and, where the history is kept, a message of that target
still in it) and its FAILs, then the request (R_REDACT) that the sequencer decides: whether
the asker may (its own message, or a channel operator), in the one order.
Must never: tell anyone itself (the replica renders the REDACT the sequencer decided, for
every member on every worker), or read the store on the loop (the lookup runs on the
store's reader, behind the history barrier, so a message sent just before is found).

A private message is named by the other party's nick (``REDACT bob <msgid>``), and only its
sender may redact it; both parties are told. There is no time limit on redacting one's own
messages.
"""

from __future__ import annotations

from typing import Any

from fastchat.irc.casemap import is_channel
from fastchat.irc.message import Message, truncate_utf8
from fastchat.server.caps import message_redaction as cap
from fastchat.server.caps import message_tags
from fastchat.server.commands.context import Context
from fastchat.server.commands.history import dm_target, user_party
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import RRedact, make

#: The longest reason relayed (bytes): the REDACT line must fit in 512 with the source
REASONLEN = 300


def redact(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 message-redaction's REDACT, of a channel message or of a private one (the target
    then is the other party's nick): ``FAIL REDACT INVALID_TARGET`` when the asker is not on
    the channel or no one has that nick, ``UNKNOWN_MSGID`` for a msgid that is not one of the
    target's messages, ``REDACT_FORBIDDEN`` (from the sequencer) for someone else's message
    unless the asker is the channel's operator. A reason is cut to :data:`REASONLEN` bytes."""
    target, msgid = msg.params[0], msg.params[1]
    reason = truncate_utf8(msg.params[2], REASONLEN) if len(msg.params) > 2 else b""
    user = client.user
    if user is None:  # (the dispatcher lets only registered clients in)
        return
    state = ctx.state
    if is_channel(target):
        chan = state.channel(target)
        if chan is None or user.uid not in chan.members:
            ctx.fail(client, b"REDACT", b"INVALID_TARGET", b"You are not on that channel", target)
            return
        stored = chan.key.decode("utf-8", "replace")
    else:
        other = state.user_by_nick(target)
        if other is None:
            ctx.fail(client, b"REDACT", b"INVALID_TARGET", b"No such nick", target)
            return
        # (kept only when one of the two is logged in: else the lookup finds nothing)
        stored = dm_target(user_party(user), user_party(other))
    parsed = message_tags.maybe_parse_msgid(msgid.decode("utf-8", "replace"))
    if parsed is None:
        ctx.fail(client, b"REDACT", b"UNKNOWN_MSGID", b"No such message", target, msgid)
        return
    sender = parsed[1]
    cfg = ctx.config
    if not (cfg.history and cfg.data_dir):  # nothing kept to look in: the msgid says who
        ctx.submit(make(RRedact, client.uid, target, msgid, reason, sender, b"", b""))
        return

    def answered(answer: tuple[list[Any], str]) -> None:
        rows, error = answer
        if not rows:
            why = b"No such message" if not error else b"The history cannot be read now"
            ctx.fail(client, b"REDACT", b"UNKNOWN_MSGID", why, target, msgid)
            return
        account = rows[0].account.encode()
        key = stored.encode()
        ctx.submit(make(RRedact, client.uid, target, msgid, reason, sender, account, key))

    query = ("message", stored, msgid.decode())
    ctx.after_stored(client, lambda: ctx.ask_history(client, query, answered))


COMMANDS = (Command(b"REDACT", redact, 2, capability=cap.NAME, reads=True),)
