"""IRCv3 ``draft/read-marker`` (https://ircv3.net/specs/extensions/read-marker): where a user
has read each channel and conversation up to, shared by every connection logged in to its
account (a phone and a laptop), and kept across restarts.

Owns: the capability's declaration. The command and the ``MARKREAD`` line are
:mod:`fastchat.server.commands.readmarker`; the decision (a marker only moves forward),
``network/sequencer.py``; the table every replica keeps, ``network/markers.py``; what the
store keeps, ``runtime/storage.py``; the MARKREAD sent on JOIN, before 366, and to the
owner's other connections, ``engine/replica.py``.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"draft/read-marker"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
