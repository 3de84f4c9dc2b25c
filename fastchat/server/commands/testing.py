"""Fault injection for the test suite: commands that exist only with ``--test-hooks``.

Owns: FAULT, a handler that crashes (the engine must disconnect only that client).
"""

from __future__ import annotations

from fastchat.irc import numerics as N
from fastchat.irc.message import Message
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client


def fault(ctx: Context, client: Client, msg: Message) -> None:
    """A handler that raises (``--test-hooks`` only; otherwise an unknown command)."""
    if not ctx.config.test_hooks:
        raise N.IRCError(N.ERR_UNKNOWNCOMMAND, b"FAULT", b"Unknown command")
    raise RuntimeError("injected fault")


COMMANDS = (Command(b"FAULT", fault),)
