"""IRCv3 capabilities: the registry (``fastchat.server.caps``) and what negotiating one does.

First :class:`Registry` on its own (bits, ``CAP LS`` tokens, ``CAP REQ``'s all-or-nothing,
message tags); then, end to end through worker cores at one and two workers, a test
capability that adds a message tag: CAP LS/REQ/LIST, and the fan-out formatting each line once
per variant. https://ircv3.net/specs/extensions/capability-negotiation and
https://ircv3.net/specs/extensions/message-tags.
"""

from __future__ import annotations

import re

import pytest

from fastchat.server.caps import CAPABILITIES, Capability, Meta, Registry, discover
from tests.unit.fakenet import FakeNet

cap = Capability


# --- the registry -------------------------------------------------------------------------------


def test_bits_are_given_in_name_order() -> None:
    """Each capability gets one bit, in name order whatever the declaration order, so a
    client's set is one ``int`` and the order is stable from run to run."""
    reg = Registry([cap(b"zeta"), cap(b"alpha"), cap(b"mid")])
    assert [c.name for c in reg] == [b"alpha", b"mid", b"zeta"]
    assert [reg.bit(n) for n in (b"alpha", b"mid", b"zeta")] == [1, 2, 4]
    assert reg.bit(b"unknown") == 0
    assert len(reg) == 3
    assert reg.names(0b101) == [b"alpha", b"zeta"]
    assert reg.names(0) == []
    assert reg.get(b"mid") == cap(b"mid") and reg.get(b"nope") is None


def test_a_capability_declared_twice_is_refused() -> None:
    """Two declarations of one name are a bug, caught when the registry is built."""
    with pytest.raises(ValueError, match="twice"):
        Registry([cap(b"a"), cap(b"a", value=b"x")])
    reg = Registry([cap(b"a")])
    with pytest.raises(ValueError, match="twice"):
        reg.add(cap(b"a"))


def test_tag_mask_holds_only_capabilities_that_add_tags() -> None:
    """``tag_mask``: the bits whose capabilities add tags (the fan-out's one ``&``)."""
    reg = Registry([cap(b"a"), cap(b"b", tags=((b"t", lambda m: b"1"),)), cap(b"c")])
    assert reg.tag_mask == reg.bit(b"b") == 2


@pytest.mark.parametrize(
    ("version", "tokens"),
    [
        (0, [b"a", b"b", b"sasl"]),
        (301, [b"a", b"b", b"sasl"]),
        (302, [b"a", b"b=1,2", b"sasl=PLAIN,EXTERNAL"]),
        (303, [b"a", b"b=1,2", b"sasl=PLAIN,EXTERNAL"]),
    ],
)
def test_ls_tokens(version: int, tokens: list[bytes]) -> None:
    """IRCv3 "CAP LS": values (``name=value``) only for clients that asked for version 302 or
    later; before that, names only."""
    reg = Registry([cap(b"sasl", value=b"PLAIN,EXTERNAL"), cap(b"b", value=b"1,2"), cap(b"a")])
    assert reg.ls_tokens(version) == tokens


REQ = Registry(
    [
        cap(b"a"),
        cap(b"b"),
        cap(b"needs-a", requires=(b"a",)),
        cap(b"needs-a-b", requires=(b"a", b"b")),
    ]
)
A, B, NA, NAB = (REQ.bit(n) for n in (b"a", b"b", b"needs-a", b"needs-a-b"))


@pytest.mark.parametrize(
    ("before", "tokens", "after"),
    [
        (0, [b"a"], A),
        (0, [b"a", b"b"], A | B),
        (A, [b"a"], A),  # asking again changes nothing
        (A | B, [b"-a"], B),
        (A, [b"-b"], A),  # disabling what is not enabled: fine
        (A, [b"-a", b"a"], A),  # in order
        (A, [b"a", b"-a"], 0),
        (0, [b"nope"], None),
        (A, [b"b", b"nope"], None),  # all or nothing: b is not enabled either
        (A, [b"-nope"], None),
        (0, [b"needs-a"], None),  # its requirement missing
        (0, [b"needs-a", b"a"], A | NA),  # given in the same request
        (A, [b"needs-a"], A | NA),  # already enabled
        (A | NA, [b"-a"], None),  # would leave needs-a without a
        (A, [b"needs-a-b"], None),
        (A | B, [b"needs-a-b"], A | B | NAB),
        (A | B, [], A | B),
    ],
)
def test_request_is_all_or_nothing(before: int, tokens: list[bytes], after: int | None) -> None:
    """IRCv3 "CAP REQ": "The capability identifier set must be accepted as a whole, or
    rejected entirely"; ``-name`` disables; a capability whose requirements would not all be
    enabled refuses the request (None: NAK)."""
    assert REQ.request(before, tokens) == after


def test_tags_in_order_once_and_none_left_out() -> None:
    """The tags for a set of capabilities come in registry (name) order, each tag name once
    (the first capability that adds it wins), and a tag whose value is None is left out."""
    reg = Registry(
        [
            cap(b"z-time", tags=((b"time", lambda m: b"T%d" % m.time),)),
            cap(
                b"a-acct", tags=((b"account", lambda m: None), (b"id", lambda m: b"%d" % m.sender))
            ),
            cap(b"m-dup", tags=((b"time", lambda m: b"dup"), (b"+x", lambda m: b"x"))),
            cap(b"plain"),
        ]
    )
    meta = Meta(time=1234, sender=7)
    everything = reg.bit(b"z-time") | reg.bit(b"a-acct") | reg.bit(b"m-dup") | reg.bit(b"plain")
    assert reg.tags(everything, meta) == [(b"id", b"7"), (b"time", b"dup"), (b"+x", b"x")]
    assert reg.tags(reg.bit(b"z-time"), meta) == [(b"time", b"T1234")]
    assert reg.tags(reg.bit(b"a-acct"), meta) == [(b"id", b"7")]
    assert reg.tags(reg.bit(b"plain"), meta) == []
    assert reg.tags(0, meta) == []


def test_discover_returns_a_registry() -> None:
    """``discover()`` builds a :class:`Registry` from this package's capability modules; the
    server's ``CAPABILITIES`` is such a registry."""
    found = discover()
    assert isinstance(found, Registry)
    assert [c.name for c in found] == [c.name for c in CAPABILITIES]
    assert all(isinstance(c, Capability) for c in found)


# --- end to end -----------------------------------------------------------------------------------

TAGGED = b"example/tagged"
TEST_CAPS = Registry(
    [
        Capability(TAGGED, tags=((b"example/t", lambda m: b"%d" % m.time),)),
        Capability(b"example/plain", value=b"v1"),
    ]
)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, caps=TEST_CAPS)


def test_cap_ls_302_lists_the_registry(net: FakeNet) -> None:
    """IRCv3 "CAP LS": every capability offered, with ``=value`` for version 302."""
    c = net.connect(net.last)
    c.send("CAP LS 302")
    assert c.lines() == [":fastchat.local CAP * LS :example/plain=v1 example/tagged"]


def test_cap_ls_without_version_lists_names(net: FakeNet) -> None:
    """Before 302, no values."""
    c = net.connect(net.last)
    c.send("CAP LS")
    assert c.lines() == [":fastchat.local CAP * LS :example/plain example/tagged"]


def test_cap_req_ack_nak_and_list(net: FakeNet) -> None:
    """IRCv3 "CAP REQ": ACK the whole request, or NAK it and enable nothing; "CAP LIST": the
    enabled set."""
    c = net.connect(net.last)
    c.send("CAP LS 302")
    c.lines()
    c.send("CAP REQ :nope")
    assert c.lines() == [":fastchat.local CAP * NAK :nope"]
    c.send("CAP REQ :example/tagged nope")
    assert c.lines() == [":fastchat.local CAP * NAK :example/tagged nope"]
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :"]
    assert c.client.caps == 0 and c.core.tagged == 0
    c.send("CAP REQ :example/tagged")
    assert c.lines() == [":fastchat.local CAP * ACK :example/tagged"]
    assert c.core.tagged == 1
    c.send("CAP REQ :example/plain")
    assert c.lines() == [":fastchat.local CAP * ACK :example/plain"]
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :example/plain example/tagged"]
    c.send("CAP REQ :-example/tagged")
    assert c.lines() == [":fastchat.local CAP * ACK :-example/tagged"]
    assert c.core.tagged == 0
    c.send("CAP LIST")
    assert c.lines() == [":fastchat.local CAP * LIST :example/plain"]


def test_cap_req_after_registration(net: FakeNet) -> None:
    """IRCv3 allows CAP REQ after registration; replies are addressed to the nick."""
    c = net.negotiated(net.last, "late")
    c.send("CAP REQ :example/tagged")
    assert c.lines() == [":fastchat.local CAP late ACK :example/tagged"]
    assert c.core.tagged == 1


def _expect_tagged(net: FakeNet, line: str) -> str:
    return f"@example/t={int(net.now * 1000)} {line}"


def test_channel_message_tagged_for_the_tagged_only(net: FakeNet) -> None:
    """IRCv3 message-tags: a client that negotiated a capability adding a tag receives the
    line with ``@tag=value``; a client that did not receives it plain."""
    tagged = net.negotiated(net.last, "t", "example/tagged")
    plain = net.negotiated(net.last, "p")
    sender = net.negotiated(0, "s")
    for c in (tagged, plain, sender):
        c.lines()
    net.now += 12.5
    sender.send("PRIVMSG #lobby :hello")
    line = ":s!~s@10.0.0.1 PRIVMSG #lobby :hello"
    assert tagged.lines() == [_expect_tagged(net, line)]
    assert plain.lines() == [line]
    assert sender.lines() == []


def test_a_run_of_messages_is_tagged_line_by_line(net: FakeNet) -> None:
    """Several messages in one write travel as one run; the tagged client gets each line
    with its tags."""
    tagged = net.negotiated(net.last, "t", "example/tagged")
    sender = net.negotiated(0, "s")
    tagged.lines()
    sender.send("PRIVMSG #lobby :1", "PRIVMSG #lobby :2", "PRIVMSG #lobby :3")
    assert tagged.lines() == [
        _expect_tagged(net, f":s!~s@10.0.0.1 PRIVMSG #lobby :{i}") for i in (1, 2, 3)
    ]


def test_private_message_is_tagged(net: FakeNet) -> None:
    """A message to the tagged client's nick carries the tag too."""
    tagged = net.negotiated(net.last, "t", "example/tagged")
    sender = net.negotiated(0, "s")
    tagged.lines()
    sender.send("PRIVMSG t :psst")
    assert tagged.lines() == [_expect_tagged(net, ":s!~s@10.0.0.1 PRIVMSG t :psst")]


def test_one_bytes_object_per_variant(net: FakeNet) -> None:
    """STYLE "format once per variant, never per recipient": on a worker, every untagged
    recipient queues the *same* ``bytes`` object (so do clients whose capabilities add no
    tag), and every tagged recipient shares one tagged object."""
    w = net.last
    tagged = [net.negotiated(w, f"t{i}", "example/tagged") for i in range(3)]
    plain = [net.negotiated(w, f"p{i}") for i in range(3)]
    plain.append(net.negotiated(w, "pc", "example/plain"))  # a capability, but no tags
    sender = net.negotiated(0, "s")
    everyone = [*tagged, *plain, sender]
    for c in everyone:
        c.lines()
    sender.send("PRIVMSG #lobby :once")
    queued_tagged = [c.client.pending for c in tagged]
    queued_plain = [c.client.pending for c in plain]
    assert all(len(q) == 1 for q in queued_tagged + queued_plain)
    first_plain, first_tagged = queued_plain[0][0], queued_tagged[0][0]
    assert all(q[0] is first_plain for q in queued_plain)
    assert all(q[0] is first_tagged for q in queued_tagged)
    assert first_tagged == _expect_tagged(net, ":s!~s@10.0.0.1 PRIVMSG #lobby :once\r\n").encode()
    assert first_plain == b":s!~s@10.0.0.1 PRIVMSG #lobby :once\r\n"


def test_join_part_nick_quit_topic_carry_the_tag(net: FakeNet) -> None:
    """Every line the fan-out sends (JOIN, PART, NICK, TOPIC, KICK, QUIT: RFC 2812 §3.1-3.2)
    has the tagged client's variant, the tagged client's own JOIN echo included."""
    tagged = net.negotiated(net.last, "t", "example/tagged")
    plain = net.negotiated(net.last, "p")
    actor = net.negotiated(0, "x")
    for c in (tagged, plain, actor):
        c.lines()
    tagged.send("JOIN #room")
    assert tagged.lines()[0] == _expect_tagged(net, f":t!~t@10.0.0.{net.last + 1} JOIN #room")
    plain.send("JOIN #room")
    for c in (tagged, plain, actor):
        c.lines()
    steps = [
        ("JOIN #room", ":x!~x@10.0.0.1 JOIN #room"),
        ("TOPIC #room :hi", None),  # not an op: 482 to x only
        ("NICK y", ":x!~x@10.0.0.1 NICK :y"),
        ("PART #room :later", ":y!~x@10.0.0.1 PART #room :later"),
        ("JOIN #room", ":y!~x@10.0.0.1 JOIN #room"),
        ("QUIT :bye", ":y!~x@10.0.0.1 QUIT :Quit: bye"),
    ]
    for command, line in steps:
        net.now += 1
        actor.send(command)
        if line is None:
            assert tagged.lines() == [] and plain.lines() == []
            continue
        assert tagged.lines() == [_expect_tagged(net, line)], command
        assert plain.lines() == [line], command
    net.now += 1
    tagged.send("TOPIC #room :set", "KICK #room p :out")
    assert plain.lines() == [
        f":t!~t@10.0.0.{net.last + 1} TOPIC #room :set",
        f":t!~t@10.0.0.{net.last + 1} KICK #room p :out",
    ]
    assert tagged.lines() == [
        _expect_tagged(net, f":t!~t@10.0.0.{net.last + 1} TOPIC #room :set"),
        _expect_tagged(net, f":t!~t@10.0.0.{net.last + 1} KICK #room p :out"),
    ]


def _shell_closes(net: FakeNet) -> None:
    """What the I/O shell does after flushing a closing client: forget it."""
    for core in net.cores:
        for client in list(core.closing):
            core.forget(client)


@pytest.mark.parametrize("how", ["quit", "connection-lost"])
def test_tagged_count_drops_when_the_tagged_client_goes(net: FakeNet, how: str) -> None:
    """``core.tagged`` counts the local clients that need tagged lines; when the last one
    goes (QUIT, or its connection drops), it is 0 again and the fan-out is back on its plain
    path: the untagged still get the line."""
    w = net.last
    tagged = net.negotiated(w, "t", "example/tagged")
    plain = net.negotiated(w, "p")
    sender = net.negotiated(0, "s")
    core = net.cores[w]
    assert core.tagged == 1
    if how == "quit":
        tagged.send("QUIT")
    else:
        core.connection_lost(tagged.client, b"Connection reset by peer", net.now)
        net.pump()
    _shell_closes(net)
    assert core.tagged == 0
    assert tagged.client.uid not in core.clients
    plain.lines()
    sender.send("PRIVMSG #lobby :after")
    assert plain.lines() == [":s!~s@10.0.0.1 PRIVMSG #lobby :after"]


def test_tagged_count_for_an_unregistered_client(net: FakeNet) -> None:
    """A client that negotiated the tag capability and leaves before registering is
    forgotten too."""
    core = net.cores[net.last]
    c = net.connect(net.last)
    c.send("CAP LS 302", "CAP REQ :example/tagged")
    assert core.tagged == 1
    c.send("QUIT")
    _shell_closes(net)
    assert core.tagged == 0


def test_cap_ls_302_splits_a_long_list(net: FakeNet) -> None:
    """IRCv3 "Multiline replies to CAP LS": with version 302 a list longer than a line is
    sent over several, every line but the last with ``*`` before the list; each fits in 512
    bytes and no capability is cut."""
    many = Registry(Capability(b"example.org/capability-%02d" % i, value=b"v") for i in range(40))
    net = FakeNet(workers=len(net.cores), caps=many)
    c = net.connect(net.last)
    c.send("CAP LS 302")
    got = c.raw_lines()
    assert len(got) > 1
    assert all(len(line) + 2 <= 512 for line in got)
    assert all(line.startswith(b":fastchat.local CAP * LS * :") for line in got[:-1])
    assert got[-1].startswith(b":fastchat.local CAP * LS :")
    tokens = [t for line in got for t in line.split(b" :", 1)[1].split()]
    assert tokens == many.ls_tokens(302)


def test_cap_list_does_not_cut_a_capability_in_half(net: FakeNet) -> None:
    """IRCv3 "Multiline replies to CAP LS and CAP LIST": a LIST too long for one line goes
    over several (``*`` before all but the last); every enabled capability is named whole."""
    many = Registry(Capability(b"example.org/capability-%02d" % i) for i in range(40))
    net = FakeNet(workers=len(net.cores), caps=many)
    c = net.connect(net.last)
    c.send("CAP LS 302")
    names = [cap.name.decode() for cap in many]
    for i in range(0, len(names), 10):
        c.send("CAP REQ :" + " ".join(names[i : i + 10]))
    c.lines()
    c.send("CAP LIST")
    got = c.lines()
    listed = [t for line in got for t in line.split(" :", 1)[1].split()]
    assert all(re.match(r":fastchat.local CAP \* LIST ", line) for line in got)
    assert listed == names


def test_a_capability_listed_per_connection_and_not_requestable() -> None:
    """``listed_for``: the value depends on the configuration and the connection, and None
    leaves the capability out of CAP LS; ``requestable=False``: a REQ of it is a NAK (sts)."""
    from types import SimpleNamespace

    def value(config: object, client: object) -> bytes | None:
        if not getattr(config, "on", False):
            return None
        return b"secure" if getattr(client, "secure", False) else b"plain"

    reg = Registry([Capability(b"a"), Capability(b"info", listed_for=value, requestable=False)])
    on, off = SimpleNamespace(on=True), SimpleNamespace(on=False)
    assert reg.ls_tokens(302, on, SimpleNamespace(secure=True)) == [b"a", b"info=secure"]
    assert reg.ls_tokens(302, on, SimpleNamespace(secure=False)) == [b"a", b"info=plain"]
    assert reg.ls_tokens(301, on, SimpleNamespace(secure=False)) == [b"a"]
    assert reg.ls_tokens(302, off, None) == [b"a"]
    assert reg.ls_tokens(302) == [b"a"]
    assert reg.request(0, [b"info"]) is None
    assert reg.request(0, [b"a"]) == reg.bit(b"a")
