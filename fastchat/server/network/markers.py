"""IRCv3 draft/read-marker's network state: up to where each owner has read each target.

Owns: :class:`ReadMarkers`, the one table every replica keeps (``State.markers``), changed
only by E_MARKREAD and by its owner leaving (a connection's quit, an account's DROP).
Must never: format a line, read the clock, or decide anything (the sequencer decides the
value; this applies it).

An owner is an account (its folded name: every connection logged in to it shares its
markers, and the store keeps them across restarts) or, for a connection logged in to none,
its uid (its markers live while it does). A marker only ever moves forward (the spec: "the
last read timestamp of a target MUST only ever increase"), so applying the same event twice,
or the events of two replicas in either order, ends the same: the hub's merge after a
restart relies on it. An owner keeps at most :data:`MAX_MARKERS` targets, so no client can
grow every process's memory without end: a new target beyond that pushes out the one read
longest ago (the same one in every replica: the smallest ``(ms, target)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastchat.irc.casemap import fold

#: Targets one owner keeps a marker for, at most
MAX_MARKERS = 500

#: An account's folded name, or a uid (a connection logged in to none)
Owner = bytes | int


class ReadMarkers:
    """Owner -> folded target -> Unix ms it has been read up to."""

    __slots__ = ("by_owner",)

    def __init__(self) -> None:
        self.by_owner: dict[Owner, dict[bytes, int]] = {}

    def get(self, owner: Owner, target: bytes) -> int:
        """Up to when ``owner`` has read ``target`` (Unix ms); 0: no marker."""
        have = self.by_owner.get(owner)
        return 0 if have is None else have.get(fold(target), 0)

    def set(self, owner: Owner, target: bytes, ms: int) -> bool:
        """Move ``owner``'s marker of ``target`` to ``ms`` if that is later; True if it moved.

        >>> m = ReadMarkers()
        >>> m.set(b"ann", b"#Chan", 5), m.set(b"ann", b"#chan", 3), m.get(b"ann", b"#CHAN")
        (True, False, 5)
        """
        key = fold(target)
        have = self.by_owner.get(owner)
        if have is None:
            have = self.by_owner[owner] = {}
        elif have.get(key, 0) >= ms:
            return False
        if key not in have and len(have) >= MAX_MARKERS:
            del have[min(have, key=lambda k: (have[k], k))]
        have[key] = ms
        return True

    def drop(self, owner: Owner) -> None:
        """``owner`` is gone (a connection quit, an account dropped): its markers too."""
        self.by_owner.pop(owner, None)

    def rows(self) -> tuple[tuple[Any, ...], ...]:
        """Every marker as ``(owner, target, ms)``, for a snapshot (plain tuples)."""
        return tuple(
            (owner, key, ms) for owner, have in self.by_owner.items() for key, ms in have.items()
        )

    def load(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Replace every marker with ``rows`` (:meth:`rows`' form)."""
        self.by_owner.clear()
        for owner, key, ms in rows:
            self.set(owner, key, ms)
