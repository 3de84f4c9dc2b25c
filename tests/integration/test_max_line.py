"""The longest line a client may send (``max_line``), at one worker and at four: 512 bytes
by default (RFC 1459; ``417`` beyond), more where an operator raised it (Ergo's
``limits.linelen.rest``): a password too long for a 512-byte ``REGISTER`` registers, and logs
in over SASL in 400-byte chunks; what the server sends stays within 512 bytes."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

LONG_PASSWORD = "x" * 592  # with "lpw" twice: exactly 800 bytes of base64 (irctest's case)


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(scope="module")
def default(workers: int) -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control"], workers=workers) as srv:
        yield srv


@pytest.fixture(scope="module")
def raised(workers: int) -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control", "--max-line", "1024"], workers=workers) as srv:
        yield srv


def _client(server: process.ServerProcess, nick: str, caps: str = "") -> IRCClient:
    c = IRCClient(server.host, server.port, register=False)
    c.nick = nick
    if caps:
        c.request_caps(caps)
    return c


def _register(server: process.ServerProcess, nick: str) -> IRCClient:
    c = IRCClient(server.host, server.port)
    c.register(nick)
    return c


def test_by_default_a_line_over_512_bytes_is_refused(default: process.ServerProcess) -> None:
    c = _register(default, "short1")
    try:
        c.send("REGISTER * * " + LONG_PASSWORD)
        c.expect(r" 417 short1 :Input line was too long$")
        c.send("PRIVMSG #lobby :" + "y" * 494)  # 512 bytes with CR LF: the longest that fits
        assert not [line for line in c.sync() if " 417 " in line]
        c.send("PRIVMSG #lobby :" + "y" * 495)  # 513
        c.expect(r" 417 short1 :Input line was too long$")
        c.sync()
    finally:
        c.close()


def test_a_raised_limit_lets_a_long_password_register_and_log_in(
    raised: process.ServerProcess,
) -> None:
    reg = _client(raised, "lpw", "draft/account-registration")
    reg.send("NICK lpw")
    reg.send("USER lpw 0 * :r")
    reg.send("CAP END")
    reg.expect(r" 376 | 422 ")
    reg.send("REGISTER * * " + LONG_PASSWORD)
    reg.expect(r"^:\S+ REGISTER SUCCESS lpw :Account created$")
    reg.close()
    auth = base64.b64encode(b"lpw\0lpw\0" + LONG_PASSWORD.encode()).decode()
    assert len(auth) == 800
    c = _client(raised, "lpw2", "sasl")
    try:
        c.send("NICK lpw2")
        c.send("USER l 0 * :l")
        c.send("AUTHENTICATE PLAIN")
        c.expect(r"^AUTHENTICATE \+$")
        c.send("AUTHENTICATE " + auth[:400])
        c.send("AUTHENTICATE " + auth[400:])
        c.send("AUTHENTICATE +")  # the last chunk was exactly 400 bytes
        c.expect(r" 903 lpw2 :SASL authentication successful$")
    finally:
        c.close()


def test_a_raised_limit_still_sends_lines_within_512_bytes(raised: process.ServerProcess) -> None:
    talker, listener = _register(raised, "talker"), _register(raised, "listener")
    try:
        listener.sync()
        text = "z" * 900
        talker.send("PRIVMSG #lobby :" + text)
        line = listener.expect(r"^:talker!\S+ PRIVMSG #lobby :(z+)$")
        got = line.group(1)
        assert len(line.group(0)) + 2 <= 512  # (the client's line is without its CR LF)
        assert 400 < len(got) < len(text)  # cut to fit, not dropped
        talker.send("PRIVMSG #lobby :" + "z" * 1010)  # over the raised limit
        talker.expect(r" 417 talker :Input line was too long$")
        talker.sync()
    finally:
        talker.close()
        listener.close()
