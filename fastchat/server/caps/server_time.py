"""IRCv3 ``server-time`` (https://ircv3.net/specs/extensions/server-time): the time of each
relayed line, in a ``time`` tag.

Owns: the capability's declaration and its tag. The time is the sequencer's: every decision
is stamped once, in milliseconds (``network/records.py``: the ``time`` field of every event
and delivery), so every recipient on every worker gets the same value for the same message,
JOIN, QUIT, NICK or MODE. Lines the server composes for one client (numerics, PONG) carry no
tag (the spec: servers SHOULD add it to messages they relay).
"""

from __future__ import annotations

from functools import lru_cache

from fastchat.server.caps.registry import Capability, Meta
from fastchat.server.render.dates import iso8601


@lru_cache(maxsize=256)
def _stamp(ms: int) -> bytes:
    return iso8601(ms)


def _time(meta: Meta) -> bytes:
    """``2026-11-26T01:40:29.123Z``: UTC, milliseconds (the spec's format). Remembered for
    the last few hundred milliseconds seen: a busy second stamps thousands of lines with
    the same few values (the sequencer decides a whole batch at one time)."""
    return _stamp(meta.time)


CAPABILITY = Capability(b"server-time", tags=((b"time", _time),), doc=__doc__ or "")
