"""IRCv3 ``invite-notify`` (https://ircv3.net/specs/extensions/invite-notify): channel
operators see who invites whom.

Owns: the capability's declaration. Where it acts (``engine/replica.py``, ``E_INVITE``): the
INVITE line the invited user receives, ``:inviter!user@host INVITE target #channel``, also
goes to the channel's local operators that negotiated this, but the inviter and the invited
(the spec lets a server choose: "a server may choose to only send the message to clients
having channel op, or only to clients that have the privilege to do an /INVITE on the
channel themselves"; Ergo does the same). The line is the one already rendered for the
invited user.
Must never: hold rendering of its own.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"invite-notify"

CAPABILITY = Capability(NAME, doc="INVITE lines to channel operators when someone is invited")
