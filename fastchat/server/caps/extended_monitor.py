"""IRCv3 ``extended-monitor`` (https://ircv3.net/specs/extensions/extended-monitor).

Owns: the capability's declaration. A client that negotiated it gets, for each nick on its
MONITOR list, the state-change notifications of the capabilities it extends (``away-notify``,
``account-notify``, ``chghost``, ``setname``) that the client also negotiated, even when it
shares no channel with that user. Who that is, on a worker, is
:func:`fastchat.server.commands.monitor.extended_watchers`: each of those notifications adds
them to its recipients. fastchat offers none of the four yet, so for now it sends nothing
more, which is what the spec asks of a client that enabled none of them.
Must never: hold rendering of its own (each notification's module owns its line).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"extended-monitor"

CAPABILITY = Capability(
    NAME, doc="AWAY, ACCOUNT, CHGHOST and SETNAME of monitored nicks, not only channel peers"
)
