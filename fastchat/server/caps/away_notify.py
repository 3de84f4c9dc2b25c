"""IRCv3 ``away-notify`` (https://ircv3.net/specs/extensions/away-notify): AWAY lines instead
of polling WHO.

Owns: the capability's declaration. Where it acts (``engine/replica.py``): when a user sets,
changes or removes its away message (``E_AWAY``), every local client that shares a channel
with it and negotiated this gets ``:nick!user@host AWAY :message`` (or ``AWAY`` alone: back),
not the user itself (it has 305/306); and when a user who is away joins a channel, the
members that negotiated it get its AWAY right after its JOIN ("clients will be sent an AWAY
message ... when a user joins and has an away message set").
Must never: hold rendering of its own.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"away-notify"

CAPABILITY = Capability(NAME, doc="AWAY lines when channel peers go away or come back")
