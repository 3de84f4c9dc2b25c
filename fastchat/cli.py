"""The ``fastchat`` command line: ``fastchat serve`` and ``fastchat client``.

Owns: argument parsing and handing over to the server supervisor or the client app.
Must never: hold server or client logic.
"""

from __future__ import annotations

import argparse
import sys


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` ("serve" or "client") leaves the other command out, so that
    ``fastchat serve`` does not import the client (a tenth of a second per start, which the
    conformance suite pays once per test)."""
    parser = argparse.ArgumentParser(prog="fastchat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if only in (None, "serve"):
        from fastchat.server import config as server_config

        serve = sub.add_parser("serve", help="run the IRC server")
        server_config.add_arguments(serve)
    if only in (None, "client"):
        import fastchat.client.app as client_app

        client = sub.add_parser("client", help="run the chat client")
        client_app.add_arguments(client)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in ("serve", "client") else None
    args = build_parser(only).parse_args(argv)
    if args.command == "serve":
        from fastchat.server import config as server_config
        from fastchat.server.runtime.supervisor import serve

        return serve(server_config.from_args(args))
    import fastchat.client.app as client_app

    return client_app.run(args)


if __name__ == "__main__":
    sys.exit(main())
