"""HELP (and HELPOP, its other name on many servers), built from the command table
(Modern IRC "HELP message").

Owns: what HELP says: with no subject, the commands a client can use; with one, the first
sentence of that command's handler docstring (which names its section of the RFC and its
syntax) and what its row asks of the client. Nothing to keep in step by hand: a new command
row is in HELP at once. Must never: touch a socket or read the clock.
"""

from __future__ import annotations

import re
import textwrap

from fastchat.irc import numerics as N
from fastchat.irc.message import Message
from fastchat.server.commands import testing
from fastchat.server.commands.context import Context
from fastchat.server.commands.table import Command
from fastchat.server.connection import Client
from fastchat.server.render import replies

#: Help text lines are wrapped to this width (Modern IRC: "Lines MAY be wrapped to a certain
#: line length by the server"), which reads well in any client.
WIDTH = 72
#: A sentence ends at ``.``, ``!`` or ``?`` (perhaps inside a quote or parentheses) before a
#: capital letter or the end; a section number such as ``§3.4.1``, or STATS's letter ``?``
#: in a list, is no end.
_SENTENCE = re.compile(r'(.+?[.!?]["”)]?)(?=\s+[A-Z]|$)')
_TEST_HOOKS = frozenset(row.name for row in testing.COMMANDS)


def summary(row: Command) -> str:
    """The first sentence of ``row``'s handler docstring, on one line, without reST markup.

    >>> from fastchat.server.commands import COMMANDS
    >>> summary(COMMANDS[b"TIME"])
    "RFC 2812 §3.4.6 TIME: 391 with the server's local time."
    """
    doc = row.handler.__doc__ or ""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split()).replace("``", "")
    sentence = _SENTENCE.match(paragraph)
    return sentence.group(1) if sentence else paragraph


def _conditions(row: Command) -> list[str]:
    """What the row asks of a client before its handler runs (the dispatcher's checks)."""
    said = []
    if not row.needs_registration:
        said.append("Works before registration too.")
    if row.privilege is not None:
        said.append(f"For IRC operators with the {row.privilege} privilege.")
    if row.capability is not None:
        said.append(f"Needs the {row.capability.decode()} capability.")
    return said


def _usable(ctx: Context, client: Client, row: Command) -> bool:
    """Does the command exist for ``client`` (a capability's command exists once negotiated;
    a test hook only with ``--test-hooks``)?"""
    if row.name in _TEST_HOOKS and not ctx.config.test_hooks:
        return False
    return row.capability is None or bool(client.caps & ctx.caps.bit(row.capability))


def help_(ctx: Context, client: Client, msg: Message) -> None:
    """Modern IRC HELP [<subject>]: the commands there are, or what one of them does.

    Modern IRC: servers "reply with a single ERR_HELPNOTFOUND message; or reply with a
    single RPL_HELPSTART message, then arbitrarily many RPL_HELPTXT messages, then a single
    RPL_ENDOFHELP"; "The RPL_HELPSTART message SHOULD be some sort of title and the first
    RPL_HELPTXT message SHOULD be empty"."""
    subject = msg.param(0)
    if not subject:
        names = [row.name for row in ctx.commands.values() if _usable(ctx, client, row)]
        text = [
            "",
            *textwrap.wrap("Commands: " + " ".join(sorted(n.decode() for n in names)), WIDTH),
            "",
            "HELP <command> tells more about one of them.",
        ]
        title = f"** {ctx.config.server_name.decode()} help **"
        ctx.send_lines(client, replies.help_text(ctx.config, client.name, b"*", title, text))
        return
    row = ctx.commands.get(subject.upper())
    if row is None or not _usable(ctx, client, row):
        shown = subject if b" " not in subject and not subject.startswith(b":") else b"*"
        ctx.reply(client, N.ERR_HELPNOTFOUND, shown, b"No help available on this topic")
        return
    name = row.name.decode()
    text = ["", *textwrap.wrap(summary(row), WIDTH), *_conditions(row)]
    ctx.send_lines(
        client, replies.help_text(ctx.config, client.name, row.name, f"** {name} **", text)
    )


COMMANDS = (
    Command(b"HELP", help_, needs_registration=False),
    Command(b"HELPOP", help_, needs_registration=False),
)
