"""The ``fastchat`` command line: ``fastchat serve``, ``client``, ``mkpasswd`` and ``accounts``.

Owns: argument parsing and handing over to the server supervisor or the client app; the
prompts and output of ``mkpasswd`` and ``accounts`` (the hash itself is
:mod:`fastchat.server.passwords`, the accounts' storage :mod:`fastchat.server.store.accounts`).
Must never: hold server or client logic.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("serve", "client", "mkpasswd", "accounts")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` (one of :data:`COMMANDS`) leaves the others out, so that
    ``fastchat serve`` does not import the client (a tenth of a second per start, which the
    conformance suite pays once per test)."""
    parser = argparse.ArgumentParser(prog="fastchat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if only in (None, "serve"):
        from fastchat.server import config as server_config
        from fastchat.server.runtime import limits

        serve = sub.add_parser("serve", help="run the IRC server")
        serve.add_argument(
            "--config",
            metavar="FILE",
            help="read the settings from this TOML file (see fastchat.example.toml); "
            "the flags given here override it",
        )
        server_config.add_arguments(serve, limits.preview())
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
    if only in (None, "accounts"):
        _add_accounts(sub)
    return parser


def _add_accounts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = sub.add_parser(
        "accounts",
        help="create, list, change or delete accounts in the server's store",
        description="Work on the accounts of the store file (DIR/fastchat.db) directly; a "
        "running server may only see a change at its next start.",
    )
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", metavar="DIR", help="the store's directory (default ./fastchat-data)"
    )
    where.add_argument(
        "--config", metavar="FILE", help="take the data_dir and nicklen of this config file"
    )
    actions = accounts.add_subparsers(dest="action", required=True)
    for action, text in (
        ("create", "create an account; its name follows the rules of a nick"),
        ("passwd", "change an account's password"),
    ):
        parser = actions.add_parser(action, parents=[common], help=text, description=text)
        parser.add_argument("name", metavar="NAME")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input, without prompting",
        )
        if action == "create":
            parser.add_argument("--email", default="", help="the account's email address")
    parser = actions.add_parser("delete", parents=[common], help="delete an account")
    parser.add_argument("name", metavar="NAME")
    actions.add_parser("list", parents=[common], help="list the accounts")
    text = (
        "list, add or delete the TLS client certificate fingerprints (SHA-256, hex) an "
        "account logs in with (SASL EXTERNAL)"
    )
    parser = actions.add_parser("cert", parents=[common], help=text, description=text)
    parser.add_argument("verb", choices=("list", "add", "del"))
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("fingerprint", metavar="FINGERPRINT", nargs="?")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "mkpasswd":
        return _mkpasswd(args.stdin)
    if args.command == "accounts":
        return _accounts(args)
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
    from fastchat.server.store import db

    try:
        config = configfile.load(args.config, server_config.given_args(args))
        klinefile.check(config.kline_file)
        # the store: its folder made, its schema brought up to date, before anything forks
        db.prepare(config.data_dir)
    except (server_config.ConfigError, db.StoreError) as e:
        print(f"fastchat serve: {e}", file=sys.stderr)
        return 2
    source = None
    if args.config is not None:
        source = configfile.Source(args.config, server_config.given_args(args))
    return serve(config, source)


def _read_password(from_stdin: bool, prog: str) -> bytes | None:
    """A password, asked twice (or read from stdin's first line); None, after saying why on
    stderr, if there is none."""
    if from_stdin:
        password = sys.stdin.buffer.readline().rstrip(b"\r\n")
    else:
        import getpass

        try:
            first = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return None
        if first != again:
            print(f"{prog}: the passwords differ", file=sys.stderr)
            return None
        password = first.encode()
    if not password:
        print(f"{prog}: empty password", file=sys.stderr)
        return None
    return password


def _mkpasswd(from_stdin: bool) -> int:
    """``fastchat mkpasswd``: the password, asked twice (or read from stdin), hashed."""
    from fastchat.server import passwords

    password = _read_password(from_stdin, "fastchat mkpasswd")
    if password is None:
        return 1
    print(passwords.hash_password(password))
    return 0


def _accounts(args: argparse.Namespace) -> int:
    """``fastchat accounts create|list|passwd|delete``: 0 done, 1 refused (a name taken,
    unknown or invalid; no password), 2 a store or config file that cannot be used."""
    import sqlite3
    import time

    from fastchat.server import config as server_config
    from fastchat.server import configfile, passwords
    from fastchat.server.store import accounts, db

    prog = f"fastchat accounts {args.action}"
    try:
        config = configfile.load(args.config, {})
        data_dir = args.data_dir or config.data_dir
        path = db.prepare(data_dir)
    except (server_config.ConfigError, db.StoreError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            for row in accounts.list_all(path):
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.created_ms / 1000))
                # unverified: a registration awaiting its VERIFY (register_verify)
                verified = "verified" if row.verified else "unverified"
                print(f"{row.name}\t{when}\t{row.email or '-'}\t{verified}")
            return 0
        if args.action == "cert":
            return _certs(args, path, config.nicklen)
        if args.action == "delete":
            accounts.delete(path, args.name, config.nicklen)
            print(f"deleted the account {args.name!r}")
            return 0
        # check the name before asking for a password that would be thrown away
        known = accounts.exists(path, args.name, config.nicklen)
        if known != (args.action == "passwd"):
            raise accounts.AccountError(
                f"the account {args.name!r} already exists"
                if known
                else f"there is no account {args.name!r}"
            )
        password = _read_password(args.password_stdin, prog)
        if password is None:
            return 1
        stored = passwords.account_hash(password)
        if args.action == "create":
            now_ms = int(time.time() * 1000)
            accounts.create(path, args.name, stored, args.email, now_ms, config.nicklen)
            print(f"created the account {args.name!r}")
        else:
            accounts.set_password(path, args.name, stored, config.nicklen)
            print(f"changed the password of {args.name!r}")
        return 0
    except accounts.AccountError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"{prog}: {path}: {e}", file=sys.stderr)
        return 2


def _certs(args: argparse.Namespace, path: str, nicklen: int) -> int:
    """``fastchat accounts cert list|add|del NAME [FINGERPRINT]``."""
    from fastchat.server.network.state import maybe_certfp
    from fastchat.server.store import accounts

    if args.verb == "list":
        for certfp in accounts.certfps(path, args.name, nicklen):
            print(certfp)
        return 0
    parsed = maybe_certfp((args.fingerprint or "").encode())
    if parsed is None:
        raise accounts.AccountError(
            "a fingerprint is the SHA-256 of the certificate, 64 hexadecimal digits "
            "(openssl x509 -noout -fingerprint -sha256 -in cert.pem prints one)"
        )
    add = args.verb == "add"
    certfp = parsed.decode()
    accounts.change_certfp(path, args.name, certfp, add, nicklen)
    done = "added" if add else "deleted"
    print(f"{done} the fingerprint {certfp} of {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
