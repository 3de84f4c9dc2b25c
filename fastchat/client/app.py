"""``fastchat client HOST PORT``: options, and wiring the session, link, loop and view together.

Owns: the client's command-line options, choosing the curses view or the plain line mode,
and terminal set-up and restoration (``curses.wrapper`` restores the terminal on any exit,
a crash included).
Must never: hold chat logic or do I/O of its own beyond that wiring.
"""

from __future__ import annotations

import argparse
import curses
import locale
import os
import selectors
import sys

from fastchat.client.connection import Link
from fastchat.client.loop import ClientLoop
from fastchat.client.plain import PlainView
from fastchat.client.session import Session
from fastchat.client.view import CursesView
from fastchat.irc.casemap import is_channel, is_valid_nick

_NICK_MAX = 30


def default_nick() -> str:
    """``$USER`` made into a valid nick (RFC 2812 §2.3.1), or ``guest``."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "guest"
    cleaned = "".join(c for c in user if c.isascii() and (c.isalnum() or c in "[]\\`_^{|}-"))
    if cleaned[:1].isdigit() or cleaned[:1] == "-":
        cleaned = "_" + cleaned
    cleaned = cleaned[:_NICK_MAX]
    return cleaned if is_valid_nick(cleaned.encode(), _NICK_MAX) else "guest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fastchat client``."""
    parser.add_argument("host", help="server name or address")
    parser.add_argument("port", type=int, nargs="?", default=6667, help="server port (6667)")
    parser.add_argument("--nick", default=None, help="nickname (default: $USER)")
    parser.add_argument(
        "--channel", default="#lobby", help="channel to join, '' for none (default: #lobby)"
    )
    parser.add_argument("--password", default=None, help="server password (sent as PASS)")
    parser.add_argument("--username", default=None, help="user name for USER (default: nick)")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="plain line mode even on a terminal (automatic when stdin/stdout is not a tty)",
    )


def _session(args: argparse.Namespace) -> Session:
    nick = args.nick or default_nick()
    channel = args.channel.strip()
    if channel and not is_channel(channel.encode()):
        channel = "#" + channel
    return Session(
        nick,
        server=f"{args.host}:{args.port}",
        channels=[channel] if channel else [],
        password=args.password,
        username=args.username or nick,
        realname="fastchat client",
    )


def run(args: argparse.Namespace) -> int:
    """Run the client until the person quits; the exit status."""
    session = _session(args)
    selector = selectors.DefaultSelector()
    link = Link(args.host, args.port, selector)
    try:
        if args.plain or not (sys.stdin.isatty() and sys.stdout.isatty()):
            view = PlainView(session, sys.stdin.fileno(), sys.stdout.buffer)
            try:
                return ClientLoop(session, link, view, selector, handle_resize=False).run()
            except BrokenPipeError:
                # Whoever read our output went away (``fastchat client ... | head``): that ends
                # the session. Point stdout at /dev/null so the interpreter's final flush is quiet.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
        locale.setlocale(locale.LC_ALL, "")  # ncursesw needs it for UTF-8 input and output

        def main(screen: curses.window) -> int:
            view = CursesView(screen, session, sys.stdin.fileno())
            return ClientLoop(session, link, view, selector).run()

        return curses.wrapper(main)
    finally:
        selector.close()
        if session.fatal is not None:
            print(f"fastchat client: {session.fatal}", file=sys.stderr)
