"""IRCv3 WHOX, bot mode and UTF8ONLY against the real server at one and four workers, over raw
sockets. Clients land on whichever worker the kernel picks, so at four workers the asker and
the user it asks about are usually on different workers: every answer comes from the asker's
replica, made current by the read barrier.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.ircclient import IRCClient

Connect = Callable[..., IRCClient]
REFUSED = "Message rejected, your IRC software MUST use UTF-8 encoding on this network"


def _answers(c: IRCClient) -> list[str]:
    """What the server answered ``c`` since its last lines were read, without the source."""
    return [line.split(" ", 1)[1] for line in c.replies()]


def test_isupport_tokens(connect: Connect) -> None:
    """WHOX, BOT=B and UTF8ONLY are advertised."""
    c = connect("isup", register=False)
    tokens = [
        token
        for line in c.register("isup")
        if " 005 " in line
        for token in line.split(" :")[0].split()[3:]
    ]
    assert {"WHOX", "BOT=B", "UTF8ONLY"} <= set(tokens)


def test_whox_fields_token_and_channel(connect: Connect) -> None:
    """``WHO <mask> %<fields>,<token>``: 354 with exactly the fields, in the spec's order;
    the address hidden from another user, shown to the user itself."""
    target = connect("wxtarget")
    target.send("JOIN #wx")
    target.expect(r" 366 wxtarget #wx ")
    asker = connect("wxasker")
    asker.send("JOIN #wx")
    asker.expect(r" 366 wxasker #wx ")
    target.send("AWAY :out")
    target.expect(r" 306 wxtarget ")
    asker.sync()
    asker.send("WHO wxtarget %tcuihsnfdlaor,42")
    asker.send("WHO #wx %cnfo")
    asker.send("WHO wxtarget %tn,9999")
    assert _answers(asker) == [
        "354 wxasker 42 * ~wxtarget 255.255.255.255 127.0.0.1 fastchat.local wxtarget G 0 0 0 "
        "n/a :Real wxtarget",
        "315 wxasker wxtarget :End of WHO list",
        "354 wxasker #wx wxtarget G@ 999",
        "354 wxasker #wx wxasker H n/a",
        "315 wxasker #wx :End of WHO list",
        "354 wxasker 0 wxtarget",
        "315 wxasker wxtarget :End of WHO list",
    ]
    target.sync()
    target.send("WHO wxtarget %in")
    assert _answers(target) == [
        "354 wxtarget 127.0.0.1 wxtarget",
        "315 wxtarget wxtarget :End of WHO list",
    ]


def test_bot_mode(connect: Connect) -> None:
    """MODE nick +B: echoed, then WHOIS has 335 and WHO's flags have B, for another client at
    once (the mode is network state, and queries wait for the read barrier)."""
    bot = connect("robot")
    bot.send("JOIN #bots")
    bot.expect(r" 366 robot #bots ")
    bot.send("MODE robot +B")
    bot.expect(r"^:robot MODE robot :\+B$")
    other = connect("human")
    other.send("WHOIS robot")
    other.send("WHO #bots")
    other.send("WHO robot %nf")
    got = _answers(other)
    assert "335 human robot :is a bot" in got
    assert got[-4:] == [
        "352 human #bots ~robot 127.0.0.1 fastchat.local robot H@B :0 Real robot",
        "315 human #bots :End of WHO list",
        "354 human robot HB",
        "315 human robot :End of WHO list",
    ]
    bot.send("MODE robot -B")
    bot.expect(r"^:robot MODE robot :-B$")
    other.send("WHO robot %nf")
    assert _answers(other) == ["354 human robot H", "315 human robot :End of WHO list"]


def test_a_line_that_is_not_utf8_is_refused(connect: Connect) -> None:
    """A PRIVMSG (fast path) or TOPIC (general path) that is not UTF-8 gets ``FAIL <command>
    INVALID_UTF8`` and reaches nobody; UTF-8 goes through as it came."""
    sender = connect("u8send")
    sender.send("JOIN #u8")
    sender.expect(r" 366 u8send #u8 ")
    reader = connect("u8read")
    reader.send("JOIN #u8")
    reader.expect(r" 366 u8read #u8 ")
    sender.sync()
    sender.send(b"PRIVMSG #u8 :caf\xe9")
    sender.send(b"TOPIC #u8 :\xff")
    sender.send("PRIVMSG #u8 :café")
    assert sender.sync() == [
        f":fastchat.local FAIL PRIVMSG INVALID_UTF8 :{REFUSED}",
        f":fastchat.local FAIL TOPIC INVALID_UTF8 :{REFUSED}",
    ]
    # the channel's one order: a refused message relayed after all would come first
    assert reader.expect_until(r"PRIVMSG #u8 :café$") == [
        ":u8send!~u8send@127.0.0.1 PRIVMSG #u8 :café"
    ]
    reader.send("TOPIC #u8")
    assert reader.sync() == [":fastchat.local 331 u8read #u8 :No topic is set"]
