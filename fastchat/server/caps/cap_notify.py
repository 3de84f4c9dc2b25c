"""IRCv3 ``cap-notify``
(https://ircv3.net/specs/extensions/capability-negotiation#cap-notify).

Owns: the capability's declaration. It tells a client that the server will announce, with
``CAP NEW`` and ``CAP DEL``, capabilities it starts or stops offering. The spec has it enabled
implicitly for every client that asks ``CAP LS 302`` (and such a client may not disable it);
others may request it. fastchat's offering is fixed for the life of the process (the registry
is built once, at import), so there is never a NEW or DEL to send: declaring it is all it takes.
Must never: send anything; if capabilities ever change at run time, NEW/DEL belong here.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"cap-notify"

CAPABILITY = Capability(
    NAME, implicit_302=True, doc="CAP NEW/DEL when the offering changes (it never does)"
)
