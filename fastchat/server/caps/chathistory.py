"""IRCv3 ``draft/chathistory`` (https://ircv3.net/specs/extensions/chathistory): a channel's
earlier messages, on request, in a ``chathistory`` batch.

Owns: the capability's declaration. The command is :mod:`fastchat.server.commands.history`;
what is kept, :mod:`fastchat.server.runtime.storage`; the ISUPPORT tokens (``CHATHISTORY``,
``MSGREFTYPES``), ``render/replies.py``.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"draft/chathistory"
#: the batch type of a reply (ratified, so unprefixed) and of a TARGETS reply
BATCH_TYPE = b"chathistory"
TARGETS_BATCH_TYPE = b"draft/chathistory-targets"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
