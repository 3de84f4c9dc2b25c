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
import ssl
import sys

from fastchat.client.connection import Link
from fastchat.client.loop import ClientLoop
from fastchat.client.plain import PlainView
from fastchat.client.session import Session, Transport
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
    parser.add_argument(
        "port", type=int, nargs="?", default=None, help="server port (6667; 6697 with --tls)"
    )
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
    tls = parser.add_argument_group("TLS")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, verifying the server's certificate against the system's CAs",
    )
    tls.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="also trust the certificate(s) in FILE (a self-signed server's, say); implies --tls",
    )
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate (anyone on the way can read and change "
        "everything; said on screen); implies --tls",
    )
    tls.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="a client certificate (PEM) to show the server (CertFP, SASL EXTERNAL); implies --tls",
    )
    tls.add_argument(
        "--tls-key", metavar="FILE", help="the client certificate's key, if not in --tls-cert"
    )


def _uses_tls(args: argparse.Namespace) -> bool:
    return bool(args.tls or args.tls_ca or args.insecure or args.tls_cert)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client's TLS context from its options (None: plain TCP). Raises ``OSError`` or
    ``ssl.SSLError`` for files that cannot be used."""
    if not _uses_tls(args):
        return None
    context = ssl.create_default_context()  # the system's CAs, host name checked
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif args.tls_ca:
        context.load_verify_locations(cafile=args.tls_ca)
    if args.tls_cert:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def _session(args: argparse.Namespace) -> Session:
    nick = args.nick or default_nick()
    channel = args.channel.strip()
    if channel and not is_channel(channel.encode()):
        channel = "#" + channel
    transport = Transport.PLAIN
    if _uses_tls(args):
        transport = Transport.TLS_UNVERIFIED if args.insecure else Transport.TLS
    return Session(
        nick,
        transport=transport,
        server=f"{args.host}:{args.port}",
        channels=[channel] if channel else [],
        password=args.password,
        username=args.username or nick,
        realname="fastchat client",
    )


def run(args: argparse.Namespace) -> int:
    """Run the client until the person quits; the exit status."""
    if args.port is None:
        args.port = 6697 if _uses_tls(args) else 6667
    try:
        context = tls_context(args)
    except (OSError, ssl.SSLError) as exc:
        print(f"fastchat client: cannot use the TLS files: {exc}", file=sys.stderr)
        return 2
    session = _session(args)
    selector = selectors.DefaultSelector()
    link = Link(args.host, args.port, selector, tls=context)
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
