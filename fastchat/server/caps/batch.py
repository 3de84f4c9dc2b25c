"""IRCv3 ``batch`` (https://ircv3.net/specs/extensions/batch): lines grouped between
``BATCH +ref type`` and ``BATCH -ref``, each tagged ``batch=ref``.

Owns: the capability's declaration. Who opens batches: the labeled responses
(:mod:`fastchat.server.engine.labels`, a ``labeled-response`` batch around a reply of several
lines); history playback will be another.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"batch"

CAPABILITY = Capability(NAME, doc=__doc__ or "")
