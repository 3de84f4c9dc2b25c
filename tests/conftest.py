"""Shared fixtures: real servers on free ports, raw IRC clients that are always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    """A real fastchat server, once with one worker and once with four."""
    with process.running(["--test-hooks"], workers=request.param) as srv:
        yield srv


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """``connect("alice")`` -> a registered client; closed at the end of the test."""
    clients: list[IRCClient] = []

    def make(nick: str | None = None, **kw: object) -> IRCClient:
        client = IRCClient(server.host, server.port, nick, **kw)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick]
    for client in clients:
        client.close()
    if nicks:
        wait_nicks_free(server.host, server.port, nicks)
