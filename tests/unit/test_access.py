"""Channel access lists (network/access.py): bans, ban exceptions (+e), invite exceptions
(+I), mutes (``m:``) and account masks (``a:``), as the sequencer decides them and every
replica applies them. Modern IRC's "Ban", "Exception" and "Invite-Exception" channel modes;
IRCv3 account-extban.
"""

from __future__ import annotations

import doctest

import pytest

from fastchat.irc import numerics as N
from fastchat.server.network import access
from fastchat.server.network.records import E_MODE, ELogin, RJoin, RPart, make
from fastchat.server.network.sequencer import may_speak
from fastchat.server.network.state import State
from tests.unit.test_sequencer import ALICE, BOB, CAROL, NOW, events, network, numerics, replies


@pytest.mark.parametrize(
    ("letter", "mask", "kept"),
    [
        (b"b", b"bob", b"bob!*@*"),
        (b"b", b"*@host", b"*!*@host"),
        (b"b", b"m:bob", b"m:bob!*@*"),
        (b"b", b"m:a:acct", b"m:a:acct"),
        (b"e", b"a:Acct*", b"a:Acct*"),
        (b"e", b"m:*!*evan@*", b"m:*!*evan@*"),
        (b"I", b"a:acct", b"a:acct"),
        (b"I", b"m:bob", None),  # a mute lets nobody in
        (b"b", b"x:bob", None),  # no such type
        (b"b", b"a:", None),  # no account
        (b"b", b"m:m:bob", None),
        (b"b", b"", None),
    ],
)
def test_what_each_list_keeps(letter: bytes, mask: bytes, kept: bytes | None) -> None:
    assert access.normalise(letter, mask) == kept


def test_an_exception_lets_a_banned_user_join() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+b", b"*!*@host")
    assert numerics(net.handle(make(RJoin, CAROL, b"#chan", b""))) == [N.ERR_BANNEDFROMCHAN]
    net.mode(ALICE, b"#chan", b"+e", b"carol")
    net.join(CAROL, b"#chan")


def test_an_invite_exception_lets_a_user_into_an_invite_only_channel() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+iI", b"carol!*@*")
    net.join(CAROL, b"#chan")
    net.handle(make(RPart, CAROL, b"#chan", b""))
    net.mode(ALICE, b"#chan", b"-I", b"CAROL!*@*")  # (removed up to case)
    assert net.chan().invex == ()
    assert numerics(net.handle(make(RJoin, CAROL, b"#chan", b""))) == [N.ERR_INVITEONLYCHAN]


def test_a_mute_keeps_a_member_quiet_but_not_out() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+b", b"m:carol")
    net.join(CAROL, b"#chan")  # a mute is no ban
    assert not may_speak(net.state, net.chan(), CAROL)
    net.mode(ALICE, b"#chan", b"+v", b"carol")
    assert may_speak(net.state, net.chan(), CAROL), "voice speaks through a mute"
    net.mode(ALICE, b"#chan", b"-v+e", b"carol", b"m:*!*@host")
    assert may_speak(net.state, net.chan(), CAROL), "a mute exception lifts the mute"


def test_a_mute_exception_lifts_no_ban() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+be", b"carol", b"m:carol")
    assert numerics(net.handle(make(RJoin, CAROL, b"#chan", b""))) == [N.ERR_BANNEDFROMCHAN]


def test_an_account_mask_matches_the_account_not_the_nick() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+b", b"a:carol")
    net.join(CAROL, b"#chan")  # not logged in: the mask names an account, not a nick
    net.handle(make(RPart, CAROL, b"#chan", b""))
    net.state.apply(make(ELogin, CAROL, b"Carol", b"sasl", NOW))  # (as if SASL said so)
    assert numerics(net.handle(make(RJoin, CAROL, b"#chan", b""))) == [N.ERR_BANNEDFROMCHAN]
    net.mode(ALICE, b"#chan", b"+e", b"a:car*")
    net.join(CAROL, b"#chan")


def test_entries_say_who_set_them_and_when_and_survive_a_snapshot() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+beI", b"x", b"y", b"z")
    replica = State()
    replica.load_snapshot(net.state.snapshot())
    for state in (net.state, replica):
        chan = state.channels[b"#chan"]
        assert chan.bans == (access.Entry(b"x!*@*", b"alice!~alice@host", NOW),)
        assert [e.mask for e in chan.excepts] == [b"y!*@*"]
        assert [e.mask for e in chan.invex] == [b"z!*@*"]


def test_exception_lists_are_shown_to_operators_only() -> None:
    net = network()
    net.mode(ALICE, b"#chan", b"+e", b"y")
    assert numerics(net.mode(BOB, b"#chan", b"e")) == [N.ERR_CHANOPRIVSNEEDED]
    assert numerics(net.mode(BOB, b"#chan", b"I")) == [N.ERR_CHANOPRIVSNEEDED]
    out = net.mode(ALICE, b"#chan", b"e")
    assert replies(out)[0][1:] == (
        N.RPL_EXCEPTLIST,
        (b"#Chan", b"y!*@*", b"alice!~alice@host", b"%d" % (NOW // 1000)),
    )
    assert numerics(out)[-1] == N.RPL_ENDOFEXCEPTLIST
    assert numerics(net.mode(ALICE, b"#chan", b"I")) == [N.RPL_ENDOFINVEXLIST]


def test_an_unknown_mask_type_is_refused() -> None:
    net = network()
    out = net.mode(ALICE, b"#chan", b"+b", b"x:bob")
    assert replies(out) == [
        (ALICE, N.ERR_INVALIDMODEPARAM, (b"#Chan", b"b", b"x:bob", b"Invalid mask"))
    ]
    assert events(out) == []


def test_the_lists_hold_max_entries_together() -> None:
    net = network()
    for i in range(0, access.MAX_ENTRIES - 1, 3):
        net.mode(ALICE, b"#chan", b"+beI", b"b%d" % i, b"e%d" % i, b"i%d" % i)
    assert access.count(net.chan()) == access.MAX_ENTRIES - 1
    out = net.mode(ALICE, b"#chan", b"+bb", b"last", b"over")
    assert [e[2][3] for e in out if e[2][0] == E_MODE] == [b"+b"], "one more fits"
    assert numerics(out) == [N.ERR_BANLISTFULL]
    net.mode(ALICE, b"#chan", b"-b+b", b"last", b"other")
    assert access.find(net.chan().bans, b"other!*@*") is not None, "room again once one goes"


def test_any_member_sees_the_bans() -> None:
    """Bans (367) say who is kept out: any member may list them, as before +e and +I."""
    net = network()
    net.mode(ALICE, b"#chan", b"+b", b"x")
    assert numerics(net.mode(BOB, b"#chan", b"b")) == [N.RPL_BANLIST, N.RPL_ENDOFBANLIST]


def test_doctests() -> None:
    result = doctest.testmod(access, verbose=False, report=True)
    assert result.attempted > 0 and result.failed == 0
