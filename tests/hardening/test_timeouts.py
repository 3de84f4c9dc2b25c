"""Timeouts (issue 5, "Timeouts"): registration timeout, idle PING, ping timeout.

The server runs with 1.0 s for each (float seconds are accepted); the worker checks its clocks
about once a second, so each deadline is asserted with that much slack.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient


@pytest.fixture(scope="module")
def hasty() -> Iterator[process.ServerProcess]:
    args = ["--registration-timeout", "1.0", "--ping-interval", "1.0", "--ping-timeout", "1.0"]
    with process.running(args, workers=2) as srv:
        yield srv


def test_registration_timeout(hasty: process.ServerProcess) -> None:
    """A connection that never finishes registering is closed with ERROR ...Registration
    timeout... after --registration-timeout (here 1 s, checked about once a second)."""
    with IRCClient(hasty.host, hasty.port) as c:
        start = time.monotonic()
        c.send("NICK never")
        rest = c.wait_closed(timeout=5)
        elapsed = time.monotonic() - start
    assert re.fullmatch(r"ERROR :Closing link: \(\S+\) \[Registration timeout\]", rest[-1]), rest
    assert 0.9 <= elapsed <= 3.5, elapsed


def test_idle_ping_and_ping_timeout(hasty: process.ServerProcess) -> None:
    """An idle client gets ``PING`` after --ping-interval; one that answers with PONG stays,
    one that stays silent is closed with ERROR ...Ping timeout... after --ping-timeout, and
    its channel sees it quit with the same reason."""
    with (
        IRCClient(hasty.host, hasty.port, "answers") as good,
        IRCClient(hasty.host, hasty.port, "silent") as silent,
    ):
        good.sync()
        pings = 0
        quit_seen = False
        quit_rx = re.compile(r"^:silent!\S+ QUIT :Ping timeout: \d+ seconds$")

        def serve_good() -> None:
            """Read one line for the good client: answer PINGs, note the QUIT (nothing is
            thrown away, and the good client never stops answering)."""
            nonlocal pings, quit_seen
            line = good.next_line(timeout=0.05)
            if line is None:
                return
            if line.startswith("PING "):
                pings += 1
                good.send("PONG " + line[5:])
            elif quit_rx.search(line):
                quit_seen = True

        deadline = time.monotonic() + 8
        while not silent.closed:
            assert time.monotonic() < deadline, "the silent client was never disconnected"
            serve_good()
            silent.next_line(timeout=0.05)  # read (never answer) until the server closes
        silent_log = silent.log
        assert any(re.fullmatch(r"PING :?fastchat\.local", line) for line in silent_log)
        assert re.fullmatch(
            r"ERROR :Closing link: \(\S+\) \[Ping timeout: \d+ seconds\]", silent_log[-1]
        ), silent_log[-3:]
        while not quit_seen:
            assert time.monotonic() < deadline, "the channel never saw the silent client quit"
            serve_good()
        assert pings >= 1
        assert good.sync() is not None and not good.closed
