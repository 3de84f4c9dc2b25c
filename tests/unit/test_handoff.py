"""Handing a socket and its session to another worker (runtime/handoff.py), between two
hand-off endpoints in this process, over real Unix sockets: what arrives, and what happens
when the new worker's backlog is full (it is busy: many clients move to it at once) or its
listener is gone."""

from __future__ import annotations

import os
import selectors
import socket
from collections.abc import Callable, Iterator

import pytest

from fastchat.server.runtime import handoff
from fastchat.server.runtime.handoff import Handoff


class Endpoint:
    """One worker's hand-off: its listener on a selector of its own, and what arrived."""

    def __init__(self, address: str, slot: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.arrived: list[tuple[bytes, socket.socket | None]] = []
        self.handoff = Handoff(
            address,
            slot,
            lambda sock, events, handler: self.sel.register(sock, events, handler),
            self.sel.unregister,
            lambda session, sock: self.arrived.append((session, sock)),
        )

    def pump(self, timeout: float = 0.0) -> None:
        for key, mask in self.sel.select(timeout):
            handler: Callable[[int], None] = key.data
            handler(mask)

    def close(self) -> None:
        self.handoff.close()
        for _, sock in self.arrived:
            if sock is not None:
                sock.close()
        self.sel.close()


@pytest.fixture
def pair() -> Iterator[Callable[[], tuple[Endpoint, Endpoint]]]:
    made: list[Endpoint] = []
    address = f"\0fastchat-test-handoff-{os.getpid()}-{id(made)}"

    def make() -> tuple[Endpoint, Endpoint]:
        made.extend([Endpoint(address, 0), Endpoint(address, 1)])
        return made[-2], made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


def _client() -> tuple[socket.socket, socket.socket]:
    """A connected pair: the client's socket (what travels) and the far end."""
    return socket.socketpair()


def _until(done: Callable[[], bool], *steps: Callable[[], None]) -> None:
    for _ in range(1000):
        if done():
            return
        for step in steps:
            step()
    raise AssertionError("never done")


def test_a_session_and_its_socket_arrive(
    pair: Callable[[], tuple[Endpoint, Endpoint]],
) -> None:
    src, dst = pair()
    travelling, far = _client()
    session = b"session" * 10_000  # more than one send
    assert src.handoff.send(1, session, travelling)
    _until(lambda: bool(dst.arrived), lambda: dst.pump(0.01), lambda: src.pump(0))
    ((got, sock),) = dst.arrived
    assert got == session and sock is not None
    sock.sendall(b"hello")  # the same connection, from its new holder
    assert far.recv(5) == b"hello"
    far.close()


def test_a_full_backlog_delays_a_hand_off_and_loses_nothing(
    pair: Callable[[], tuple[Endpoint, Endpoint]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new worker is busy and its backlog full (EAGAIN on connect): the old worker keeps
    each session and tries again each turn (it once closed the client: a healthy connection
    lost under load); once the new worker accepts, every session arrives, in order, with
    its socket."""
    monkeypatch.setattr(socket, "SOMAXCONN", 1)
    src, dst = pair()
    fars = []
    for i in range(6):
        travelling, far = _client()
        fars.append(far)
        assert src.handoff.send(1, b"session %d" % i, travelling)
    assert src.handoff.retrying, "the backlog of 1 took them all: nothing tested"
    waiting = len(src.handoff.retrying)
    src.handoff.retry()  # nobody accepted meanwhile: still waiting, nothing closed
    assert len(src.handoff.retrying) == waiting
    _until(
        lambda: len(dst.arrived) == 6,
        lambda: dst.pump(0.01),
        lambda: src.pump(0),
        src.handoff.retry,
    )
    assert sorted(session for session, _ in dst.arrived) == [b"session %d" % i for i in range(6)]
    for i, far in enumerate(fars):
        far.sendall(b"%d" % i)
    for session, sock in dst.arrived:
        assert sock is not None and sock.recv(1) == session[-1:]
    for far in fars:
        far.close()


def test_a_backlog_full_for_too_long_gives_up(
    pair: Callable[[], tuple[Endpoint, Endpoint]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """...but not forever: after RETRY_FOR the client is closed (the new worker's own wait
    for it ends too, placement.HANDOFF_TIMEOUT)."""
    monkeypatch.setattr(socket, "SOMAXCONN", 1)
    monkeypatch.setattr(handoff, "RETRY_FOR", 0.0)
    src, _dst = pair()
    results = []
    fars = []
    for _ in range(4):
        travelling, far = _client()
        fars.append(far)
        results.append(src.handoff.send(1, b"s", travelling))
    assert results[-1] is False and not src.handoff.retrying
    fars[-1].settimeout(1)
    assert fars[-1].recv(1) == b"", "the client given up on is closed"
    for far in fars:
        far.close()


def test_a_gone_worker_closes_the_client(
    pair: Callable[[], tuple[Endpoint, Endpoint]],
) -> None:
    src, dst = pair()
    dst.handoff.close()
    travelling, far = _client()
    assert not src.handoff.send(1, b"s", travelling)
    far.settimeout(1)
    assert far.recv(1) == b""
    far.close()
