"""IRCv3 ``extended-join`` (https://ircv3.net/specs/extensions/extended-join) through worker
cores at one and two workers: ``JOIN #channel <account> :<realname>`` to members that
negotiated it, ``*`` as the account of a user logged in to none; the plain JOIN to the rest;
each form rendered once.
"""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_join_is_extended_for_those_that_asked(net: FakeNet) -> None:
    """ "JOIN #channelname * :Real Name": the user has not logged in to an account. The
    joining client gets its own JOIN in the form it asked for too."""
    ann = net.negotiated(0, "ann", "extended-join")
    cat = net.negotiated(0, "cat")
    for c in (ann, cat):
        c.send("JOIN #c")
    ann.lines()
    cat.lines()
    bob = net.connect(net.last)
    bob.send("CAP REQ :extended-join", "NICK bob", "USER bob 0 * :Bob Realname", "CAP END")
    bob.lines()
    bob.send("JOIN #c")
    mask = f"bob!~bob@10.0.0.{net.last + 1}"
    assert ann.lines() == [f":{mask} JOIN #c * :Bob Realname"]
    assert cat.lines() == [f":{mask} JOIN #c"]
    assert bob.lines()[0] == f":{mask} JOIN #c * :Bob Realname"


def test_the_realname_is_the_current_one(net: FakeNet) -> None:
    """After a SETNAME, a JOIN shows the new realname (network state on every worker)."""
    ann = net.negotiated(0, "ann", "extended-join")
    ann.send("JOIN #c")
    ann.lines()
    bob = net.negotiated(net.last, "bob")
    bob.send("SETNAME :Robert", "JOIN #c")
    assert ann.lines() == [f":bob!~bob@10.0.0.{net.last + 1} JOIN #c * :Robert"]


def test_an_account_shows_once_accounts_set_it(net: FakeNet) -> None:
    """The hook for accounts (issue 12): the user's ``account`` is what the JOIN shows."""
    ann = net.negotiated(0, "ann", "extended-join")
    ann.send("JOIN #c")
    ann.lines()
    bob = net.negotiated(net.last, "bob")
    for core in net.cores:
        core.state.users[bob.client.uid].account = b"robert"
    bob.send("JOIN #c")
    assert ann.lines() == [f":bob!~bob@10.0.0.{net.last + 1} JOIN #c robert :bob"]


def test_each_form_is_rendered_once() -> None:
    """Two members with the capability on one worker get the very same bytes object, and so
    do two without it: one line per form, not per recipient."""
    net = FakeNet(workers=1, autojoin=())
    ext = [net.negotiated(0, f"e{i}", "extended-join") for i in range(2)]
    plain = [net.negotiated(0, f"p{i}") for i in range(2)]
    for c in (*ext, *plain):
        c.send("JOIN #c")
    net.collect()
    joiner = net.negotiated(0, "j")
    joiner.send("JOIN #c")
    assert ext[0].client.pending[-1] is ext[1].client.pending[-1]
    assert plain[0].client.pending[-1] is plain[1].client.pending[-1]
    assert ext[0].client.pending[-1] != plain[0].client.pending[-1]
