"""IRCv3 ``draft/metadata-3`` (https://github.com/ircv3/ircv3-specifications/pull/613):
keys and values on users and channels (``display-name``, ``avatar``, ``homepage``...).

Owns: the capability's declaration, with its limits as its value (``max-subs``, ``max-keys``,
``max-value-bytes``: ``network/metadata.py``). The command is
:mod:`fastchat.server.commands.metadata`; who may set what, ``network/sequencer.py``; the
table every replica keeps, ``network/metadata.py``; the answers and the notifications to
subscribers, ``engine/replica.py``.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability
from fastchat.server.network import metadata

NAME = b"draft/metadata-3"

CAPABILITY = Capability(NAME, value=metadata.capability_value(), doc=__doc__ or "")
