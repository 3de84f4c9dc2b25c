"""Interoperability with a real client: a headless WeeChat against fastchat at one and four
workers, beside a raw-socket peer.

WeeChat runs as ``weechat-headless`` (``tests/weechatclient.py``; Debian's package, which
``make test`` installs when it can; skipped where it is missing) in a fresh home directory,
with its default ``irc.server_default.capabilities = "*"``: it requests every capability it
supports among those the server offers. Its fifo plugin drives it (lines typed into a buffer,
commands); its logger (flushed at once) is what the test reads back: the capability
negotiation it reports in the server buffer, and each buffer's lines. The raw peer checks the
other direction on the wire.

Every wait is for a condition with a deadline; WeeChat is stopped (its process group killed if
need be) whatever happens, and the server fixture stops the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime.process import ServerProcess
from tests.ircclient import IRCClient
from tests.weechatclient import WeeChat, requires_weechat, server_commands, started

pytestmark = requires_weechat

#: What WeeChat 3.8 supports (``/help cap``); 4.x adds more. Each one the server offers must
#: be requested and acknowledged.
WEECHAT_CAPS = frozenset(
    {
        "account-notify",
        "away-notify",
        "cap-notify",
        "chghost",
        "extended-join",
        "invite-notify",
        "message-tags",
        "multi-prefix",
        "server-time",
        "setname",
        "userhost-in-names",
    }
)
#: What fastchat offered when this test was written, which WeeChat must therefore enable.
EXPECTED = frozenset({"cap-notify", "multi-prefix", "server-time", "userhost-in-names"})
Connect = Callable[..., IRCClient]


@pytest.fixture
def weechat(tmp_path: Path, server: ServerProcess) -> Iterator[WeeChat]:
    with started(tmp_path, [*server_commands(server, "weebot"), "/connect fastchat"]) as client:
        yield client


def _capabilities(weechat: WeeChat, what: str) -> set[str]:
    """WeeChat's own report in the server buffer: ``irc: client capability, WHAT: a b c``."""
    head = f"irc: client capability, {what}: "
    _, line = weechat.wait_log("irc.server.fastchat", lambda p, m: m.startswith(head), head)
    return {name.partition("=")[0] for name in line[len(head) :].split()}


def _said(prefix: str, nick: str) -> bool:
    """A message line's prefix: the nick, maybe after its channel prefix (``@weebot``)."""
    return prefix.lstrip("@+") == nick


def test_weechat_negotiates_and_chats(
    server: ServerProcess, connect: Connect, weechat: WeeChat
) -> None:
    """WeeChat connects with its default capabilities, joins #lobby, and chats both ways with
    a raw peer (in the channel and in private), changes nick, and quits: each line shown once
    with the right text, and no error in any of its buffers."""
    raw = connect("rawpeer")
    raw.sync()

    offered = _capabilities(weechat, "server supports")
    requested = _capabilities(weechat, "requesting")
    enabled = _capabilities(weechat, "enabled")
    assert WEECHAT_CAPS & offered <= requested, "WeeChat asked for less than its default set"
    assert requested <= offered
    assert enabled == requested, "the server refused (NAK) some of what WeeChat asked for"
    assert enabled >= EXPECTED

    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: p == "-->" and m.startswith("weebot "), "its JOIN"
    )
    # (WeeChat may have joined before the raw peer's sync: its JOIN is then in the raw log)
    joined = re.compile(r"^:weebot!\S+ JOIN :?#lobby$")
    if not any(joined.search(line) for line in raw.log):
        raw.expect(joined.pattern)

    # raw -> WeeChat, in the channel: shown once, exactly as sent
    raw.send("PRIVMSG #lobby :héllo weechat ✓ from raw")
    weechat.wait_log(
        "irc.fastchat.#lobby",
        lambda p, m: _said(p, "rawpeer") and m == "héllo weechat ✓ from raw",
        "the raw peer's line",
    )
    # WeeChat -> raw, in the channel
    weechat.send("irc.fastchat.#lobby", "hi raw, ünïcode from weechat")
    raw.expect(r"^(@\S+ )?:weebot!\S+ PRIVMSG #lobby :hi raw, ünïcode from weechat$")
    # private messages, both ways
    raw.send("PRIVMSG weebot :a private word")
    weechat.wait_log(
        "irc.fastchat.rawpeer",
        lambda p, m: p == "rawpeer" and m == "a private word",
        "the private message",
    )
    weechat.send("irc.server.fastchat", "/msg rawpeer private answer")
    raw.expect(r"^:weebot!\S+ PRIVMSG rawpeer :private answer$")
    # WHOIS, then a nick change the raw peer sees
    weechat.send("irc.server.fastchat", "/whois rawpeer")
    weechat.wait_log(
        "irc.server.fastchat", lambda p, m: "[rawpeer]" in m and "End of" in m, "WHOIS's end"
    )
    weechat.send("irc.server.fastchat", "/nick weebot2")
    raw.expect(r"^:weebot!\S+ NICK :?weebot2$")
    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: "weebot2" in m and "now known" in m, "the nick change"
    )

    lobby = weechat.log("irc.fastchat.#lobby")
    theirs = [row for row in lobby if row[1] == "héllo weechat ✓ from raw"]
    ours = [row for row in lobby if row[1] == "hi raw, ünïcode from weechat"]
    assert len(theirs) == 1 and _said(theirs[0][0], "rawpeer"), lobby
    assert len(ours) == 1 and _said(ours[0][0], "weebot"), lobby  # no duplicate, echo or not
    assert weechat.errors() == []

    weechat.send("irc.server.fastchat", "/quit bye from weechat")
    raw.expect(r"^:weebot2!\S+ QUIT :(Quit: )?bye from weechat$")
    weechat.stop()
    assert weechat.errors() == []
