"""IRCv3 ``draft/metadata-3``: ``METADATA <target> <subcommand> [...]``.

Owns: the command (GET, LIST, SET, CLEAR, SUB, UNSUB, SUBS, SYNC), its checks and FAILs, the
lines it and the notifications send (:func:`keyvalue`, :func:`keynotset`), and what a client
that subscribed to keys is sent about a channel it joins (:func:`sync_on_join`).
Must never: change metadata itself: SET and CLEAR go to the sequencer (R_METADATA), which
decides who may (oneself; a channel's operators) and whether there is room; the replica
answers the setter and tells the subscribers as it applies the E_METADATA.

Who sees what: a user's metadata, anyone; a channel's, its members (and IRC operators who
may ``see``). GET, LIST and SYNC are reads: behind the read barrier, so they see a SET made
just before on another worker. Subscriptions (SUB) belong to the connection, and move with
it between workers. A subscriber is told (``761``/``766`` from the server, with ``*`` where
the asker's nick would be) when a user it shares a channel with, or a channel it is on,
changes a key it subscribed to; not of its own changes, which it is answered.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastchat.irc import numerics as N
from fastchat.irc.casemap import is_channel
from fastchat.irc.message import MAX_LINE, Message
from fastchat.server.caps import metadata as cap
from fastchat.server.commands.context import Context
from fastchat.server.commands.history import wrap_batch
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network import metadata
from fastchat.server.network.records import RMetadata, make
from fastchat.server.network.state import Channel, State, User
from fastchat.server.render import lines
from fastchat.server.render.replies import numeric, word_bodies

#: The batch type (and this module's batch reference: not hexadecimal, see wrap_batch)
BATCH_TYPE = b"metadata"


def keyvalue(server: bytes, nick: bytes, target: bytes, key: bytes, value: bytes) -> bytes:
    """``761 RPL_KEYVALUE``: ``<nick> <target> <key> * :<value>`` (``*``: visible to all)."""
    return numeric(server, nick, N.RPL_KEYVALUE, target, key, b"*", value)


def keynotset(server: bytes, nick: bytes, target: bytes, key: bytes, why: bytes) -> bytes:
    """``766 RPL_KEYNOTSET``: ``<nick> <target> <key> :<why>``."""
    return numeric(server, nick, N.RPL_KEYNOTSET, target, key, why)


def _target(ctx: Context, client: Client, name: bytes) -> tuple[bytes, User | Channel] | None:
    """The user or channel ``name`` names (``*``: oneself), with the name it goes by; None
    (and ``FAIL METADATA INVALID_TARGET``) if there is none such."""
    state = ctx.state
    found: User | Channel | None
    if name == b"*":
        found = client.user
    elif is_channel(name):
        found = state.channel(name)
    else:
        found = state.user_by_nick(name)
    if found is None:
        ctx.fail(client, b"METADATA", b"INVALID_TARGET", b"Invalid metadata target", name)
        return None
    return (found.name if isinstance(found, Channel) else found.nick), found


def owner_of(found: User | Channel) -> metadata.Owner:
    return found.key if isinstance(found, Channel) else found.uid


def _may_see(client: Client, found: User | Channel) -> bool:
    """A user's metadata is for anyone; a channel's for its members (or ``see``)."""
    if isinstance(found, User):
        return True
    return client.uid in found.members or "see" in client.privileges


def metadata_command(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 metadata-3: ``METADATA <target> GET <key>...``, ``LIST``, ``SET <key>
    [:<value>]``, ``CLEAR``, ``SYNC``, and ``METADATA * SUB|UNSUB <key>...``, ``SUBS``.
    ``FAIL METADATA`` ``INVALID_TARGET`` (no such user or channel), ``KEY_NO_PERMISSION``
    (another's metadata, a channel one is not on or not an operator of), ``INVALID_KEY``,
    ``INVALID_VALUE`` (not UTF-8, or too long), ``LIMIT_REACHED``, ``INVALID_PARAMS`` (an
    unknown subcommand); 461 for a subcommand without the keys it needs."""
    name, sub = msg.params[0], msg.params[1].upper()
    keys = [k.lower() for k in msg.params[2:]]
    if sub in (b"GET", b"SET", b"SUB", b"UNSUB") and not keys:
        raise N.IRCError(N.ERR_NEEDMOREPARAMS, msg.command, b"Not enough parameters")
    if sub in (b"SUB", b"UNSUB", b"SUBS"):
        _subscriptions(ctx, client, sub, keys)
        return
    if sub not in (b"GET", b"LIST", b"SET", b"CLEAR", b"SYNC"):
        ctx.fail(client, b"METADATA", b"INVALID_PARAMS", b"Invalid subcommand", msg.params[1])
        return
    found = _target(ctx, client, name)
    if found is None:
        return
    target, obj = found
    if sub == b"SET":
        key = keys[0]
        why = metadata.key_problem(key)
        if why is not None:
            ctx.fail(client, b"METADATA", b"INVALID_KEY", why, key)
            return
        value = msg.params[3] if len(msg.params) > 3 and msg.params[3] else None
        why = metadata.value_problem(value) if value is not None else None
        if why is not None:
            ctx.fail(client, b"METADATA", b"INVALID_VALUE", why, key)
            return
        ctx.submit(make(RMetadata, client.uid, target, key, value))
        return
    if sub == b"CLEAR":
        ctx.submit(make(RMetadata, client.uid, target, b"", None))
        return
    if not _may_see(client, obj):
        why = b"You do not have permission to see that"
        ctx.fail(client, b"METADATA", b"KEY_NO_PERMISSION", why, target, b"*")
        return
    server = ctx.config.server_name
    have = ctx.state.metadata.of(owner_of(obj))
    out: list[bytes] = []
    if sub == b"GET":
        for key in keys:
            why = metadata.key_problem(key)
            if why is not None:
                fail = (server, b"FAIL", b"METADATA", b"INVALID_KEY", why, (key,))
                out.append(lines.standard_reply(*fail))
            elif key in have:
                out.append(keyvalue(server, client.name, target, key, have[key]))
            else:
                out.append(keynotset(server, client.name, target, key, b"Key is not set"))
    elif sub == b"LIST":
        out = [keyvalue(server, client.name, target, k, v) for k, v in have.items()]
    else:  # SYNC
        out = list(_sync(ctx.state, server, client.metadata_subs, obj))
    wrap_batch(ctx, client, BATCH_TYPE, b" " + target, out, BATCH_TYPE)


def _subscriptions(ctx: Context, client: Client, sub: bytes, keys: list[bytes]) -> None:
    """SUB, UNSUB and SUBS: the connection's own list, answered at once (770, 771, 772)."""
    subs = client.metadata_subs
    if sub == b"SUBS":
        _words(ctx, client, N.RPL_METADATASUBS, sorted(subs))
        return
    bad = next((k for k in keys if metadata.key_problem(k) is not None), None)
    if bad is not None:
        ctx.fail(client, b"METADATA", b"INVALID_KEY", b"Invalid key name", bad)
        return
    if sub == b"UNSUB":
        client.metadata_subs = subs.difference(keys)
        _words(ctx, client, N.RPL_METADATAUNSUBOK, list(dict.fromkeys(keys)))
        return
    added: list[bytes] = []
    for key in dict.fromkeys(keys):
        if key not in subs and len(subs) + len(added) >= metadata.MAX_SUBS:
            why = b"Too many subscriptions"
            ctx.fail(client, b"METADATA", b"LIMIT_REACHED", why, key, b"%d" % metadata.MAX_SUBS)
            break
        added.append(key)
    client.metadata_subs = subs.union(added)
    _words(ctx, client, N.RPL_METADATASUBOK, added)


def _words(ctx: Context, client: Client, code: bytes, words: list[bytes]) -> None:
    """``code`` with ``words`` as its parameters (each one), as many lines as they need
    (:func:`replies.word_bodies` cuts them); none for no words."""
    if not words:
        return
    server = ctx.config.server_name
    room = MAX_LINE - len(numeric(server, client.name, code, b"")) - 1
    for body in word_bodies(words, room):
        ctx.send(client, numeric(server, client.name, code, *body.split(b" ")))


def _sync(
    state: State, server: bytes, subs: frozenset[bytes], obj: User | Channel
) -> Iterable[bytes]:
    """The subscribed keys of ``obj`` and, for a channel, of each of its members: 761 lines
    with ``*`` for the asker (as notifications are)."""
    if not subs or not state.metadata.by_owner:
        return
    owners: list[tuple[bytes, metadata.Owner]]
    if isinstance(obj, Channel):
        users = state.users
        owners = [(obj.name, obj.key)]
        owners += [(users[uid].nick, uid) for uid in obj.members if uid in users]
    else:
        owners = [(obj.nick, obj.uid)]
    for target, owner in owners:
        for key, value in state.metadata.of(owner).items():
            if key in subs:
                yield keyvalue(server, b"*", target, key, value)


def sync_on_join(ctx: Context, client: Client, chan: Channel) -> None:
    """What ``client`` (which negotiated the capability) is sent on joining ``chan``: the
    channel's and its members' values of the keys it subscribed to, in a ``metadata``
    batch; nothing when it subscribed to none or there are none."""
    out = list(_sync(ctx.state, ctx.config.server_name, client.metadata_subs, chan))
    if out:
        wrap_batch(ctx, client, BATCH_TYPE, b" " + chan.name, out, BATCH_TYPE)


COMMANDS = (Command(b"METADATA", metadata_command, 2, capability=cap.NAME, reads=True),)
