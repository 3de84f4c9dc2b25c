"""Client commands, one module per family, each declaring its rows (``COMMANDS``).

Owns: :data:`COMMANDS`, the command table built once from every family module in this
package (registration, server, channels, messages, modes, users, ...): a new family is one new
file. What each command means lives in its family; the cross-cutting checks (registered?
enough parameters? privilege? capability?) are declared in its :class:`Command` row and
enforced by the engine's one dispatcher, so handlers never re-check them.
Must never: import the engine (the engine imports commands, never the reverse), touch a socket
or read the clock.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastchat.server.commands.table import Command, Handler

__all__ = ["COMMANDS", "Command", "Handler", "build_table"]

_NOT_FAMILIES = {"table", "context", "elist"}  # (helpers: no commands of their own)


def build_table() -> dict[bytes, Command]:
    """The command table: every ``COMMANDS`` row of every family module, by name."""
    table: dict[bytes, Command] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_FAMILIES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for row in getattr(module, "COMMANDS", ()):
            if row.name in table:
                raise ValueError(f"command {row.name!r} declared twice")
            table[row.name] = row
    return table


#: Every command, by name: built once.
COMMANDS = build_table()
