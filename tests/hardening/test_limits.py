"""Configurable limits (issue 5, "Limits"): each announced in ISUPPORT where IRC has a token
and enforced with its proper numeric (Modern IRC "RPL_ISUPPORT Tokens"; RFC 2812 §5).
"""

from __future__ import annotations

import collections
import re
import socket
import time
from collections.abc import Iterator

import pytest

from fastchat.server.config import AUTO, Config
from fastchat.server.runtime import process
from tests.ircclient import IRCClient, wait_nicks_free


def test_defaults_match_the_issue() -> None:
    """The documented defaults: 1 MiB sendq, burst of 10 lines at 5 lines/s, flood control on,
    and no limit per address (0 means no limit); the server's limit is what its descriptors
    allow (issue 14: auto, decided at start)."""
    cfg = Config()
    assert cfg.sendq == 1 << 20
    assert (cfg.flood_control, cfg.flood_burst, cfg.flood_rate) == (True, 10, 5.0)
    assert (cfg.max_clients, cfg.max_clients_per_ip) == (AUTO, 0)


@pytest.fixture(scope="module")
def tight() -> Iterator[process.ServerProcess]:
    args = ["--autojoin", "", "--nicklen", "9", "--channellen", "12"]
    args += ["--max-channels", "3", "--max-targets", "2"]
    with process.running(args, workers=2) as srv:
        yield srv


def _isupport(lines: list[str]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for line in lines:
        if " 005 " in line:
            for token in line.split(" :", 1)[0].split()[3:]:
                key, _, value = token.partition("=")
                tokens[key] = value
    return tokens


def test_limits_are_announced_in_isupport(tight: process.ServerProcess) -> None:
    """RPL_ISUPPORT (005) at registration carries the configured NICKLEN, CHANNELLEN,
    CHANLIMIT, MAXTARGETS and TARGMAX."""
    with IRCClient(tight.host, tight.port) as c:
        c.nick = "isup"
        tokens = _isupport(c.register("isup"))
    assert tokens["NICKLEN"] == "9"
    assert tokens["CHANNELLEN"] == "12"
    assert tokens["CHANLIMIT"] == "#&:3" or re.fullmatch(r"[#&]+:3", tokens["CHANLIMIT"])
    assert tokens["MAXTARGETS"] == "2"
    assert "PRIVMSG:2" in tokens["TARGMAX"].split(",")
    assert "NOTICE:2" in tokens["TARGMAX"].split(",")


def test_nicklen(tight: process.ServerProcess) -> None:
    """A nick longer than --nicklen gets 432 ERR_ERRONEUSNICKNAME; one of exactly that length
    is accepted, at registration and on a change."""
    with IRCClient(tight.host, tight.port) as c:
        c.send("NICK tenletters")
        c.expect(r" 432 \* tenletters :Erroneous nickname$")
        c.register("ninelettr")
        c.send("NICK ten456789x")
        c.expect(r" 432 ninelettr ten456789x :Erroneous nickname$")
    wait_nicks_free(tight.host, tight.port, ["ninelettr"])


def test_channellen_and_max_channels(tight: process.ServerProcess) -> None:
    """A channel name longer than --channellen is refused (403 ERR_NOSUCHCHANNEL); joining one
    channel more than --max-channels is refused with 405 ERR_TOOMANYCHANNELS."""
    with IRCClient(tight.host, tight.port, "joiner") as c:
        c.send("JOIN #abcdefghijk")  # 12 bytes: fine
        c.expect(r":joiner!\S+ JOIN #abcdefghijk$")
        c.send("JOIN #abcdefghijkl")  # 13 bytes
        c.expect(r" 403 joiner #abcdefghijkl :No such channel$")
        c.send("JOIN #two,#three,#four")
        c.expect(r":joiner!\S+ JOIN #two$")
        c.expect(r":joiner!\S+ JOIN #three$")
        c.expect(r" 405 joiner #four :You have joined too many channels$")
        c.send("PART #two")
        c.expect(r":joiner!\S+ PART #two")
        c.send("JOIN #four")
        c.expect(r":joiner!\S+ JOIN #four$")
    wait_nicks_free(tight.host, tight.port, ["joiner"])


def test_max_targets(tight: process.ServerProcess) -> None:
    """More targets than --max-targets in one PRIVMSG: 407 ERR_TOOMANYTARGETS and nothing is
    sent to anyone; exactly that many is fine."""
    with (
        IRCClient(tight.host, tight.port, "aimer") as a,
        IRCClient(tight.host, tight.port, "mark") as m,
    ):
        a.send("PRIVMSG mark,aimer,nobody :three")
        a.expect(r" 407 aimer mark,aimer,nobody :")
        a.send("PRIVMSG mark,aimer :two")
        a.expect(r":aimer!\S+ PRIVMSG aimer :two$")
        assert m.expect(r"PRIVMSG mark :(.*)$").group(1) == "two"  # "three" never came
    wait_nicks_free(tight.host, tight.port, ["aimer", "mark"])


def _connect_from(server: process.ServerProcess, source: str) -> socket.socket:
    return socket.create_connection(
        (server.host, server.port), timeout=5, source_address=(source, 0)
    )


def _client_from(server: process.ServerProcess, source: str, nick: str) -> IRCClient:
    """A registered client connected from ``source`` (any 127.0.0.0/8 address is loopback)."""
    client = IRCClient.__new__(IRCClient)
    client.sock, client.timeout, client.buf, client.closed = (
        _connect_from(server, source),
        10.0,
        b"",
        False,
    )
    client.lines, client.log, client.nick = collections.deque(), [], nick
    client.register(nick)
    return client


def _refusal(server: process.ServerProcess, source: str) -> str:
    with _connect_from(server, source) as sock:
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.decode()


def test_max_clients_and_max_clients_per_ip() -> None:
    """--max-clients-per-ip refuses one address's connection past its limit and
    --max-clients refuses anyone past the total, each with an ERROR naming the reason; a
    freed slot can be taken again. (One worker: admission reads the worker's replica.)"""
    args = ["--max-clients", "4", "--max-clients-per-ip", "2", "--autojoin", ""]
    with process.running(args, workers=1) as server:
        held = [_client_from(server, "127.0.0.1", f"one{i}") for i in range(2)]
        assert "Too many connections from your IP" in _refusal(server, "127.0.0.1")
        held += [_client_from(server, "127.0.0.2", f"two{i}") for i in range(2)]
        assert re.fullmatch(r"ERROR :Closing link: \(\*@127\.0\.0\.3\) \[Server is full\]\r\n",
                            _refusal(server, "127.0.0.3"))  # fmt: skip
        held.pop().close()
        # The server learns of the hang-up asynchronously: retry (bounded) until the slot is free.
        deadline = time.monotonic() + 5
        while True:
            try:
                held.append(_client_from(server, "127.0.0.3", "three"))
                break
            except AssertionError as refused:
                assert "Server is full" in str(refused)
                assert time.monotonic() < deadline, "the freed slot never became available"
        for c in held:
            c.close()
