"""IRCv3 draft/metadata-3's network state: the keys and values users and channels carry
(a display name, an avatar, a homepage...), and the rules every side checks them by.

Owns: :class:`Metadata`, the one table every replica keeps (``State.metadata``), changed
only by E_METADATA and by its owner going (a user's quit, a channel's last member leaving);
what a key and a value may be (:func:`key_problem`, :func:`value_problem`) and the limits
(:data:`MAX_KEYS`, :data:`MAX_SUBS`, :data:`MAX_VALUE_BYTES`), which the capability's
value announces.
Must never: format a line, read the clock, or decide who may set what (the sequencer does).

Nothing is kept across restarts: a user's metadata lives while it is connected (a client
sets it again when it connects, as with Ergo's default), a channel's while the channel
exists. Every process holds all of it, so it is bounded: at most :data:`MAX_KEYS` keys per
user or channel, each value at most :data:`MAX_VALUE_BYTES`.
"""

from __future__ import annotations

import re
from typing import Any

#: Keys one user or channel may hold at most (``max-keys``)
MAX_KEYS = 20
#: Keys one connection may subscribe to at most (``max-subs``)
MAX_SUBS = 50
#: The longest value, in bytes (``max-value-bytes``): a key and its value must fit on one
#: 512-byte line with the numeric around them
MAX_VALUE_BYTES = 300
#: The longest key
MAX_KEY_BYTES = 64

# The spec's key names: a-z, 0-9, and _ . / - (lowercase: keys are case-insensitive, and
# one form is stored); ":" may not start one, and never does here
_KEY = re.compile(rb"[a-z0-9_./-]+")

#: The owner of some metadata: a user (its uid) or a channel (its folded name)
Owner = int | bytes


def key_problem(key: bytes) -> bytes | None:
    """Why ``key`` cannot be a key, or None.

    >>> key_problem(b"display-name"), key_problem(b"Bad Key")
    (None, b'Invalid key name')
    """
    if len(key) > MAX_KEY_BYTES or _KEY.fullmatch(key) is None:
        return b"Invalid key name"
    return None


def value_problem(value: bytes) -> bytes | None:
    """Why ``value`` cannot be a value, or None: it must be UTF-8 ("Values are unrestricted,
    except that they MUST be UTF-8") and at most :data:`MAX_VALUE_BYTES` long.

    >>> value_problem("->\\U0001f49c<-".encode()), value_problem(b"\\xc3")
    (None, b'Values must be UTF-8')
    """
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return b"Values must be UTF-8"
    if len(value) > MAX_VALUE_BYTES:
        return b"Value is too long"
    return None


def capability_value() -> bytes:
    """What ``CAP LS 302`` shows after ``draft/metadata-3=``."""
    return b"max-subs=%d,max-keys=%d,max-value-bytes=%d" % (
        MAX_SUBS,
        MAX_KEYS,
        MAX_VALUE_BYTES,
    )


class Metadata:
    """Owner -> key -> value, for users and channels alike."""

    __slots__ = ("by_owner",)

    def __init__(self) -> None:
        self.by_owner: dict[Owner, dict[bytes, bytes]] = {}

    def of(self, owner: Owner) -> dict[bytes, bytes]:
        """``owner``'s keys and values, in the order they were first set (do not change it)."""
        return self.by_owner.get(owner) or {}

    def full(self, owner: Owner, key: bytes) -> bool:
        """Would setting ``key`` on ``owner`` go beyond :data:`MAX_KEYS`?"""
        have = self.by_owner.get(owner)
        return have is not None and key not in have and len(have) >= MAX_KEYS

    def set(self, owner: Owner, key: bytes, value: bytes | None) -> bool:
        """Set ``key`` (None: remove it); True if that changed anything.

        >>> m = Metadata()
        >>> m.set(7, b"avatar", b"x"), m.set(7, b"avatar", b"x"), m.set(7, b"avatar", None)
        (True, False, True)
        >>> m.by_owner
        {}
        """
        have = self.by_owner.get(owner)
        if value is None:
            if have is None or key not in have:
                return False
            del have[key]
            if not have:
                del self.by_owner[owner]
            return True
        if have is None:
            have = self.by_owner[owner] = {}
        elif have.get(key) == value:
            return False
        have[key] = value
        return True

    def drop(self, owner: Owner) -> None:
        """``owner`` is gone (a user quit, a channel emptied): its metadata too."""
        self.by_owner.pop(owner, None)

    def rows(self) -> tuple[tuple[Any, ...], ...]:
        """Every value as ``(owner, key, value)``, for a snapshot (plain tuples)."""
        return tuple(
            (owner, key, value)
            for owner, have in self.by_owner.items()
            for key, value in have.items()
        )

    def load(self, rows: Any) -> None:
        """Replace everything with ``rows`` (:meth:`rows`' form)."""
        self.by_owner.clear()
        for owner, key, value in rows:
            self.set(owner, key, value)
