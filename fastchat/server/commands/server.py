"""Server queries and liveness: PING, PONG, MOTD, LUSERS, VERSION, TIME, USERS
(RFC 2812 §3.4, §3.7).

Owns: what these commands answer. Must never: touch a socket or read the clock.
"""

from __future__ import annotations

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
    Command(b"USERS", users),
)
