"""Unit tests for the fence (``fastchat.server.network.fence``) and the worker core's side of
it (``WorkerCore.take_requests``, ``take_fence_ack``): pure, no processes.

What they promise: a batch ending with an R_SYNC is held, with every later batch of its
worker, until a fence round sent after it has been answered by every other live worker (or
they died); plain batches of other workers pass at once; one round covers every R_SYNC that
arrived before it was sent; held batches leave in the order they arrived; a dead worker's
held batches are decided at once; an answer to an unknown round changes nothing.
"""

from __future__ import annotations

import logging

from fastchat.server.config import Config
from fastchat.server.engine.core import WorkerCore
from fastchat.server.network.fence import Fence
from fastchat.server.network.records import (
    B_FENCE,
    B_FENCED,
    R_CHANMSG,
    R_SYNC,
    R_USERMSG,
    Record,
)

SYNC: Record = (R_SYNC, 7)
_LOG = logging.getLogger("fastchat.core")


def msg(n: int) -> Record:
    return (R_USERMSG, 1, b"bob", b"PRIVMSG bob :%d" % n, False, False, False, n, b"", 0)


LIVE = [0, 1, 2, 3]


def test_plain_batches_pass_at_once() -> None:
    fence = Fence(100)
    assert fence.arrive(0, [msg(1)], False) == [(0, [msg(1)])]
    assert fence.start(LIVE) == (0, [], [])  # nothing wanted: no round


def test_a_sync_waits_for_every_other_worker() -> None:
    fence = Fence(100)
    # what came before the R_SYNC in its batch is decided now; the R_SYNC waits
    assert fence.arrive(1, [msg(1), SYNC], True) == [(1, [msg(1)])]
    round_, targets, now = fence.start(LIVE)
    assert (round_, targets, now) == (101, [0, 2, 3], [])
    assert fence.start(LIVE) == (0, [], [])  # one round out at a time
    # its worker's later requests wait behind it; other workers' do not
    assert fence.arrive(1, [msg(2)], False) == []
    assert fence.arrive(0, [msg(3)], False) == [(0, [msg(3)])]
    assert fence.answered(0, 101) == []
    assert fence.answered(0, 101) == []  # twice: no matter
    assert fence.answered(2, 100) == []  # an older round's (or an old hub's): ignored
    assert fence.answered(2, 101) == []
    assert fence.answered(3, 101) == [(1, [SYNC]), (1, [msg(2)])]
    assert not fence.held
    assert fence.arrive(1, [msg(4)], False) == [(1, [msg(4)])]


def test_one_round_covers_every_sync_that_arrived_before_it() -> None:
    fence = Fence(0)
    assert fence.arrive(0, [SYNC], True) == []
    assert fence.arrive(2, [SYNC], True) == []
    round_, targets, _ = fence.start(LIVE)
    assert targets == LIVE  # two origins: each needs the other's answer
    assert fence.arrive(3, [SYNC], True) == []  # after the round left: the next one
    for slot in (0, 1, 2):
        assert fence.answered(slot, round_) == []
    assert fence.answered(3, round_) == [(0, [SYNC]), (2, [SYNC])]
    next_round, targets, _ = fence.start(LIVE)
    assert next_round == round_ + 1 and targets == [0, 1, 2]
    for slot in (0, 1):
        assert fence.answered(slot, next_round) == []
    assert fence.answered(2, next_round) == [(3, [SYNC])]


def test_held_batches_leave_in_arrival_order() -> None:
    fence = Fence(0)
    fence.arrive(0, [SYNC], True)
    fence.arrive(1, [SYNC], True)
    round_, _, _ = fence.start(LIVE)
    fence.arrive(1, [msg(1)], False)
    fence.arrive(0, [msg(2)], False)
    fence.arrive(1, [msg(3), SYNC], True)  # the next round's: msg 3 leaves, its R_SYNC stays
    fence.arrive(0, [msg(4)], False)
    done: list[tuple[int, list[Record]]] = []
    for slot in LIVE:
        done += fence.answered(slot, round_)
    assert done == [
        (0, [SYNC]),
        (1, [SYNC]),
        (1, [msg(1)]),
        (0, [msg(2)]),
        (1, [msg(3)]),
        (0, [msg(4)]),
    ]
    assert list(fence.held) == [1]


def test_a_dead_worker_answers_nothing_and_its_requests_are_decided() -> None:
    fence = Fence(0)
    fence.arrive(0, [SYNC], True)
    round_, targets, _ = fence.start(LIVE)
    assert targets == [1, 2, 3]
    fence.arrive(0, [msg(1)], False)
    fence.arrive(2, [SYNC], True)  # worker 2's own query, for the next round
    fence.arrive(2, [msg(2)], False)
    assert fence.answered(1, round_) == []
    # worker 2 dies: its held requests are decided at once (before its users quit)
    assert fence.gone(2) == [(2, [SYNC]), (2, [msg(2)])]
    assert fence.answered(3, round_) == [(0, [SYNC]), (0, [msg(1)])]
    assert fence.start(LIVE) == (0, [], [])  # worker 2's query went with it


def test_the_last_worker_dying_completes_the_round() -> None:
    fence = Fence(0)
    fence.arrive(0, [SYNC], True)
    round_, _, _ = fence.start([0, 1])
    assert fence.gone(1) == [(0, [SYNC])]
    assert fence.answered(1, round_) == []


def test_giving_up_on_a_round_decides_what_waited() -> None:
    fence = Fence(0)
    assert fence.give_up() == []  # none out
    fence.arrive(0, [SYNC], True)
    round_, _, _ = fence.start(LIVE)
    assert fence.out
    fence.answered(1, round_)
    assert fence.give_up() == [(0, [SYNC])]
    assert not fence.out
    assert fence.answered(2, round_) == []  # a late answer changes nothing


def test_nobody_to_ask_decides_at_once() -> None:
    fence = Fence(0)
    fence.arrive(0, [SYNC], True)
    assert fence.start([0]) == (0, [], [(0, [SYNC])])


# -- the worker core's side ------------------------------------------------------------------------


def test_each_sync_ends_a_batch() -> None:
    core = WorkerCore(Config(workers=2), slot=1, standalone=False, log=_LOG)
    chan = (R_CHANMSG, 1, b"#c", b"x", False, False, 0, b"", 0)
    core.outbox += [chan, chan]
    assert core.take_requests() == [[chan, chan]]
    core.outbox += [chan]
    core.submit((R_SYNC, 5), barrier=False)
    core.outbox += [chan]
    core.submit((R_SYNC, 6), barrier=False)
    core.submit((R_SYNC, 7), barrier=False)
    core.outbox += [chan]
    assert core.take_requests() == [
        [chan, (R_SYNC, 5)],
        [chan, (R_SYNC, 6)],
        [(R_SYNC, 7)],
        [chan],
    ]
    assert core.outbox == []
    core.outbox += [chan]
    assert core.take_requests() == [[chan]]


def test_a_fence_is_answered_once_with_its_round() -> None:
    core = WorkerCore(Config(workers=2), slot=1, standalone=False, log=_LOG)
    assert core.take_fence_ack() is None
    core.apply_batch([(B_FENCE, 41), (B_FENCE, 42)], 0.0)
    assert core.take_fence_ack() == (B_FENCED, 42)  # the later round covers the earlier
    assert core.take_fence_ack() is None
