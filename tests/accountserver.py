"""For tests of real clients logging in with SASL: a server whose store holds an account made
beforehand with ``fastchat accounts create`` (as an administrator would), and a raw observer
that sees accounts on the wire (extended-join, account-tag)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

ACCOUNT = "sasluser"
PASSWORD = "correct horse battery"  # a space in it, as passphrases have
#: NickServ's notice to a user who takes a registered nick without being logged in to it
NICK_PROTECTION = "This nick is registered: if it is yours, send /msg NickServ IDENTIFY"


@contextlib.contextmanager
def running_with_account(data: Path, workers: int) -> Iterator[process.ServerProcess]:
    """A server on ``data`` (a fresh directory) that holds ``ACCOUNT`` with ``PASSWORD``,
    made with the CLI before the server starts; stopped however the block ends."""
    create = ["accounts", "create", "--data-dir", str(data), "--password-stdin", ACCOUNT]
    # its output is left to pytest's capture, shown if this fails
    subprocess.run(
        [sys.executable, "-m", "fastchat.cli", *create],
        input=f"{PASSWORD}\n".encode(),
        check=True,
        timeout=60,
    )
    with process.running(["--no-flood-control", "--data-dir", str(data)], workers) as srv:
        yield srv


def observer(connect: Callable[..., IRCClient]) -> IRCClient:
    """A raw client in #lobby that sees accounts on JOINs (extended-join) and messages
    (account-tag); its own JOIN is back, so every later JOIN to #lobby reaches it."""
    obs = connect(register=False)
    obs.request_caps("extended-join account-tag")
    obs.send("CAP END")
    obs.register("observer")
    obs.expect(r"^(@\S+ )?:observer!\S+ JOIN #lobby \* :")
    return obs


def tags(line: str) -> list[str]:
    """The tags of a raw line (``@a=b;c``): ``["a=b", "c"]``."""
    return line[1:].split(" ", 1)[0].split(";") if line.startswith("@") else []
