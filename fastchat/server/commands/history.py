"""IRCv3 ``draft/chathistory`` (https://ircv3.net/specs/extensions/chathistory): the
``CHATHISTORY`` command; and the replay of a channel's last lines to a client that joins it.

Owns: reading a request (subcommand, target, references, limit), deciding who may read what
(a channel's history: its members only; private conversations are not kept), and rendering
the store's answer: a ``chathistory`` batch of the original lines, each with its original
``time`` and ``msgid`` for the clients that negotiated server-time and message-tags. The
replay on JOIN (:func:`replay_on_join`): which lines, and how a client sees them.
Must never: run the query itself: it is an effect (``ctx.ask_history``), answered off the
loop by the worker's store reader, under the client's barrier (its next lines wait), after
the history barrier (``ctx.after_stored``).

While the store's writer fails (a locked file, a full disk: ``State.history_available``,
which the sequencer's process reports on every flip, E_STORE), every request is refused with
``FAIL CHATHISTORY MESSAGE_ERROR <subcommand> <target> :History is temporarily unavailable``
rather than answered with what the file holds plus a ``WARN``: the file then lacks the newest
messages (queued, or dropped past the backlog's bound), and a client that fills its window
with ``LATEST``, or catches up with ``AFTER <its last msgid>``, would take a history with a
hole at its end for the whole of it; a ``WARN`` beside a well-formed batch is easy to miss (it
is optional to show), while ``MESSAGE_ERROR`` is what the spec gives for "could not be
retrieved", and what Ergo answers when its history store errs. The client asks again later.
"""

from __future__ import annotations

from typing import Any

from fastchat.irc.casemap import fold
from fastchat.irc.message import Message
from fastchat.server.caps import account_tag, batch, message_tags, server_time
from fastchat.server.caps import chathistory as cap
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.state import Channel, User
from fastchat.server.render import dates, lines
from fastchat.server.render.variants import escape_tag_value

_CHANNEL_PREFIXES = b"#&"
_BATCH_REF = b"history"
#: subcommand -> how many references it takes before the limit
_SUBCOMMANDS = {b"LATEST": 1, b"BEFORE": 1, b"AFTER": 1, b"AROUND": 1, b"BETWEEN": 2}


def dm_party(account: bytes | None, nick: bytes) -> str:
    """Who a party of a private conversation is, as the store keys it: its (folded) account
    if it is logged in to one, else ``*`` and its folded ``nick`` (``*`` is in no nick or
    account name, so a nick never reads a logged-in user's conversations, even once an
    account of that name exists).

    >>> dm_party(b"ann", b"annie"), dm_party(None, b"annie")
    ('ann', '*annie')
    """
    return account.decode("utf-8", "replace") if account else "*" + nick.decode("utf-8", "replace")


def user_party(user: User) -> str:
    """:func:`dm_party` of ``user`` as it is now (its account, else its nick)."""
    return dm_party(fold(user.account) if user.account else None, fold(user.nick))


def dm_target(a: str, b: str) -> str:
    """The target a conversation of two parties is stored under: ``store.schema.dm_target``
    (the pure core does not import the store; a test checks the two agree)."""
    low, high = sorted((a, b))
    return f"{low}\n{high}"


def _unavailable(ctx: Context, client: Client, *context: bytes) -> bool:
    """While the store's writer fails: FAIL MESSAGE_ERROR, and True (see the module's
    docstring for why not the rows stored so far)."""
    if ctx.state.history_available:
        return False
    ctx.fail(
        client, b"CHATHISTORY", b"MESSAGE_ERROR", b"History is temporarily unavailable", *context
    )
    return True


def maybe_reference(param: bytes) -> int | str | None:
    """A reference as the spec writes it: ``timestamp=<server-time>`` (Unix ms) or
    ``msgid=<id>`` (str); None for anything else.

    >>> maybe_reference(b"timestamp=1970-01-01T00:00:01.000Z"), maybe_reference(b"msgid=a-b-0")
    (1000, 'a-b-0')
    """
    kind, sep, value = param.partition(b"=")
    if not sep or not value:
        return None
    if kind == b"timestamp":
        return dates.maybe_parse_iso8601(value)
    if kind == b"msgid":
        return value.decode("utf-8", "replace")
    return None


def chathistory(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 chathistory (https://ircv3.net/specs/extensions/chathistory):
    ``CHATHISTORY <subcommand> <target> <reference> [<reference>] <limit>`` and
    ``CHATHISTORY TARGETS <timestamp> <timestamp> <limit>``.

    Read after write: it runs behind the history barrier (``ctx.after_stored``), so the
    store has every message the network decided before the request, though its writer
    commits a few milliseconds after the members got them; the barrier is a read barrier
    too (who is in the channel, who is logged in, whether the store's writer works: while
    it fails, ``FAIL CHATHISTORY MESSAGE_ERROR``, see the module's docstring)."""
    ctx.after_stored(client, lambda: _chathistory(ctx, client, msg))


def _chathistory(ctx: Context, client: Client, msg: Message) -> None:
    params = msg.params
    sub = params[0].upper()
    if sub == b"TARGETS":
        _targets(ctx, client, params)
        return
    refs = _SUBCOMMANDS.get(sub)
    if refs is None:
        ctx.fail(client, b"CHATHISTORY", b"INVALID_PARAMS", b"Unknown subcommand", params[0])
        return
    if len(params) < refs + 3:
        ctx.fail(client, b"CHATHISTORY", b"INVALID_PARAMS", b"Not enough parameters", sub)
        return
    target = params[1]
    limit = _limit(ctx, params[refs + 2])
    if limit is None:
        ctx.fail(client, b"CHATHISTORY", b"INVALID_PARAMS", b"Invalid limit", sub)
        return
    references: list[int | str | None] = []
    for param in params[2 : 2 + refs]:
        ref = None if sub == b"LATEST" and param == b"*" else maybe_reference(param)
        if ref is None and not (sub == b"LATEST" and param == b"*"):
            ctx.fail(
                client, b"CHATHISTORY", b"INVALID_PARAMS", b"Invalid message reference", sub, param
            )
            return
        references.append(ref)
    key = fold(target)
    if target[:1] in _CHANNEL_PREFIXES:
        chan = ctx.state.channels.get(key)
        if chan is None or client.uid not in chan.members:
            ctx.fail(
                client,
                b"CHATHISTORY",
                b"INVALID_TARGET",
                b"Messages could not be retrieved",
                sub,
                target,
            )
            return
        target = chan.name
        stored_key = key.decode("utf-8", "replace")
        dm = None
    else:
        me = ctx.state.users.get(client.uid)
        other = ctx.state.nicks.get(key)
        if other is not None:
            party = dm_party(fold(other.account) if other.account else None, key)
        elif key in ctx.state.accounts:
            party = dm_party(key, key)
        else:
            ctx.fail(
                client,
                b"CHATHISTORY",
                b"INVALID_TARGET",
                b"Messages could not be retrieved",
                sub,
                target,
            )
            return
        if me is None or not me.account:
            _send_batch(ctx, client, target, [])  # only a logged-in user's are kept
            return
        stored_key = dm_target(dm_party(fold(me.account), b""), party)
        dm = (fold(me.account), other.nick if other is not None else target)
    if _unavailable(ctx, client, sub, target):
        return
    query: tuple[Any, ...] = (sub.decode().lower(), stored_key, *references)
    query += (limit,)

    def answered(answer: tuple[list[Any], str]) -> None:
        rows, error = answer
        if error:
            ctx.fail(
                client,
                b"CHATHISTORY",
                b"MESSAGE_ERROR",
                b"Messages could not be retrieved",
                sub,
                target,
            )
            return
        _send_batch(ctx, client, target, rows, dm)

    ctx.ask_history(client, query, answered)


def _limit(ctx: Context, param: bytes) -> int | None:
    if not param.isdigit() or int(param) <= 0:
        return None
    most = ctx.config.chathistory_max
    return min(int(param), most) if most > 0 else int(param)


def _targets(ctx: Context, client: Client, params: tuple[bytes, ...] | list[bytes]) -> None:
    if len(params) < 4:
        ctx.fail(client, b"CHATHISTORY", b"INVALID_PARAMS", b"Not enough parameters", b"TARGETS")
        return
    first, second = maybe_reference(params[1]), maybe_reference(params[2])
    limit = _limit(ctx, params[3])
    if not isinstance(first, int) or not isinstance(second, int) or limit is None:
        ctx.fail(client, b"CHATHISTORY", b"INVALID_PARAMS", b"Invalid parameters", b"TARGETS")
        return
    channels = {
        chan.key.decode("utf-8", "replace"): chan.name
        for chan in ctx.state.channels.values()
        if client.uid in chan.members
    }
    me = ctx.state.users.get(client.uid)
    owner = dm_party(fold(me.account), b"") if me is not None and me.account else None

    def name_of(target: str) -> bytes:
        """A channel's name, or the other party of a conversation: its nick (``*nick``),
        or the name of its account."""
        if target in channels:
            return channels[target]
        low, sep, high = target.partition("\n")
        if not sep:
            return target.encode()
        other = high if low == owner else low
        if other.startswith("*"):
            return other[1:].encode()
        account = ctx.state.accounts.get(other.encode())
        return account.name if account is not None else other.encode()

    def answered(answer: tuple[list[Any], str]) -> None:
        rows, error = answer
        if error:
            ctx.fail(
                client,
                b"CHATHISTORY",
                b"MESSAGE_ERROR",
                b"Targets could not be retrieved",
                b"TARGETS",
            )
            return
        server = ctx.config.server_name
        out = [
            b":%s CHATHISTORY TARGETS %s %s\r\n" % (server, name_of(name), dates.iso8601(ms))
            for name, ms in rows
        ]
        wrap_batch(ctx, client, cap.TARGETS_BATCH_TYPE, b"", out)

    if _unavailable(ctx, client, b"TARGETS"):
        return
    query = ("targets", first, second, limit, list(channels), owner)
    ctx.ask_history(client, query, answered)


def render_row(ctx: Context, client: Client, target: bytes, row: Any) -> bytes:
    """One stored message (a ``store.schema.HistoryRow``: the pure core does not import the
    store) as ``client`` sees it replayed (its tags as its capabilities ask: the original
    time and msgid)."""
    caps = ctx.caps
    tags: list[bytes] = []
    if client.caps & caps.bit(server_time.CAPABILITY.name):
        tags.append(b"time=" + dates.iso8601(row.time_ms))
    if client.caps & caps.bit(message_tags.NAME):
        tags.append(b"msgid=" + escape_tag_value(row.msgid.encode()))
        if row.tags:
            tags.append(row.tags.encode())
    if row.account and client.caps & caps.bit(account_tag.NAME):
        tags.append(b"account=" + escape_tag_value(row.account.encode()))
    head = b"@" + b";".join(tags) + b" " if tags else b""
    return head + b":%s %s %s :%s\r\n" % (row.sender.encode(), row.kind.encode(), target, row.text)


def _send_batch(
    ctx: Context,
    client: Client,
    target: bytes,
    rows: list[Any],
    dm: tuple[bytes, bytes] | None = None,
) -> None:
    """The batch of ``rows``; ``dm``: (the asker's folded account, the other party's nick)
    for a private conversation, whose lines are addressed to whichever party did not send
    them, as they were."""
    if dm is None:
        out = [render_row(ctx, client, target, row) for row in rows]
    else:
        mine, other = dm
        out = [
            render_row(
                ctx, client, other if fold(row.account.encode()) == mine else client.name, row
            )
            for row in rows
        ]
    wrap_batch(ctx, client, cap.BATCH_TYPE, b" " + target, out)


def wrap_batch(
    ctx: Context,
    client: Client,
    kind: bytes,
    params: bytes,
    out: list[bytes],
    ref: bytes = _BATCH_REF,
) -> None:
    """``out`` in a batch of ``kind`` (``params``: its parameters, each after a space) if
    ``client`` negotiated batch; else as it is. ``ref``: the batch's reference, a word that is
    not hexadecimal (commands/metadata.py's batches use their own)."""
    if not client.caps & ctx.caps.bit(batch.NAME):
        if out:
            ctx.send(client, b"".join(out))
        return
    # Opened and closed in one write, so one reference serves every reply; not hexadecimal,
    # so never a labeled-response batch's (engine/labels.py)
    server = ctx.config.server_name
    tag = b"batch=" + ref
    body = b"".join(
        b"@" + tag + (b";" + line[1:] if line[:1] == b"@" else b" " + line) for line in out
    )
    opening = b":%s BATCH +%s %s%s\r\n" % (server, ref, kind, params)
    closing = b":%s BATCH -%s\r\n" % (server, ref)
    if client.label is not None and body:
        # A labeled request: the batch nests in the labeled-response one. Its opening and
        # closing lines are the reply (tagged with the label's batch); the lines inside
        # belong to this batch alone, so they go beside the reply, between the two
        ctx.send(client, opening)
        ctx.notify(client, body)
        ctx.send(client, closing)
        return
    ctx.send(client, opening + body + closing)


def replay_on_join(
    ctx: Context, client: Client, chan: Channel, kept: tuple[int, ...], time: int
) -> None:
    """The channel's last ``history_replay`` lines for ``client``, which has just joined it
    (its E_JOIN, decided at ``time`` after the message ``kept``: ``EJoin.kept``), after its
    JOIN line, topic and NAMES; as InspIRCd's m_chanhistory and Ergo's
    ``autoreplay-on-join`` do. Not for a client that negotiated draft/chathistory: it asks
    for what it wants (Ergo skips those too), nor when no history is kept.

    Exactly the messages decided before the join, each once, before any decided after it:
    the query ends at ``kept`` (the last message the store keeps that the sequencer decided
    before the join; with none kept since its process started, every kept message predates
    ``time``), after the history barrier (so the store has them); and the client's output
    is corked meanwhile at the place the replay goes (``ctx.reserve_output``), so the lines
    it is sent after its JOIN (the channel's live messages among them) wait behind the
    replay, as its own next lines wait behind its barrier."""
    cfg = ctx.config
    most = cfg.history_replay
    if most <= 0 or not cfg.history or not cfg.data_dir or client.caps & ctx.caps.bit(cap.NAME):
        return
    target = chan.key.decode("utf-8", "replace")
    if kept:
        last: str | None = message_tags.msgid(*kept).decode()
        # AROUND a msgid gives the limit // 2 messages before it, then it and those after:
        # the ``most`` up to it, inclusive (BEFORE would leave it out), and some after,
        # dropped below; the store's selectors have no inclusive bound of their own.
        query: tuple[Any, ...] = ("around", target, last, 2 * most - 1)
    else:
        last = None
        query = ("before", target, time, most)
    oldest = time - cfg.history_replay_minutes * 60_000 if cfg.history_replay_minutes else 0
    slot = ctx.reserve_output(client)

    def answered(answer: tuple[list[Any], str]) -> None:
        rows = answer[0]  # on an error, none (the reader has logged it): no replay
        if last is not None:
            end = next((i for i, row in enumerate(rows) if row.msgid == last), -1)
            rows = rows[: end + 1][-most:]  # none if the store has lost it (pruned)
        rows = [row for row in rows if row.time_ms >= oldest]
        ctx.fill_output(client, slot, lambda: _send_replay(ctx, client, chan.name, rows))

    ctx.after_stored(client, lambda: ctx.ask_history(client, query, answered))


def _send_replay(ctx: Context, client: Client, name: bytes, rows: list[Any]) -> None:
    """A JOIN's replay: in a ``chathistory`` batch for a client that negotiated batch (the
    batch says what the lines are); before them, for one that did not, InspIRCd's notice
    from the server to the channel (its ``prefixmsg``): these lines are old. Nothing when
    there is no history."""
    if not rows:
        return
    cfg = ctx.config
    if not client.caps & ctx.caps.bit(batch.NAME):
        text = b"Replaying up to %d lines of pre-join history" % cfg.history_replay
        minutes = cfg.history_replay_minutes
        if minutes:
            text += b" from the last %d minute%s" % (minutes, b"s" if minutes > 1 else b"")
        ctx.send(client, lines.notice(cfg.server_name, name, text))
    out = [render_row(ctx, client, name, row) for row in rows]
    wrap_batch(ctx, client, cap.BATCH_TYPE, b" " + name, out)


COMMANDS = (Command(b"CHATHISTORY", chathistory, 2, capability=cap.NAME),)
