"""IRCv3 ``multi-prefix`` (https://ircv3.net/specs/extensions/multi-prefix).

Owns: the capability's declaration. A client that negotiated it sees every prefix a channel
member has, highest first (``@+nick``), in NAMES (353), WHO (352, its flags) and WHOIS (319);
others see the highest only. Those replies are answered on the asker's own worker from its
replica, so a client's choice changes no network state: :mod:`fastchat.server.render.replies`
renders both forms, and whoever asks for one tests this capability's bit once per reply.
Must never: hold rendering of its own (the replies own every client-visible line).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"multi-prefix"

CAPABILITY = Capability(NAME, doc="every membership prefix in NAMES, WHO and WHOIS")
