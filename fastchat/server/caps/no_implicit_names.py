"""IRCv3 ``no-implicit-names`` (https://ircv3.net/specs/extensions/no-implicit-names): a
client that negotiates it is not sent the channel's NAMES (353, 366) after its own JOIN;
it asks with ``NAMES`` when it wants them, answered as usual. Mobile clients in many
channels (and a lobby of thousands) connect faster.

Owns: the capability's declaration. Where it acts: the JOIN's burst (``engine/replica.py``),
which leaves out 353 and 366 for such a client (its topic, a read marker, metadata and the
history replay still come).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"no-implicit-names"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
