"""Exactly once across hub restarts: what this worker has received, and its hello to a hub.

Owns: the bookkeeping that lets a new hub, after the old one crashed, replay what some worker
missed and nothing twice (see :mod:`fastchat.server.runtime.hub`): this worker's request
numbering (``first_seq``), how far every worker has received our requests (``acked``), how far
we have received each origin's (``seen``), the old hub's decision order since what every
worker had (``order_log``); the snapshot a hub sends; the hello that opens a link.
Must never: touch a socket (the shell keeps the request frames, ``bus.Retained``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastchat.server.network.records import (
    B_SEEN,
    B_SNAPSHOT,
    BHello,
    BReceived,
    BSeen,
    BSnapshot,
    Record,
    make,
)

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore


class Resync:
    """A core's side of exactly-once delivery across hub restarts."""

    __slots__ = ("acked", "core", "first_seq", "order_log", "seen", "seen_changed", "table")

    def __init__(self, core: WorkerCore, incarnation: int) -> None:
        self.core = core
        # Our requests are numbered from ``first_seq``; ``acked``: how far every worker has
        # received ours; ``seen``: how far we have received each origin's; ``order_log``:
        # the hub's decision order since what every worker had.
        self.first_seq = incarnation << 32
        self.acked = self.first_seq
        self.seen: dict[int, int] = {}
        self.seen_changed = False
        self.order_log: list[tuple[int, int]] = []
        self.table: dict[int, Callable[[Record], None]] = {
            B_SNAPSHOT: self._b_snapshot,
            B_SEEN: self._b_seen,
        }

    def _b_snapshot(self, rec: Record) -> None:
        b = BSnapshot._make(rec)
        self.core.load_snapshot(b.snapshot)
        # A snapshot holds every request decided so far: we have, in effect, received them.
        seen = self.seen
        for origin, upto in b.processed.items():
            if upto > seen.get(origin, 0):
                seen[origin] = upto
        self.seen_changed = True

    def take_report(self) -> Record:
        """What we have received, for the hub's ``stable`` (B_RECEIVED); the shell asks when
        ``seen_changed``."""
        self.seen_changed = False
        return make(BReceived, dict(self.seen))

    def _b_seen(self, rec: Record) -> None:
        """The end of a hub frame: the batches it decided (and we now hold every record of),
        and which requests every worker has."""
        b = BSeen._make(rec)
        self.core.segments.seen(b.epoch)
        if b.order:
            seen = self.seen
            for origin, upto in b.order:
                seen[origin] = upto
            self.order_log += b.order
            self.seen_changed = True
        stable = b.stable
        if stable is None:
            return  # unchanged since the hub's last frame
        mine = stable.get(self.core.slot, 0)
        if mine > self.acked:
            self.acked = mine
        log_ = self.order_log
        done = 0
        for origin, upto in log_:
            if upto > stable.get(origin, 0):
                break
            done += 1
        if done:
            del log_[:done]

    def hello(self, resync: bool, first_seq: int) -> Record:
        """The record that opens a link to a hub. To a new hub after a crash: our replica,
        what we received from the old one, and ``first_seq``, the number of the first request
        the shell sends again right after it (every one not every worker had received)."""
        core = self.core
        if not resync:
            return make(BHello, core.slot, None, (), first_seq, {}, ())
        seen, order = self._received()
        placement = core.placement
        replica = placement.as_before(core.state.snapshot())
        return make(
            BHello,
            core.slot,
            replica,
            # the users we hold and those on their way here (engine/placement.py)
            (*core.state.local, *placement.holding()),
            first_seq,
            seen,
            tuple(order),
            placement.handed(),
            placement.awaited(),
        )

    def _received(self) -> tuple[dict[int, int], list[tuple[int, int]]]:
        """What we have received from the old hub: ``seen`` and ``order_log``, plus the
        B_SEENs of the frames that wait behind an E_MOVE to this worker (engine/placement.py:
        a worker that waits for a client applies nothing until it comes). Those records are
        ours and will be applied in order once the client comes (or we give up on it); a
        new hub that did not know it would send them again, and they would come twice."""
        seen = dict(self.seen)
        order = list(self.order_log)
        for rec in self.core.placement.stalled or ():
            if rec[0] == B_SEEN:
                b = BSeen._make(rec)
                for origin, upto in b.order:
                    seen[origin] = upto
                order += b.order
        return seen, order
