"""The ``fastchat`` command line: ``fastchat serve``, ``client`` and ``mkpasswd``.

Owns: argument parsing and handing over to the server supervisor or the client app; the
prompts of ``mkpasswd`` (the hash itself is :mod:`fastchat.server.passwords`).
Must never: hold server or client logic.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("serve", "client", "mkpasswd")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` (one of :data:`COMMANDS`) leaves the others out, so that
    ``fastchat serve`` does not import the client (a tenth of a second per start, which the
    conformance suite pays once per test)."""
    parser = argparse.ArgumentParser(prog="fastchat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if only in (None, "serve"):
        from fastchat.server import config as server_config

        serve = sub.add_parser("serve", help="run the IRC server")
        serve.add_argument(
            "--config",
            metavar="FILE",
            help="read the settings from this TOML file (see fastchat.example.toml); "
            "the flags given here override it",
        )
        server_config.add_arguments(serve)
    if only in (None, "client"):
        import fastchat.client.app as client_app

        client = sub.add_parser("client", help="run the chat client")
        client_app.add_arguments(client)
    if only in (None, "mkpasswd"):
        mkpasswd = sub.add_parser(
            "mkpasswd",
            help="print the hash of a password, for an [[oper]] of the config file",
            description="Prompt for a password twice and print its scrypt hash, to paste as "
            "the password of an [[oper]] table of the config file.",
        )
        mkpasswd.add_argument(
            "--stdin",
            action="store_true",
            help="read the password from the first line of standard input, without prompting",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "mkpasswd":
        return _mkpasswd(args.stdin)
    import fastchat.client.app as client_app

    return client_app.run(args)


def _serve(args: argparse.Namespace) -> int:
    """``fastchat serve``: a config, or a K-line file, that cannot be used is one line on
    stderr and exit status 2, before anything starts (a malformed file never starts a
    server)."""
    from fastchat.server import config as server_config
    from fastchat.server import configfile
    from fastchat.server.runtime import klinefile
    from fastchat.server.runtime.supervisor import serve

    try:
        config = configfile.load(args.config, server_config.given_args(args))
        klinefile.check(config.kline_file)
    except server_config.ConfigError as e:
        print(f"fastchat serve: {e}", file=sys.stderr)
        return 2
    source = None
    if args.config is not None:
        source = configfile.Source(args.config, server_config.given_args(args))
    return serve(config, source)


def _mkpasswd(from_stdin: bool) -> int:
    """``fastchat mkpasswd``: the password, asked twice (or read from stdin), hashed."""
    from fastchat.server import passwords

    if from_stdin:
        password = sys.stdin.buffer.readline().rstrip(b"\r\n")
    else:
        import getpass

        try:
            first = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 1
        if first != again:
            print("fastchat mkpasswd: the passwords differ", file=sys.stderr)
            return 1
        password = first.encode()
    if not password:
        print("fastchat mkpasswd: empty password", file=sys.stderr)
        return 1
    print(passwords.hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
