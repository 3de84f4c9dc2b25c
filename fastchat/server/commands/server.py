"""Server queries and liveness: PING, PONG, MOTD, LUSERS, VERSION, TIME, STATS, INFO, ADMIN,
LINKS, USERS (RFC 2812 §3.4, §3.7).

Owns: what these commands answer. Must never: touch a socket or read the clock.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

from fastchat.irc import numerics as N
from fastchat.irc.message import Message
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.render import dates, lines, replies


def ping(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.7.2; Modern IRC: "the server MUST reply with a PONG with the same token".

    Declared ``reads``: clients and test suites use PING as a barrier ("everything before my
    PONG has happened"), so at several workers it waits for the read barrier like a query:
    the PONG comes after every change acknowledged to anyone before the PING arrived."""
    ctx.send(client, lines.pong(ctx.config.server_name, msg.params[-1]))


def pong(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.7.3: the answer to our PING; receiving any line already reset the clock."""


def lusers(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.2 LUSERS."""
    ctx.send_lines(client, replies.lusers(ctx.config, client.name, ctx.state, ctx.local_count))


def motd(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.1 MOTD."""
    ctx.send_lines(client, replies.motd(ctx.config, client.name))


def version(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.3 VERSION: 351, then ISUPPORT (Modern IRC)."""
    cfg = ctx.config
    ctx.reply(
        client, N.RPL_VERSION, replies.VERSION + b".", cfg.server_name, b"fastchat IRC server"
    )
    ctx.send_lines(client, replies.isupport_lines(cfg, client.name))


def time_(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.6 TIME: 391 with the server's local time."""
    ctx.reply(client, N.RPL_TIME, ctx.config.server_name, dates.server_time(ctx.now))


def is_this_server(ctx: Context, target: bytes) -> bool:
    """Does a query's optional ``<target>`` name this server (Modern IRC: a server name,
    "Wildcards are allowed", or a client, meaning the server it is on: every client is on
    this one)? Nothing given means this server too."""
    if not target or matches_this_server(ctx, target):
        return True
    return ctx.state.user_by_nick(target) is not None


def matches_this_server(ctx: Context, mask: bytes) -> bool:
    """Does the server mask ``mask`` (``*`` and ``?``, any case) match this server's name?"""
    name = ctx.config.server_name.lower().decode("latin-1")
    return fnmatch.fnmatchcase(name, mask.lower().decode("latin-1"))


def _no_such_server(ctx: Context, client: Client, target: bytes) -> None:
    ctx.reply(client, N.ERR_NOSUCHSERVER, target, b"No such server")


def _uptime(ctx: Context, client: Client) -> Iterable[bytes]:
    return (replies.stats_uptime(ctx.config, client.name, int(ctx.now - ctx.started)),)


def _commands(ctx: Context, client: Client) -> Iterable[bytes]:
    return replies.stats_commands(ctx.config, client.name, ctx.command_counts())


def _links(ctx: Context, client: Client) -> Iterable[bytes]:
    return [
        replies.stats_link(
            ctx.config,
            client.name,
            link.name,
            link.sendq,
            (link.sent_messages, link.sent_bytes),
            (link.received_messages, link.received_bytes),
            int(ctx.now - link.opened),
        )
        for link in ctx.links
    ]


def _klines(ctx: Context, client: Client) -> Iterable[bytes]:
    now = int(ctx.now * 1000)
    return [replies.stats_kline(ctx.config, client.name, k) for k in ctx.state.active_klines(now)]


def _store(ctx: Context, client: Client) -> Iterable[bytes]:
    return replies.stats_store(ctx.config, client.name, ctx.state.store)


#: What each STATS letter answers (Modern IRC STATS: "u - returns a string showing how long
#: the server has been up", "m - returns a list of commands supported by the server and the
#: usage count for each if the usage count is non zero", "l - returns a list of the server's
#: connections", "k - returns a list of banned username/hostname combinations").
_STATS: dict[bytes, Callable[[Context, Client], Iterable[bytes]]] = {
    b"u": _uptime,
    b"m": _commands,
    b"l": _links,
    b"?": _links,
    b"k": _klines,
    b"S": _store,
}
#: Letters only IRC operators may ask (user mode +o, whatever their privileges): the server's
#: bans say who is kept out, and why; the store's state is the operators' business.
_OPERATOR_STATS = frozenset({b"k", b"S"})


def stats(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.4 STATS <query> [<target>]: ``u`` the uptime (242), ``m`` how often
    each command ran on the whole server (212), ``l`` and ``?`` this worker's link to the hub
    (211), ``k`` the K-lines in force (216, operators only), ``S`` the store (249:
    healthy or failing, its last error, the writes queued, committed and dropped, as the
    sequencer's process last reported them, within a second; operators only); any letter,
    known or not, ends with 219. A letter for operators asked by anyone else gets 481 ERR_NOPRIVILEGES alone,
    as InspIRCd answers (Modern IRC lists ERR_NOPRIVILEGES among STATS' replies).

    Declared ``reads``: the command counts are network state, every worker's totals as it
    reports them about once a second (E_COUNTS), so at several workers the answer holds
    every report decided before the query, and this worker's own counts as of now."""
    query, target = msg.params[0], msg.param(1)
    if not is_this_server(ctx, target):
        _no_such_server(ctx, client, target)
        return
    letter = query[:1] or b"*"
    if letter in _OPERATOR_STATS and not (client.user is not None and b"o" in client.user.modes):
        ctx.reply(client, N.ERR_NOPRIVILEGES, b"Permission Denied- You're not an IRC operator")
        return
    answer = _STATS.get(letter)
    out = list(answer(ctx, client)) if answer is not None else []
    out.append(replies.end_of_stats(ctx.config, client.name, letter))
    ctx.send_lines(client, out)


def info(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.10 INFO [<target>]: what this server is (371 lines, then 374)."""
    if not is_this_server(ctx, msg.param(0)):
        _no_such_server(ctx, client, msg.param(0))
        return
    ctx.send_lines(client, replies.info(ctx.config, client.name, ctx.created))


def admin(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.9 ADMIN [<target>]: who runs this server (256-259, from the settings
    admin_location, admin_name and admin_email)."""
    if not is_this_server(ctx, msg.param(0)):
        _no_such_server(ctx, client, msg.param(0))
        return
    ctx.send_lines(client, replies.admin(ctx.config, client.name))


def links(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.5 LINKS [[<remote server>] <server mask>]: the servers of the network,
    which is this one (however many workers serve it): 364 when it matches the mask, 365."""
    if len(msg.params) > 1 and not is_this_server(ctx, msg.params[0]):
        _no_such_server(ctx, client, msg.params[0])
        return
    mask = msg.params[-1] if msg.params and msg.params[-1] else b"*"
    listed = matches_this_server(ctx, mask)
    ctx.send_lines(client, replies.links(ctx.config, client.name, mask, listed))


def users(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §4.5: USERS is disabled on most servers (446)."""
    ctx.reply(client, b"446", b"USERS has been disabled")


COMMANDS = (
    Command(b"PING", ping, 1, needs_registration=False, reads=True),
    Command(b"PONG", pong, needs_registration=False),
    Command(b"LUSERS", lusers, reads=True),
    Command(b"MOTD", motd),
    Command(b"VERSION", version),
    Command(b"TIME", time_),
    Command(b"STATS", stats, 1, reads=True),
    Command(b"INFO", info),
    Command(b"ADMIN", admin),
    Command(b"LINKS", links),
    Command(b"USERS", users),
)
