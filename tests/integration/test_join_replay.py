"""The replay of a channel's last lines on JOIN (``--history-replay``) on a real server, at
one worker and at four: a client joining sees the last N messages decided before its JOIN,
in order, with the msgids and times the members saw, then the live ones, none lost and none
twice, even while messages pour in as it joins; a client that negotiated draft/chathistory
gets none; the history, and so the replay, survives a restart. Raw sockets; synchronised
by PING/PONG."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

TAGS = "batch server-time message-tags"
REPLAY = 5


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def data_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="fastchat-replay-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def client(server: process.ServerProcess, nick: str, caps: str = "") -> IRCClient:
    """A registered client (in no channel: the servers here autojoin none)."""
    c = IRCClient(server.host, server.port, register=False)
    c.nick = nick
    if caps:
        c.send("CAP REQ :" + caps)
        c.expect(r"CAP \* ACK")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    if caps:
        c.send("CAP END")
    c.expect(r" 376 | 422 ")
    c.sync()
    return c


Said = tuple[str, str, str]  # msgid, time, text


def said(line: str) -> Said | None:
    m = re.match(r"@(\S+) :\S+ PRIVMSG #h :(.*)$", line)
    if m is None:
        return None
    tags = dict(t.split("=", 1) for t in m[1].split(";"))
    return tags["msgid"], tags["time"], m[2]


def seen(c: IRCClient, last: str) -> list[Said]:
    """What ``c`` (with message-tags and server-time) is sent in #h, up to ``last``."""
    return [s for line in c.expect_until(rf"PRIVMSG #h :{re.escape(last)}$") if (s := said(line))]


def split(lines: list[str]) -> tuple[list[Said], list[Said]]:
    """The messages of #h in ``lines`` (after a JOIN and its NAMES): (those replayed in one
    ``chathistory`` batch, the live ones), checking that the live ones all come after it."""
    replayed: list[Said] = []
    live: list[Said] = []
    batch = None
    for line in lines:
        if m := re.search(r" BATCH \+(\S+) chathistory #h$", line):
            assert batch is None and not live and not replayed
            batch = m[1]
        elif (s := said(line)) is not None:
            if batch is not None and f"batch={batch}" in line.split(" ", 1)[0]:
                assert not live, "a replayed line after a live one"
                replayed.append(s)
            else:
                live.append(s)
    return replayed, live


def joins(c: IRCClient, last: str | None = None) -> tuple[list[Said], list[Said]]:
    """``c`` (batch, server-time, message-tags) joins #h: (the messages replayed, the live
    ones up to ``last``: none if None). Nothing of #h comes before its JOIN and NAMES."""
    c.send("JOIN #h")
    return joined(c, last)


def joined(c: IRCClient, last: str | None = None) -> tuple[list[Said], list[Said]]:
    """:func:`joins` once ``c`` has sent its JOIN."""
    before = c.expect_until(r" 366 ")
    assert any(line.endswith(" JOIN #h") for line in before)
    assert not any(" PRIVMSG " in line for line in before)
    if last is None:
        return split(c.sync())
    return split(c.expect_until(rf"PRIVMSG #h :{re.escape(last)}$"))


def test_a_joiner_sees_the_last_lines_then_the_live_ones(workers: int, data_dir: str) -> None:
    args = ["--no-flood-control", "--data-dir", data_dir, "--autojoin", ""]
    args += ["--history-replay", str(REPLAY)]
    with process.running(args, workers=workers) as server:
        speaker = client(server, "speaker")
        listener = client(server, "listener", "message-tags server-time")
        clients = [speaker, listener]
        try:
            for c in (speaker, listener):
                c.send("JOIN #h")
                c.sync()
            for i in range(8):
                speaker.send(f"PRIVMSG #h :line {i}")
            history = seen(listener, "line 7")
            assert [t for _, _, t in history] == [f"line {i}" for i in range(8)]

            # quietly: exactly the last five (the msgids and times the listener saw)...
            newcomer = client(server, "newcomer", TAGS)
            clients.append(newcomer)
            replayed, live = joins(newcomer)
            assert replayed == history[-REPLAY:] and live == []
            # ... then what is said after, live
            speaker.send("PRIVMSG #h :after")
            history += seen(listener, "after")
            assert [s for line in newcomer.sync() if (s := said(line))] == history[-1:]

            # while messages pour in (some decided before the JOIN maybe, most while its
            # replay is on its way): no gap, nothing twice, the replay first
            racer = client(server, "racer", TAGS)
            clients.append(racer)
            burst = [f"burst {i}" for i in range(60)]
            speaker.send_raw("".join(f"PRIVMSG #h :{t}\r\n" for t in burst[:30]).encode())
            racer.send("JOIN #h")
            for text in burst[30:]:
                speaker.send(f"PRIVMSG #h :{text}")
            replayed, live = joined(racer, "burst 59")
            history += seen(listener, "burst 59")
            got = replayed + live
            first = len(history) - len(got)
            assert got == history[first:], "a gap, a repeat or a reordering"
            assert len(replayed) == REPLAY

            # a client that reads the history itself gets no replay; a plain one is told
            reader = client(server, "reader", "draft/chathistory batch")
            clients.append(reader)
            reader.send("JOIN #h")
            assert not any(" PRIVMSG " in line for line in reader.sync())
            plain = client(server, "plain")
            clients.append(plain)
            plain.send("JOIN #h")
            lines = plain.sync()
            names = next(i for i, line in enumerate(lines) if " 366 " in line)
            notice = f"NOTICE #h :Replaying up to {REPLAY} lines of pre-join history"
            assert lines[names + 1].endswith(notice)
            replay = lines[names + 2 : names + 2 + REPLAY]
            assert [line.rsplit(" :", 1)[1] for line in replay] == burst[-REPLAY:]
            assert not any(line.startswith("@") for line in replay)  # it asked for no tags
        finally:
            for c in clients:
                c.close()
    with process.running(args, workers=workers) as server:
        again = client(server, "again", TAGS)
        try:
            assert joins(again) == (history[-REPLAY:], [])  # #h anew: its name's history
        finally:
            again.close()
