"""IRC over WebSocket and the web port's files (issue 13), against the real server with one
and with four workers: a WebSocket client (ws:// and wss://, either IRCv3 subprotocol) is an
ordinary client, talking with plain TCP clients both ways; every kind of bad input gets its
defined answer (an HTTP status, an ERROR line and a close code), and nobody else notices.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import CloseConnection, Ping, Request, TextMessage

from fastchat.irc.message import MAX_INPUT_LINE
from fastchat.server import passwords
from fastchat.server.runtime import process
from fastchat.server.runtime.tls import SELF_SIGNED_CERT
from tests.ircclient import IRCClient, wait_nicks_free
from tests.wsclient import WSIRCClient

INDEX = b"<!doctype html><title>fastchat test page</title>\n"
TIMEOUT = 1.0  # --web-handshake-timeout here (the worker checks once a second)
ALLOWED_ORIGIN = "https://app.example"
CONFIG = """\
[[oper]]
name = "admin"
password = "{hash}"
hosts = ["*@127.0.0.1"]
privileges = ["kill"]
"""


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A web root of our own (the package's web client is another helper's work)."""
    root = tmp_path_factory.mktemp("webroot")
    (root / "index.html").write_bytes(INDEX)
    (root / "js").mkdir()
    (root / "js" / "app.js").write_bytes(b"export const x = 1;\n")
    return str(root)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etc") / "fastchat.toml"
    path.write_text(CONFIG.format(hash=passwords.hash_password(b"secret", n=16)))
    return path


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(
    request: pytest.FixtureRequest, web_root: str, config_file: Path
) -> Iterator[process.ServerProcess]:
    args = [
        *("--web-port", "-1", "--web-tls-port", "-1", "--web-root", web_root),
        *("--web-handshake-timeout", str(TIMEOUT), "--web-origins", ALLOWED_ORIGIN),
        *("--config", str(config_file)),
    ]
    with process.running(args, workers=request.param) as srv:
        assert srv.web_port and srv.web_tls_port, srv.log_text()
        yield srv


def trusting(server: process.ServerProcess) -> ssl.SSLContext:
    """A client context that verifies the server against its self-signed certificate."""
    assert server.own_data_dir is not None
    return ssl.create_default_context(cafile=os.path.join(server.own_data_dir, SELF_SIGNED_CERT))


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """``connect("alice", web=True)``: a registered client, over WebSocket (``tls=True``:
    wss://) or plain TCP; closed at the end."""
    clients: list[IRCClient] = []

    def make(
        nick: str | None = None, *, web: bool = False, tls: bool = False, **kw: object
    ) -> IRCClient:
        client: IRCClient
        if web:
            port = server.web_tls_port if tls else server.web_port
            context = trusting(server) if tls else None
            client = WSIRCClient(server.host, port, nick, tls=context, **kw)  # type: ignore[arg-type]
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


@pytest.fixture
def watcher(connect: Callable[..., IRCClient]) -> IRCClient:
    """A plain client in #lobby who must notice nothing of others' bad input."""
    client = connect("watcher")
    client.sync()
    client.drain()
    return client


def calm(watcher: IRCClient) -> None:
    """The watcher's server still answers, and said nothing about anyone's bad input (JOIN
    and QUIT of the clients the test made are others' doing, not the server's)."""
    assert watcher.replies() == []


def http(port: int, request: bytes, context: ssl.SSLContext | None = None) -> bytes:
    """Send ``request`` to the web port; everything it answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = context.wrap_socket(raw, server_hostname="fastchat.local") if context else raw
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer
    return int(answer[9:12])


# -- the web client's files ---------------------------------------------------------------------------
def test_index_is_served_over_http_and_https(server) -> None:
    """GET / answers the web root's index.html, with its type and a validator; over TLS too."""
    for answer in (
        http(server.web_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        http(server.web_tls_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", trusting(server)),
    ):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), answer
        assert b"\r\nContent-Type: text/html; charset=utf-8" in head
        assert b"\r\nCache-Control: no-cache" in head and b"\r\nETag: " in head
        assert body == INDEX


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /js/app.js HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET /nothing.html HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 405),
        (b"NICK oops\r\nUSER oops 0 * :oops\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000, 431),  # never ends
    ],
    ids=[
        "file",
        "head",
        "missing",
        "traversal",
        "encoded-traversal",
        "post",
        "irc",
        "big",
        "endless",
    ],
)
def test_http_answers(server, watcher, request_bytes: bytes, status: int) -> None:
    answer = http(server.web_port, request_bytes)
    assert status_of(answer) == status, answer[:200]
    if request_bytes.startswith(b"HEAD"):
        assert answer.endswith(b"\r\n\r\n")  # headers only
    calm(watcher)


def test_an_unfinished_request_gets_408_after_the_timeout(server, watcher) -> None:
    """A client that never finishes its request (or never speaks) is answered 408 and
    closed after --web-handshake-timeout; a stalled TLS handshake is closed likewise."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.web_port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert status_of(answer) == 408
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 5
    with socket.create_connection(("127.0.0.1", server.web_tls_port), timeout=10) as sock:
        assert sock.recv(4096) == b""  # (no TLS handshake: nothing to say, just closed)
    calm(watcher)


# -- IRC over WebSocket ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("offered", "tls"),
    [
        (("text.ircv3.net",), False),
        (("binary.ircv3.net",), False),
        (("binary.ircv3.net", "text.ircv3.net"), True),
        ((), False),
    ],
    ids=["text", "binary", "wss-binary-first", "none"],
)
def test_websocket_and_tcp_clients_talk_in_a_channel_and_in_private(
    connect, offered: tuple[str, ...], tls: bool
) -> None:
    """A WebSocket client is joined to #lobby like anyone, and exchanges channel and private
    messages with a plain TCP client both ways. The subprotocol is the client's first
    choice; with none offered the connection goes on without one, in text (as Ergo's)."""
    web = connect("webby", web=True, tls=tls, subprotocols=offered)
    assert isinstance(web, WSIRCClient)
    assert web.subprotocol == (offered[0] if offered else None)
    plain = connect("tcpy")
    web.expect(r":tcpy!\S+ JOIN #lobby$")
    web.send("PRIVMSG #lobby :hello from the web \u2603")
    plain.expect(r":webby!\S+ PRIVMSG #lobby :hello from the web \u2603$")
    plain.send("PRIVMSG #lobby :hello from TCP")
    web.expect(r":tcpy!\S+ PRIVMSG #lobby :hello from TCP$")
    web.send("PRIVMSG tcpy :psst")
    plain.expect(r":webby!\S+ PRIVMSG tcpy :psst$")
    plain.send("PRIVMSG webby :" + "x" * 400)
    web.expect(r":tcpy!\S+ PRIVMSG webby :x{400}$")
    if offered and offered[0] == "binary.ircv3.net":
        assert web.binary_received  # binary messages, as negotiated


def test_a_burst_both_ways(connect) -> None:
    """Lines at once both ways (a flood-control burst): one message each, in order."""
    web = connect("bulkw", web=True)
    plain = connect("bulkp")
    web.send("JOIN #bulk")
    web.expect(r" 366 bulkw #bulk ")
    plain.send("JOIN #bulk")
    plain.expect(r" 366 bulkp #bulk ")
    web.sync()
    text = "y" * 300
    plain.send_raw(b"".join(b"PRIVMSG #bulk :%d %s\r\n" % (i, text.encode()) for i in range(8)))
    for i in range(8):
        web.expect(rf":bulkp!\S+ PRIVMSG #bulk :{i} {text}$")
    assert isinstance(web, WSIRCClient)
    web.send_raw(b"".join(web.ws.send(TextMessage(f"PRIVMSG #bulk :{i}")) for i in range(8)))
    for i in range(8):
        plain.expect(rf":bulkw!\S+ PRIVMSG #bulk :{i}$")


def test_fragmented_messages_are_reassembled(connect) -> None:
    web = connect("frag", web=True)
    plain = connect("fragp")
    assert isinstance(web, WSIRCClient)
    pieces = ["PRIVMSG fragp :one ", "two ", "three"]
    web.send_raw(
        b"".join(
            web.ws.send(TextMessage(p, message_finished=i == len(pieces) - 1))
            for i, p in enumerate(pieces)
        )
    )
    plain.expect(r":frag!\S+ PRIVMSG fragp :one two three$")


def test_ping_gets_pong(connect) -> None:
    web = connect("pinger", web=True)
    assert isinstance(web, WSIRCClient)
    web.send_raw(web.ws.send(Ping(b"hello?")))
    web.sync()  # (the pong came before the PONG line, or with it)
    assert web.pongs == [b"hello?"]


def test_quit_gets_error_then_close_1000(connect, watcher) -> None:
    web = connect("leaver", web=True)
    assert isinstance(web, WSIRCClient)
    watcher.expect(r":leaver!\S+ JOIN #lobby$")
    web.send("QUIT :off to bed")
    web.expect(r"^ERROR :Closing link: .*Quit: off to bed")
    web.wait_closed()
    assert web.close_code == 1000
    watcher.expect(r":leaver!\S+ QUIT :Quit: off to bed$")


def test_kill_gets_error_then_close_1000(connect, watcher) -> None:
    web = connect("victim", web=True)
    assert isinstance(web, WSIRCClient)
    oper = connect("killer")
    oper.send("OPER admin secret")
    oper.expect(r" 381 killer ")
    oper.send("KILL victim :enough")
    web.expect(r"^ERROR :Closing link: .*Killed")
    web.wait_closed()
    assert web.close_code == 1000


def test_a_closed_websocket_quits(connect, watcher) -> None:
    """A close frame in the middle of a fragmented line: the close is echoed, the half line
    dropped, and the client quits like one that hung up."""
    seen = len(watcher.log)
    web = connect("closer", web=True)
    assert isinstance(web, WSIRCClient)
    watcher.expect(r":closer!\S+ JOIN #lobby$")
    web.send_raw(web.ws.send(TextMessage("PRIVMSG #lobby :half a li", message_finished=False)))
    web.send_raw(web.ws.send(CloseConnection(1000)))
    web.wait_closed()
    assert web.close_code == 1000
    watcher.expect(r":closer!\S+ QUIT :Remote host closed the connection$")
    assert not any("half a li" in line for line in watcher.log[seen:])


@pytest.mark.parametrize(
    ("payload", "error", "code"),
    [
        ("PRIVMSG #lobby :" + "z" * MAX_INPUT_LINE, "Message too big", 1009),
        ("PRIVMSG #lobby :one\r\nPRIVMSG #lobby :two", "Received malformed line", 1007),
    ],
    ids=["too-big", "two-lines"],
)
def test_bad_messages_get_error_and_close_code(
    connect, watcher, payload: str, error: str, code: int
) -> None:
    """A message over the line limit (tags and line): ERROR and close 1009. Two lines in
    one message: ERROR and close 1007, as Ergo ends it (``Received malformed line``)."""
    seen = len(watcher.log)
    web = connect("bad", web=True)
    assert isinstance(web, WSIRCClient)
    watcher.expect(r":bad!\S+ JOIN #lobby$")
    web.send(payload)
    web.expect(rf"^ERROR :Closing link: .*{error}")
    web.wait_closed()
    assert web.close_code == code
    watcher.expect(rf":bad!\S+ QUIT :{error}$")
    assert not any("PRIVMSG" in line for line in watcher.log[seen:])


def test_a_text_frame_that_is_not_utf8_is_closed_1007(connect, watcher) -> None:
    web = connect("badtext", web=True)
    assert isinstance(web, WSIRCClient)
    key = b"\0\0\0\0"  # a mask of zeros: the payload as it is
    payload = b"PRIVMSG #lobby :caf\xe9"
    web.send_raw(bytes([0x81, 0x80 | len(payload)]) + key + payload)
    web.expect(r"^ERROR :Closing link: ")
    web.wait_closed()
    assert web.close_code == 1007
    calm(watcher)


def test_a_binary_message_that_is_not_utf8_gets_fail_invalid_utf8(connect, watcher) -> None:
    """On text.ircv3.net, a binary message is bytes for the core, which refuses what is not
    UTF-8 (UTF8ONLY) as for any client, as Ergo does (irctest testSendNonUtf8Text)."""
    web = connect("notutf8", web=True)
    assert isinstance(web, WSIRCClient)
    web.send_message(b"PRIVMSG watcher :caf\xe9")
    web.expect(r"^:\S+ FAIL PRIVMSG INVALID_UTF8 ")
    calm(watcher)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (["Sec-WebSocket-Version: 8"], 426),
        (["Origin: https://evil.example"], 403),
        (["Origin: null"], 403),
    ],
    ids=["version", "foreign-origin", "null-origin"],
)
def test_refused_upgrades(server, watcher, headers: list[str], status: int) -> None:
    request = [
        "GET / HTTP/1.1",
        f"Host: 127.0.0.1:{server.web_port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol: text.ircv3.net",
        *headers,
    ]
    if not any(h.startswith("Sec-WebSocket-Version") for h in headers):
        request.append("Sec-WebSocket-Version: 13")
    answer = http(server.web_port, ("\r\n".join(request) + "\r\n\r\n").encode())
    assert status_of(answer) == status, answer
    calm(watcher)


@pytest.mark.parametrize(
    "origin", [ALLOWED_ORIGIN, "http://127.0.0.1:{port}"], ids=["listed", "own"]
)
def test_allowed_origins(server, connect, origin: str) -> None:
    """--web-origins, and the web port's own address (the page it served itself)."""
    web = connect("origin", web=True, origin=origin.format(port=server.web_port))
    assert isinstance(web, WSIRCClient) and web.accepted
    web.sync()


def test_frames_right_behind_the_request_count(server, connect) -> None:
    """Frames sent right behind the upgrade request, before the 101 came, are not lost."""
    plain = connect("early")
    request = WSConnection(ConnectionType.CLIENT).send(
        Request(host="x", target="/", subprotocols=["text.ircv3.net"])
    )
    frames = Connection(ConnectionType.CLIENT)  # (the frame layer alone: masked frames)
    lines = ["NICK eager", "USER e 0 * :E", "PRIVMSG early :I did not wait"]
    with socket.create_connection(("127.0.0.1", server.web_port), timeout=10) as sock:
        sock.sendall(request + b"".join(frames.send(TextMessage(line)) for line in lines))
        plain.expect(r":eager!\S+ PRIVMSG early :I did not wait$")
    wait_nicks_free(server.host, server.port, ["eager"])


def test_a_websocket_that_hangs_up_without_a_close_quits(connect, watcher) -> None:
    web = connect("hangup", web=True)
    watcher.expect(r":hangup!\S+ JOIN #lobby$")
    web.close()
    watcher.expect(r":hangup!\S+ QUIT :Remote host closed the connection$")


@pytest.mark.parametrize("workers", [1, 4])
def test_a_text_client_gets_valid_utf8_whatever_others_send(web_root: str, workers: int) -> None:
    """--no-utf8-only: a plain client's Latin-1 reaches a text.ircv3.net client with U+FFFD in
    place of what is not UTF-8 (a browser would drop the connection otherwise), and a
    binary.ircv3.net client as the bytes that were sent (irctest testReceiveNonUtf8Text)."""
    args = ["--web-port", "-1", "--web-root", web_root, "--no-utf8-only"]
    with process.running(args, workers=workers) as srv:
        text = WSIRCClient(srv.host, srv.web_port, "texty")
        binary = WSIRCClient(srv.host, srv.web_port, "binny", subprotocols=("binary.ircv3.net",))
        plain = IRCClient(srv.host, srv.port, "latin")
        plain.send(b"PRIVMSG texty :caf\xe9")
        plain.send(b"PRIVMSG binny :caf\xe9")
        text.expect(":latin!\\S+ PRIVMSG texty :caf\ufffd$")
        binary.expect(":latin!\\S+ PRIVMSG binny :caf")
        assert binary.binary_received[-1].endswith(b"PRIVMSG binny :caf\xe9")
        for client in (text, binary, plain):
            client.close()


@pytest.mark.parametrize("workers", [1, 4])
def test_a_missing_root_is_404_and_a_full_server_503(tmp_path: Path, workers: int) -> None:
    """No web root: every file is 404 (and the log says why once). An upgrade the server
    cannot admit (--max-clients-per-ip here) gets 503, saying why, not a WebSocket."""
    missing = str(tmp_path / "missing")
    args = ["--web-port", "-1", "--web-root", missing, "--max-clients-per-ip", "1"]
    with process.running(args, workers=workers) as srv:
        assert status_of(http(srv.web_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 404
        assert srv.log_text().count(f"web root {missing} is not a folder") == 1
        plain = IRCClient(srv.host, srv.port, "first")
        refused = WSIRCClient(srv.host, srv.web_port, "second")
        assert not refused.accepted and refused.refusal == "503"
        plain.sync()
        plain.close()
        refused.close()


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("workers", [1, 4])
def test_a_slow_websocket_reader_gets_everything_in_order(workers: int, tls: bool) -> None:
    """Output a WebSocket client does not read at once waits (the kernel takes part of a
    frame, then nothing) and reaches it whole and in order, one message per line, once it
    reads: the rest of a cut frame goes first, and its line is never framed twice."""
    args = ["--web-port", "-1", "--web-tls-port", "-1", "--no-flood-control"]
    with process.running([*args, "--sendq", str(64 << 20)], workers=workers) as srv:
        port, context = (srv.web_tls_port, trusting(srv)) if tls else (srv.web_port, None)
        with (
            IRCClient(srv.host, srv.port, "flooder") as flooder,
            WSIRCClient(srv.host, port, "slow", tls=context, rcvbuf=4096) as slow,
        ):
            slow.send("JOIN #flood")
            slow.expect(r" 366 slow #flood ")
            flooder.send("JOIN #flood")
            flooder.expect(r" 366 flooder #flood ")
            slow.expect(r":flooder!\S+ JOIN #flood$")
            count, text = 15000, "z" * 400  # 6.5 MB: more than the kernel buffers
            flooder.send_raw(
                b"".join(b"PRIVMSG #flood :%d %s\r\n" % (i, text.encode()) for i in range(count))
            )
            flooder.sync()
            # (one pattern for every line, its number checked: 15,000 patterns compiled one by one
            # took most of this test's time)
            each = rf":flooder!\S+ PRIVMSG #flood :(\d+) {text}$"
            for i in range(count):
                assert int(slow.expect(each)[1]) == i
            slow.sync()


@pytest.mark.parametrize("workers", [1, 4])
def test_a_websocket_reader_that_never_reads_is_cut_at_the_sendq(workers: int) -> None:
    """--sendq bounds a WebSocket client's waiting output like anyone's (IRC bytes, before
    framing): past it the client quits with SendQ exceeded, and the others go on."""
    args = ["--web-port", "-1", "--no-flood-control", "--sendq", "200000"]
    with (
        process.running(args, workers=workers) as srv,
        IRCClient(srv.host, srv.port, "flooder") as flooder,
        WSIRCClient(srv.host, srv.web_port, "stuck", rcvbuf=4096) as stuck,
    ):
        stuck.send("JOIN #flood")
        stuck.expect(r" 366 stuck #flood ")
        flooder.send("JOIN #flood")
        flooder.expect(r":stuck!\S+ QUIT| 366 flooder #flood ")
        line = b"PRIVMSG #flood :" + b"w" * 400 + b"\r\n"
        flooder.send_raw(line * 15000)  # 6.2 MB: the kernel's buffers and the sendq
        flooder.expect(r":stuck!\S+ QUIT :SendQ exceeded$", timeout=30)
        flooder.sync()


def test_a_fragmented_message_over_the_limit_is_closed_1009(connect, watcher) -> None:
    """Fragments count together: the message is refused as it grows past the limit."""
    web = connect("bigfrag", web=True)
    assert isinstance(web, WSIRCClient)
    watcher.expect(r":bigfrag!\S+ JOIN #lobby$")
    piece = "PRIVMSG #lobby :" + "f" * 1000
    web.send_raw(
        b"".join(web.ws.send(TextMessage(piece, message_finished=False)) for _ in range(5))
    )
    web.expect(r"^ERROR :Closing link: .*Message too big")
    web.wait_closed()
    assert web.close_code == 1009
    watcher.expect(r":bigfrag!\S+ QUIT :Message too big$")
