"""IRCv3 ``message-tags`` (https://ircv3.net/specs/extensions/message-tags) with ``msgid``
(https://ircv3.net/specs/extensions/message-ids) and the ``bot`` tag
(https://ircv3.net/specs/extensions/bot-mode).

Owns: the capability's declaration, the tags it adds to a relayed PRIVMSG, NOTICE or TAGMSG
(the sender's client-only ``+tags``, ``msgid``, ``bot``), the msgid's form, and which
client-only tags a client may send (:func:`client_tags`, ``CLIENTTAGDENY``).

A msgid is decided once for every recipient on every worker: it is made of the sequencer's
time for the message, the sender's uid and the sender's message number (counted by its
worker), so it needs no coordination and never repeats (a uid is unique while its user is
connected, and a later one with the same number has a later time). ``TAGMSG`` (the command,
in ``commands/messages.py``) reaches only clients that negotiated this capability.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastchat.irc.message import parse_tags
from fastchat.server.caps.registry import Capability, Meta
from fastchat.server.render.variants import escape_tag_value

NAME = b"message-tags"


def msgid(time: int, sender: int, seq: int) -> bytes:
    """The msgid of a sender's ``seq``-th message, decided at ``time`` (ms).

    >>> msgid(1_764_120_000_123, (1 << 32) + 5, 0)
    b'19abdbef67b-100000005-0'
    """
    return b"%s%x" % (msgid_prefix(time, sender), seq)


def msgid_prefix(time: int, sender: int) -> bytes:
    """What the msgids of one run of a sender's messages (one time) share."""
    return b"%x-%x-" % (time, sender)


def maybe_parse_msgid(value: str) -> tuple[int, int, int] | None:
    """The ``(time, sender, seq)`` of one of our msgids; None for anything else (another
    server's, a client's mistake).

    >>> maybe_parse_msgid("19abdbef67b-100000005-0"), maybe_parse_msgid("x")
    ((1764120000123, 4294967301, 0), None)
    """
    m = _MSGID.fullmatch(value)
    if m is None:
        return None
    return int(m[1], 16), int(m[2], 16), int(m[3], 16)


_MSGID = re.compile(r"([0-9a-f]{1,15})-([0-9a-f]{1,15})-([0-9a-f]{1,15})")  # < 2**60 each


def _msgid(meta: Meta) -> bytes | None:
    return msgid(meta.time, meta.sender, meta.seq) if meta.seq >= 0 else None


def _bot(meta: Meta) -> bytes | None:
    return b"" if meta.bot else None


def _client_tags(meta: Meta) -> list[tuple[bytes, bytes]]:
    if not meta.client_tags:
        return []
    return list(parse_tags(meta.client_tags).items())


def client_tags(raw: bytes | None, deny: Iterable[bytes]) -> bytes:
    """The client-only tags of a received tag section ``raw`` worth relaying, in wire form
    (``+a=1;+b``): every ``+`` tag but those ``deny`` names (``CLIENTTAGDENY``: a name, or
    ``*`` for all). Values are escaped again, so what goes out is well formed whatever came
    in; of a tag given twice the last counts (parse_tags)."""
    if not raw or b"+" not in raw:
        return b""
    denied = set(deny)
    if b"*" in denied:
        return b""
    out = []
    for key, value in parse_tags(raw).items():
        if key[:1] == b"+" and key[1:] not in denied:
            out.append(key + b"=" + escape_tag_value(value) if value else key)
    return b";".join(out)


CAPABILITY = Capability(
    NAME,
    tags=((b"msgid", _msgid), (b"bot", _bot)),
    tag_list=_client_tags,
    doc=__doc__ or "",
)
