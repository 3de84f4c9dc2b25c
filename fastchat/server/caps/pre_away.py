"""IRCv3 ``draft/pre-away`` (https://github.com/ircv3/ircv3-specifications/pull/514): a
client that negotiates it may send ``AWAY`` before its registration completes, so that it
arrives already away (``AWAY *``: not present, for no stated reason, what a client that
connects in the background to fetch history or notifications says).

Owns: the capability's declaration. Where it acts: ``AWAY`` before registration
(``commands/users.py``: kept on the connection), the registration that carries it
(``RRegister.away``) and the sequencer, which marks the user away in the step that
introduces it, before its autojoin: nobody on any worker ever sees it present.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"draft/pre-away"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
