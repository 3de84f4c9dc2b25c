"""A new hub decides a move in flight again as the fact it is (runtime/hub.py ``_settle``).

The old hub decided ``E_MOVE`` for user M from worker 0 to worker 1 (where #room is) and
died with the frame that carried it on its way. Worker 0 resends the ``R_MOVE`` when not
every worker had that frame, and the new hub decides it again, in the old hub's order.

Two ways this went wrong, each made deterministic here (the hellos and the resent requests
are fed to a real :class:`Hub`; each worker's part is modelled from engine/placement.py):

1. *The line before the move, twice* (3 workers). The frame [T's message X to #room, E_MOVE]
   reached worker 0 (which delivered X to M, then sent M's socket to worker 1) and worker 2
   (whose replica then has M on worker 1), not worker 1, where M's session waits for its
   E_MOVE (``early``). If worker 2's hello came first, the new hub took M's place from its
   replica (worker 1), sent worker 1 a snapshot saying so, and worker 1 adopted the session
   (``Placement.resynced``); the replay then sent X to worker 1, to M, a second time. The
   new hub must keep M on worker 0 until the replay reaches the move, in every replica,
   whatever the order of the hellos, and then tell every worker of the move.
2. *A move decided again and refused* (the target is over the load cap now, or gone). The
   socket had left worker 0 (or worker 1 waited for it): a refusal left M on worker 0,
   which no longer held it, a ghost with a nick. A resent move some worker acted on is
   decided as the old hub decided it; if its target is gone, M quits, once.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Iterator

import pytest

from fastchat.server.config import Config
from fastchat.server.network.records import (
    B_SNAPSHOT,
    D_CHAN,
    E_INTRO,
    E_JOIN,
    E_MOVE,
    E_QUIT,
    R_CHANMSG,
    R_MOVE,
    STATE_EVENTS,
    BHello,
    Record,
    make,
)
from fastchat.server.network.state import State
from fastchat.server.runtime.bus import Link, encode
from fastchat.server.runtime.hub import Hub

BASE = {0: 1 << 32, 1: 2 << 32, 2: 3 << 32}  # each worker numbers its requests from here
MOVER = BASE[0] + 1
TALKER = BASE[2] + 1  # T, on worker 2
ROOM = {BASE[1] + 1: 1, BASE[1] + 2: 1, TALKER: 2}  # #room besides M: two on worker 1
X = b":u%x!~u@h PRIVMSG #room :said before the move\r\n" % TALKER


def _state(mover_on: int, crowd: int = 0) -> State:
    """A replica: #room as above, M on ``mover_on``, and ``crowd`` more users on worker 1."""
    state = State()
    for uid, w in (*ROOM.items(), (MOVER, mover_on)):
        state.apply((E_INTRO, uid, b"u%x" % uid, b"~u", b"h", b"r", w, b"", 0))
        state.apply((E_JOIN, uid, b"#room", 0, 0, (), 0))
    for i in range(crowd):
        uid = BASE[1] + 100 + i
        state.apply((E_INTRO, uid, b"c%x" % uid, b"~u", b"h", b"r", 1, b"", 0))
    return state


def _local(w: int, crowd: int = 0) -> tuple[int, ...]:
    local = tuple(u for u, on in ROOM.items() if on == w)
    if w == 1:
        local += tuple(BASE[1] + 100 + i for i in range(crowd))
    return local


class _Worker:
    """What a worker does with the new hub's records, as far as M is concerned: its replica
    (a State), whether M's client is served here, and the times it was sent X."""

    def __init__(self, slot: int, replica: State, early: bool) -> None:
        self.slot = slot
        self.state = replica
        self.early = early  # M's session came here before its E_MOVE
        self.serves_mover = False
        self.lost_mover = False  # the session came and this worker dropped it ("late")
        self.got_x = 0

    def apply(self, records: list[Record]) -> None:
        for r in records:
            kind = r[0]
            if kind == B_SNAPSHOT:
                self.state.load_snapshot(r[1])
                here = (
                    self.state.users[MOVER].worker == self.slot
                    if MOVER in self.state.users
                    else False
                )
                if self.early and here:  # Placement.resynced: the new hub puts it here
                    self.serves_mover, self.early = True, False
            elif kind in STATE_EVENTS:
                applied = self.state.apply(r)
                if kind == E_MOVE and r[1] == MOVER and applied and r[3] == self.slot:
                    self.serves_mover, self.early = True, False  # (adopted, or waited for)
            elif kind == D_CHAN and r[3] == X and self.serves_mover:
                self.got_x += 1


@contextlib.contextmanager
def _hub_with_links(
    workers: int,
) -> Iterator[tuple[Hub, list[tuple[socket.socket, socket.socket]]]]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hub = Hub(Config(workers=workers, autojoin=()), listener, None)
    pairs = [socket.socketpair() for _ in range(workers)]
    try:
        yield hub, pairs
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        listener.close()


def _say_hello(
    hub: Hub, pairs: list[tuple[socket.socket, socket.socket]], w: int, frames: list[bytes]
) -> None:
    worker_end, hub_end = pairs[w]
    worker_end.sendall(b"".join(frames))
    link = Link(hub_end)
    hub._from_pending(link, {hub_end: link})


ORDERS = list(itertools.permutations((0, 1, 2)))


@pytest.mark.parametrize("early", [True, False], ids=["session-early", "session-in-flight"])
@pytest.mark.parametrize("order", ORDERS, ids=["-".join(map(str, o)) for o in ORDERS])
def test_a_line_before_the_move_reaches_the_mover_once(order: tuple[int, ...], early: bool) -> None:
    seen = {2: BASE[2] + 1, 0: BASE[0] + 1}  # X (from worker 2), then M's R_MOVE (worker 0)
    old_order = ((2, BASE[2] + 1), (0, BASE[0] + 1))
    hellos = {
        # worker 0 applied the E_MOVE and sent the socket: its replica undoes the move
        0: make(BHello, 0, _state(0).snapshot(), (), BASE[0], seen, old_order, ((MOVER, 1),)),
        # worker 1 never had the frame; the session came early, or is still on its way
        1: make(
            BHello,
            1,
            _state(0).snapshot(),
            _local(1) + ((MOVER,) if early else ()),
            BASE[1],
            {},
            (),
            (),
            ((MOVER, 0),) if early else (),
        ),
        # worker 2 applied the frame: M is on worker 1 in its replica
        2: make(BHello, 2, _state(1).snapshot(), _local(2), BASE[2], seen, old_order),
    }
    resent = {
        0: [[(R_MOVE, MOVER, 1)]],
        2: [[(R_CHANMSG, TALKER, b"#room", X, False, False, 0, b"", 0)]],
    }
    real = {0: _state(1), 1: _state(0), 2: _state(1)}  # each worker's replica (not undone)
    models = {w: _Worker(w, real[w], early and w == 1) for w in range(3)}
    with _hub_with_links(3) as (hub, pairs):
        for w in order:
            _say_hello(
                hub, pairs, w, [encode([hellos[w]])] + [encode(b) for b in resent.get(w, [])]
            )
            models_out = hub.out[w]
            hub.out[w] = []
            models[w].apply(models_out)
        assert not hub.gathering
        for w in range(3):
            models[w].apply(hub.out[w])
            if w == 1 and not models[1].serves_mover and not early:
                # the session comes now: kept only if the E_MOVE is still to come
                models[1].lost_mover = models[1].state.users[MOVER].worker == 1
        mover_x = 1 + sum(m.got_x for m in models.values())  # (worker 0 gave it X before)
        assert mover_x == 1, f"M was sent the line before its move {mover_x} times"
        assert not models[1].lost_mover, "the session was dropped as late: M is lost"
        assert hub.state.users[MOVER].worker == 1
        for w, m in models.items():
            assert m.state.users[MOVER].worker == 1, f"worker {w}'s replica disagrees"
            assert not [r for r in hub.out[w] if r[0] == E_QUIT and r[1] == MOVER]
        assert models[1].serves_mover or not early


REFUSALS = {
    # worker 1 holds 40 more users: over 1.5 times the average, and the average + 16
    "over-the-load-cap": 40,
}


@pytest.mark.parametrize("acted", ["sent", "awaited"])
@pytest.mark.parametrize(
    "order", [(0, 1, 2), (1, 2, 0), (2, 1, 0)], ids=["0-1-2", "1-2-0", "2-1-0"]
)
def test_a_resent_move_that_happened_is_not_refused(order: tuple[int, ...], acted: str) -> None:
    """``sent``: worker 0 had the E_MOVE and sent the socket (the session came early to
    worker 1); ``awaited``: worker 1 had it and waits for the session, worker 0 did not and
    still serves M. Worker 1 is now over the load cap: a fresh decision would refuse."""
    crowd = REFUSALS["over-the-load-cap"]
    if acted == "sent":
        hello0 = make(BHello, 0, _state(0).snapshot(), (), BASE[0], {}, (), ((MOVER, 1),))
    else:
        hello0 = make(BHello, 0, _state(0).snapshot(), (MOVER,), BASE[0], {}, ())
    hellos = {
        0: hello0,
        1: make(
            BHello,
            1,
            _state(0, crowd).snapshot(),
            (*_local(1, crowd), MOVER),
            BASE[1],
            {},
            (),
            (),
            ((MOVER, 0),),
        ),
        2: make(BHello, 2, _state(0).snapshot(), _local(2), BASE[2], {}, ()),
    }
    with _hub_with_links(3) as (hub, pairs):
        for w in order:
            frames = [encode([hellos[w]])]
            if w == 0:
                frames.append(encode([(R_MOVE, MOVER, 1)]))
            _say_hello(hub, pairs, w, frames)
        assert not hub.gathering
        assert hub.state.users[MOVER].worker == 1, "M is left where nobody serves it"
        for w in range(3):
            moves = [r[2:4] for r in hub.out[w] if r[0] == E_MOVE and r[1] == MOVER]
            assert moves == [(0, 1)], (w, moves)
            assert not [r for r in hub.out[w] if r[0] == E_QUIT and r[1] == MOVER]


def test_a_resent_move_whose_target_is_gone_quits_the_user_once() -> None:
    """Worker 0 sent M's socket to worker 1, and worker 1 died with the old hub: when the
    new hub stops waiting for it, M (held by nobody) quits, once, and its nick is free."""
    hello0 = make(BHello, 0, _state(0).snapshot(), (), BASE[0], {}, (), ((MOVER, 1),))
    hello2 = make(BHello, 2, _state(0).snapshot(), _local(2), BASE[2], {}, ())
    with _hub_with_links(3) as (hub, pairs):
        _say_hello(hub, pairs, 0, [encode([hello0]), encode([(R_MOVE, MOVER, 1)])])
        _say_hello(hub, pairs, 2, [encode([hello2])])
        assert hub.gathering
        hub._replay()  # (SWEEP_AFTER passed: what the hub's loop does then)
        hub._sweep()
        for w in (0, 2):
            quits = [r for r in hub.out[w] if r[0] == E_QUIT and r[1] == MOVER]
            assert len(quits) == 1, (w, quits)
        assert MOVER not in hub.state.users
        assert b"u%x" % MOVER not in hub.state.nicks
