"""One HTTP request on the web port, and its answer (RFC 9110/9112; RFC 6455 §4.2).

Owns: reading a request with h11 (bounded: a request line and headers over
:data:`MAX_REQUEST` bytes get 431), and deciding what it gets: a file of the web root
(GET/HEAD, with Content-Type, ETag and ``Cache-Control: no-cache``), an error status, or a
WebSocket upgrade with the IRCv3 subprotocol it negotiated
(https://ircv3.net/specs/extensions/websocket). Every answer but an upgrade ends the
connection (``Connection: close``): the web client loads a handful of files once, and one
request per connection keeps this a function of its input.
Must never: touch a socket or the clock.

What each request gets:

- not HTTP (a garbage request line, a bad header): 400; a request line and headers over
  :data:`MAX_REQUEST` bytes: 431;
- GET/HEAD of a file under the root: 200 (304 for a matching ``If-None-Match``); of nothing
  there: 404; of a path that tries to leave the root (``..``): 400; any other method: 405;
- a WebSocket upgrade (``Upgrade: websocket``, at any path): 400 if it is not a well-formed
  GET over HTTP/1.1 (``Connection: upgrade``, a 16-byte ``Sec-WebSocket-Key``), 426 for a
  ``Sec-WebSocket-Version`` other than 13, 403 for an Origin that is not allowed (see
  :func:`origin_allowed`), else 101. The subprotocol is the first of the client's list that
  is ``binary.ircv3.net`` or ``text.ircv3.net``; with neither, the upgrade goes on without
  one (the spec allows it) and the connection speaks text, as Ergo's does.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass

import h11
from wsproto.utilities import generate_accept_token

from fastchat.server.web.static import Refusal, StaticFile, StaticFiles

#: The request line and headers may take this many bytes (browsers send 1–2 KB)
MAX_REQUEST = 8192

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class Subprotocol(enum.Enum):
    """The IRCv3 WebSocket subprotocols; ``NONE``: none was agreed (the header is left out)."""

    BINARY = "binary.ircv3.net"
    TEXT = "text.ircv3.net"
    NONE = ""


_BY_NAME = {p.value.encode(): p for p in Subprotocol if p is not Subprotocol.NONE}


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response; the connection ends after it."""

    status: int
    response: bytes


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket upgrade: the 101 ``response`` to send, the ``subprotocol`` agreed, and
    what came after the request (the first frames, if the client did not wait)."""

    response: bytes
    subprotocol: Subprotocol
    trailing: bytes


def response(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A response's bytes: status line, headers, blank line, body."""
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
    head += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def error(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Answer:
    """An error status with a short plain-text body saying why."""
    body = f"{status} {REASONS.get(status, 'Error')}: {text}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *(extra or []),
    ]
    return Answer(status, response(status, headers, body))


def _tokens(values: list[bytes]) -> list[bytes]:
    """The comma-separated tokens of a header given one or more times, lowercased."""
    return [t.strip().lower() for v in values for t in v.split(b",") if t.strip()]


def origin_allowed(
    origin: bytes | None, host: bytes, secure: bool, allowed: tuple[str, ...]
) -> bool:
    """May a WebSocket from a page of ``origin`` (``None``: no Origin header, not a browser)
    come in? Yes without an Origin, for ``*``, for an origin in ``allowed``, and for the
    web port's own address: an origin whose host and port are the request's ``Host`` (the
    page the web port served itself). A page of another site may not use its visitors'
    browsers to connect them here (cross-site WebSocket hijacking)."""
    if origin is None or "*" in allowed:
        return True
    text = origin.decode("latin-1").strip().lower().rstrip("/")
    if text in allowed:
        return True
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("http", "https"):
        return False  # "null" (a sandboxed page, a file), an unknown scheme
    return _host_port(rest, scheme == "https") == _host_port(
        host.decode("latin-1").strip().lower(), secure
    )


def _host_port(text: str, secure: bool) -> tuple[str, int] | None:
    """``host[:port]`` (``[v6]:port`` too), the port defaulting to the scheme's."""
    host, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, port = text[: end + 1], text[end + 1 :].removeprefix(":")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if port and not port.isdigit():
        return None
    return host, int(port) if port else (443 if secure else 80)


class RequestReader:
    """Reads one request and decides its answer. ``secure``: the connection is TLS (the
    default port of its Host is 443); ``origins``: --web-origins."""

    def __init__(self, files: StaticFiles, origins: tuple[str, ...], secure: bool) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
        self._files = files
        self._origins = origins
        self._secure = secure

    def feed(self, data: bytes) -> Answer | Upgrade | None:
        """Take received bytes; the decision once the request is complete, else ``None``."""
        conn = self._conn
        conn.receive_data(data)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            return error(status, "request headers too large" if status == 431 else "bad request")
        if event is h11.NEED_DATA:
            return None
        if not isinstance(event, h11.Request):  # (h11 gives a Request first, or raises)
            return error(400, "bad request")
        # h11 bounds a head that is still incomplete; one that came whole in a single read
        # is measured here, so that the limit does not depend on how the bytes arrived
        size = (
            len(event.method)
            + len(event.target)
            + sum(4 + len(n) + len(v) for n, v in event.headers)
        )
        if size > MAX_REQUEST:
            return error(431, "request headers too large")
        return self._decide(event)

    def _decide(self, request: h11.Request) -> Answer | Upgrade:
        headers: dict[bytes, list[bytes]] = {}
        for name, value in request.headers:
            headers.setdefault(name, []).append(value)
        if b"websocket" in _tokens(headers.get(b"upgrade", [])):
            return self._upgrade(request, headers)
        if request.method not in (b"GET", b"HEAD"):
            return error(405, "only GET and HEAD", [("Allow", "GET, HEAD")])
        found = self._files.find(request.target)
        if isinstance(found, Refusal):
            return error(found.value, "no such file" if found is Refusal.NOT_FOUND else "bad path")
        return _file_answer(found, request.method == b"HEAD", headers.get(b"if-none-match", []))

    def _upgrade(self, request: h11.Request, headers: dict[bytes, list[bytes]]) -> Answer | Upgrade:
        """RFC 6455 §4.2.1 (the client's handshake) and §4.2.2 (the server's answer)."""
        if request.method != b"GET":
            return error(405, "a WebSocket handshake is a GET", [("Allow", "GET")])
        if request.http_version != b"1.1":
            return error(400, "a WebSocket handshake needs HTTP/1.1")
        if b"upgrade" not in _tokens(headers.get(b"connection", [])):
            return error(400, "a WebSocket handshake needs Connection: Upgrade")
        if headers.get(b"sec-websocket-version") != [b"13"]:
            return error(426, "WebSocket version 13 only", [("Sec-WebSocket-Version", "13")])
        keys = headers.get(b"sec-websocket-key", [])
        if len(keys) != 1 or not _is_key(keys[0]):
            return error(400, "missing or malformed Sec-WebSocket-Key")
        origins = headers.get(b"origin", [])
        host = headers.get(b"host", [b""])[0]
        if len(origins) > 1 or not origin_allowed(
            origins[0] if origins else None, host, self._secure, self._origins
        ):
            return error(403, "this Origin may not connect (see --web-origins)")
        chosen = Subprotocol.NONE
        for name in _tokens(headers.get(b"sec-websocket-protocol", [])):
            if name in _BY_NAME:
                chosen = _BY_NAME[name]
                break
        reply = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", generate_accept_token(keys[0].strip()).decode()),
        ]
        if chosen is not Subprotocol.NONE:
            reply.append(("Sec-WebSocket-Protocol", chosen.value))
        # The request's end (a GET has no body): h11 then pauses, switching protocols, and
        # holds what came after it
        conn = self._conn
        try:
            while (event := conn.next_event()) is not h11.PAUSED:
                if event is h11.NEED_DATA or isinstance(event, h11.Data):
                    return error(400, "a WebSocket handshake has no body")
        except h11.RemoteProtocolError:
            return error(400, "a WebSocket handshake has no body")
        trailing, _ = conn.trailing_data
        return Upgrade(response(101, reply), chosen, bytes(trailing))


def _is_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _file_answer(found: StaticFile, head: bool, if_none_match: list[bytes]) -> Answer:
    # no-cache: the browser may keep the files but asks each time (a 304 is a few bytes),
    # so a new version of the web client is never mixed with an old one's modules
    headers = [
        ("Content-Type", found.content_type),
        ("Cache-Control", "no-cache"),
        ("ETag", found.etag),
        ("X-Content-Type-Options", "nosniff"),
        ("Connection", "close"),
    ]
    etag = found.etag.encode()
    if any(t == etag or t == b"*" for t in _tokens(if_none_match)):
        return Answer(304, response(304, headers))
    headers.insert(1, ("Content-Length", str(len(found.body))))
    return Answer(200, response(200, headers, b"" if head else found.body))


def unavailable(reason: bytes) -> Answer:
    """503 for an upgrade the server refuses to admit (--max-clients, --max-clients-per-ip),
    saying why."""
    return error(503, reason.decode("utf-8", "replace"))
