"""Channel mode +D, delayed join (issue 14; InspIRCd's ``delayjoin`` module): in a +D channel
a member's JOIN is shown to the others only when it speaks there, is given +v/+o, or the
channel loses +D; until then its PART, QUIT, NICK and KICK are shown to nobody else, and NAMES
and WHO list it to itself only. The autojoin channel gets +D from the server once it grows
past ``lobby_delay_join_at`` members.

Absence is checked in order: a marker message decided after the event arrives, and nothing
the event would have shown came before it (one order per channel)."""

from __future__ import annotations

import itertools
import re
import selectors
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

_marks = itertools.count(1)


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    """As conftest's, without the autojoin #lobby: nothing but the channels under test."""
    with process.running(["--test-hooks", "--autojoin", ""], workers=request.param) as srv:
        yield srv


def until_mark(sender: IRCClient, channel: str, *watchers: IRCClient) -> list[list[str]]:
    """``sender`` says a fresh marker in ``channel``; what each watcher got up to it."""
    mark = f"mark{next(_marks)}"
    sender.send(f"PRIVMSG {channel} :{mark}")
    return [w.expect_until(rf" PRIVMSG {channel} :{mark}$") for w in watchers]


def shown(got: list[str], nick: str, command: str) -> bool:
    return any(re.match(rf":{nick}!\S+ {command}\b", line) for line in got)


def delayed(
    connect: Callable[..., IRCClient], channel: str, op_nick: str
) -> tuple[IRCClient, IRCClient]:
    """``op_nick`` creates ``channel``, ``op_nick + "v"`` joins it (visible, it speaks the
    markers), then the operator sets +D."""
    op = connect(op_nick)
    join(op, channel)
    talker = connect(op_nick + "v")
    join(talker, channel)
    op.send(f"MODE {channel} +D")
    op.expect(rf":{op_nick}!\S+ MODE {channel} \+D$")
    talker.expect(rf":{op_nick}!\S+ MODE {channel} \+D$")
    return op, talker


def join(client: IRCClient, channel: str) -> list[str]:
    client.send(f"JOIN {channel}")
    return client.expect_until(rf" 366 {client.nick} {channel} ")


def test_chanmodes_announces_d(connect) -> None:
    """ISUPPORT CHANMODES lists D among the flag modes (type D)."""
    a = connect("djisupport")
    a.send("VERSION")
    assert re.search(r"CHANMODES=beI,k,l,\w*D\w*", "\n".join(a.sync()))


def test_hidden_join_is_shown_once_right_before_its_first_message(connect) -> None:
    op, talker = delayed(connect, "#dj1", "dj1op")
    watcher = connect("dj1w")
    join(watcher, "#dj1")
    hid = connect("dj1hid")
    got = join(hid, "#dj1")
    # the joiner sees its own JOIN and the visible members (not the hidden watcher)
    assert shown(got, "dj1hid", "JOIN #dj1")
    assert any(line.endswith(" 353 dj1hid = #dj1 :@dj1op dj1opv dj1hid") for line in got), got
    before_op, before_watcher = until_mark(talker, "#dj1", op, watcher)
    assert not shown(before_op + before_watcher, "dj1hid", "JOIN")
    hid.send("PRIVMSG #dj1 :hello all")
    for client in (op, watcher):
        got = client.expect_until(r" PRIVMSG #dj1 :hello all$")
        assert [line for line in got if "dj1hid!" in line] == [
            got[-2],
            got[-1],
        ] and shown([got[-2]], "dj1hid", "JOIN #dj1$"), got
    hid.send("PRIVMSG #dj1 :again")
    got = op.expect_until(r" PRIVMSG #dj1 :again$")
    assert not shown(got, "dj1hid", "JOIN"), got  # exactly once
    # the hidden watcher's message reached everyone, and revealed it
    watcher.send("NOTICE #dj1 :watcher here")
    got = hid.expect_until(r" NOTICE #dj1 :watcher here$")
    assert shown(got, "dj1w", "JOIN #dj1$"), got


def test_hidden_members_nick_part_quit_are_not_shown(connect) -> None:
    op, talker = delayed(connect, "#dj2", "dj2op")
    a = connect("dj2a")
    b = connect("dj2b")
    join(a, "#dj2")
    join(b, "#dj2")
    a.send("NICK dj2a2")
    a.expect(r":dj2a!\S+ NICK :dj2a2$")  # its own
    a.nick = "dj2a2"
    a.send("PART #dj2 :bye")
    a.expect(r":dj2a2!\S+ PART #dj2 :bye$")
    b.send("QUIT :gone")
    b.wait_closed()
    (got,) = until_mark(talker, "#dj2", op)
    assert not any("dj2a" in line or "dj2b" in line for line in got), got


def test_names_and_who_show_a_hidden_member_to_itself(connect) -> None:
    op, _ = delayed(connect, "#dj3", "dj3op")
    hid = connect("dj3hid")
    join(hid, "#dj3")
    op.send("NAMES #dj3")
    assert op.expect(r" 353 dj3op = #dj3 :(.*)$").group(1) == "@dj3op dj3opv"
    op.send("WHO #dj3")
    got = op.expect_until(r" 315 dj3op #dj3 ")
    assert [line for line in got if " 352 " in line and "dj3hid" in line] == []
    hid.send("NAMES #dj3")
    assert set(hid.expect(r" 353 dj3hid = #dj3 :(.*)$").group(1).split()) == {
        "@dj3op",
        "dj3opv",
        "dj3hid",
    }
    hid.send("WHO #dj3")
    got = hid.expect_until(r" 315 dj3hid #dj3 ")
    assert len([line for line in got if " 352 dj3hid #dj3 " in line]) == 3, got
    hid.send("PRIVMSG #dj3 :here")
    op.expect(r" PRIVMSG #dj3 :here$")
    op.send("NAMES #dj3")
    names = op.expect(r" 353 dj3op = #dj3 :(.*)$").group(1).split()
    assert set(names) == {"@dj3op", "dj3opv", "dj3hid"}


def test_voice_reveals_before_the_mode(connect) -> None:
    op, _ = delayed(connect, "#dj4", "dj4op")
    watcher = connect("dj4w")
    join(watcher, "#dj4")
    hid = connect("dj4hid")
    join(hid, "#dj4")
    op.send("MODE #dj4 +v dj4hid")
    got = watcher.expect_until(r" MODE #dj4 \+v :?dj4hid$")
    assert shown(got, "dj4hid", "JOIN #dj4$") and shown(got[-2:-1], "dj4hid", "JOIN"), got
    got = hid.expect_until(r" MODE #dj4 \+v :?dj4hid$")
    assert not shown(got, "dj4hid", "JOIN"), got  # it saw its own JOIN when it joined
    hid.send("PRIVMSG #dj4 :voiced")
    got = watcher.expect_until(r" PRIVMSG #dj4 :voiced$")
    assert not shown(got, "dj4hid", "JOIN"), got


def test_minus_d_reveals_everyone_hidden_then_the_mode(connect) -> None:
    op, _ = delayed(connect, "#dj5", "dj5op")
    a = connect("dj5a")
    join(a, "#dj5")
    b = connect("dj5b")
    join(b, "#dj5")
    op.send("MODE #dj5 -D")
    got = op.expect_until(r" MODE #dj5 -D$")
    joins = [line for line in got if " JOIN #dj5" in line]
    assert len(joins) == 2 and shown(joins[:1], "dj5a", "JOIN") and shown(joins[1:], "dj5b", "JOIN")
    got = a.expect_until(r" MODE #dj5 -D$")
    assert [line for line in got if " JOIN #dj5" in line] == [joins[1]], got
    # no longer +D: a new member is shown at once
    c = connect("dj5c")
    join(c, "#dj5")
    op.expect(r":dj5c!\S+ JOIN #dj5$")


def test_kicking_a_hidden_member_shows_the_kicker_and_the_kicked_only(connect) -> None:
    op, talker = delayed(connect, "#dj6", "dj6op")
    watcher = connect("dj6w")
    join(watcher, "#dj6")
    hid = connect("dj6hid")
    join(hid, "#dj6")
    op.send("KICK #dj6 dj6hid :out")
    op.expect(r":dj6op!\S+ KICK #dj6 dj6hid :out$")
    hid.expect(r":dj6op!\S+ KICK #dj6 dj6hid :out$")
    (got,) = until_mark(talker, "#dj6", watcher)
    assert not any("dj6hid" in line for line in got), got


# -- the lobby: +D from the server past lobby_delay_join_at ------------------------------------
@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def small_lobby(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    """A server whose #lobby gets +D past 3 members."""
    with process.running(["--lobby-delay-join-at", "3"], workers=request.param) as srv:
        yield srv


def test_the_lobby_gets_delayed_join_past_the_threshold(small_lobby) -> None:
    srv = small_lobby
    with IRCClient(srv.host, srv.port, "lob1") as first:
        others = [IRCClient(srv.host, srv.port, f"lob{i}") for i in range(2, 6)]
        try:
            got = first.expect_until(r":fastchat.local MODE #lobby \+D$")
            assert [
                m.group(1) for line in got if (m := re.match(r":(lob[2-9])!\S+ JOIN", line))
            ] == [
                "lob2",
                "lob3",
                "lob4",
            ], got
            (got,) = until_mark(others[0], "#lobby", first)
            assert not shown(got, "lob5", "JOIN"), got  # the fifth joined hidden
            others[-1].send("PRIVMSG #lobby :hi from 5")
            got = first.expect_until(r" PRIVMSG #lobby :hi from 5$")
            assert shown(got[-2:-1], "lob5", "JOIN #lobby$"), got
        finally:
            for client in others:
                client.close()


def _lobby_bytes(srv: process.ServerProcess, count: int) -> int:
    """Connect ``count`` clients that register (and autojoin #lobby) at once; the bytes they
    received until each has its end of NAMES and the PONG of a PING sent after it."""
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(count):
        sock = socket.create_connection((srv.host, srv.port), timeout=10)
        sock.sendall(b"NICK lb%d\r\nUSER u 0 * :r\r\n" % i)
        sock.setblocking(False)
        socks.append(sock)
        sel.register(sock, selectors.EVENT_READ, [i, b"", 0])  # nick number, buffer, stage
    total = 0
    left = count
    deadline = time.monotonic() + 60
    try:
        while left:
            assert time.monotonic() < deadline, f"{left} clients still waiting"
            for key, _ in sel.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                state = key.data
                data = sock.recv(1 << 16)
                assert data, "closed"
                total += len(data)
                state[1] += data
                if state[2] == 0 and b" 366 lb%d #lobby " % state[0] in state[1]:
                    state[2] = 1
                    sock.sendall(b"PING :done\r\n")
                if state[2] == 1 and b"PONG" in state[1] and b":done\r\n" in state[1]:
                    state[2] = 2
                    left -= 1
                state[1] = state[1][-200:]
    finally:
        for sock in socks:
            sock.close()
    return total


@pytest.mark.parametrize("workers", [1, 4])
def test_a_big_lobby_sends_far_fewer_than_n_squared_bytes(workers: int) -> None:
    """300 clients in the lobby (+D past 50): every JOIN shown to every member would be
    300²/2 JOIN lines (over 2.5 MB with the NAMES); with delayed join it is well under
    300² × 10 bytes."""
    count = 300
    with process.running(["--lobby-delay-join-at", "50"], workers=workers) as srv:
        total = _lobby_bytes(srv, count)
    assert total < count * count * 10, total
