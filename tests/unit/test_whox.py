"""IRCv3 WHOX (https://ircv3.net/specs/extensions/whox) through worker cores at one and two
workers: ``WHO <mask> %<fields>[,<token>]`` answered with RPL_WHOSPCRPL (354), exactly the
fields asked for in the spec's order, for the same users plain WHO lists; the ``o`` flag
(operators only) with and without WHOX.
"""

from __future__ import annotations

import pytest

from fastchat.server.commands.users import whox_query
from fastchat.server.config import OperBlock
from fastchat.server.network.records import R_SYNC
from fastchat.server.passwords import hash_password
from fastchat.server.render.replies import WhoxQuery
from tests.unit.fakenet import FakeClient, FakeNet

S = ":fastchat.local"
OPERS = (
    OperBlock(b"admin", hash_password(b"secret", n=16), (b"*@*",), frozenset({"see", "chghost"})),
    OperBlock(b"helper", hash_password(b"help", n=16), (b"*@*",), frozenset({"wallops"})),
)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, opers=OPERS, autojoin=())


def _pair(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    """``asker`` on worker 0, ``cool`` on the last worker (another one at two workers), both
    in #c, which ``cool`` created (so it is its operator). Their output so far is read."""
    cool = net.user("cool", net.last)
    asker = net.user("asker")
    cool.send("JOIN #c")
    asker.send("JOIN #c")
    cool.lines()
    asker.lines()
    return asker, cool


def _host(net: FakeNet, worker: int) -> str:
    return f"10.0.0.{worker + 1}"


# -- the request ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fields", "token"),
    [
        (b"tcuihsnfdlaor,123", b"tcuihsnfdlaor", b"123"),
        (b"roaldfnshiuct,123", b"tcuihsnfdlaor", b"123"),  # any order asked: the spec's given
        (b"nn", b"n", b"0"),  # each field once
        (b"xyzn", b"n", b"0"),  # "Servers MUST ignore any non-standard field"
        (b"", b"", b"0"),
        (b"tn,7", b"tn", b"7"),
        (b"tn,1234", b"tn", b"0"),  # "at most 3 characters"
        (b"tn,12a", b"tn", b"0"),  # "only digit characters"
        (b"tn,", b"tn", b"0"),
        (b"tn,\xd9\xa3", b"tn", b"0"),  # a digit, but not an ASCII one
    ],
)
def test_whox_query(spec: bytes, fields: bytes, token: bytes) -> None:
    assert whox_query(spec) == WhoxQuery(fields, token)


# -- the reply ---------------------------------------------------------------------------------


def test_every_field_in_the_spec_order(net: FakeNet) -> None:
    """ "Servers MUST send the fields in the order specified above" (t c u i h s n f d l a o
    r), whatever order the client asked them in; no account is ``0``; a nick's query has no
    channel (``*``); the address is hidden from others (``255.255.255.255``)."""
    asker, _cool = _pair(net)
    host = _host(net, net.last)
    expected = [
        f"{S} 354 asker 123 * ~cool 255.255.255.255 {host} fastchat.local cool H 0 0 0 n/a "
        ":Real cool",
        f"{S} 315 asker cool :End of WHO list",
    ]
    asker.send("WHO cool %tcuihsnfdlaor,123")
    assert asker.lines() == expected
    asker.send("WHO cool %roaldfnshiuct,123")
    assert asker.lines() == expected


def test_only_the_fields_asked_for(net: FakeNet) -> None:
    """ "Servers MUST include in their reply all of the standard fields requested by the
    client, and MUST NOT add any additional field"; without ``r`` the last field is a plain
    token (``:`` only where a parameter needs it)."""
    asker, _cool = _pair(net)
    asker.send("WHO cool %tn,321", "WHO cool %n", "WHO cool %a", "WHO cool %", "WHO cool %r")
    assert asker.lines() == [
        f"{S} 354 asker 321 cool",
        f"{S} 315 asker cool :End of WHO list",
        f"{S} 354 asker cool",
        f"{S} 315 asker cool :End of WHO list",
        f"{S} 354 asker 0",
        f"{S} 315 asker cool :End of WHO list",
        f"{S} 354 asker",
        f"{S} 315 asker cool :End of WHO list",
        f"{S} 354 asker :Real cool",
        f"{S} 315 asker cool :End of WHO list",
    ]


def test_a_channel_gives_its_name_prefixes_and_op_level(net: FakeNet) -> None:
    """``WHO #c``: ``c`` is the channel, ``f`` has the member's prefix, ``o`` the op level as
    Solanum gives it (999 for a channel operator, else n/a); members in the channel's order."""
    asker, _cool = _pair(net)
    asker.send("WHO #c %cnfo")
    assert asker.lines() == [
        f"{S} 354 asker #c cool H@ 999",
        f"{S} 354 asker #c asker H n/a",
        f"{S} 315 asker #c :End of WHO list",
    ]


def test_flags_show_away_and_operator(net: FakeNet) -> None:
    """``f`` is the flags of RPL_WHOREPLY: ``G`` when away, ``*`` for an IRC operator."""
    asker, cool = _pair(net)
    cool.send("AWAY :later", "OPER helper help")
    cool.lines()
    asker.send("WHO cool %nf")
    assert asker.lines()[0] == f"{S} 354 asker cool G*"


def test_the_address_is_shown_to_oneself_and_to_operators_who_see(net: FakeNet) -> None:
    """``i``: "255.255.255.255 is used for [ip] when the server refuses to disclose the IP
    address": it does to everyone but the user itself and an IRC operator with the ``see``
    privilege (as Ergo does); an operator without it sees no more than anyone."""
    asker, cool = _pair(net)
    host = _host(net, net.last)
    cool.send("WHO cool %ni")
    assert cool.lines()[0] == f"{S} 354 cool {host} cool"
    asker.send("OPER helper help")
    asker.lines()
    asker.send("WHO cool %ni")
    assert asker.lines()[0] == f"{S} 354 asker 255.255.255.255 cool"
    other = net.user("other")
    other.send("OPER admin secret")
    other.lines()
    other.send("WHO cool %ni")
    assert other.lines()[0] == f"{S} 354 other {host} cool"


def test_the_address_is_not_the_changed_host(net: FakeNet) -> None:
    """After a CHGHOST, ``h`` is the new host and ``i`` still the address the user connected
    from, on every worker."""
    asker, _cool = _pair(net)
    asker.send("OPER admin secret")
    asker.lines()
    asker.send("CHGHOST cool users/cool")
    asker.lines()
    asker.send("WHO cool %ihn")
    assert asker.lines()[0] == f"{S} 354 asker {_host(net, net.last)} users/cool cool"


def test_the_account_field_reads_the_users_account(net: FakeNet) -> None:
    """``a`` is the account the user is logged in to, ``0`` for none: the hook the accounts
    will fill (nothing sets it yet)."""
    asker, _cool = _pair(net)
    user = asker.core.state.user_by_nick(b"cool")
    assert user is not None and user.account is None
    user.account = b"coolAcct"
    asker.send("WHO cool %na")
    assert asker.lines()[0] == f"{S} 354 asker cool coolAcct"


def test_whox_lists_the_users_who_lists(net: FakeNet) -> None:
    """The same users as plain WHO: a mask leaves out an invisible user the asker shares no
    channel with, an exact nick does not; ``WHO *`` lists those who share a channel."""
    asker, _cool = _pair(net)
    hidden = net.user("hidden", net.last)
    hidden.send("MODE hidden +i")
    hidden.lines()
    asker.send("WHO hid* %n", "WHO hidden %n", "WHO * %n")
    got = asker.lines()
    assert got[:3] == [
        f"{S} 315 asker hid* :End of WHO list",
        f"{S} 354 asker hidden",
        f"{S} 315 asker hidden :End of WHO list",
    ]
    assert sorted(got[3:5]) == [f"{S} 354 asker asker", f"{S} 354 asker cool"]
    assert got[5:] == [f"{S} 315 asker * :End of WHO list"]


def test_operators_only(net: FakeNet) -> None:
    """RFC 2812 §3.6.1: "If the "o" parameter is passed only operators are returned according
    to the name mask supplied"; with WHOX the flag comes before the ``%``."""
    asker, cool = _pair(net)
    cool.send("OPER helper help")
    cool.lines()
    host = _host(net, net.last)
    asker.send("WHO #c o", "WHO #c o%n", "WHO asker o", "WHO #c")
    assert asker.lines() == [
        f"{S} 352 asker #c ~cool {host} fastchat.local cool H*@ :0 Real cool",
        f"{S} 315 asker #c :End of WHO list",
        f"{S} 354 asker cool",
        f"{S} 315 asker #c :End of WHO list",
        f"{S} 315 asker asker :End of WHO list",
        f"{S} 352 asker #c ~cool {host} fastchat.local cool H*@ :0 Real cool",
        f"{S} 352 asker #c ~asker 10.0.0.1 fastchat.local asker H :0 Real asker",
        f"{S} 315 asker #c :End of WHO list",
    ]


def test_whox_is_in_isupport(net: FakeNet) -> None:
    """ "Servers supporting this specification MUST include the WHOX token in RPL_ISUPPORT
    without any value." """
    got = net.connect(0).register("ada")
    tokens = [t for line in got if " 005 " in line for t in line.split(" :")[0].split()[3:]]
    assert "WHOX" in tokens


def test_whox_waits_for_the_read_barrier_at_several_workers() -> None:
    """Like WHO, a WHOX answers from the replica after a sync through the sequencer, so a
    change another worker's user just made is in it."""
    net = FakeNet(workers=2, autojoin=())
    cool = net.user("cool", 1)
    asker = net.user("asker")
    cool.send("AWAY :gone")
    cool.lines()
    asker.send("WHO cool %nf", pump=False)
    assert [r[0] for r in asker.core.outbox] == [R_SYNC]
    assert asker.lines() == [f"{S} 354 asker cool G", f"{S} 315 asker cool :End of WHO list"]
