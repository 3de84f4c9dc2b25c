"""Channel segments, a worker's side: approved messages go to the hub in runs it need not decide.

Owns: the hub's state version this worker's replica holds (``epoch``, from the last B_SEEN
applied), the grouping of the relay's approved plain channel messages into segments
(:class:`~fastchat.server.network.records.RChanSeg`: consecutive in the outbox, approved
under one epoch, to channels of one route), their payload (marshalled once the turn's
requests are taken), and delivering a D_CHANSEG as the D_CHANs it stands for.
Must never: reorder (only what is consecutive in the outbox joins a segment), or take the
hub's decision: a segment's epoch only tells the hub what its approvals were made on, and
the hub decides each message itself whenever anything changed since.

Why (issue 14): the hub decided each channel message on its own, ~2 µs of Python each, which
capped the network near 0.4 M messages/s whatever the number of workers. A replica that
holds the hub's state of epoch *e* approves exactly what the hub would approve while its
state is still *e* (every change to what ``may_speak`` and routing read is an event, and
every event moves the epoch): the hub then forwards the segment whole, O(1) per segment.

The replica may have applied some events past its epoch (a frame's records up to a D_DONE
whose client's held lines run before the frame's B_SEEN): its approvals were then made on a
state newer than ``epoch``, and the hub, which has decided those events too, holds a newer
epoch than the segment's: the messages are decided one by one. Stamping the older epoch is
never wrong, only slower.

Only with routes in the replica (``--placement affine``, several workers: ``State.routes``);
otherwise the relay sends R_CHANMSG records as before, and one worker has no hub at all.
"""

from __future__ import annotations

import marshal
from typing import TYPE_CHECKING

from fastchat.server.connection import NO_OUTPUT
from fastchat.server.network.records import D_CHAN, R_CHANSEG, SEG_FIELDS, Record

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore


class Segments:
    """A worker core's segments: its epoch, the open segment, and the D_CHANSEG delivery."""

    __slots__ = ("_items", "_open", "_route", "_routes", "_unsealed", "core", "enabled", "epoch")

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        # Segments need each channel's route in the replica (State.routes)
        self.enabled = core.state.routes
        # The hub's state version as of the last B_SEEN applied; 0 before any (no hub's:
        # a hub's epochs start far above, see runtime/hub.py)
        self.epoch = 0
        self._open: Record | None = None  # the segment at the end of the outbox, if any
        self._unsealed = False  # segments in the outbox whose payload is not marshalled yet
        self._items: list[object] = []  # its payload, not marshalled yet
        self._route: tuple[int, ...] = ()  # its route
        # folded channel name -> its route (sorted workers), as the replica held it at
        # ``epoch`` (a route only counts where the epoch still matches at the hub); and each
        # route -> itself, so that one route is one object (compared by identity)
        self._routes: dict[bytes | tuple[int, ...], tuple[int, ...]] = {}

    def seen(self, epoch: int) -> None:
        """A B_SEEN was applied: the replica holds the hub's state of ``epoch``. If that is
        a new one, what is approved from now on goes into a new segment, under new routes."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._routes.clear()
            self._open = None

    def add(
        self, key: bytes, uid: int, line: bytes, first: int, notice: bool, account: bytes
    ) -> None:
        """An approved plain message (or run) to channel ``key``: into the open segment if
        that is still the outbox's last request and has this route (its epoch is this one:
        :meth:`seen` closes it), else into a new one. Hot: once per relay run (measured: a
        call and a few lookups, ~0.3 µs more per run than appending an R_CHANMSG)."""
        route = self._routes.get(key)
        if route is None:
            route = self._new_route(key)
        outbox = self.core.outbox
        seg = self._open
        if route is self._route and seg is not None and outbox and outbox[-1] is seg:
            self._items += (key, uid, line, first, notice, account)
            return
        self._items = items = [key, uid, line, first, notice, account]
        self._route = route
        self._open = seg = (R_CHANSEG, self.epoch, route, items, None)  # RChanSeg, by hand
        self._unsealed = True
        outbox.append(seg)

    def _new_route(self, key: bytes) -> tuple[int, ...]:
        chan = self.core.state.channels.get(key)
        route = tuple(sorted(chan.workers)) if chan is not None else ()
        route = self._routes.setdefault(route, route)
        self._routes[key] = route
        return route

    def seal(self, batch: list[Record]) -> None:
        """The turn's requests are taken (``batch``: the outbox, whole): each segment's payload
        is marshalled (once, for the link and the resend buffer), with where each channel's
        last message starts in it (RChanSeg.last: found in C, by dict over zip), and none is
        open."""
        if not self._unsealed:
            return
        self._unsealed = False
        self._open = None
        self._items = []
        keeping = self.core.config.history  # (without history the hub needs no ``last``)
        for i, r in enumerate(batch):
            if r[0] == R_CHANSEG and r[4] is None:
                items = r[3]
                last = {}
                if keeping:
                    starts = range(0, len(items), SEG_FIELDS)
                    last = dict(zip(items[::SEG_FIELDS], starts, strict=True))
                batch[i] = (R_CHANSEG, r[1], r[2], marshal.dumps(items), last)

    def d_chanseg(self, rec: Record) -> None:
        """DChanSeg: each message as the D_CHAN it stands for (tags b"", flags 0, the
        segment's time), in order.

        Hot: while no local client negotiated a capability that changes what it is sent
        (``core.tagged``), each message takes :meth:`Replica.d_chan`'s plain fan-out right
        here, from the payload's slices, with no D_CHAN made and no call per message (0.1
        µs of the ~0.6 a record cost, measured in-process: bench.workerceiling's deliver)."""
        items = marshal.loads(rec[1])
        core = self.core
        if core.tagged:
            now = rec[2]
            d_chan = core.replica.d_chan
            for i in range(0, len(items), SEG_FIELDS):
                # DChan, by hand
                d_chan((D_CHAN, items[i], items[i + 1], items[i + 2], items[i + 3], b"", 0, now))
            return
        channels = core.state.channels
        dirty = core.dirty
        step = SEG_FIELDS
        for key, sender, line in zip(items[0::step], items[1::step], items[2::step], strict=True):
            chan = channels.get(key)
            if chan is None:
                continue
            for uid, client in chan.local.items():  # as Replica.d_chan
                if uid != sender:
                    pending = client.pending
                    if not pending:
                        if pending is NO_OUTPUT:  # (shared: a list of its own first)
                            pending = client.pending = []
                        dirty.append(client)
                    pending.append(line)
