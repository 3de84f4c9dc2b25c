"""The server's sans-I/O core: commands, the sequencer and cross-worker behaviour, without a
single socket. Each test runs on one worker (the sequencer in-process) and on three (an
in-memory hub), so both paths are held to the same transcript."""

from __future__ import annotations

import re

import pytest

from fastchat.server.engine.offload import PasswordCheck
from fastchat.server.network.state import State
from fastchat.server.passwords import hash_password
from tests.unit.fakenet import FakeNet


@pytest.fixture(params=[1, 3], ids=["1worker", "3workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def w(net: FakeNet, i: int) -> int:
    """Spread clients over the workers there are."""
    return i % len(net.cores)


def find(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


def test_registration_burst(net: FakeNet) -> None:
    lines = net.connect(0).register("ada")
    assert lines[0].startswith(":fastchat.local 001 ada :Welcome")
    assert find(lines, r"^:ada!~ada@10\.0\.0\.1 JOIN #lobby$")
    assert lines[-1] == ":fastchat.local 366 ada #lobby :End of /NAMES list."


def test_message_to_channel_reaches_every_other_member_once(net: FakeNet) -> None:
    a, b, c = (net.connect(w(net, i), n) for i, n in enumerate(["a", "b", "c"]))
    for x in (a, b, c):
        x.lines()
    a.send("PRIVMSG #lobby :hi")
    assert b.lines() == [":a!~a@10.0.0.1 PRIVMSG #lobby :hi"]
    assert c.lines() == [":a!~a@10.0.0.1 PRIVMSG #lobby :hi"]
    assert a.lines() == []


def test_fast_path_matches_general_path(net: FakeNet) -> None:
    """The PRIVMSG fast path and the parser path relay identical bytes."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    b.lines()
    a.send("PRIVMSG #lobby :fast path")  # fast path
    a.send("privmsg #lobby :general path")  # lower case: parser path
    a.send("PRIVMSG #lobby,b :two targets")  # parser path
    assert b.lines() == [
        ":a!~a@10.0.0.1 PRIVMSG #lobby :fast path",
        ":a!~a@10.0.0.1 PRIVMSG #lobby :general path",
        ":a!~a@10.0.0.1 PRIVMSG #lobby :two targets",
        ":a!~a@10.0.0.1 PRIVMSG b :two targets",
    ]


def test_join_then_message_in_one_write(net: FakeNet) -> None:
    """A client's commands are processed in order: a message right after JOIN, in the same
    write, is sent to the channel it just joined (the barrier holds it until JOIN is done)."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    b.send("JOIN #x")
    b.lines()
    a.send("JOIN #x\r\nPRIVMSG #x :right after")
    assert b.lines() == [":a!~a@10.0.0.1 JOIN #x", ":a!~a@10.0.0.1 PRIVMSG #x :right after"]
    assert not find(a.lines(), " 404 ")


def test_nick_race_one_winner() -> None:
    """Two workers' registrations for one nick reach the sequencer one after the other."""
    net = FakeNet(workers=2)
    a, b = net.connect(0), net.connect(1)
    a.send("NICK same", "USER a 0 * :a", pump=False)
    b.send("NICK same", "USER b 0 * :b", pump=False)
    net.pump(order=[1, 0])
    la, lb = a.lines(), b.lines()
    assert find(lb, " 001 same ") and not find(la, " 001 ")
    assert find(la, r" 433 \* same :Nickname is already in use")
    a.send("NICK other")
    assert find(a.lines(), " 001 other ")


def test_quit_seen_once_by_members_of_several_channels(net: FakeNet) -> None:
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    a.send("JOIN #p,#q")
    b.send("JOIN #p,#q")
    b.lines()
    a.send("QUIT :bye")
    assert b.lines() == [":a!~a@10.0.0.1 QUIT :Quit: bye"]
    c = net.connect(0)
    assert find(c.register("a"), " 001 a ")  # the nick is free again


def test_worker_loss_quits_its_users() -> None:
    """What the hub does when a worker's bus socket closes."""
    from fastchat.server.network.records import E_QUIT

    net = FakeNet(workers=2)
    a = net.connect(0, "a")
    net.connect(1, "b")
    a.lines()
    for uid in net.state.users_on_worker(1):
        net.event((E_QUIT, uid, b"Connection reset by peer", 0))
    net.pump()
    assert a.lines() == [":b!~b@10.0.0.2 QUIT :Connection reset by peer"]
    assert net.cores[0].state.user_by_nick(b"b") is None


def test_names_who_whois_from_replica(net: FakeNet) -> None:
    a = net.connect(0, "a")
    net.connect(w(net, 1), "b")
    net.connect(w(net, 2), "c")
    a.lines()
    a.send("NAMES #lobby")
    names = find(a.lines(), " 353 ")[0].split(":")[-1].split()
    assert sorted(n.lstrip("@") for n in names) == ["a", "b", "c"]
    a.send("WHOIS c")
    assert find(a.lines(), r" 311 a c ~c 10\.0\.0\.\d \* :Real c$")


def test_topic_requires_op_on_plus_t(net: FakeNet) -> None:
    op, other = net.connect(0, "op"), net.connect(w(net, 1), "other")
    op.send("JOIN #t")
    other.send("JOIN #t")
    other.lines()
    other.send("TOPIC #t :nope")
    assert find(other.lines(), " 482 other #t ")
    op.send("TOPIC #t :yes")
    assert other.lines() == [":op!~op@10.0.0.1 TOPIC #t :yes"]


def test_flood_control_delays_not_drops() -> None:
    net = FakeNet(workers=1, flood_control=True, flood_burst=3, flood_rate=1.0)
    a, b = net.connect(0, "a"), net.connect(0, "b")
    a.client.flood_clock = 0.0
    b.lines()
    a.send(*[f"PRIVMSG #lobby :{i}" for i in range(6)])
    first = [line.split(":")[-1] for line in b.lines()]
    assert first and len(first) < 6
    core = net.cores[0]
    for _ in range(10):
        net.now += 1.0
        core.release_throttled(net.now)
    rest = [line.split(":")[-1] for line in b.lines()]
    assert first + rest == [str(i) for i in range(6)]


def test_recvq_exceeded_disconnects() -> None:
    net = FakeNet(workers=1, flood_control=True, flood_burst=1, flood_rate=1.0, recvq=200)
    a = net.connect(0, "a")
    a.lines()
    a.send(*[f"PRIVMSG #lobby :{'x' * 40}" for _ in range(20)])
    assert a.client.closed
    assert find(a.lines(), r"^ERROR :.*Excess Flood")


def test_handler_crash_disconnects_only_that_client(caplog: pytest.LogCaptureFixture) -> None:
    net = FakeNet(workers=1, test_hooks=True)
    a, b = net.connect(0, "a"), net.connect(0, "b")
    b.lines()
    a.send("FAULT")
    assert a.client.closed
    assert find(a.lines(), r"^ERROR :.*Internal server error")
    assert "connection 0x" in caplog.text
    assert b.lines() == [":a!~a@10.0.0.1 QUIT :Internal server error"]


def test_timeouts() -> None:
    net = FakeNet(workers=1, registration_timeout=5, ping_interval=10, ping_timeout=3)
    idle = net.connect(0)
    user = net.connect(0, "u")
    user.lines()
    core = net.cores[0]
    net.now += 6
    core.tick(net.now)
    assert idle.client.closed and find(idle.lines(), "Registration timeout")
    net.now += 5
    core.tick(net.now)
    assert user.lines() == ["PING :fastchat.local"]
    net.now += 4
    core.tick(net.now)
    assert user.client.closed and find(user.lines(), "Ping timeout")


def test_mode_changes_apply_on_every_replica(net: FakeNet) -> None:
    op, v = net.connect(0, "op"), net.connect(w(net, 1), "v")
    op.send("JOIN #m")
    v.send("JOIN #m")
    op.send("MODE #m +mv-t v")
    assert find(v.lines(), r"^:op!\S+ MODE #m \+mv-t :v$")
    for core in net.cores:
        chan = core.state.channel(b"#m")
        assert chan is not None and chan.modes == b"mn"


def test_pipelined_messages_keep_their_order_across_targets(net: FakeNet) -> None:
    """Consecutive messages to one channel travel as one record (a run); any other command
    ends the run first, so what a member sees is exactly the order the sender wrote."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    for c in (a, b):
        c.send("JOIN #r")
    b.lines()
    a.send(
        "PRIVMSG #r :1",
        "PRIVMSG #r :2",
        "PRIVMSG b :3",
        "NOTICE #r :4",
        "PRIVMSG #lobby :5",
        "PRIVMSG #r :6",
        "TOPIC #r :7",
        "PRIVMSG #r :8",
        "PART #r",
    )
    got = [line.rsplit(":", 1)[-1] if "PART" not in line else "part" for line in b.lines()]
    assert got == ["1", "2", "3", "4", "5", "6", "7", "8", "part"]


def test_run_is_not_merged_when_the_replica_refuses(net: FakeNet) -> None:
    """Only approved messages are joined: each refused one gets its own 404, in order."""
    op, x = net.connect(0, "op"), net.connect(w(net, 1), "x")
    op.send("JOIN #q")
    op.send("MODE #q +m")
    x.send("JOIN #q")
    x.lines()
    x.send("PRIVMSG #q :no", "PRIVMSG #q :no", "PRIVMSG #lobby :yes")
    assert [line.split()[1] for line in x.lines()] == ["404", "404"]


# --- line limits, tags, blank lines, parameters ------------------------------------------------


def test_tagged_line_obeys_the_512_bytes_and_is_not_relayed(net: FakeNet) -> None:
    """IRCv3 message-tags, "Size limit": "The size limit for the rest of the message remains
    unchanged at 512 bytes"; a tagged 3,000-byte message is refused with 417 like an untagged
    one, and nobody receives it."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    a.lines()
    b.lines()
    a.send("@a=b PRIVMSG #lobby :" + "x" * 3000)
    assert a.lines() == [":fastchat.local 417 a :Input line was too long"]
    assert b.lines() == []


def test_tag_section_limit(net: FakeNet) -> None:
    """IRCv3 message-tags: "Clients MUST NOT send messages with tag data exceeding 4094
    bytes" and servers "MUST reply with the ERR_INPUTTOOLONG (417) error numeric"; within the
    limit, the message goes through (its tags are not relayed: no capability asks for them)."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    a.lines()
    b.lines()
    a.send("@+k=" + "v" * 4092 + " PRIVMSG #lobby :too many tags")  # 4095 bytes of tag data
    assert a.lines() == [":fastchat.local 417 a :Input line was too long"]
    a.send("@+k=" + "v" * 4091 + " PRIVMSG #lobby :" + "y" * 494)  # 4094, then 510 bytes
    assert a.lines() == []
    (relayed,) = b.lines()
    assert relayed.startswith(":a!~a@10.0.0.1 PRIVMSG #lobby :yyy")
    a.send("@time=x;+draft/reply=1 PRIVMSG b :tagged")
    assert b.lines() == [":a!~a@10.0.0.1 PRIVMSG b :tagged"]


def test_blank_lines_get_no_reply(net: FakeNet) -> None:
    """Modern IRC, "Messages": servers SHOULD gracefully ignore empty lines; a line of spaces
    is one (before and after registration)."""
    a = net.connect(0)
    a.send(" ", "    ")
    assert a.lines() == []
    a.register("a")
    a.lines()
    a.send(" ", "   ", "PING :after")
    assert a.lines() == [":fastchat.local PONG fastchat.local :after"]


def test_ison_takes_any_number_of_nicks(net: FakeNet) -> None:
    """RFC 2812 §4.9 ISON <nickname> *( SPACE <nickname> ): clients send twenty nicks with no
    ':'; Modern IRC lets a server accept more than 15 parameters, and ISON reads them all."""
    net.connect(0, "n1")
    net.connect(w(net, 1), "n19")
    a = net.connect(w(net, 2), "asker")
    a.lines()
    a.send("ISON " + " ".join(f"n{i}" for i in range(1, 21)))
    assert a.lines() == [":fastchat.local 303 asker :n1 n19"]
    a.send("ISON n1 :n19 nobody")
    assert a.lines() == [":fastchat.local 303 asker :n1 n19"]


# --- no line over 512 bytes ---------------------------------------------------------------------


def _assert_fits(lines: list[bytes]) -> None:
    for line in lines:
        assert len(line) + 2 <= 512, (len(line), line[:60])


def test_relayed_message_is_cut_to_512_bytes(net: FakeNet) -> None:
    """RFC 1459 §2.3: a message is at most 512 bytes with CR LF; the server's added source
    must not push a 510-byte PRIVMSG past that: the end of the text is cut (fast path and
    general path alike, to a channel and to a nick)."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    a.lines()
    b.lines()
    for head in ("PRIVMSG #lobby :", "privmsg #lobby :", "PRIVMSG #lobby,b :", "NOTICE b :"):
        a.send(head + "z" * (510 - len(head)))
        got = b.raw_lines()
        assert got and all(len(line) + 2 == 512 for line in got), [len(x) for x in got]
        assert all(line.endswith(b"z" * 400) for line in got)
    assert a.lines() == []


def test_relayed_message_is_cut_between_utf8_characters(net: FakeNet) -> None:
    """Cutting valid UTF-8 text keeps every character whole."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    b.lines()
    for head in ("PRIVMSG #lobby :x", "PRIVMSG #lobby :", "PRIVMSG b,#lobby :"):
        a.send((head + "€" * 200).encode()[:510])
        for line in b.raw_lines():
            assert len(line) + 2 <= 512
            line.decode("utf-8")  # no character cut in two
            assert len(line) + 2 > 512 - 3


def test_error_replies_quote_a_cut_target(net: FakeNet) -> None:
    """407 ERR_TOOMANYTARGETS, 401, 403 and 421 quote what the client sent; the quote is cut
    so that the reply fits in 512 bytes."""
    a = net.connect(0, "a")
    a.lines()
    targets = ",".join(f"t{i:03d}" for i in range(95))
    a.send(f"PRIVMSG {targets} :x")
    (reply,) = a.raw_lines()
    assert reply.startswith(b":fastchat.local 407 a t000,t001,") and len(reply) + 2 == 512
    assert reply.endswith(b" :Too many targets (max 4)")
    a.send("PRIVMSG " + "n" * 490 + " :x")
    a.send("PRIVMSG #" + "c" * 490 + " :x")
    a.send("X" * 505)
    a.send("PING " + "p" * 500)
    got = a.raw_lines()
    assert [line.split()[1] for line in got] == [b"401", b"403", b"421", b"PONG"]
    _assert_fits(got)


def test_long_quit_part_kick_and_modes_fit(net: FakeNet) -> None:
    """Lines the server relays for other commands also stay within 512 bytes: a QUIT reason
    is kept to 255 bytes, and a MODE whose arguments would not fit drops those changes."""
    op, b = net.connect(0, "op"), net.connect(w(net, 1), "b")
    op.send("JOIN #long")
    b.send("JOIN #long")
    b.lines()
    masks = " ".join(c * 78 for c in "abcdef")  # each becomes "<78 letters>!*@*"
    op.send("MODE #long +bbbbbb " + masks)
    op.send("PART #long :" + "r" * 490)
    got = b.raw_lines()
    _assert_fits(got)
    assert got[0].startswith(b":op!~op@10.0.0.1 MODE #long +bbbbb ")
    assert got[1].startswith(b":op!~op@10.0.0.1 PART #long :rrr")
    op.send("QUIT :" + "q" * 490)
    (quit_,) = b.raw_lines()
    assert quit_ == b":op!~op@10.0.0.1 QUIT :Quit: " + b"q" * 255


def test_whois_channels_split_over_lines(net: FakeNet) -> None:
    """RPL_WHOISCHANNELS (319) may be sent several times (Modern IRC): a user on many long
    channels is listed over as many lines as needed, each within 512 bytes."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    names = [f"#{i:02d}" + "c" * 45 for i in range(15)]
    a.send("JOIN " + ",".join(names[:8]), "JOIN " + ",".join(names[8:]))
    b.lines()
    b.send("WHOIS a")
    got = b.raw_lines()
    _assert_fits(got)
    listed = [c for line in got if b" 319 " in line for c in line.split(b" :", 1)[1].split()]
    assert len([line for line in got if b" 319 " in line]) == 2
    assert sorted(c.lstrip(b"@") for c in listed) == sorted(
        [b"#lobby", *(n.encode() for n in names)]
    )


# --- channel operations ------------------------------------------------------------------------


def test_kick_without_comment_uses_the_kickers_nick(net: FakeNet) -> None:
    """RFC 2812 §3.2.8: without a comment, the default message is "the nickname of the user
    issuing the KICK"."""
    op, v = net.connect(0, "op"), net.connect(w(net, 1), "v")
    op.send("JOIN #k")
    v.send("JOIN #k")
    v.lines()
    op.send("KICK #k v")
    assert v.lines() == [":op!~op@10.0.0.1 KICK #k v :op"]


def test_kick_several_users_from_one_channel_or_pairwise(net: FakeNet) -> None:
    """RFC 2812 §3.2.8: one channel and several users, or as many channels as users (paired
    in order); any other count is 461; more kicks than MAXTARGETS (TARGMAX KICK) are 407."""
    op = net.connect(0, "op")
    vs = [net.connect(w(net, i), f"v{i}") for i in range(3)]
    op.send("JOIN #k", "JOIN #j")
    for v in vs:
        v.send("JOIN #k", "JOIN #j")
    op.lines()
    for v in vs:
        v.lines()
    op.send("KICK #k v0,v1 :bye")
    got = vs[2].lines()
    assert [line.split(" ", 1)[1] for line in got] == ["KICK #k v0 :bye", "KICK #k v1 :bye"]
    op.send("KICK #j,#k v2,v2 :again")
    assert [line.split(" ", 1)[1] for line in vs[2].lines()] == [
        "KICK #j v2 :again",
        "KICK #k v2 :again",
    ]
    op.send("KICK #j,#k v0")
    assert op.lines()[-1].endswith(" 461 op KICK :One channel, or one per user")
    vs[1].lines()
    many = ",".join(["v1"] * (net.config.max_targets + 1))
    op.send(f"KICK #j {many}")
    assert " 407 op " in op.lines()[-1]
    assert vs[1].lines() == [], "nothing of a refused KICK happened"


def test_invite_without_parameters_lists_ones_invitations(net: FakeNet) -> None:
    """Modern IRC: INVITE alone lists the channels one is invited to (336 each, 337), on
    any worker (the invitation is network state); INVITE with one parameter is 461."""
    srv = ":fastchat.local"
    op = net.connect(0, "op")
    guest = net.connect(w(net, 1), "guest")
    op.send("JOIN #a", "JOIN #b", "MODE #b +i")
    guest.send("INVITE")
    assert guest.lines() == [f"{srv} 337 guest :End of /INVITE list"]
    op.send("INVITE guest #a", "INVITE guest #b")
    guest.lines()
    guest.send("INVITE")
    assert sorted(guest.lines()) == [
        f"{srv} 336 guest #a",
        f"{srv} 336 guest #b",
        f"{srv} 337 guest :End of /INVITE list",
    ]
    guest.send("JOIN #b", "INVITE")  # (a join uses up its invitation)
    assert guest.lines()[-2:] == [f"{srv} 336 guest #a", f"{srv} 337 guest :End of /INVITE list"]
    guest.send("INVITE op")
    assert guest.lines() == [f"{srv} 461 guest INVITE :Not enough parameters"]


def test_no_ctcp_mode(net: FakeNet) -> None:
    """+C (Modern IRC "No CTCP"): a CTCP other than ACTION to the channel is refused with
    404 (a NOTICE silently), from anyone, ops too; ACTION and plain lines pass; without +C a
    CTCP passes. Decided by the sequencer, whatever the sender's worker."""
    op = net.connect(0, "op")
    them = net.connect(w(net, 1), "them")
    op.send("JOIN #c")
    them.send("JOIN #c")
    op.lines()
    them.lines()
    them.send("PRIVMSG #c :\x01PING 1\x01")
    assert op.lines()[-1].endswith("PRIVMSG #c :\x01PING 1\x01")
    op.send("MODE #c +C")
    op.lines()
    them.lines()
    them.send(
        "PRIVMSG #c :\x01ACTION waves\x01",
        "PRIVMSG #c :\x01PING 2\x01",
        "NOTICE #c :\x01VERSION x\x01",
        "PRIVMSG #c :plain",
    )
    got = [line.split(" ", 1)[1] for line in op.lines()]
    assert got == ["PRIVMSG #c :\x01ACTION waves\x01", "PRIVMSG #c :plain"]
    assert them.lines() == [":fastchat.local 404 them #c :Cannot send CTCP to channel (+C)"]
    op.send("PRIVMSG #c :\x01TIME\x01")
    assert op.lines() == [":fastchat.local 404 op #c :Cannot send CTCP to channel (+C)"]
    assert them.lines() == []


def test_mode_for_a_missing_nick_is_401_and_for_an_outsider_441(net: FakeNet) -> None:
    """Modern IRC, MODE: +o/+v for a nick that does not exist answers 401 ERR_NOSUCHNICK;
    for a user who exists but is not on the channel, 441 ERR_USERNOTINCHANNEL."""
    op = net.connect(0, "op")
    net.connect(w(net, 1), "out")
    op.send("JOIN #m")
    op.lines()
    op.send("MODE #m +o nobody", "MODE #m +v out")
    assert op.lines() == [
        ":fastchat.local 401 op nobody :No such nick/channel",
        ":fastchat.local 441 op out #m :They aren't on that channel",
    ]


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["USER a 0 * :", "USER !!! 0 * :", "USER a 0 *"])
def test_user_needs_a_username_and_a_realname(net: FakeNet, line: str) -> None:
    """Modern IRC, USER: an empty <username> or <realname> is 461 ERR_NEEDMOREPARAMS, and
    registration waits for a good USER."""
    c = net.connect(0)
    c.send("NICK u", line)
    assert c.lines() == [":fastchat.local 461 u USER :Not enough parameters"]
    c.send("USER u 0 * :Real u")
    assert find(c.lines(), " 001 u ")


@pytest.mark.parametrize("username", ["!!!", "\u00e8\u00e9", "\U0001f60a" * 10])
def test_a_username_with_no_character_kept_is_invalid(net: FakeNet, username: str) -> None:
    """A username keeps only ASCII letters, digits and ``-_.`` (a lone byte of a UTF-8
    character would make the user's mask invalid UTF-8); one left empty is 468
    ERR_INVALIDUSERNAME (as Ergo answers), and registration waits for a good USER."""
    c = net.connect(0)
    c.send("NICK u", f"USER {username} 0 * :Real")
    assert c.lines() == [":fastchat.local 468 u :Your username is not valid"]
    c.send("USER r\u00e9al 0 * :Real u")
    assert find(c.lines(), " 001 u ")
    user = net.cores[0].state.user_by_nick(b"u")
    assert user is not None and user.username == b"~ral"


# --- invisible users (user mode +i) --------------------------------------------------------------


def test_invisible_user_hidden_from_who_and_names_of_outsiders(net: FakeNet) -> None:
    """RFC 2812 §3.1.5 "+i - marks a users as invisible"; Modern IRC: WHO and NAMES leave an
    invisible user out for those who share no channel with them, but an exact nick finds
    them. The mode is network state: the asker's worker knows it, wherever the user is."""
    inv, vis, asker = (net.connect(w(net, i), n) for i, n in enumerate(["inv", "vis", "asker"]))
    for c in (inv, vis):
        c.send("JOIN #room", "PART #lobby")
    inv.lines()
    inv.send("MODE inv +i")
    assert inv.lines() == [":inv MODE inv :+i"]
    inv.send("MODE inv")
    assert inv.lines() == [":fastchat.local 221 inv :+i"]
    asker.lines()
    asker.send("WHO #room", "WHO *v*", "NAMES #room", "WHO inv")
    got = asker.lines()
    assert find(got, r" 352 asker #room ~vis ") and not find(got, r" 352 asker #room ~inv ")
    assert find(got, r" 352 asker \* ~vis ")
    assert find(got, r" 353 asker = #room :@?vis$")
    assert find(got, r" 352 asker \* ~inv ")  # the exact nick
    # sharing a channel lifts it; so does -i
    asker.send("JOIN #room")
    asker.lines()
    asker.send("WHO #room", "WHO *v*", "NAMES #room")
    got = asker.lines()
    assert find(got, r" 352 asker #room ~inv ") and find(got, r" 352 asker \* ~inv ")
    assert find(got, r" 353 asker = #room :.*\binv\b")
    asker.send("PART #room")
    inv.lines()
    inv.send("MODE inv -i")
    assert inv.lines() == [":inv MODE inv :-i"]
    asker.lines()
    asker.send("WHO *v*")
    assert find(asker.lines(), r" 352 asker \* ~inv ")


def test_lusers_counts_invisible_users(net: FakeNet) -> None:
    """RFC 2812 §5.1 RPL_LUSERCLIENT "There are <integer> users and <integer> services on
    <integer> servers": the users visible and invisible, counted apart on every worker."""
    a, b = net.connect(0, "a"), net.connect(w(net, 1), "b")
    net.connect(w(net, 2), "c")
    a.send("MODE a +iw")
    b.send("MODE b +i")
    b.send("MODE b -i+i")
    for core in net.cores:
        assert core.state.invisible == 2
    c = net.connect(0)
    assert find(c.register("d"), r" 251 d :There are 2 users and 2 invisible on 1 servers$")
    a.send("QUIT")
    b.send("MODE b -i")
    b.lines()
    b.send("LUSERS")
    assert find(b.lines(), r" 251 b :There are 3 users and 0 invisible on 1 servers$")


def test_user_modes_survive_a_snapshot() -> None:
    """A worker that starts (or a hub that merges replicas) learns who is invisible from the
    snapshot, like every other piece of state."""
    net = FakeNet(workers=1)
    net.connect(0, "a").send("MODE a +iw")
    net.connect(0, "b")
    state = State()
    state.load_snapshot(net.cores[0].state.snapshot())
    user = state.user_by_nick(b"a")
    assert user is not None and user.modes == b"iw"
    assert state.invisible == 1


def test_record_kinds_are_distinct() -> None:
    """Every record kind has its own number: the dispatch tables are keyed by it."""
    from fastchat.server.network import records as events

    kinds = {k: v for k, v in vars(events).items() if k[:2] in ("R_", "E_", "D_", "B_")}
    numbers = [v for v in kinds.values() if isinstance(v, int)]
    assert len(numbers) == len(set(numbers)), kinds


def test_password_check_is_an_effect_under_the_barrier() -> None:
    """STYLE.md "Blocking work is an effect": ``check_password`` only queues a
    :class:`PasswordCheck` for the shell; the client's next lines wait until the answer has
    been handed back and its continuation has run."""
    net = FakeNet(workers=1)
    net.hold_checks = True
    a = net.connect(0, "a")
    a.lines()
    core = net.cores[0]
    stored = hash_password(b"pw", n=16)
    results: list[bool] = []
    core.check_password(a.client, b"pw", stored, results.append)
    a.send("PING :after")
    assert a.lines() == [] and results == []
    assert core.offload.checks == [PasswordCheck(1, a.client.uid, b"pw", stored)]
    net.hold_checks = False
    net.pump()
    assert results == [True]
    assert a.lines() == [":fastchat.local PONG fastchat.local :after"]


def test_a_failing_password_continuation_closes_only_its_client() -> None:
    """A bug in what follows a password check disconnects that client, as a handler's would."""
    net = FakeNet(workers=1)
    a, b = net.connect(0, "a"), net.connect(0, "b")
    b.lines()

    def crash(matched: bool) -> None:
        raise ZeroDivisionError("our bug")

    net.cores[0].check_password(a.client, b"pw", hash_password(b"pw", n=16), crash)
    net.pump()
    assert a.lines()[-1].endswith("[Internal server error]")
    assert a.client.closed and not b.client.closed


def test_a_quit_held_behind_a_barrier_counts_though_the_peer_hung_up(net: FakeNet) -> None:
    """A client that sends NICK and QUIT and closes at once: at several workers the QUIT
    waits behind the NICK's barrier when the end of the stream arrives; it still counts (its
    channels see its reason, not "Remote host closed the connection")."""
    watcher = net.negotiated(0, "watcher")
    quitter = net.negotiated(net.last, "quitter")
    watcher.lines()
    quitter.send("NICK renamed", "QUIT :bye now", pump=False)
    core = quitter.core
    core.connection_lost(quitter.client, b"Remote host closed the connection", net.now)
    if len(net.cores) > 1:
        assert quitter.client.held and not quitter.client.closed  # the QUIT still waits
    net.pump()
    if not quitter.client.closed:  # the shell reads again: the end of the stream, again
        core.connection_lost(quitter.client, b"Remote host closed the connection", net.now)
        net.pump()
    host = f"10.0.0.{net.last + 1}"
    assert watcher.lines()[-2:] == [
        f":quitter!~quitter@{host} NICK :renamed",
        f":renamed!~quitter@{host} QUIT :Quit: bye now",
    ]


@pytest.mark.parametrize("split", [None, 1, 2, 40])
def test_a_tls_client_hello_on_the_plain_port_is_refused(net: FakeNet, split: int | None) -> None:
    """A connection whose first bytes are a TLS handshake record (a TLS client on the plain
    port) gets ERROR and is closed at once, whatever the read that brings them; the same bytes
    after IRC lines are only bytes."""
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\n"
    c = net.connect(0)
    if split is None:
        c.core.data_received(c.client, hello, net.now)
    else:
        c.core.data_received(c.client, hello[:split], net.now)
        c.core.data_received(c.client, hello[split:], net.now)
    net.pump()
    if split == 1:  # the first read held a single byte: not recognisable yet
        assert not c.client.closed
        return
    assert c.lines() == ["ERROR :Closing link: (*@10.0.0.1) [This port does not speak TLS]"]
    assert c.client.closed
    d = net.user("plainly", w(net, 1))
    d.core.data_received(d.client, hello, net.now)
    net.pump()
    assert not d.client.closed
