"""IRCv3 MONITOR (https://ircv3.net/specs/extensions/monitor): tell a client when the nicks it
watches sign on and off.

Owns: the ``MONITOR`` command (``+``, ``-``, ``C``, ``L``, ``S``), this worker's monitor lists
(:class:`Monitors`: which of its local clients watch which nick) and the notifications
(730 RPL_MONONLINE, 731 RPL_MONOFFLINE) the replica asks for as it applies the events that
make a nick appear or disappear: a user introduced (``E_INTRO``), a nick change (the old nick
goes offline, the new one online), a quit, a kill, a K-line.

Why no records: every worker applies every one of those events, in the sequencer's one
order, so a list can live on its client's own worker and the notification is rendered there,
at once, whichever worker the watched user is on. The answer to ``MONITOR +`` and ``S`` reads
the replica behind the read barrier (``reads=True``), so a nick that has just signed on on
another worker is reported online; an event decided after the barrier reaches the list once
it holds the nick, so no change falls between the answer and the notifications.
Must never: change the network state, or send anything to another worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_valid_nick
from fastchat.irc.message import MAX_LINE, Message
from fastchat.server.caps import extended_monitor
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.network.state import User
from fastchat.server.render import replies

_FULL = b"Monitor list is full."


class Monitors:
    """This worker's monitor lists, both ways round: a client's list (for ``L``, ``S``,
    ``-``, ``C`` and the limit) and, for each folded nick, the local clients watching it (for
    the notifications, one dictionary look-up per event)."""

    __slots__ = ("lists", "watchers")

    def __init__(self) -> None:
        # uid of a local client -> folded nick -> the nick as the client wrote it
        self.lists: dict[int, dict[bytes, bytes]] = {}
        # folded nick -> uids of the local clients watching it (a dict: insertion order)
        self.watchers: dict[bytes, dict[int, None]] = {}

    def add(self, uid: int, key: bytes, nick: bytes) -> None:
        self.lists.setdefault(uid, {})[key] = nick
        self.watchers.setdefault(key, {})[uid] = None

    def remove(self, uid: int, key: bytes) -> None:
        mine = self.lists.get(uid)
        if mine is None or mine.pop(key, None) is None:
            return
        if not mine:
            del self.lists[uid]
        watching = self.watchers[key]
        del watching[uid]
        if not watching:
            del self.watchers[key]

    def clear(self, uid: int) -> None:
        """Forget ``uid``'s list (MONITOR C, or the client is gone)."""
        for key in list(self.lists.get(uid, ())):
            self.remove(uid, key)


# -- the command -----------------------------------------------------------------------------


def monitor(ctx: Context, client: Client, msg: Message) -> None:
    """IRCv3 ``MONITOR <+|-|C|L|S> [<target>{,<target>}]``: be told (730, 731) when the
    nicks on your list sign on and off; ``+`` adds, ``-`` removes, ``C`` clears, ``L`` lists
    (732, 733), ``S`` shows who is online.

    An unknown modifier gets 400 ERR_UNKNOWNERROR (as Ergo), ``+`` or ``-`` without targets
    461 ERR_NEEDMOREPARAMS."""
    modifier = msg.params[0].upper()
    if modifier in (b"+", b"-"):
        if len(msg.params) < 2 or not msg.params[1]:
            raise N.IRCError(N.ERR_NEEDMOREPARAMS, msg.command, b"Not enough parameters")
        if modifier == b"+":
            _add(ctx, client, msg.params[1])
        else:
            for target in msg.params[1].split(b","):
                ctx.monitors.remove(client.uid, fold(target))
    elif modifier == b"C":
        ctx.monitors.clear(client.uid)  # "No output will be returned"
    elif modifier == b"L":
        _list(ctx, client)
    elif modifier == b"S":
        _status(ctx, client, ctx.monitors.lists.get(client.uid, {}).values())
    else:
        raise N.IRCError(N.ERR_UNKNOWNERROR, msg.command, msg.params[0], b"Unknown subcommand")


def _add(ctx: Context, client: Client, param: bytes) -> None:
    """``MONITOR + target[,target2]*``: "Targets already in the list MUST NOT be added
    again"; each target added, or already there, is reported online or offline. A target
    that is not a valid nick is ignored ("'target' MUST be a valid nick"), as Charybdis does.
    Once the list is full, 734 ERR_MONLISTFULL names the rest of the targets as sent, from
    the first that could not be added, and they are not added; those before it are."""
    monitors = ctx.monitors
    limit = ctx.config.max_monitor
    mine = monitors.lists.get(client.uid, {})
    asked: dict[bytes, bytes] = {}  # folded -> as written: each target reported once
    targets = param.split(b",")
    for i, target in enumerate(targets):
        key = fold(target)
        if key in asked or not is_valid_nick(target, ctx.config.nicklen):
            continue
        if key not in mine:
            if limit and len(mine) >= limit:
                _list_full(ctx, client, limit, b",".join(targets[i:]))
                break
            monitors.add(client.uid, key, target)
            mine = monitors.lists[client.uid]
        asked[key] = target
    _status(ctx, client, asked.values())


def _list_full(ctx: Context, client: Client, limit: int, rest: bytes) -> None:
    """734 ERR_MONLISTFULL ``<limit> <targets>``: the targets cut at a comma when they would
    make the line longer than 512 bytes (a client's line may be as long as ours)."""
    server = ctx.config.server_name
    limit_param = b"%d" % limit
    room = MAX_LINE - len(
        replies.numeric(server, client.name, N.ERR_MONLISTFULL, limit_param, b"", _FULL)
    )
    if len(rest) > room:
        comma = rest.rfind(b",", 0, room + 1)
        rest = rest[:comma] if comma > 0 else rest[:room]
    ctx.reply(client, N.ERR_MONLISTFULL, limit_param, rest, _FULL)


def _status(ctx: Context, client: Client, nicks: Iterable[bytes]) -> None:
    """730 for the ``nicks`` that are online (``nick!user@host``, as the user's nick is now
    written), then 731 for the others (as the client wrote them); as many lines of each as
    512 bytes need, and none for an empty list."""
    online: list[bytes] = []
    offline: list[bytes] = []
    for nick in nicks:
        user = ctx.state.user_by_nick(nick)
        if user is None:
            offline.append(nick)
        else:
            online.append(user.mask)
    server = ctx.config.server_name
    out: list[bytes] = []
    if online:
        out.extend(replies.word_lines(server, client.name, N.RPL_MONONLINE, online, sep=b","))
    if offline:
        out.extend(replies.word_lines(server, client.name, N.RPL_MONOFFLINE, offline, sep=b","))
    if out:
        ctx.send_lines(client, out)


def _list(ctx: Context, client: Client) -> None:
    """``MONITOR L``: 732 RPL_MONLIST lines (the nicks as the client wrote them), then 733."""
    server = ctx.config.server_name
    nicks = list(ctx.monitors.lists.get(client.uid, {}).values())
    out: list[bytes] = []
    if nicks:
        out.extend(replies.word_lines(server, client.name, N.RPL_MONLIST, nicks, sep=b","))
    out.append(replies.numeric(server, client.name, N.RPL_ENDOFMONLIST, b"End of MONITOR list"))
    ctx.send_lines(client, out)


COMMANDS = (Command(b"MONITOR", monitor, 1, reads=True),)


# -- notifications: called by the replica as it applies events --------------------------------


def signed_on(ctx: Context, user: User) -> None:
    """``user`` is on the network (E_INTRO applied): 730 to whoever here watches its nick."""
    monitors = ctx.monitors
    if monitors.watchers:
        _notify(ctx, fold(user.nick), N.RPL_MONONLINE, user.mask)


def renamed(ctx: Context, user: User, old_nick: bytes) -> None:
    """``user`` was ``old_nick`` (E_NICK applied): the old nick went offline, the new one
    came online. A change of case only is no change to a monitor list: nothing is sent."""
    monitors = ctx.monitors
    if not monitors.watchers:
        return
    old, new = fold(old_nick), fold(user.nick)
    if old != new:
        _notify(ctx, old, N.RPL_MONOFFLINE, old_nick)
        _notify(ctx, new, N.RPL_MONONLINE, user.mask)


def signed_off(ctx: Context, users: Iterable[User]) -> None:
    """``users`` left the network (a quit, kill or K-line applied): 731 to whoever here
    watches their nicks, and a local one's own list is forgotten."""
    monitors = ctx.monitors
    if not monitors.watchers:
        return
    for user in users:
        monitors.clear(user.uid)
        _notify(ctx, fold(user.nick), N.RPL_MONOFFLINE, user.nick)


def extended_watchers(ctx: Context, user: User, bit: int) -> list[Client]:
    """IRCv3 extended-monitor: the local clients watching ``user``'s nick that negotiated
    ``extended-monitor`` and ``bit`` (the capability of the notification at hand:
    ``away-notify``, ``account-notify``, ``chghost`` or ``setname``). That notification adds
    them to its recipients (each once: some may share a channel with ``user`` too)."""
    watching = ctx.monitors.watchers.get(fold(user.nick))
    if not watching:
        return []
    need = ctx.caps.bit(extended_monitor.NAME) | bit
    local = ctx.state.local
    return [c for uid in watching if (c := local.get(uid)) is not None and c.caps & need == need]


def _notify(ctx: Context, key: bytes, code: bytes, target: bytes) -> None:
    """One line for every local watcher of ``key``: addressed to ``*``, which the spec allows
    so that every watcher gets the same bytes; never part of the reply to a labeled command
    the watcher has open. A watcher no longer in ``state.local`` is leaving (its QUIT is under
    way, which would forget its list anyway) or gone without a quit of its own reaching us
    (lost in a hub restart): it is sent nothing, and forgotten."""
    watching = ctx.monitors.watchers.get(key)
    if not watching:
        return
    line = replies.numeric(ctx.config.server_name, b"*", code, target)
    local = ctx.state.local
    gone: list[int] = []
    for uid in watching:
        client = local.get(uid)
        if client is not None:
            ctx.notify(client, line)
        else:
            gone.append(uid)
    for uid in gone:
        ctx.monitors.clear(uid)
