"""IRCv3 ``setname`` (https://ircv3.net/specs/extensions/setname): ``SETNAME :realname``
changes one's realname on a live connection.

Owns: the capability's declaration. Where it acts: the command (``commands/users.py``
``setname``: FAIL SETNAME INVALID_REALNAME for an empty realname or one longer than
ISUPPORT ``NAMELEN``), the sequencer's decision (``R_SETNAME`` → ``E_SETNAME``, applied to
every replica, so WHOIS and WHO show it from any worker), and the notification
(``engine/replica.py``: ``:nick!user@host SETNAME :realname`` to the user itself and to the
local clients that share a channel with it, those that negotiated this only: "The SETNAME
message MUST NOT be sent to clients which do not have the setname capability negotiated").
The command works without the capability too, as the spec requires; such a client is then
answered nothing ("handle it silently"), but for a FAIL.
Must never: hold rendering of its own.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"setname"

CAPABILITY = Capability(NAME, doc="SETNAME: change one's realname, and see others change theirs")
