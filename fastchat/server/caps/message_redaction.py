"""IRCv3 ``draft/message-redaction`` (https://ircv3.net/specs/extensions/message-redaction):
``REDACT <channel> <msgid> [:reason]`` withdraws a channel message; the members that
negotiated this are sent the REDACT (clients hide or strike out the message), and the
history leaves it out from then on (CHATHISTORY, a JOIN's replay).

Owns: the capability's declaration. The command is :mod:`fastchat.server.commands.redact`;
who may redact, ``network/sequencer.py`` (the sender, the channel's operators, an operator
who may ``override``); the REDACT line, ``engine/replica.py``; the ``redactions`` table and
the selectors that skip it, ``store/``.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"draft/message-redaction"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
