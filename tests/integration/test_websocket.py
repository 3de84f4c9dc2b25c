"""IRC over WebSocket and the web port's files (issue 13), against the real server with one
and with four workers: a WebSocket client is an ordinary client, talking with plain TCP
clients both ways; every kind of bad input gets its defined answer, and nobody else notices.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free
from tests.wsclient import WSIRCClient

INDEX = b"<!doctype html><title>fastchat test page</title>\n"


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A web root of our own (the package's web client is another helper's work)."""
    root = tmp_path_factory.mktemp("webroot")
    (root / "index.html").write_bytes(INDEX)
    (root / "js").mkdir()
    (root / "js" / "app.js").write_bytes(b"export const x = 1;\n")
    return str(root)


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest, web_root: str) -> Iterator[process.ServerProcess]:
    args = ["--web-port", "-1", "--web-root", web_root]
    with process.running(args, workers=request.param) as srv:
        assert srv.web_port, srv.log_text()
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """``connect("alice", web=True)``: a registered client, over WebSocket or plain TCP."""
    clients: list[IRCClient] = []

    def make(nick: str | None = None, *, web: bool = False, **kw: object) -> IRCClient:
        client: IRCClient
        if web:
            client = WSIRCClient(server.host, server.web_port, nick, **kw)  # type: ignore[arg-type]
        else:
            client = IRCClient(server.host, server.port, nick, **kw)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick]
    for client in clients:
        client.close()
    if nicks:
        wait_nicks_free(server.host, server.port, nicks)


def http(server: process.ServerProcess, request: bytes) -> bytes:
    """Send ``request`` to the web port; everything it answers before closing."""
    with socket.create_connection((server.host, server.web_port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_index_is_served_over_http(server) -> None:
    """GET / answers the web root's index.html, with its type and a validator."""
    answer = http(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert b"\r\nContent-Type: text/html; charset=utf-8" in head
    assert b"\r\nETag: " in head
    assert body == INDEX


def test_websocket_and_tcp_clients_talk_in_a_channel_and_in_private(connect) -> None:
    """A WebSocket client (text.ircv3.net) is joined to #lobby like anyone, and exchanges
    channel and private messages with a plain TCP client both ways."""
    web = connect("webby", web=True)
    assert isinstance(web, WSIRCClient) and web.subprotocol == "text.ircv3.net"
    plain = connect("tcpy")
    web.expect(r":tcpy!\S+ JOIN #lobby$")
    web.send("PRIVMSG #lobby :hello from the web")
    plain.expect(r":webby!\S+ PRIVMSG #lobby :hello from the web$")
    plain.send("PRIVMSG #lobby :hello from TCP")
    web.expect(r":tcpy!\S+ PRIVMSG #lobby :hello from TCP$")
    web.send("PRIVMSG tcpy :psst")
    plain.expect(r":webby!\S+ PRIVMSG tcpy :psst$")
    plain.send("PRIVMSG webby :" + "x" * 400)
    web.expect(r":tcpy!\S+ PRIVMSG webby :x{400}$")
