"""fastchat.server.web.http and .static, without sockets: every request's answer, the same
whether its bytes come at once or split at any boundary."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from wsproto import ConnectionType
from wsproto.events import AcceptConnection, Request
from wsproto.handshake import H11Handshake

from fastchat.server.web.http import (
    MAX_REQUEST,
    Answer,
    RequestReader,
    Subprotocol,
    Upgrade,
    origin_allowed,
    unavailable,
)
from fastchat.server.web.static import StaticFiles

KEY = base64.b64encode(b"0123456789abcdef").decode()
INDEX = b"<!doctype html><title>t</title>\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_bytes(INDEX)
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_bytes(b"export {};\n")
    (tmp_path / "style.css").write_bytes(b"body {}\n")
    (tmp_path / "blob.xyz").write_bytes(b"\0\1")
    (tmp_path / ".secret").write_bytes(b"no")
    outside = tmp_path.parent / (tmp_path.name + "-outside.txt")
    outside.write_bytes(b"outside")
    os.symlink(outside, tmp_path / "link.txt")
    return tmp_path


def feed(root: Path | None, data: bytes, origins: tuple[str, ...] = (), secure: bool = False):  # type: ignore[no-untyped-def]
    reader = RequestReader(StaticFiles(str(root) if root else None), origins, secure)
    return reader.feed(data)


def feed_split(root: Path, data: bytes) -> list[Answer | Upgrade]:
    """The decision for ``data`` fed at once, then split at every boundary (in two)."""
    decisions = []
    for cut in range(len(data) + 1):
        reader = RequestReader(StaticFiles(str(root)), (), False)
        first = reader.feed(data[:cut]) if cut else None
        decisions.append(first if first is not None else reader.feed(data[cut:]))
    return decisions  # type: ignore[return-value]


def status(answer: object) -> int:
    assert isinstance(answer, Answer), answer
    return answer.status


def head_and_body(answer: Answer) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return headers, body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode()


def upgrade(
    protocols: str | None = "text.ircv3.net",
    version: str = "13",
    key: str = KEY,
    origin: str | None = None,
    host: str = "chat.example:8097",
    method: str = "GET",
    http: str = "1.1",
    connection: str = "Upgrade",
) -> bytes:
    lines = [
        f"{method} / HTTP/{http}",
        f"Host: {host}",
        "Upgrade: websocket",
        f"Connection: {connection}",
        f"Sec-WebSocket-Version: {version}",
    ]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- files -----------------------------------------------------------------------------------------
def test_index_at_the_root_whatever_the_split(root: Path) -> None:
    for answer in feed_split(root, get("/")):
        assert status(answer) == 200
        assert isinstance(answer, Answer)
        headers, body = head_and_body(answer)
        assert body == INDEX
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Length"] == str(len(INDEX))
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Connection"] == "close"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/style.css?v=3", "text/css; charset=utf-8"),
        ("/blob.xyz", "application/octet-stream"),
        ("/%6As/app.js", "text/javascript; charset=utf-8"),  # percent-encoded
    ],
)
def test_content_types(root: Path, path: str, kind: str) -> None:
    answer = feed(root, get(path))
    assert status(answer) == 200
    assert head_and_body(answer)[0]["Content-Type"] == kind


def test_head_has_the_headers_and_no_body(root: Path) -> None:
    answer = feed(root, b"HEAD /index.html HTTP/1.1\r\nHost: h\r\n\r\n")
    headers, body = head_and_body(answer)
    assert status(answer) == 200 and body == b""
    assert headers["Content-Length"] == str(len(INDEX))


def test_a_matching_etag_gets_304(root: Path) -> None:
    etag = head_and_body(feed(root, get("/")))[0]["ETag"]
    answer = feed(root, get("/", f"If-None-Match: {etag}\r\n"))
    assert status(answer) == 304 and head_and_body(answer)[1] == b""
    assert status(feed(root, get("/", 'If-None-Match: "other"\r\n'))) == 200


@pytest.mark.parametrize(
    "path",
    ["/../etc/passwd", "/js/../../x", "/%2e%2e/x", "/js/%2E%2E/%2e%2e/x", "/a\\b", "/%00", "/%ff"],
)
def test_a_path_that_leaves_the_root_is_400(root: Path, path: str) -> None:
    assert status(feed(root, get(path))) == 400


@pytest.mark.parametrize("path", ["/nope.html", "/.secret", "/js/.hidden", "/link.txt", "/js/x"])
def test_missing_hidden_and_escaping_links_are_404(root: Path, path: str) -> None:
    answer = feed(root, get(path))
    assert status(answer) == 404
    assert b"404 Not Found" in head_and_body(answer)[1]


def test_a_folder_means_its_index(root: Path) -> None:
    (root / "js" / "index.html").write_bytes(b"js index")
    assert head_and_body(feed(root, get("/js/")))[1] == b"js index"


def test_no_root_answers_404(root: Path) -> None:
    assert status(feed(None, get("/"))) == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_405(root: Path, method: str) -> None:
    answer = feed(root, f"{method} / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n".encode())
    assert status(answer) == 405
    assert head_and_body(answer)[0]["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "garbage",
    [b"NICK alice\r\nUSER a 0 * :A\r\n\r\n", b"\x16\x03\x01\x02\x00\r\n\r\n", b"GET /\r\n\r\n"],
)
def test_garbage_is_400(root: Path, garbage: bytes) -> None:
    assert status(feed(root, garbage)) == 400


def test_an_overlong_request_is_431(root: Path) -> None:
    big = get("/", "X-Filler: " + "a" * MAX_REQUEST + "\r\n")
    assert status(feed(root, big)) == 431
    # and without an end: the head grows past the limit before any blank line
    assert status(feed(root, b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_REQUEST + 10))) == 431


def test_an_unfinished_request_waits(root: Path) -> None:
    assert feed(root, b"GET / HTTP/1.1\r\nHost: h\r\n") is None


# -- WebSocket upgrades ------------------------------------------------------------------------------
def test_an_upgrade_is_accepted_whatever_the_split(root: Path) -> None:
    """wsproto's client accepts our 101 (key, accept token, subprotocol)."""
    client = H11Handshake(ConnectionType.CLIENT)
    request = client.send(Request(host="h", target="/", subprotocols=["text.ircv3.net"]))
    decisions = feed_split(root, request)
    assert all(d == decisions[0] for d in decisions)
    answer = decisions[0]
    assert isinstance(answer, Upgrade) and answer.subprotocol is Subprotocol.TEXT
    client.receive_data(answer.response)
    events = list(client.events())
    assert isinstance(events[0], AcceptConnection), events
    assert events[0].subprotocol == "text.ircv3.net"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ("binary.ircv3.net", Subprotocol.BINARY),
        ("text.ircv3.net", Subprotocol.TEXT),
        ("binary.ircv3.net, text.ircv3.net", Subprotocol.BINARY),
        ("text.ircv3.net, binary.ircv3.net", Subprotocol.TEXT),
        ("chat, text.ircv3.net", Subprotocol.TEXT),
        ("chat", Subprotocol.NONE),
        (None, Subprotocol.NONE),
    ],
)
def test_the_first_acceptable_subprotocol_in_the_clients_order(
    root: Path, offered: str | None, chosen: Subprotocol
) -> None:
    decision = feed(root, upgrade(offered))
    assert isinstance(decision, Upgrade) and decision.subprotocol is chosen
    if chosen is Subprotocol.NONE:
        assert b"Sec-WebSocket-Protocol" not in decision.response  # the spec's MAY
    else:
        assert f"Sec-WebSocket-Protocol: {chosen.value}\r\n".encode() in decision.response


def test_frames_right_behind_the_request_are_kept(root: Path) -> None:
    decision = feed(root, upgrade() + b"\x81\x85abcd")
    assert isinstance(decision, Upgrade) and decision.trailing == b"\x81\x85abcd"


def test_another_version_is_426_naming_13(root: Path) -> None:
    answer = feed(root, upgrade(version="8"))
    assert status(answer) == 426
    assert head_and_body(answer)[0]["Sec-WebSocket-Version"] == "13"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"key": ""}, 400),
        ({"key": "short"}, 400),
        ({"key": base64.b64encode(b"x" * 15).decode()}, 400),
        ({"http": "1.0"}, 400),
        ({"connection": "keep-alive"}, 400),
        ({"method": "POST"}, 405),
    ],
)
def test_malformed_upgrades(root: Path, kw: dict[str, str], expected: int) -> None:
    assert status(feed(root, upgrade(**kw))) == expected


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed", "ok"),
    [
        (None, "h", False, (), True),  # not a browser
        ("http://chat.example:8097", "chat.example:8097", False, (), True),  # our own page
        ("http://CHAT.example:8097/", "chat.example:8097", False, (), True),
        ("https://chat.example", "chat.example", True, (), True),  # default ports
        ("https://chat.example:443", "chat.example", True, (), True),
        ("http://chat.example", "chat.example", True, (), False),  # 80 is not 443
        ("http://evil.example", "chat.example:8097", False, (), False),
        ("http://chat.example:8098", "chat.example:8097", False, (), False),
        ("null", "chat.example", False, (), False),
        ("http://evil.example", "chat.example", False, ("*",), True),
        ("https://app.example", "chat.example", False, ("https://app.example",), True),
        ("https://app.example:444", "chat.example", False, ("https://app.example",), False),
        ("http://[::1]:8097", "[::1]:8097", False, (), True),
    ],
)
def test_origin_allowed(
    origin: str | None, host: str, secure: bool, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_allowed(origin.encode() if origin else None, host.encode(), secure, allowed) is ok


def test_a_refused_origin_is_403(root: Path) -> None:
    assert status(feed(root, upgrade(origin="http://evil.example"))) == 403
    assert isinstance(feed(root, upgrade(origin="http://chat.example:8097")), Upgrade)
    allowed = feed(root, upgrade(origin="http://evil.example"), origins=("http://evil.example",))
    assert isinstance(allowed, Upgrade)


def test_unavailable_says_why() -> None:
    answer = unavailable(b"Server is full")
    assert answer.status == 503 and answer.response.endswith(b"Server is full\n")


@pytest.mark.parametrize(
    "body",
    [
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a chunk size
        b"Content-Length: 10\r\n\r\nabc",  # a body that has not all come
    ],
    ids=["bad-chunk", "unfinished-body"],
)
def test_an_upgrade_with_a_body_is_400(root: Path, body: bytes) -> None:
    request = upgrade().removesuffix(b"\r\n") + body
    assert status(feed(root, request)) == 400
