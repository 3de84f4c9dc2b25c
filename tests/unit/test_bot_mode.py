"""IRCv3 bot mode (https://ircv3.net/specs/extensions/bot-mode) through worker cores at one and
two workers: user mode ``+B``, set by the user for itself and decided by the sequencer like any
user mode, ``BOT=B`` in ISUPPORT, RPL_WHOISBOT (335) in WHOIS and ``B`` in the WHO flags (and
WHOX ``f``). The ``bot`` message tag is not here yet.
"""

from __future__ import annotations

import pytest

from fastchat.server.network.state import BOT_MODE
from tests.unit.fakenet import FakeClient, FakeNet

S = ":fastchat.local"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def _bot(net: FakeNet) -> FakeClient:
    """``robo`` on the last worker, marked a bot, its echo read."""
    bot = net.user("robo", net.last)
    bot.send("MODE robo +B")
    assert bot.lines() == [":robo MODE robo :+B"]
    return bot


def test_bot_token_in_isupport(net: FakeNet) -> None:
    """ "The value of the BOT token is the mode character which is used to enable bot mode";
    RPL_MYINFO lists it among the user modes."""
    got = net.connect(0).register("ada")
    tokens = [t for line in got if " 005 " in line for t in line.split(" :")[0].split()[3:]]
    assert "BOT=B" in tokens
    assert any(line.startswith(f"{S} 004 ada fastchat.local ") and " Biow " in line for line in got)


def test_a_user_marks_itself_a_bot_on_every_worker(net: FakeNet) -> None:
    """MODE nick +B is echoed and shown by RPL_UMODEIS; the mode is network state, so every
    replica knows the user is a bot (``BOT_MODE in user.modes``), and -B takes it back."""
    bot = _bot(net)
    bot.send("MODE robo")
    assert bot.lines() == [f"{S} 221 robo :+B"]
    for core in net.cores:
        user = core.state.user_by_nick(b"robo")
        assert user is not None and BOT_MODE in user.modes
    bot.send("MODE robo +iB", "MODE robo -B")
    assert bot.lines() == [":robo MODE robo :+i", ":robo MODE robo :-B"]
    for core in net.cores:
        user = core.state.user_by_nick(b"robo")
        assert user is not None and user.modes == b"i"


def test_another_users_bot_mode_cannot_be_set(net: FakeNet) -> None:
    """A user changes only its own modes (RFC 2812 §3.1.5: 502)."""
    _bot(net)
    other = net.user("other")
    other.send("MODE robo -B")
    assert other.lines() == [f"{S} 502 other :Can't change mode for other users"]


def test_whois_says_it_is_a_bot(net: FakeNet) -> None:
    """ "When a client is marked as a bot, they are given a special numeric as part of their
    WHOIS response": ``335 <nick> <target> :<message>``."""
    _bot(net)
    asker = net.user("asker")
    asker.send("WHOIS robo")
    got = asker.lines()
    assert f"{S} 335 asker robo :is a bot" in got
    asker.send("WHOIS asker")
    assert not [line for line in asker.lines() if " 335 " in line]


def test_who_flags_show_the_bot(net: FakeNet) -> None:
    """ "When a RPL_WHOREPLY (352) numeric is returned for a bot, the character used as the
    value of the ISUPPORT BOT token is returned in the flags (alongside H|G)": after the
    channel prefix, as Ergo gives it; also in WHOX ``f``."""
    bot = _bot(net)
    bot.send("JOIN #c")
    bot.lines()
    asker = net.user("asker")
    host = f"10.0.0.{net.last + 1}"
    asker.send("WHO #c", "WHO robo %nf")
    assert asker.lines() == [
        f"{S} 352 asker #c ~robo {host} fastchat.local robo H@B :0 Real robo",
        f"{S} 315 asker #c :End of WHO list",
        f"{S} 354 asker robo HB",
        f"{S} 315 asker robo :End of WHO list",
    ]
