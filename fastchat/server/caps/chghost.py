"""IRCv3 ``chghost`` (https://ircv3.net/specs/extensions/chghost): a CHGHOST line when a
user's username or host changes, instead of a simulated reconnect.

Owns: the capability's declaration. What changes a host: an operator's ``CHGHOST <nick>
[<user>] <host>`` (``commands/operators.py``, privilege ``chghost``), decided by the
sequencer (``E_CHGHOST``, applied by every replica). Where it shows (``engine/replica.py``):
``:nick!old_user@old_host CHGHOST new_user new_host`` to the local clients that share a
channel with the user and negotiated this, and to the user itself if it did. The others that
share a channel get the spec's fallback (it SHOULD be sent): the user's QUIT (``Changing
hostname``), then its JOIN of each channel they share (extended for those that negotiated
extended-join), the server's MODE giving back its ``+o``/``+v`` there, and its AWAY for
those with away-notify; so their view of the user is right, as after a reconnect.
Must never: hold rendering of its own.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"chghost"

CAPABILITY = Capability(NAME, doc="CHGHOST lines when a user's user@host changes")
