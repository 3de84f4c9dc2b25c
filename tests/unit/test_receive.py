"""The runtime's reads (runtime/receive.py): what a read returns is what ``recv`` would, in
the same order, whatever its size; the end of the stream is ``b""``; nothing there raises."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fastchat.server.runtime.receive import FIRST_READ, READ_SIZE, Receiver


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _read_all(receiver: Receiver, sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            out += receiver.recv(sock)
        except BlockingIOError:
            return out


@pytest.mark.parametrize("size", [1, 100, FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, 150_000])
def test_a_read_returns_what_was_sent_in_order(
    pair: tuple[socket.socket, socket.socket], size: int
) -> None:
    a, b = pair
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    a.sendall(data)
    receiver = Receiver()
    got = receiver.recv(b)
    assert data.startswith(got) and len(got) <= FIRST_READ + READ_SIZE
    assert got + _read_all(receiver, b) == data


def test_the_end_of_the_stream_and_nothing_there(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    receiver = Receiver()
    with pytest.raises(BlockingIOError):
        receiver.recv(b)
    a.sendall(b"last\r\n")
    a.close()
    assert receiver.recv(b) == b"last\r\n"
    assert receiver.recv(b) == b""


def test_a_full_first_read_then_the_end(pair: tuple[socket.socket, socket.socket]) -> None:
    """Exactly FIRST_READ bytes, then EOF: the read returns them; the next one the end."""
    a, b = pair
    a.sendall(b"y" * FIRST_READ)
    a.close()
    receiver = Receiver()
    assert receiver.recv(b) == b"y" * FIRST_READ
    assert receiver.recv(b) == b""
