"""Channel access lists: bans (+b), ban exceptions (+e), invite exceptions (+I), and the
extended masks they take (``m:`` mute, ``a:`` account).

Owns: what a list entry is (:class:`Entry`: the mask, who set it, when), which masks a list
takes (:func:`normalise`), and the rules that read the lists: who is kept out
(:func:`banned`), who is kept quiet (:func:`muted`), who joins ``+i`` uninvited
(:func:`invite_exempt`). The sequencer decides with them; every replica answers with them
(``may_speak``), so one worker and four agree.
Must never: change a channel (the sequencer's MODE and ``State.apply`` do), or read the clock.

The rules, as Modern IRC and the servers clients know (Solanum, InspIRCd, Ergo) have them:

- ``+b mask`` keeps a matching user out, and keeps a matching member without voice or op
  quiet. ``+b m:mask`` (a mute, "quiet") only keeps it quiet.
- ``+e mask`` exempts a matching user from every ban; ``+e m:mask`` from mutes only.
- ``+I mask`` lets a matching user join a ``+i`` channel without an INVITE.
- ``a:account`` (IRCv3 account-extban: ISUPPORT ``ACCOUNTEXTBAN=a``) matches a user logged
  in to that account (``*``/``?`` allowed), whatever its nick or host; a user logged in to
  none never. It works in each list, and inside a mute (``m:a:account``).
- Masks match case-insensitively (rfc1459 folding), and a list holds a mask once up to case.

ISUPPORT: ``CHANMODES=beI,...``, ``EXCEPTS=e``, ``INVEX=I``, ``EXTBAN=,am``,
``ACCOUNTEXTBAN=a``, ``MAXLIST=beI:<n>`` (entries of the three lists together, per channel).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.server.network.records import OP

if TYPE_CHECKING:
    from fastchat.server.network.state import Channel, User

#: The list modes, in CHANMODES' group A order
LIST_MODES = b"beI"
#: The extended masks' types (ISUPPORT ``EXTBAN=,am``: no prefix, then the type letters)
EXTBAN_TYPES = b"am"
MUTE = b"m:"
ACCOUNT = b"a:"
#: Entries the three lists of one channel may hold together (ISUPPORT MAXLIST; 478 beyond):
#: a channel operator cannot grow every process's memory without end
MAX_ENTRIES = 100


class Entry(NamedTuple):
    """One entry of a channel's list: the mask as set, who set it (``nick!user@host``, or
    empty: the server), and when (Unix ms). RPL_BANLIST, RPL_EXCEPTLIST and RPL_INVEXLIST
    show all three (Modern IRC: ``<mask> [<who> <set-ts>]``)."""

    mask: bytes
    setter: bytes
    set_at: int


@lru_cache(maxsize=1024)
def mask_regex(mask: bytes) -> re.Pattern[str]:
    """A wildcard mask (``*``, ``?``), folded, as a regex over a folded name decoded as
    latin-1. ``fnmatch`` makes each ``*`` an atomic group, so a hostile ``*a*a*...*b`` cannot
    backtrack exponentially; folding (rfc1459) leaves no ``[`` for it to read as a class."""
    return re.compile(fnmatch.translate(fold(mask).decode("latin-1")), re.DOTALL)


def mask_matches(mask: bytes, user: User) -> bool:
    """Does a ban mask such as ``*!*@host`` match ``user`` (case-insensitively, ``*``/``?``)?

    >>> from fastchat.server.network.state import User
    >>> mask_matches(b"Bad*!*@*", User(1, b"badguy", b"u", b"h", b"r", 0, 0))
    True
    """
    return mask_regex(mask).match(fold(user.mask).decode("latin-1")) is not None


def normalise_mask(mask: bytes) -> bytes:
    """Complete a partial ban mask: ``nick`` → ``nick!*@*``, ``u@h`` → ``*!u@h``."""
    if b"!" not in mask and b"@" not in mask:
        return mask + b"!*@*"
    if b"!" not in mask:
        return b"*!" + mask
    if b"@" not in mask:
        return mask + b"@*"
    return mask


def normalise(letter: bytes, mask: bytes) -> bytes | None:
    """The entry list ``letter`` keeps for ``mask`` as a channel operator wrote it, or None
    if it is none that list takes (an unknown extended type, an empty account, a mute in
    +I: the sequencer answers 696).

    >>> normalise(b"b", b"bob"), normalise(b"b", b"m:bob"), normalise(b"e", b"a:Bob")
    (b'bob!*@*', b'm:bob!*@*', b'a:Bob')
    >>> normalise(b"I", b"m:bob") is None, normalise(b"b", b"x:bob") is None
    (True, True)
    """
    if mask[1:2] != b":":
        return normalise_mask(mask) if mask else None
    kind, rest = mask[:2], mask[2:]
    if kind == MUTE and letter != b"I":
        inner = normalise(letter, rest)  # (a mask, or an account: not another mute)
        return MUTE + inner if inner is not None and inner[:2] != MUTE else None
    if kind == ACCOUNT and rest:
        return mask
    return None


def _matches(mask: bytes, user: User) -> bool:
    """Does the (non-mute) entry ``mask`` match ``user``?"""
    if mask[:2] == ACCOUNT:
        account = user.account
        return (
            account is not None
            and mask_regex(mask[2:]).match(fold(account).decode("latin-1")) is not None
        )
    return mask_matches(mask, user)


def _excepted(chan: Channel, user: User, mute: bool) -> bool:
    """Does a +e entry exempt ``user``: from bans, or (``mute``) from mutes too?"""
    for entry in chan.excepts:
        mask = entry.mask
        if mask[:2] == MUTE:
            if mute and _matches(mask[2:], user):
                return True
        elif _matches(mask, user):
            return True
    return False


def banned(chan: Channel, user: User) -> bool:
    """Is ``user`` kept out of ``chan`` by a ban no exception lifts (ERR_BANNEDFROMCHAN)?"""
    return any(e.mask[:2] != MUTE and _matches(e.mask, user) for e in chan.bans) and not _excepted(
        chan, user, False
    )


def muted(chan: Channel, user: User) -> bool:
    """Is ``user`` (a member without voice or op) kept quiet in ``chan``: a ban or a mute
    matches it, and no exception lifts that?"""
    return any(
        _matches(e.mask[2:] if e.mask[:2] == MUTE else e.mask, user) for e in chan.bans
    ) and not _excepted(chan, user, True)


def invite_exempt(chan: Channel, user: User) -> bool:
    """May ``user`` join ``chan`` while it is +i, without an INVITE?"""
    return any(_matches(e.mask, user) for e in chan.invex)


#: Each list mode's field of a :class:`~fastchat.server.network.state.Channel`
_FIELD = {b"b": "bans", b"e": "excepts", b"I": "invex"}


def entries(chan: Channel, letter: bytes) -> tuple[Entry, ...]:
    """The list mode ``letter``'s entries of ``chan``."""
    items: tuple[Entry, ...] = getattr(chan, _FIELD[letter])
    return items


def find(items: tuple[Entry, ...], mask: bytes) -> Entry | None:
    """The entry of ``items`` for ``mask``, up to case."""
    key = fold(mask)
    for entry in items:
        if fold(entry.mask) == key:
            return entry
    return None


def count(chan: Channel) -> int:
    """The entries of ``chan``'s three lists together (what MAXLIST bounds)."""
    return len(chan.bans) + len(chan.excepts) + len(chan.invex)


def change(chan: Channel, letter: bytes, adding: bool, mask: bytes, setter: bytes, at: int) -> bool:
    """Add (or remove) ``mask`` to (from) the list ``letter`` of ``chan``, as ``State.apply``
    does for an E_MODE; False if that changes nothing."""
    items = entries(chan, letter)
    have = find(items, mask)
    if adding == (have is not None):
        return False
    if adding:
        items = (*items, Entry(mask, setter, at))
    else:
        items = tuple(e for e in items if e is not have)
    setattr(chan, _FIELD[letter], items)
    return True


#: Each list's numerics (Modern IRC): an entry's, the end's, and the end's text
REPLIES = {
    b"b": (N.RPL_BANLIST, N.RPL_ENDOFBANLIST, b"End of channel ban list"),
    b"e": (N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST, b"End of channel exception list"),
    b"I": (N.RPL_INVEXLIST, N.RPL_ENDOFINVEXLIST, b"End of channel invite exception list"),
}


def list_replies(chan: Channel, letter: bytes, server: bytes) -> Iterator[tuple[bytes, ...]]:
    """The numeric and parameters of each line that shows ``chan``'s list ``letter``:
    ``<channel> <mask> <who> <set-ts>`` (``who``: the server for an entry it set), then the
    end. One format for the worker (``MODE #chan b``) and the sequencer (a list asked for
    within other changes)."""
    code, end, text = REPLIES[letter]
    for e in entries(chan, letter):
        yield code, chan.name, e.mask, e.setter or server, b"%d" % (e.set_at // 1000)
    yield end, chan.name, text


def may_list(chan: Channel, letter: bytes, flags: int | None) -> bool:
    """May a member with ``flags`` (None: not a member) see ``chan``'s list ``letter``?
    Bans: anyone (they say who is kept out). Exceptions and invite exceptions: channel
    operators only, as on Solanum and InspIRCd (they name whom the operators let through)."""
    return letter == b"b" or (flags is not None and bool(flags & OP))
