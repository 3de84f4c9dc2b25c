"""IRCv3 ``userhost-in-names`` (https://ircv3.net/specs/extensions/userhost-in-names).

Owns: the capability's declaration. A client that negotiated it sees each member as
``nick!user@host`` in NAMES (353), both the NAMES command's and the burst that answers its own
JOIN; others see nicks. Answered on the asker's own worker from its replica, so nothing of the
network changes: :mod:`fastchat.server.render.replies` renders both forms, and whoever asks
for one tests this capability's bit once per reply.
Must never: hold rendering of its own (the replies own every client-visible line).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"userhost-in-names"

CAPABILITY = Capability(NAME, doc="nick!user@host for each member in NAMES")
