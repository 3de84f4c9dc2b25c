"""A new hub decides the requests the workers resent exactly once for everybody.

The moment that matters, made deterministic: the old hub decided three messages from worker
0 to #x and died while its frames were on the way. Worker 1 had received the first two,
worker 0 (the sender's own worker) the first, worker 2 none. Each worker's hello to the new
hub says so; worker 0 resends all three. The new hub must send worker 1 only the third,
worker 0 the last two and worker 2 all three, in the order sent.
"""

from __future__ import annotations

import socket

from fastchat.server.config import Config
from fastchat.server.network.records import (
    B_HELLO,
    D_CHAN,
    D_DONE,
    E_INTRO,
    E_JOIN,
    R_CHANMSG,
    R_SYNC,
    Record,
)
from fastchat.server.network.state import State
from fastchat.server.runtime.bus import Link, encode
from fastchat.server.runtime.hub import Hub

BASE = {0: 1 << 32, 1: 2 << 32, 2: 3 << 32}  # each worker numbers its requests from here
UIDS = {0: BASE[0] + 1, 1: BASE[1] + 1, 2: BASE[2] + 1}


def _replica() -> Record:
    state = State()
    for w, uid in UIDS.items():
        state.apply((E_INTRO, uid, b"u%d" % w, b"~u", b"h", b"r", w, b"", 0))
        state.apply((E_JOIN, uid, b"#x", 0, 0, (), 0))
    return state.snapshot()


def _line(n: int) -> bytes:
    return b":u0!~u@h PRIVMSG #x :m%d\r\n" % n


def _hello(w: int, seen: dict[int, int], order: tuple[tuple[int, int], ...]) -> Record:
    return (B_HELLO, w, _replica(), (UIDS[w],), BASE[w], seen, order, (), ())


def test_replay_after_a_partial_delivery_sends_each_message_once() -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hub = Hub(Config(workers=3), listener, None)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        requests = [
            [(R_CHANMSG, UIDS[0], b"#x", _line(n), False, False, 0, b"", 0)] for n in (1, 2, 3)
        ]
        sync = [(R_SYNC, UIDS[0])]  # a request under the barrier, sent after the messages
        hellos = {
            0: _hello(0, {0: BASE[0] + 1}, ((0, BASE[0] + 1),)),
            1: _hello(1, {0: BASE[0] + 2}, ((0, BASE[0] + 1), (0, BASE[0] + 2))),
            2: _hello(2, {}, ()),
        }
        for w in (2, 0, 1):  # hellos arrive in any order
            worker_end, hub_end = pairs[w]
            frames = [encode([hellos[w]])]
            if w == 0:
                frames += [encode(r) for r in requests] + [encode(sync)]
            worker_end.sendall(b"".join(frames))
            link = Link(hub_end)
            pending = {hub_end: link}
            hub._from_pending(link, pending)
            if w != 1:
                assert hub.gathering, "the new hub decided before every worker said hello"
        assert not hub.gathering
        delivered = {
            w: [r[3] for r in hub.out[w] if r[0] == D_CHAN and r[2] == UIDS[0]] for w in range(3)
        }
        assert delivered == {
            0: [_line(2), _line(3)],
            1: [_line(3)],
            2: [_line(1), _line(2), _line(3)],
        }
        assert [r[:2] for r in hub.out[0] if r[0] == D_DONE] == [(D_DONE, UIDS[0])]
        assert hub.processed[0] == BASE[0] + 4
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        listener.close()


def test_replay_keeps_the_old_hubs_order_across_senders() -> None:
    """The old hub decided u2's message, then u0's; only worker 1 received them. Worker 0
    says hello first, so hello order would decide u0's first: the new hub follows worker 1's
    record of the old order instead, so every member of #x sees one order."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hub = Hub(Config(workers=3), listener, None)
    pairs = [socket.socketpair() for _ in range(3)]
    from_0 = b":u0!~u@h PRIVMSG #x :second\r\n"
    from_2 = b":u2!~u@h PRIVMSG #x :first\r\n"
    try:
        old_order = ((2, BASE[2] + 1), (0, BASE[0] + 1))
        hellos = {
            0: _hello(0, {}, ()),
            1: _hello(1, {0: BASE[0] + 1, 2: BASE[2] + 1}, old_order),
            2: _hello(2, {}, ()),
        }
        resent = {
            0: (R_CHANMSG, UIDS[0], b"#x", from_0, False, False, 0, b"", 0),
            2: (R_CHANMSG, UIDS[2], b"#x", from_2, False, False, 0, b"", 0),
        }
        for w in (0, 2, 1):
            worker_end, hub_end = pairs[w]
            frames = [encode([hellos[w]])]
            if w in resent:
                frames.append(encode([resent[w]]))
            worker_end.sendall(b"".join(frames))
            link = Link(hub_end)
            hub._from_pending(link, {hub_end: link})
        assert not hub.gathering
        for w, want in ((0, [from_2, from_0]), (1, []), (2, [from_2, from_0])):
            assert [r[3] for r in hub.out[w] if r[0] == D_CHAN] == want, w
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        listener.close()
