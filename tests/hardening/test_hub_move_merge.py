"""A new hub finds where a client that was moving between workers is (runtime/hub.py ``_merge``).

The old hub decided ``E_MOVE`` for user M from worker 0 to worker 1 (where #room is) and died
with the event on its way: worker 0 (the old one) and worker 1 (the new one) got it, or one
of them, or none. Each worker's hello says what it holds: worker 0 the client if it never
applied the move; worker 1 the client if its session came already, or that it waits for it
(its replica says M is still on worker 0 until it comes: engine/placement.py ``as_before``).
Whatever the order of the hellos, the new hub must put M where the client is or is going,
never quit it while a worker holds or awaits it, and decide the move again when the old
worker never let it go. Only a client that nobody claims (its session between the workers)
quits.
"""

from __future__ import annotations

import socket

import pytest

from fastchat.server.config import Config
from fastchat.server.network.records import (
    E_INTRO,
    E_JOIN,
    E_MOVE,
    E_QUIT,
    R_MOVE,
    BHello,
    Record,
    make,
)
from fastchat.server.network.state import State
from fastchat.server.runtime.bus import Link, encode
from fastchat.server.runtime.hub import Hub

BASE = {0: 1 << 32, 1: 2 << 32, 2: 3 << 32}
MOVER = BASE[0] + 1
OTHERS = {BASE[1] + 1: 1, BASE[1] + 2: 1, BASE[2] + 1: 2}  # two on worker 1 in #room


def _replica(mover_on: int) -> Record:
    state = State()
    for uid, w in (*OTHERS.items(), (MOVER, mover_on)):
        state.apply((E_INTRO, uid, b"u%x" % uid, b"~u", b"h", b"r", w, b"", 0))
        state.apply((E_JOIN, uid, b"#room", 0, 0, (), 0))
    return state.snapshot()


HANDED = 2  # the worker's hello names M among the clients it handed over lately

# scenario -> per worker: (where its replica puts M, does it claim M) for workers 0 and 1;
# whether worker 0 resends its R_MOVE (it never applied the E_MOVE); where M must end up
SCENARIOS = {
    "both got it, the new worker waits": ({0: (1, False), 1: (0, True)}, False, 1),
    "both got it, the client arrived": ({0: (1, False), 1: (1, True)}, False, 1),
    "the old worker got it, the session came early": ({0: (1, False), 1: (0, True)}, False, 1),
    "the new worker got it": ({0: (0, True), 1: (0, True)}, True, 1),
    "nobody got it": ({0: (0, True), 1: (0, False)}, True, 1),
    "the session is between the workers": ({0: (1, False), 1: (0, False)}, True, None),
    # the old worker's hello undoes a hand-off whose R_MOVE it resends (placement.as_before):
    # the move is decided again, in the old order
    "the old worker got it and resends it, early": ({0: (0, HANDED), 1: (0, True)}, True, 1),
    "the old worker got it and resends it, between": ({0: (0, HANDED), 1: (0, False)}, True, 1),
    "the old worker handed it, the move is not resent": ({0: (0, HANDED), 1: (1, True)}, False, 1),
}


@pytest.mark.parametrize(
    "order", [(0, 1, 2), (1, 0, 2), (2, 1, 0)], ids=["old-first", "new-first", "third-first"]
)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_moving_client_is_found_whatever_the_order_of_the_hellos(
    scenario: str, order: tuple[int, int, int]
) -> None:
    views, resends, where = SCENARIOS[scenario]
    mover_moves = resends and views[0][1] == HANDED
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hub = Hub(Config(workers=3, autojoin=()), listener, None)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        for w in order:
            mover_on, claims = views.get(w, (0, False))
            local = tuple(u for u, on in OTHERS.items() if on == w)
            handed: tuple[tuple[int, int], ...] = ()
            if claims == HANDED:
                handed = ((MOVER, 1),)
            elif claims:
                local += (MOVER,)
            hello = make(BHello, w, _replica(mover_on), local, BASE[w], {}, (), handed)
            frames = [encode([hello])]
            if w == 0 and resends:
                frames.append(encode([(R_MOVE, MOVER, 1)]))
            worker_end, hub_end = pairs[w]
            worker_end.sendall(b"".join(frames))
            link = Link(hub_end)
            hub._from_pending(link, {hub_end: link})
        assert not hub.gathering
        quits = [r for r in hub.out[2] if r[0] == E_QUIT and r[1] == MOVER]
        if where is None:
            assert MOVER not in hub.state.users and len(quits) == 1
            return
        assert not quits, "a client that a worker holds or awaits was quit"
        assert hub.state.users[MOVER].worker == where
        moves = [r[2:4] for r in hub.out[2] if r[0] == E_MOVE and r[1] == MOVER]
        assert moves in ([], [(0, 1)]), moves
        if mover_moves:  # decided again by the replay: the new worker is told
            assert [r[2:4] for r in hub.out[1] if r[0] == E_MOVE and r[1] == MOVER] == [(0, 1)]
        for other, on in OTHERS.items():
            assert hub.state.users[other].worker == on
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        listener.close()
