"""IRCv3 ``invite-notify`` (https://ircv3.net/specs/extensions/invite-notify) through worker
cores at one and two workers: the channel's operators that negotiated it see
``:inviter INVITE target #channel`` (the spec lets a server choose "to only send the message
to clients having channel op"; as Ergo, not to the inviter or the invited, who have theirs).
"""

from __future__ import annotations

import pytest

from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def test_channel_operators_that_asked_see_invitations(net: FakeNet) -> None:
    op = net.negotiated(0, "op", "invite-notify")
    op.send("JOIN #c")  # creates it: an operator
    op2 = net.negotiated(net.last, "op2", "invite-notify")
    opplain = net.negotiated(net.last, "opplain")
    member = net.negotiated(0, "member", "invite-notify")  # not an operator
    for c in (op2, opplain, member):
        c.send("JOIN #c")
    op.send("MODE #c +oo op2 opplain")
    guest = net.negotiated(net.last, "guest", "invite-notify")
    for c in (op, op2, opplain, member, guest):
        c.lines()
    op2.send("INVITE guest #c")
    line = f":op2!~op2@10.0.0.{net.last + 1} INVITE guest :#c"
    assert op.lines() == [line]
    assert op2.lines() == [":fastchat.local 341 op2 guest #c"]
    assert guest.lines() == [line]
    assert opplain.lines() == []
    assert member.lines() == []
