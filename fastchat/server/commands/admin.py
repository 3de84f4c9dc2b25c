"""Server administration by operators: REHASH (Modern IRC "REHASH").

Owns: what these commands mean. The dispatcher has already checked the operator privilege
each row names. Must never: read files itself (the shell does, as an effect).
"""

from __future__ import annotations

from fastchat.irc.message import Message
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client


def rehash(ctx: Context, client: Client, msg: Message) -> None:
    """Modern IRC REHASH: reload the config file; 382 RPL_REHASHING when it is good, a notice
    saying why when it is not (the old config stays). Every process takes the new limits,
    MOTD and opers; nobody is disconnected."""
    ctx.audit(client, "REHASH")
    ctx.request_rehash(client)


COMMANDS = (Command(b"REHASH", rehash, privilege="rehash"),)
