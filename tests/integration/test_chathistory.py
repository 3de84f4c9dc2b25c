"""Message history (issue 12) on a real server, at one worker and at four: channel messages
are kept as the sequencer delivered them, and CHATHISTORY LATEST/BEFORE/AFTER gives them
back with the msgids and times the members saw; the history survives a restart with the
same data directory. Raw sockets; synchronised by PING/PONG."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

CAPS = "draft/chathistory batch server-time message-tags"


def joined(server: process.ServerProcess, nick: str, chan: str) -> IRCClient:
    c = IRCClient(server.host, server.port, register=False)
    c.nick = nick
    c.send("CAP REQ :" + CAPS)
    c.expect(r"CAP \* ACK")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.send("CAP END")
    c.expect(r" 376 | 422 ")
    c.send(f"JOIN {chan}")
    c.expect(rf"JOIN {chan}")
    c.sync()
    return c


def history(c: IRCClient, request: str) -> list[tuple[str, str, str]]:
    """(msgid, time, text) of each message of the batch answering ``request``."""
    c.send("CHATHISTORY " + request)
    c.expect(r"BATCH \+(\S+) chathistory ")
    found = []
    for line in c.expect_until(r"BATCH -"):
        m = re.match(r"@(\S+) :\S+ PRIVMSG \S+ :(.*)$", line)
        if m:
            tags = dict(t.split("=", 1) for t in m[1].split(";"))
            found.append((tags["msgid"], tags["time"], m[2]))
    return found


def seen(c: IRCClient, count: int) -> list[tuple[str, str, str]]:
    out = []
    for _ in range(count):
        m = c.expect(r"^@(\S+) :\S+ PRIVMSG #h :(.*)$")
        tags = dict(t.split("=", 1) for t in m[1].split(";"))
        out.append((tags["msgid"], tags["time"], m[2]))
    return out


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def data_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="fastchat-history-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_history_latest_before_after_and_restart(workers: int, data_dir: str) -> None:
    args = ["--no-flood-control", "--data-dir", data_dir]
    with process.running(args, workers=workers) as server:
        speaker = joined(server, "speaker", "#h")
        listener = joined(server, "listener", "#h")
        try:
            for i in range(5):
                speaker.send(f"PRIVMSG #h :line {i}")
            speaker.send("PRIVMSG #h :a run: line 5")  # pipelined: one run of six
            got = seen(listener, 6)
            assert [t for _, _, t in got][-1] == "a run: line 5"
            # no waiting: the history barrier holds the query until the store has them
            latest = history(listener, "LATEST #h * 10")
            assert latest == got
            assert history(listener, f"BEFORE #h msgid={got[3][0]} 2") == got[1:3]
            assert history(listener, f"AFTER #h msgid={got[3][0]} 10") == got[4:]
            assert history(listener, "LATEST #h * 2") == got[4:]
            outsider = joined(server, "outsider", "#other")
            outsider.send("CHATHISTORY LATEST #h * 10")
            outsider.expect(r"FAIL CHATHISTORY INVALID_TARGET LATEST #h ")
            outsider.send("CHATHISTORY LATEST #h * nope")
            outsider.expect(r"FAIL CHATHISTORY INVALID_PARAMS LATEST ")
            outsider.close()
        finally:
            speaker.close()
            listener.close()
    with process.running(args, workers=workers) as server:
        again = joined(server, "again", "#h")
        try:
            assert history(again, "LATEST #h * 10") == got
        finally:
            again.close()


def test_history_reads_its_own_writes(workers: int, data_dir: str) -> None:
    """A CHATHISTORY sent right after messages (by their sender, pipelined, or by a member
    that saw them) holds every one of them: the query waits for the store to write what
    was decided before it, though the writer commits in its own time."""
    args = ["--no-flood-control", "--data-dir", data_dir]
    with process.running(args, workers=workers) as server:
        speaker = joined(server, "speaker", "#rw")
        listener = joined(server, "listener", "#rw")
        try:
            for round_ in range(20):
                burst = [f"PRIVMSG #rw :r{round_} m{i}" for i in range(25)]
                speaker.send_raw(
                    ("\r\n".join([*burst, "CHATHISTORY LATEST #rw * 5"]) + "\r\n").encode()
                )
                speaker.expect(r"BATCH \+(\S+) chathistory ")
                texts = [
                    line.rsplit(" :", 1)[1]
                    for line in speaker.expect_until(r"BATCH -")
                    if " PRIVMSG " in line
                ]
                assert texts == [f"r{round_} m{i}" for i in range(20, 25)]
                last = seen_text(listener, f"r{round_} m24")
                assert last
                latest = history(listener, "LATEST #rw * 1")
                assert [t for _, _, t in latest] == [f"r{round_} m24"]
        finally:
            speaker.close()
            listener.close()


def seen_text(c: IRCClient, text: str) -> bool:
    c.expect(rf"PRIVMSG #rw :{re.escape(text)}$")
    return True
