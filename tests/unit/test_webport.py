"""fastchat.server.runtime.webport.WebSocketTransport against a fake socket that takes any
number of bytes per send: whatever the kernel takes, the lines arrive whole, in order, each
once, with control frames only between messages; and the worker's bookkeeping (what
``send`` reports taken, the rest offered again with more behind it) holds."""

from __future__ import annotations

import itertools
import random
import ssl
from pathlib import Path

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event, Message, Ping, Pong

from fastchat.server.runtime import tls
from fastchat.server.runtime.webport import WebSocketTransport
from fastchat.server.web.http import Subprotocol
from fastchat.server.web.websocket import FrameCache, WebSocketSession


class FakeSocket:
    """Takes ``capacity()`` bytes per send (0: raises BlockingIOError, as a full socket)."""

    def __init__(self, capacity: itertools.cycle[int]) -> None:
        self.capacity = capacity
        self.wire = b""

    def send(self, data: bytes) -> int:
        n = min(next(self.capacity), len(data))
        if n == 0:
            raise BlockingIOError
        self.wire += bytes(data[:n])
        return n

    def fileno(self) -> int:
        return -1


def transport(capacity: list[int], protocol: Subprotocol) -> tuple[WebSocketTransport, FakeSocket]:
    sock = FakeSocket(itertools.cycle(capacity))
    return WebSocketTransport(sock, WebSocketSession(protocol), lambda: b""), sock  # type: ignore[arg-type]


def received(wire: bytes) -> list[Event]:
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(wire)
    return list(client.events())


def drive(t: WebSocketTransport, batches: list[bytes], steps: int = 10_000) -> None:
    """The worker's flush, turn after turn: what is not taken stays at the head of
    ``outbuf`` and each turn's new lines queue behind it."""
    outbuf = b""
    queue = list(batches)
    for _ in range(steps):
        if queue:
            outbuf += queue.pop(0)
        if not outbuf:
            if not queue:
                return
            continue
        try:
            sent = t.send(outbuf)
        except BlockingIOError:
            sent = 0
        assert 0 <= sent <= len(outbuf)
        outbuf = outbuf[sent:]
    raise AssertionError("never drained")


def lines_of(events: list[Event]) -> list[bytes]:
    out = []
    for e in events:
        if isinstance(e, Message):
            assert e.message_finished
            out.append(e.data.encode() if isinstance(e.data, str) else bytes(e.data))
    return out


@pytest.mark.parametrize("protocol", [Subprotocol.TEXT, Subprotocol.BINARY])
@pytest.mark.parametrize("seed", range(40))
def test_partial_sends_deliver_every_line_once_in_order(protocol: Subprotocol, seed: int) -> None:
    rng = random.Random(seed)
    # small takes, refusals, and now and then a big one (a 66 kB line, 1 byte at a time,
    # would take too many turns)
    capacity = [rng.choice([0, 1, 2, 3, 7, 50, 130, 1000]) for _ in range(7)] + [70000]
    lines = [
        b"PRIVMSG #x :%d " % i
        + b"z" * (66000 if i == 7 else rng.choice([0, 5, 120, 126, 300, 2000]))
        + b"\xe9" * (i % 3)
        for i in range(30)
    ]
    batches = []
    rest = list(lines)
    while rest:
        take = rng.randint(1, 5)
        batches.append(b"".join(line + b"\r\n" for line in rest[:take]))
        rest = rest[take:]
    t, sock = transport(capacity, protocol)
    drive(t, batches)
    assert t._tail == b""
    binary = protocol is Subprotocol.BINARY
    expected = [line if binary else line.decode("utf-8", "replace").encode() for line in lines]
    assert lines_of(received(sock.wire)) == expected


def test_a_pong_waits_behind_a_frame_under_way() -> None:
    t, sock = transport([10, *[1000] * 5], Subprotocol.TEXT)
    line = b"PRIVMSG #x :" + b"a" * 40 + b"\r\n"
    assert t.send(line) == 0  # 10 bytes of its frame went: the line is not taken yet
    t.control(Connection(ConnectionType.SERVER).send(Pong(b"p")))
    assert t.send(line + b"PING next\r\n") == len(line) + len(b"PING next\r\n")
    events = received(sock.wire)
    assert [type(e).__name__ for e in events] == ["TextMessage", "Pong", "TextMessage"]


def test_a_pong_goes_at_once_when_nothing_waits() -> None:
    t, sock = transport([1000], Subprotocol.TEXT)
    t.control(Connection(ConnectionType.SERVER).send(Pong(b"p")))
    assert isinstance(received(sock.wire)[0], Pong)


def test_after_a_close_no_message_is_sent() -> None:
    t, sock = transport([1000], Subprotocol.TEXT)
    client = Connection(ConnectionType.CLIENT)
    got = t.feed(client.send(CloseConnection(1000)))
    assert got.closed
    assert t.send(b"ERROR :bye\r\n") == len(b"ERROR :bye\r\n")  # taken, and dropped
    assert [type(e) for e in received(sock.wire)] == [CloseConnection]


def test_shutdown_sends_the_close_after_the_rest_of_a_frame() -> None:
    class Shut(FakeSocket):
        def shutdown(self, how: int) -> None:
            self.shut = how

    sock = Shut(itertools.cycle([5, 1000]))
    t = WebSocketTransport(sock, WebSocketSession(Subprotocol.TEXT), lambda: b"")  # type: ignore[arg-type]
    assert t.send(b"ERROR :Closing link\r\n") == 0
    t.shutdown(1)
    events = received(sock.wire)
    assert lines_of(events) == [b"ERROR :Closing link"]
    assert isinstance(events[-1], CloseConnection) and events[-1].code == 1000
    assert sock.shut == 1


def test_ping_from_the_peer_is_answered_through_the_transport() -> None:
    t, sock = transport([1000], Subprotocol.BINARY)
    t.feed(Connection(ConnectionType.CLIENT).send(Ping(b"x")))
    assert isinstance(received(sock.wire)[0], Pong)


def drive_chunks(
    t: WebSocketTransport, turns: list[list[bytes]], cache: FrameCache, steps: int = 10_000
) -> None:
    """The worker's flush as it is for a WebSocket client: a turn's chunks go through
    ``send_chunks`` (framed by the shared cache) when nothing waits, else behind ``outbuf``."""
    outbuf = b""
    queue = list(turns)
    for _ in range(steps):
        chunks = queue.pop(0) if queue else []
        try:
            if outbuf:
                outbuf += b"".join(chunks)
                sent = t.send(outbuf)
                outbuf = outbuf[sent:]
            elif chunks:
                data = b"".join(chunks)
                sent = t.send_chunks(chunks, data)
                outbuf = data[sent:]
            elif not queue:
                return
        except BlockingIOError:
            outbuf += b"" if outbuf else b"".join(chunks)
        cache.clear()  # (the end of the turn)
    raise AssertionError("never drained")


@pytest.mark.parametrize("seed", range(20))
def test_chunks_framed_once_per_turn_reach_every_client_whole(seed: int) -> None:
    """Two WebSocket clients of one worker get the same chunk objects each turn (as the
    relay queues them), framed once in the shared cache; whatever each kernel takes, each
    gets every line once, in order."""
    rng = random.Random(seed)
    lines = [b"PRIVMSG #x :%d " % i + b"y" * rng.choice([0, 9, 125, 200]) for i in range(40)]
    chunks = [line + b"\r\n" for line in lines]
    turns: list[list[bytes]] = []
    rest = list(chunks)
    while rest:
        take = rng.randint(1, 6)
        turns.append(rest[:take])
        rest = rest[take:]
    cache = FrameCache()
    a, sock_a = transport([rng.choice([0, 3, 64, 1000]) for _ in range(5)], Subprotocol.TEXT)
    b, sock_b = transport([100000], Subprotocol.TEXT)
    a.cache = b.cache = cache
    drive_chunks(a, turns, cache)
    drive_chunks(b, turns, cache)
    assert lines_of(received(sock_a.wire)) == lines
    assert lines_of(received(sock_b.wire)) == lines


def test_the_frame_cache_frames_a_chunk_once() -> None:
    cache = FrameCache()
    chunk = b"PRIVMSG #x :hello\r\nPRIVMSG #x :again\r\n"
    first = cache.frames([chunk], binary=False)
    assert cache.frames([chunk], binary=False) is first  # the same object: not framed again
    assert (
        lines_of(received(cache.frames([chunk, chunk], binary=True)))
        == [
            b"PRIVMSG #x :hello",
            b"PRIVMSG #x :again",
        ]
        * 2
    )


def test_the_web_ports_context_asks_for_no_client_certificate(tmp_path: Path) -> None:
    """The web port's TLS has the certificate of --tls-port but asks browsers for none (one
    asked may show its user a certificate picker): a client's certificate is not taken,
    where the IRC TLS port's context takes it (CertFP)."""
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    tls.write_self_signed(cert, key, "fastchat.local")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.load_cert_chain(cert, key)
    web = tls.server_context(cert, key, client_certificates=False)
    assert web.verify_mode == ssl.CERT_NONE
    assert tls._handshake_in_memory(web, client) == b""
    if tls.certfp_available():
        assert tls._handshake_in_memory(tls.server_context(cert, key), client) != b""
