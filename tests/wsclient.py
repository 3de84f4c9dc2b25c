"""A WebSocket IRC test client (IRCv3 websocket), transcript style like :class:`IRCClient`.

Speaks through wsproto over a raw socket: ``send`` sends one message per line (text or
binary, as the subprotocol says), ``expect`` and ``sync`` work as for a plain client. The
close the server sends is kept (``close_code``, ``close_reason``); ``handshake`` is the
server's answer to the upgrade (``None`` if it refused: ``refusal`` holds its status line).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import deque

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from tests.ircclient import DEFAULT_TIMEOUT, IRCClient


class WSIRCClient(IRCClient):
    """``WSIRCClient(host, port, "alice", subprotocols=["text.ircv3.net"])``."""

    def __init__(
        self,
        host: str,
        port: int,
        nick: str | None = None,
        *,
        register: bool = True,
        subprotocols: tuple[str, ...] = ("text.ircv3.net",),
        origin: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        path: str = "/",
        rcvbuf: int = 0,
    ) -> None:
        # ``rcvbuf``: a small receive buffer, set before connecting (a slow reader)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        self.sock = tls.wrap_socket(sock, server_hostname="fastchat.local") if tls else sock
        self.timeout = timeout
        self.buf = b""
        self.lines: deque[str] = deque()
        self.log: list[str] = []
        self.closed = False
        self.nick = nick or ""
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.close_code: int | None = None
        self.close_reason = ""
        self.pongs: list[bytes] = []
        self._partial = b""  # a message received in part
        self.binary_received: list[bytes] = []  # binary messages as received (bytes)
        self.refusal = ""
        self.subprotocol: str | None = None
        headers = [(b"Origin", origin.encode())] if origin else []
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=f"{host}:{port}",
                    target=path,
                    subprotocols=list(subprotocols),
                    extra_headers=headers,
                )
            )
        )
        self.accepted = self._handshake(time.monotonic() + timeout)
        self.binary = self.subprotocol == "binary.ircv3.net"
        if self.accepted and nick and register:
            self.register(nick)

    def _handshake(self, deadline: float) -> bool:
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                return False
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.subprotocol = event.subprotocol
                    self._events_after_handshake()
                    return True
                if isinstance(event, RejectConnection):
                    self.refusal = str(event.status_code)
                if isinstance(event, RejectData) and event.body_finished:
                    return False
            if time.monotonic() > deadline:
                raise AssertionError("no answer to the WebSocket handshake")

    def _events_after_handshake(self) -> None:
        for event in self.ws.events():
            self._event(event)

    # -- sending ---------------------------------------------------------------------------------
    def send(self, line: str | bytes) -> None:
        """One IRC line, one message (no CRLF)."""
        if self.binary:
            data = line.encode() if isinstance(line, str) else line
            self.sock.sendall(self.ws.send(BytesMessage(data=data)))
        else:
            text = line if isinstance(line, str) else line.decode()
            self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def send_message(self, data: str | bytes) -> None:
        """A message of the given type, whatever the subprotocol (str: text; bytes: binary)."""
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self.sock.sendall(self.ws.send(event))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: crafted frames."""
        self.sock.sendall(data)

    # -- receiving -------------------------------------------------------------------------------
    def _event(self, event: object) -> None:
        # wsproto hands over a message in pieces as its bytes arrive: a line is whole at
        # message_finished
        if isinstance(event, TextMessage):
            self._partial += event.data.encode()
        elif isinstance(event, BytesMessage):
            self._partial += bytes(event.data)
        if isinstance(event, TextMessage | BytesMessage):
            if event.message_finished:
                data, self._partial = self._partial, b""
                if isinstance(event, BytesMessage):
                    self.binary_received.append(data)
                self._line(data.decode("utf-8", errors="replace"))
        elif isinstance(event, Ping):
            self.sock.sendall(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.close_code = event.code
            self.close_reason = event.reason or ""
            # (LocalProtocolError: we closed first; OSError: the server is gone already)
            with contextlib.suppress(LocalProtocolError, OSError):
                self.sock.sendall(self.ws.send(event.response()))
        elif isinstance(event, Pong):
            self.pongs.append(bytes(event.payload))

    def _line(self, text: str) -> None:
        assert "\r" not in text and "\n" not in text, f"a CR or LF inside a message: {text!r}"
        self.lines.append(text)
        self.log.append(text)

    def _take(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events():
            self._event(event)
