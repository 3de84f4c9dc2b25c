"""IRCv3 ``echo-message`` (https://ircv3.net/specs/extensions/echo-message): a client's own
PRIVMSG and NOTICE come back to it once the server has relayed them.

Owns: the capability's declaration. Where it acts: a channel message's sender is included in
its fan-out (``engine/replica.py`` ``d_chan``: the echo arrives in the channel's one order,
with the same bytes and tags as everyone else's copy), and a private message's request asks
the sequencer for a copy to the sender (``RUserMsg.echo``, decided with the same time).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

CAPABILITY = Capability(b"echo-message", doc=__doc__ or "")
