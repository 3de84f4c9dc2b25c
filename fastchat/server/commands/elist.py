"""LIST's search terms (ISUPPORT ``ELIST``, Modern IRC "ELIST parameter"), as HexChat's
and WeeChat's channel lists send them: ``LIST >10`` for the channels of more than 10 users.

Owns: reading ``LIST``'s first parameter, a comma-separated list of terms, into a
:class:`Search`, and whether a channel matches it. Must never: read the clock (``now``
comes in) or look at anything but the channel it is given.

The terms (times in minutes before now; a channel matches every condition given, and, if
names or masks are given, at least one of them):
- ``#name``: that channel (RFC 2812: LIST of channels by name);
- ``M``, a mask: ``#ch*``, ``*an?`` (``*`` any run of characters, ``?`` one; compared as
  nicks are, case-insensitively by the server's casemapping);
- ``N``, not a mask: ``!#ch*``;
- ``U``, users: ``>N`` more than N members, ``<N`` fewer than N;
- ``C``, creation: ``C<N`` created less than N minutes ago, ``C>N`` more than N minutes
  ago (InspIRCd's and Solanum's reading, and Modern IRC's since ircdocs/modern-irc#171);
- ``T``, topic: ``T<N`` topic set less than N minutes ago, ``T>N`` more than N minutes ago
  (a channel without a topic matches neither).
A term that is none of these (``>x``) is taken as a channel name: it names no channel.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from fastchat.irc.casemap import fold
from fastchat.server.network.access import mask_regex
from fastchat.server.network.state import Channel

#: What RPL_ISUPPORT says LIST takes (``ELIST=CMNTU``)
ELIST = b"CMNTU"

_CONDITION = re.compile(rb"([CT]?)([<>])(\d{1,9})")


class Search(NamedTuple):
    """One LIST request's terms: ``names`` (folded) and ``masks`` (at least one must match,
    if any are given), ``exclude`` (masks none may match) and ``conditions`` (each
    ``(field, op, value)``: field ``b""`` users, ``b"C"`` creation, ``b"T"`` topic)."""

    names: tuple[bytes, ...]
    masks: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    conditions: tuple[tuple[bytes, bytes, int], ...]

    @property
    def by_name(self) -> bool:
        """Does it pick channels by name or mask (else: every channel, filtered)?"""
        return bool(self.names or self.masks)


def parse(terms: bytes) -> Search:
    """``LIST``'s first parameter as a :class:`Search`."""
    names: dict[bytes, None] = {}  # (in the order asked, once each)
    masks: list[re.Pattern[str]] = []
    exclude: list[re.Pattern[str]] = []
    conditions: list[tuple[bytes, bytes, int]] = []
    for term in terms.split(b","):
        if not term:
            continue
        condition = _CONDITION.fullmatch(term)
        if condition is not None:
            field, op, value = condition.groups()
            conditions.append((field, op, int(value)))
        elif term[:1] == b"!" and len(term) > 1:
            exclude.append(mask_regex(term[1:]))
        elif b"*" in term or b"?" in term:
            masks.append(mask_regex(term))
        else:
            names[fold(term)] = None
    return Search(tuple(names), tuple(masks), tuple(exclude), tuple(conditions))


def matches(search: Search, chan: Channel, now: float) -> bool:
    """Does ``chan`` answer ``search`` at ``now`` (seconds)?"""
    key = chan.key
    # (what the masks' regexes read: access.mask_regex; none to read it without masks)
    text = key.decode("latin-1") if search.masks or search.exclude else ""
    if search.by_name and key not in search.names and not any(m.match(text) for m in search.masks):
        return False
    if any(m.match(text) for m in search.exclude):
        return False
    for field, op, value in search.conditions:
        if field == b"":
            users = len(chan.members)
            if not (users > value if op == b">" else users < value):
                return False
            continue
        if field == b"C":
            when = chan.created
        elif chan.topic:
            when = chan.topic_time
        else:
            return False  # no topic: no topic time to compare
        age = now - when  # seconds since it was created (its topic set)
        if not (age > value * 60 if op == b">" else age < value * 60):
            return False
    return True
