"""IRCv3 UTF8ONLY (https://ircv3.net/specs/extensions/utf8-only) through worker cores at one
and two workers: with the ``utf8_only`` setting (the default) the server says ``UTF8ONLY`` in
ISUPPORT, refuses every line that is not UTF-8 with ``FAIL <command> INVALID_UTF8`` (the line
does nothing, on the fast path and the general one alike), and cuts texts to their limits
only between UTF-8 characters, so it never relays anything else.
"""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeClient, FakeNet

S = ":fastchat.local"
REFUSED = "Message rejected, your IRC software MUST use UTF-8 encoding on this network"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=(), awaylen=5, topiclen=5, kicklen=5)


def _pair(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    """``ada`` on worker 0 and ``bob`` on the last worker, both in #c; output read."""
    ada = net.user("ada")
    bob = net.user("bob", net.last)
    ada.send("JOIN #c")
    bob.send("JOIN #c")
    ada.lines()
    bob.lines()
    return ada, bob


def _isupport(lines: list[str]) -> list[str]:
    return [t for line in lines if " 005 " in line for t in line.split(" :")[0].split()[3:]]


def test_utf8only_in_isupport(net: FakeNet) -> None:
    assert "UTF8ONLY" in _isupport(net.connect(0).register("ada"))


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"PRIVMSG #c :caf\xe9", "PRIVMSG"),  # the fast path's shape
        (b"PRIVMSG #c,bob :caf\xe9", "PRIVMSG"),  # the general path's
        (b"NOTICE bob :caf\xe9", "NOTICE"),
        (b"@+x=y PRIVMSG #c :\xff", "PRIVMSG"),
        (b"TOPIC #c :\xc3", "TOPIC"),  # a character cut short
        (b"PRIVMSG #c :\xed\xa0\x80", "PRIVMSG"),  # a surrogate is no UTF-8 character
        (b"PRIVMSG #c :\xc0\xaf", "PRIVMSG"),  # nor is an overlong form
        (b"PRIV\xe9MSG #c :x", "*"),  # "unable to parse the sent command": FAIL *
    ],
)
def test_a_line_that_is_not_utf8_is_refused(net: FakeNet, line: bytes, command: str) -> None:
    """ "FAIL ... indicates that the client's message was rejected because it contained
    invalid UTF-8 data": nobody receives anything of it."""
    ada, bob = _pair(net)
    ada.send(line)
    assert ada.lines() == [f"{S} FAIL {command} INVALID_UTF8 :{REFUSED}"]
    assert bob.lines() == []
    bob.send("TOPIC #c")
    assert bob.lines() == [f"{S} 331 bob #c :No topic is set"]


def test_utf8_passes_untouched(net: FakeNet) -> None:
    """UTF-8 text, however far from ASCII, goes as it came."""
    ada, bob = _pair(net)
    ada.send("PRIVMSG #c :café ☕ 😊", "PRIVMSG #c,bob :ça va")
    assert bob.lines() == [
        ":ada!~ada@10.0.0.1 PRIVMSG #c :café ☕ 😊",
        ":ada!~ada@10.0.0.1 PRIVMSG #c :ça va",
        ":ada!~ada@10.0.0.1 PRIVMSG bob :ça va",
    ]


def test_a_refused_line_keeps_the_order_of_the_others(net: FakeNet) -> None:
    """Lines before and after a refused one go through, in order."""
    ada, bob = _pair(net)
    ada.send(b"PRIVMSG #c :one", b"PRIVMSG #c :\xe9", b"PRIVMSG #c :two")
    assert ada.lines() == [f"{S} FAIL PRIVMSG INVALID_UTF8 :{REFUSED}"]
    assert bob.lines() == [
        ":ada!~ada@10.0.0.1 PRIVMSG #c :one",
        ":ada!~ada@10.0.0.1 PRIVMSG #c :two",
    ]


def test_before_registration_too(net: FakeNet) -> None:
    """ "Client: USER u s e :<non-utf8 realname> / Server: FAIL USER INVALID_UTF8 ...";
    registration waits for a USER it can take."""
    c = net.connect(0)
    c.send(b"NICK u", b"USER u 0 * :i\xe8rc\xe9")
    assert c.lines() == [f"{S} FAIL USER INVALID_UTF8 :{REFUSED}"]
    c.send("USER u 0 * :irc\u00e9")
    assert any(" 001 u " in line for line in c.lines())


def test_texts_are_cut_between_characters(net: FakeNet) -> None:
    """A text cut to its limit (here 5 bytes: AWAYLEN, TOPICLEN, KICKLEN) loses the whole
    character that would not fit, never half of it: "Implementations must ensure that if
    they truncate messages to meet a length limit, they do not do so in the middle of a
    UTF-8-encoded codepoint." """
    ada, bob = _pair(net)
    ada.send("TOPIC #c :abcdé", "KICK #c bob :abcdé")
    assert bob.lines() == [
        ":ada!~ada@10.0.0.1 TOPIC #c :abcd",
        ":ada!~ada@10.0.0.1 KICK #c bob :abcd",
    ]
    ada.send("AWAY :abcdé")
    ada.lines()
    bob.send("WHOIS ada")
    assert f"{S} 301 bob ada :abcd" in bob.lines()


def test_the_setting_off_lets_any_bytes_through() -> None:
    """``--no-utf8-only``: no UTF8ONLY token, and text in any encoding is relayed as it came."""
    net = FakeNet(workers=1, autojoin=(), utf8_only=False)
    ada = net.connect(0)
    assert "UTF8ONLY" not in _isupport(ada.register("ada"))
    bob = net.user("bob")
    ada.send(b"PRIVMSG bob :caf\xe9")
    assert ada.lines() == []
    assert bob.raw_lines() == [b":ada!~ada@10.0.0.1 PRIVMSG bob :caf\xe9"]


def test_the_refusal_carries_the_label(net: FakeNet) -> None:
    """IRCv3 labeled-response: the FAIL is the labeled command's one reply (what irctest's
    testNonUtf8Filtering checks of Ergo)."""
    c = net.negotiated(0, "lab", "batch", "labeled-response")
    c.send(b"@label=xyz PRIVMSG #c :hi\xaa")
    assert c.lines() == [f"@label=xyz {S} FAIL PRIVMSG INVALID_UTF8 :{REFUSED}"]
