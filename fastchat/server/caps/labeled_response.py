"""IRCv3 ``labeled-response`` (https://ircv3.net/specs/extensions/labeled-response): every
reply to a command a client sent with a ``label`` tag carries that label, in exactly one
logical message: the one line of the reply, a ``labeled-response`` batch around a reply of
several lines, or ``ACK`` when the command had nothing to say.

Owns: the capability's declaration. Where it acts: :mod:`fastchat.server.engine.labels`
collects the reply (on whichever worker and from whichever record it is produced) until the
command is complete. The spec says ``batch`` must be negotiated too, and that a server must
not enforce it at CAP REQ: so labels are honoured only for a client with both.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"labeled-response"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
