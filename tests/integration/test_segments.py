"""Channel segments in the real server (engine/segments.py): at four workers a worker's
approved messages reach the hub in segments, forwarded whole while nothing changed since
their approval; at one worker there is no hub and nothing changes. Either way, a change
decided while messages are on their way (here ``+m``) must cut them exactly where the one
order puts it: every member sees a channel's messages once each, in order, and none from a
silenced sender after the MODE; the sender gets a 404 for each of the others.

The interleaving is the machine's (a talker's writes against an operator's MODE), so what is
checked is what must hold whatever it was; tests/unit/test_segments.py makes the races.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

MAX_WRITES = 1500  # at most (15,000 lines): the MODE usually comes back long before
PER_WRITE = 10  # lines per write, alternating two channels: several messages per segment


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    # (a big --sendq: the operator and the listener read nothing while the talker writes)
    args = ["--no-flood-control", "--autojoin", "", "--sendq", str(256 << 20)]
    with process.running(args, workers=request.param) as srv:
        yield srv


def test_moderation_mid_stream_cuts_the_stream_at_the_mode(
    server: process.ServerProcess,
) -> None:
    clients = [IRCClient(server.host, server.port, nick) for nick in ("sgop", "sgtalk", "sghear")]
    op, talker, hear = clients
    try:
        for c in clients:  # the first joiner is the operator
            for chan in ("#sga", "#sgb"):
                c.send(f"JOIN {chan}")
                c.expect(rf" 366 {c.nick} {chan} ")
        for c in clients:
            c.sync()
        # The talker writes without a pause (a thread of its own) while the MODE is decided,
        # and on until it has seen the MODE itself: its lines are read, approved and sent to
        # the hub around the MODE's decision, and the stream is cut somewhere inside
        stop = threading.Event()
        started = threading.Event()
        writes = 0

        def write() -> None:
            nonlocal writes
            while not stop.is_set() and writes < MAX_WRITES:
                talker.send_raw(
                    b"".join(
                        b"PRIVMSG #sg%s :m%d\r\n"
                        % (b"ab"[i % 2 : i % 2 + 1], writes * PER_WRITE + i)
                        for i in range(PER_WRITE)
                    )
                )
                writes += 1
                if writes == 5:
                    started.set()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert started.wait(10)
            op.send("MODE #sga +m")
            talker.expect(r" MODE #sga \+m$", timeout=60)
        finally:
            stop.set()
            writer.join()
        op.send("PRIVMSG #sga :end")  # after the MODE, in the one order
        talker.send("PRIVMSG #sgb :last")  # after every one of its messages
        got: list[str] = []
        while not (
            any(line.endswith("PRIVMSG #sga :end") for line in got)
            and any(line.endswith("PRIVMSG #sgb :last") for line in got)
        ):
            got += hear.expect_until(r"PRIVMSG (#sga :end|#sgb :last)$", timeout=60)
        mode_at = next(i for i, line in enumerate(got) if re.search(r" MODE #sga \+m$", line))
        numbers: dict[str, list[int]] = {"#sga": [], "#sgb": []}
        after_mode: list[str] = []
        for i, line in enumerate(got):
            m = re.search(r":sgtalk!\S+ PRIVMSG (#sg[ab]) :m(\d+)$", line)
            if m:
                numbers[m.group(1)].append(int(m.group(2)))
                if m.group(1) == "#sga" and i > mode_at:
                    after_mode.append(line)
        assert after_mode == [], "a message decided after +m reached a member"
        sent = {
            "#sga": [n for n in range(writes * PER_WRITE) if n % 2 == 0],
            "#sgb": [n for n in range(writes * PER_WRITE) if n % 2 == 1],
        }
        assert numbers["#sgb"] == sent["#sgb"], "each once, in order"
        delivered = numbers["#sga"]
        assert delivered == sent["#sga"][: len(delivered)], "a prefix, each once, in order"
        # (the talker wrote on after the MODE came back, unless it hit MAX_WRITES first)
        assert len(delivered) < len(sent["#sga"]) or writes == MAX_WRITES
        answers = talker.sync(timeout=10)
        refusals = [line for line in answers if re.search(r" 404 sgtalk #sga ", line)]
        assert len(refusals) == len(sent["#sga"]) - len(delivered)
    finally:
        for c in clients:
            c.close()
