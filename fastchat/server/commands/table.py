"""A command is a declared row: its name, handler, and what the dispatcher checks first.

Owns: :class:`Command`, the row every family module declares (``COMMANDS = (...)``), and the
handler signature. Must never: run a command (the engine's dispatcher does, after the checks
each row declares: registration, parameter count, privilege, capability).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastchat.irc.message import Message
from fastchat.server.connection import Client

if TYPE_CHECKING:
    from fastchat.server.commands.context import Context

Handler = Callable[["Context", Client, Message], None]


@dataclass(frozen=True, slots=True)
class Command:
    """One command (Ergo's ``irc/commands.go`` row).

    - ``min_params``: fewer gets 461 ERR_NEEDMOREPARAMS before the handler runs;
    - ``needs_registration``: before registration it gets 451 ERR_NOTREGISTERED;
    - ``privilege``: an operator privilege the user must hold (481 ERR_NOPRIVILEGES);
    - ``capability``: the IRCv3 capability the client must have negotiated (else the command
      does not exist for it: 421);
    - ``reads``: its answer depends on the network state (who exists, who is where), so at
      several workers it must first see every change acknowledged to anyone before it
      arrived (the read barrier, see :mod:`fastchat.server.engine.dispatch`).
    """

    name: bytes
    handler: Handler
    min_params: int = 0
    needs_registration: bool = True
    privilege: str | None = None
    capability: bytes | None = None
    reads: bool = False
