"""IRCv3 ``account-notify`` and ``account-tag`` (https://ircv3.net/specs/extensions/account-notify,
https://ircv3.net/specs/extensions/account-tag), ready for accounts: both are offered, nothing is
sent while nobody has an account, and the hook accounts will call
(``Replica.notify_account``) tells the user and its channel peers that negotiated
account-notify, "including themselves".
"""

from __future__ import annotations

import pytest

from fastchat.server.caps import CAPABILITIES
from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_account_tag_is_a_tag_adding_capability() -> None:
    """account-tag adds the ``account`` tag (tests/unit/test_accounts.py: only for a sender
    logged in to one: "If the user is not identified ... the tag MUST NOT be sent")."""
    assert CAPABILITIES.bit(b"account-tag") & CAPABILITIES.tag_mask


def test_nothing_is_sent_while_nobody_logs_in(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", "account-notify", "account-tag")
    bob = net.negotiated(net.last, "bob")
    ann.send("JOIN #c")
    ann.lines()
    bob.send("JOIN #c", "PRIVMSG #c :hi")
    assert ann.lines() == [
        f":bob!~bob@10.0.0.{net.last + 1} JOIN #c",
        f":bob!~bob@10.0.0.{net.last + 1} PRIVMSG #c :hi",
    ]


def test_the_hook_tells_peers_and_the_user_that_asked(net: FakeNet) -> None:
    """What accounts (issue 12) will do on every worker when a user logs in: set
    ``User.account`` and call the hook with the event's time."""
    ann = net.negotiated(0, "ann", "account-notify")
    bob = net.negotiated(net.last, "bob", "account-notify")
    cat = net.negotiated(net.last, "cat")
    for c in (ann, bob, cat):
        c.send("JOIN #c")
    for c in (ann, bob, cat):
        c.lines()
    for core in net.cores:
        user = core.state.users[ann.client.uid]
        user.account = b"annie"
        core.replica.notify_account(user, 1_000)
    assert ann.lines() == [":ann!~ann@10.0.0.1 ACCOUNT annie"]
    assert bob.lines() == [":ann!~ann@10.0.0.1 ACCOUNT annie"]
    assert cat.lines() == []
    for core in net.cores:
        user = core.state.users[ann.client.uid]
        user.account = None
        core.replica.notify_account(user, 2_000)
    assert bob.lines() == [":ann!~ann@10.0.0.1 ACCOUNT *"]
