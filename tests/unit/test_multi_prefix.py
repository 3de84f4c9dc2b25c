"""IRCv3 ``multi-prefix`` (https://ircv3.net/specs/extensions/multi-prefix), through worker
cores at one and two workers: NAMES (353, also the burst that answers JOIN), WHO (352) and
WHOIS (319) show every prefix a member has, highest first, to a client that negotiated it;
a client that did not sees the highest only, as before.
"""

from __future__ import annotations

import pytest

from fastchat.server.network.state import OP, VOICE, prefix_of, prefixes_of
from tests.unit.fakenet import FakeClient, FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


@pytest.mark.parametrize(
    ("flags", "highest", "every"),
    [(0, b"", b""), (VOICE, b"+", b"+"), (OP, b"@", b"@"), (OP | VOICE, b"@", b"@+")],
)
def test_prefixes_in_rank_order(flags: int, highest: bytes, every: bytes) -> None:
    """ "These prefixes MUST be in order of 'rank', from highest to lowest." """
    assert prefix_of(flags) == highest
    assert prefixes_of(flags) == every


def _op_and_voice(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    """``multi`` (multi-prefix, on the last worker) opped and voiced in #c; ``plain`` (no
    capability, on worker 0) a member too. Their output so far is read."""
    multi = net.negotiated(len(net.cores) - 1, "multi", "multi-prefix")
    plain = net.negotiated(0, "plain")
    multi.send("JOIN #c", "MODE #c +v multi")
    plain.send("JOIN #c")
    multi.lines()
    plain.lines()
    return multi, plain


def test_names_shows_every_prefix(net: FakeNet) -> None:
    """ "When requested, the multi-prefix client capability will cause the IRC server to send
    all possible prefixes which apply to a user in NAMES" """
    multi, plain = _op_and_voice(net)
    multi.send("NAMES #c")
    assert multi.lines() == [
        ":fastchat.local 353 multi = #c :@+multi plain",
        ":fastchat.local 366 multi #c :End of /NAMES list.",
    ]
    plain.send("NAMES #c")
    assert plain.lines() == [
        ":fastchat.local 353 plain = #c :@multi plain",
        ":fastchat.local 366 plain #c :End of /NAMES list.",
    ]


def test_join_burst_shows_every_prefix(net: FakeNet) -> None:
    """The NAMES sent on JOIN follows the joining client's capabilities too."""
    multi = net.negotiated(len(net.cores) - 1, "multi", "multi-prefix")
    plain = net.negotiated(0, "plain")
    plain.send("JOIN #c", "MODE #c +v plain")
    plain.lines()
    multi.send("JOIN #c")
    assert multi.lines() == [
        f":multi!~multi@10.0.0.{len(net.cores)} JOIN #c",
        ":fastchat.local 353 multi = #c :@+plain multi",
        ":fastchat.local 366 multi #c :End of /NAMES list.",
    ]
    other = net.negotiated(len(net.cores) - 1, "other")
    other.send("JOIN #c")
    assert other.lines()[1] == ":fastchat.local 353 other = #c :@plain multi other"


def test_who_flags_show_every_prefix(net: FakeNet) -> None:
    """ "... in NAMES and WHO output": RPL_WHOREPLY's flags (``H@+``)."""
    multi, plain = _op_and_voice(net)
    multi.send("WHO #c")
    host = f"10.0.0.{len(net.cores)}"
    assert multi.lines() == [
        f":fastchat.local 352 multi #c ~multi {host} fastchat.local multi H@+ :0 multi",
        ":fastchat.local 352 multi #c ~plain 10.0.0.1 fastchat.local plain H :0 plain",
        ":fastchat.local 315 multi #c :End of WHO list",
    ]
    plain.send("WHO #c")
    assert plain.lines()[0] == (
        f":fastchat.local 352 plain #c ~multi {host} fastchat.local multi H@ :0 multi"
    )


def test_whois_channels_show_every_prefix(net: FakeNet) -> None:
    """RPL_WHOISCHANNELS (319) lists ``@+#c`` for a client that negotiated it, as Ergo and
    InspIRCd do."""
    multi, plain = _op_and_voice(net)
    multi.send("WHOIS multi")
    assert ":fastchat.local 319 multi multi :@+#c" in multi.lines()
    plain.send("WHOIS multi")
    assert ":fastchat.local 319 plain multi :@#c" in plain.lines()


def test_negotiated_after_registration_and_disabled(net: FakeNet) -> None:
    """The capability is the connection's: CAP REQ after registration turns it on for the
    next reply, ``-multi-prefix`` off."""
    multi, plain = _op_and_voice(net)
    plain.send("CAP REQ :multi-prefix")
    plain.lines()
    plain.send("NAMES #c")
    assert plain.lines()[0] == ":fastchat.local 353 plain = #c :@+multi plain"
    multi.send("CAP REQ :-multi-prefix")
    multi.lines()
    multi.send("NAMES #c")
    assert multi.lines()[0] == ":fastchat.local 353 multi = #c :@multi plain"
