"""IRCv3 ``draft/read-marker``: ``MARKREAD <target> [timestamp=<server-time>]``.

Owns: the command (its checks and FAILs, the answer to a get) and the one ``MARKREAD`` line
the server sends (:func:`line`): the answer to a get, the answer to a set and its copy for
the owner's other connections (``engine/replica.py``, as it applies the E_MARKREAD), and
the marker of a channel one joins, before its 366 (``engine/replica.py``).
Must never: change a marker itself: a set goes to the sequencer (R_MARKREAD), which keeps
the later of the two timestamps, so a marker only ever moves forward.

Whose markers: those of the account the connection is logged in to, shared by all its
connections; a connection logged in to none has markers of its own, for as long as it is
connected (``network/markers.py``). A get is a read: it runs behind the read barrier, so
it sees a set another connection of the account made on another worker just before.
"""

from __future__ import annotations

from fastchat.irc.casemap import is_channel, is_valid_channel, is_valid_nick
from fastchat.irc.message import Message
from fastchat.server.caps import read_marker as cap
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.records import RMarkread, make
from fastchat.server.render import dates


def line(server: bytes, target: bytes, ms: int) -> bytes:
    """``:server MARKREAD <target> timestamp=<server-time>``, or ``*`` when there is no
    marker (``ms`` 0)."""
    value = b"timestamp=" + dates.iso8601(ms) if ms else b"*"
    return b":%s MARKREAD %s %s\r\n" % (server, target, value)


def markread(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 read-marker: get (``MARKREAD <target>``: answered with the marker, or ``*``)
    or set (``MARKREAD <target> timestamp=...``: answered with the marker as it is then, the
    later of the two) a read marker. A target is a channel or a nick (it need not exist: one
    may ask about a channel one has not joined yet). FAIL MARKREAD NEED_MORE_PARAMS without
    a target, INVALID_PARAMS for a target that is neither or a timestamp that is not one
    (``*`` included: a client never sets "no marker")."""
    params = msg.params
    if not params or not params[0]:
        ctx.fail(client, b"MARKREAD", b"NEED_MORE_PARAMS", b"Missing parameters")
        return
    target = params[0]
    cfg = ctx.config
    if not (
        is_valid_channel(target, cfg.channellen)
        if is_channel(target)
        else is_valid_nick(target, cfg.nicklen)
    ):
        ctx.fail(client, b"MARKREAD", b"INVALID_PARAMS", b"Invalid target", target)
        return
    user = client.user
    if user is None:  # (the dispatcher lets only registered clients in)
        return
    if len(params) == 1:
        marker = ctx.state.markers.get(ctx.state.owner_of(user), target)
        ctx.send(client, line(cfg.server_name, target, marker))
        return
    kind, _, value = params[1].partition(b"=")
    ms = dates.maybe_parse_iso8601(value) if kind == b"timestamp" else None
    if not ms:  # (not one, or the epoch itself: "no marker" cannot be set either)
        ctx.fail(client, b"MARKREAD", b"INVALID_PARAMS", b"Invalid timestamp", target)
        return
    ctx.submit(make(RMarkread, client.uid, target, ms))


COMMANDS = (Command(b"MARKREAD", markread, capability=cap.NAME, reads=True),)
