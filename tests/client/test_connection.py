"""The client's link: connect without blocking, read lines, notice loss, reconnect with backoff.

Drives :class:`Link` with a selector against a listening socket in the test (a free port).
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from fastchat.client.connection import (
    Backoff,
    Connected,
    Connecting,
    Link,
    LinkEvent,
    Lost,
    Received,
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def run_until(
    link: Link, sel: selectors.BaseSelector, want: type, timeout: float = 5.0
) -> list[LinkEvent]:
    """Turn the loop until an event of type ``want`` arrives; all events so far."""
    seen: list[LinkEvent] = []
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, want) for e in seen):
        assert time.monotonic() < deadline, f"no {want.__name__}: {seen}"
        for key, mask in sel.select(0.05):
            key.data(mask)
        link.tick(time.monotonic())
        seen += link.take_events()
    return seen


def test_connect_receive_send_lose_and_reconnect(listener: socket.socket) -> None:
    sel = selectors.DefaultSelector()
    port = listener.getsockname()[1]
    link = Link("127.0.0.1", port, sel, Backoff(first=0.05, cap=0.1))
    try:
        link.start()
        events = run_until(link, sel, Connected)
        assert isinstance(events[0], Connecting) and events[0].address == f"127.0.0.1:{port}"
        peer, _ = listener.accept()
        with peer:
            assert link.send(b"NICK ada\r\n")
            assert peer.recv(100) == b"NICK ada\r\n"
            peer.sendall(b":srv 001 ada :hi\r\nPING :x\r")
            events = run_until(link, sel, Received)
            assert next(e for e in events if isinstance(e, Received)).lines == [
                b":srv 001 ada :hi",
                b"PING :x",
            ]
        events = run_until(link, sel, Lost)  # the peer closed
        lost = next(e for e in events if isinstance(e, Lost))
        assert lost.retry_in <= 0.1 and not link.is_open
        assert not link.send(b"dropped\r\n")
        run_until(link, sel, Connected)  # after the backoff, by itself
        listener.accept()[0].close()
    finally:
        link.close()
        link.close()  # safe twice
        sel.close()


def test_refused_connection_is_retried_with_growing_delay() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        sel = selectors.DefaultSelector()
        link = Link("127.0.0.1", port, sel, Backoff(first=0.02, cap=1.0))
        try:
            link.start()
            first = next(e for e in run_until(link, sel, Lost) if isinstance(e, Lost))
            second = next(e for e in run_until(link, sel, Lost) if isinstance(e, Lost))
            assert "refused" in first.reason.lower()
            assert second.retry_in > first.retry_in
        finally:
            link.close()
            sel.close()


def test_unresolvable_host_is_reported() -> None:
    sel = selectors.DefaultSelector()
    link = Link("no-such-host.invalid", 6667, sel, Backoff(first=5))
    try:
        link.start()
        lost = next(e for e in run_until(link, sel, Lost, timeout=15) if isinstance(e, Lost))
        assert "cannot resolve" in lost.reason
    finally:
        link.close()
        sel.close()


def test_backoff_doubles_up_to_cap_and_resets() -> None:
    b = Backoff(first=1.0, cap=4.0)
    delays = [b.next() for _ in range(5)]
    assert all(
        0.8 * base <= d <= 1.2 * base for d, base in zip(delays, [1, 2, 4, 4, 4], strict=True)
    )
    b.reset()
    assert b.next() <= 1.2
