"""The fence: makes the read barrier (``R_SYNC``) real-time at several workers.

Owns: which workers' requests wait for a fence round, the rounds themselves (their numbers,
who has not answered), and the order in which held requests are let through to the sequencer.
Must never: touch a socket or the clock, or decide anything (the hub decides what this hands
back, in the order handed back).

Why: a query's ``R_SYNC`` returns after every event the sequencer had decided before it. A
message another client sent earlier, which its worker has read but not yet handed to the hub,
is not among them; one process would have read those bytes first. So, before the sequencer
decides an ``R_SYNC`` from worker B, the hub sends ``B_FENCE`` to every other live worker, and
each answers ``B_FENCED`` at the end of its loop turn, behind the requests of every client
line it had read (the link is FIFO). When all have answered (or died), the hub decides the
``R_SYNC``: its ``D_DONE`` reaches B after those messages' deliveries.

- A worker's requests stay in its order: from a held ``R_SYNC`` on, that worker's later
  batches wait behind it (its workers end a batch at each ``R_SYNC``, see
  ``WorkerCore.take_requests``, so the hub looks only at a batch's last record).
- Coalescing: while a round is out, new R_SYNCs wait for the next one (a round covers
  every ``R_SYNC`` that arrived before it was sent), so a burst of queries costs one round.
- Released batches go to the sequencer in the order they reached the hub.
- A worker that dies answers nothing: it leaves the round, and its own held batches are
  decided at once (as they would have been, before its users quit).
- A worker that neither answers nor dies (stopped, or stuck) would hold every query on the
  network: the hub gives up on a round after ``FENCE_PATIENCE`` seconds (``give_up``) and
  decides what waited, as before the fence.
- A hub crash loses the rounds and the held requests with it: held requests were never
  decided, so their workers still retain them and resend them to the new hub, which decides
  them (see hub.py, ``_replay``). Round numbers start from a value the hub picks (its start
  time), so an answer to the old hub's fence that reaches the new one matches no round.

Known limits: a round waits for what a worker has *read*; a line a worker holds unread
(flood control, or behind that client's own barrier) is not covered, as at one worker a
throttled line is not either. And a worker's requests that arrive behind one of its
R_SYNCs wait for that R_SYNC's round: when that is the next round, a query of another
worker covered by the current round may be answered before them, although that worker had
read them before it answered the fence (two queries on two workers within one round, and a
message behind the second: rare, and no worse than before fences).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from fastchat.server.network.records import Record

#: A held batch: (arrival stamp, round that must complete first (0: none), records)
Held = tuple[int, int, list[Record]]


class Fence:
    """The hub's fence rounds and the requests waiting for them (pure)."""

    __slots__ = ("clock", "done", "held", "round", "waiting", "wanted_from")

    def __init__(self, first_round: int = 0) -> None:
        self.round = first_round  # the last round sent
        self.done = first_round  # the last round completed (== round: none out)
        self.waiting: set[int] = set()  # workers yet to answer round ``round``
        # the workers whose R_SYNCs wait for a round not sent yet (round + 1)
        self.wanted_from: set[int] = set()
        self.held: dict[int, deque[Held]] = {}  # slot -> its batches waiting (never empty)
        self.clock = 0

    def arrive(self, slot: int, batch: list[Record], sync: bool) -> list[tuple[int, list[Record]]]:
        """A batch from ``slot``; ``sync``: it ends with an R_SYNC. Returns what to decide now
        (the hub's hot path decides a batch itself when neither ``sync`` nor ``slot in held``)."""
        queue = self.held.get(slot)
        if not sync:
            if queue is None:
                return [(slot, batch)]
            self.clock += 1
            queue.append((self.clock, 0, batch))
            return []
        now: list[tuple[int, list[Record]]] = []
        if len(batch) > 1:
            head = batch[:-1]
            if queue is None:
                now.append((slot, head))
            else:
                self.clock += 1
                queue.append((self.clock, 0, head))
        if queue is None:
            queue = self.held[slot] = deque()
        self.clock += 1
        queue.append((self.clock, self.round + 1, batch[-1:]))
        self.wanted_from.add(slot)
        return now

    def start(self, live: Iterable[int]) -> tuple[int, list[int], list[tuple[int, list[Record]]]]:
        """End of the hub's loop turn: send the next round if one is wanted and none is out.
        Returns (round, the workers to send B_FENCE to, what to decide now); round 0: none.
        A round covering R_SYNCs of one worker only does not ask that worker (its own
        requests are ahead of its R_SYNC already)."""
        origins = self.wanted_from
        if not origins or self.done != self.round:
            return 0, [], []
        skip = origins if len(origins) == 1 else set()
        targets = sorted(slot for slot in live if slot not in skip)
        self.wanted_from = set()
        self.round += 1
        self.waiting = set(targets)
        if not targets:
            return 0, [], self._complete()
        return self.round, targets, []

    def answered(self, slot: int, round_: int) -> list[tuple[int, list[Record]]]:
        """``slot`` answered fence ``round_`` (B_FENCED): what to decide now."""
        if round_ != self.round or slot not in self.waiting:
            return []  # an old round's, or another hub's
        self.waiting.discard(slot)
        return [] if self.waiting else self._complete()

    def gone(self, slot: int) -> list[tuple[int, list[Record]]]:
        """``slot``'s link is gone: it answers no round, and its own held batches are decided
        at once (before its users quit); then whatever its absence completes."""
        now = [(slot, held[2]) for held in self.held.pop(slot, ())]
        self.wanted_from.discard(slot)
        if slot in self.waiting:
            self.waiting.discard(slot)
            if not self.waiting:
                now += self._complete()
        return now

    def give_up(self) -> list[tuple[int, list[Record]]]:
        """The round out has waited too long (a stopped or hung worker, which has not died):
        decide what waits for it without the missing answers (the hub logs it)."""
        if self.done == self.round:
            return []
        self.waiting.clear()
        return self._complete()

    @property
    def out(self) -> bool:
        """Is a round out (sent, not complete)?"""
        return self.done != self.round

    def _complete(self) -> list[tuple[int, list[Record]]]:
        """Round ``round`` is complete: let through every held batch not waiting for a later
        round, across workers in the order they arrived."""
        self.done = self.round
        held = self.held
        now: list[tuple[int, list[Record]]] = []
        while True:
            best = -1
            stamp = 0
            for slot, queue in held.items():
                first = queue[0]
                if first[1] <= self.done and (best < 0 or first[0] < stamp):
                    best, stamp = slot, first[0]
            if best < 0:
                return now
            queue = held[best]
            now.append((best, queue.popleft()[2]))
            if not queue:
                del held[best]
