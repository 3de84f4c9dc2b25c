"""The replay of a channel's last lines on JOIN (``history_replay``), in the pure core at one
worker and at two: which lines (exactly those decided before the join, up to the cut its
E_JOIN carries, however many share its millisecond), how each client sees them (a
``chathistory`` batch, the original ``time`` and ``msgid``; InspIRCd's notice for a client
without batch), who gets none, and the order against the channel's live messages: whatever
the client is sent after its JOIN waits behind the replay, and none is lost or repeated.

The store's answers are fed by hand, or (where what matters is which rows the query picks)
by the real store's reader over an SQLite file holding every run the sequencer's process
handed its store: the live ones after the join too, as a writer quicker than the bus would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fastchat.server.caps.message_tags import msgid
from fastchat.server.network.records import B_SNAPSHOT, D_CHAN, OP, TAGMSG, Record, last_of_run
from fastchat.server.runtime.storage import Storage
from fastchat.server.store import db, reader
from fastchat.server.store.schema import HistoryRow
from fastchat.server.store.writer import Writer, run_row
from tests.unit.fakenet import FakeClient, FakeNet, tags_of

TAGS = ("batch", "server-time", "message-tags")


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def network(workers: int, **config: Any) -> FakeNet:
    config.setdefault("history_replay", 3)
    config.setdefault("autojoin", ())
    return FakeNet(workers=workers, **config)


def join_empty(net: FakeNet, client: FakeClient, channel: str = "#h") -> None:
    """``client`` joins ``channel``, whose history is empty (its replay query is answered so)."""
    client.send("JOIN " + channel)
    if net.cores[client.worker].offload.queries:
        answer(net, client.worker, [])
    client.lines()


def talk(net: FakeNet, count: int) -> FakeClient:
    """bob on worker 0, in #h, has said ``line 0`` .. ``line <count-1>`` (each its own run)."""
    bob = net.user("bob")
    join_empty(net, bob)
    for i in range(count):
        bob.send(f"PRIVMSG #h :line {i}")
    bob.lines()
    return bob


def row(n: int, text: str, time: int = 1_764_120_000_123) -> HistoryRow:
    return HistoryRow("#h", f"id-{n}", time, "bob!~bob@10.0.0.1", "", "PRIVMSG", "", text.encode())


def answer(net: FakeNet, worker: int, rows: list[Any], error: str = "") -> tuple[Any, ...]:
    """Answer the one query the worker's core asked of its store; return the query."""
    offload = net.cores[worker].offload
    [query] = offload.queries
    offload.queries.clear()
    offload.history_answered(query.ticket, rows, error, net.now)
    return tuple(query.query)


class Store:
    """The sequencer's process's store, for real: every run its :class:`Storage` is handed
    (via the fake net) is written to an SQLite file when a query is answered, and the query
    runs on the store's reader, as a worker's would."""

    def __init__(self, net: FakeNet, tmp_path: Path) -> None:
        self.path = db.prepare(str(tmp_path))
        self.runs: list[tuple[object, ...]] = []
        net.storage._submit = self.runs.append

    def answer(self, net: FakeNet, worker: int) -> tuple[Any, ...]:
        writer = Writer(self.path)
        writer.start()
        for run in self.runs:
            writer.submit(run)
        self.runs.clear()
        assert writer.close()
        offload = net.cores[worker].offload
        [query] = offload.queries
        offload.queries.clear()
        conn = db.connect(self.path, readonly=True)
        try:
            rows = reader.run(conn, query.query)
        finally:
            conn.close()
        offload.history_answered(query.ticket, rows, "", net.now)
        return tuple(query.query)


def texts(lines: list[str]) -> list[str]:
    """What each PRIVMSG to #h said, in order."""
    return [m[1] for line in lines if (m := re.search(r" PRIVMSG #h :(.*)$", line))]


# -- which lines --------------------------------------------------------------------------------
def test_the_last_lines_before_the_join_then_the_live_ones(workers: int, tmp_path: Path) -> None:
    """Every message shares the join's millisecond here (the fake clock stands still): only
    the msgid cut of EJoin.kept tells the replay's last line from the first live one. Live
    messages arrive while the query is out, and the store has them before it answers: they
    come once, live, after the replay; the client's own next line waits behind it too."""
    net = network(workers)
    store = Store(net, tmp_path)
    bob = talk(net, 5)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h", "PING after")
    assert carol.lines() == []  # corked: its JOIN and NAMES wait with the replay's place
    bob.send("PRIVMSG #h :live 0", "PRIVMSG #h :live 1")  # a run, decided after the join
    query = store.answer(net, net.last)
    last = msgid(*last_of_run(net.storage.kept[b"#h"])).decode()  # live 1's
    assert query[:2] == ("around", "#h") and query[2] != last and query[3] == 5
    out = carol.lines()
    assert out[0] == f":carol!~carol@10.0.0.{net.last + 1} JOIN #h"
    assert out[3] == ":fastchat.local NOTICE #h :Replaying up to 3 lines of pre-join history"
    assert texts(out) == ["line 2", "line 3", "line 4", "live 0", "live 1"]
    assert " 366 " in out[2] and "PONG" in out[-1]
    assert not net.cores[net.last].offload.queries  # the PING asked nothing


def test_a_store_ahead_of_the_bus_repeats_nothing(tmp_path: Path) -> None:
    """At several workers the hub hands a message to its store and to the bus at once: the
    store may have written a live message before the joiner's worker has it. The replay ends
    at the join's cut all the same; the message comes once, live, after it."""
    net = network(2)
    store = Store(net, tmp_path)
    bob = talk(net, 4)
    carol = net.user("carol", 1)
    carol.send("JOIN #h")
    bob.send("PRIVMSG #h :live", pump=False)
    for request in net.cores[0].outbox:  # the hub decides it, keeps it...
        net.sequencer.handle(0, request, int(net.now * 1000))
    net.cores[0].outbox.clear()
    on_the_bus, net.queues[1] = net.queues[1], []  # ... and carol's worker has not got it
    store.answer(net, 1)  # the store has it
    net.queues[1] += on_the_bus
    assert texts(carol.lines()) == ["line 1", "line 2", "line 3", "live"]


def test_the_replay_has_the_msgids_the_members_saw(workers: int, tmp_path: Path) -> None:
    net = network(workers)
    store = Store(net, tmp_path)
    alice = net.negotiated(0, "alice", "message-tags")
    join_empty(net, alice)
    bob = talk(net, 4)
    seen = [tags_of(line)[b"msgid"] for line in alice.raw_lines() if b" PRIVMSG " in line]
    carol = net.negotiated(net.last, "carol", *TAGS)
    carol.send("JOIN #h")
    store.answer(net, net.last)
    bob.send("PRIVMSG #h :live")
    out = carol.raw_lines()
    replayed = [line for line in out if tags_of(line).get(b"batch") == b"history"]
    assert [tags_of(line)[b"msgid"] for line in replayed] == seen[-3:]
    assert out[-1].endswith(b"PRIVMSG #h :live") and b"batch=" not in out[-1]


def test_no_message_kept_since_the_process_started(workers: int) -> None:
    """After a restart the sequencer's process has kept nothing yet: every kept message
    predates the join's time, and the query ends there."""
    net = network(workers, history_replay=10)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h")
    query = answer(net, net.last, [row(0, "from before the restart")])
    assert query == ("before", "#h", int(net.now * 1000), 10)
    assert texts(carol.lines()) == ["from before the restart"]


def test_rows_after_the_cut_and_beyond_the_count_are_dropped(workers: int) -> None:
    net = network(workers)
    talk(net, 1)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h")
    cut = msgid(*last_of_run(net.storage.kept[b"#h"])).decode()
    rows = [row(n, f"old {n}") for n in range(4)]
    rows += [row(4, "cut")._replace(msgid=cut), row(5, "after the join")]
    answer(net, net.last, rows)
    assert texts(carol.lines()) == ["old 2", "old 3", "cut"]


def test_a_cut_the_store_no_longer_has_replays_nothing(workers: int) -> None:
    net = network(workers)
    talk(net, 1)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h", "PING after")
    answer(net, net.last, [row(0, "newer, the cut pruned")])
    out = carol.lines()
    assert texts(out) == [] and "NOTICE" not in " ".join(out) and "PONG" in out[-1]


def test_max_age(workers: int) -> None:
    net = network(workers, history_replay_minutes=90)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h")
    now = int(net.now * 1000)
    answer(net, net.last, [row(0, "too old", now - 90 * 60_000 - 1), row(1, "young", now - 1)])
    out = carol.lines()
    assert out[3].endswith(":Replaying up to 3 lines of pre-join history from the last 90 minutes")
    assert texts(out) == ["young"]


# -- how it looks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("caps", "notice", "batched", "time"),
    [
        ((), True, False, False),
        (("server-time",), True, False, True),
        (("batch",), False, True, False),
        (("batch", "server-time", "message-tags"), False, True, True),
    ],
)
def test_rendering(
    workers: int, caps: tuple[str, ...], notice: bool, batched: bool, time: bool
) -> None:
    net = network(workers)
    carol = net.negotiated(net.last, "carol", *caps)
    carol.send("JOIN #h")
    answer(net, net.last, [row(0, "one"), row(1, "two")])
    out = carol.raw_lines()
    assert b" 366 " in out[2]
    replay = out[3:]
    if notice:
        assert replay.pop(0).endswith(b" NOTICE #h :Replaying up to 3 lines of pre-join history")
    if batched:
        assert replay[0].endswith(b" BATCH +history chathistory #h")
        assert replay[-1].endswith(b" BATCH -history")
        replay = replay[1:-1]
    assert [line.rsplit(b" :", 1)[1] for line in replay] == [b"one", b"two"]
    for line in replay:
        untagged = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        assert untagged == b":bob!~bob@10.0.0.1 PRIVMSG #h :" + line[-3:]
        tags = tags_of(line)
        assert (tags.get(b"time") == b"2025-11-26T01:20:00.123Z") is time
        assert (tags.get(b"batch") == b"history") is batched
        assert (b"msgid" in tags) is ("message-tags" in caps)


def test_an_empty_history_sends_nothing(workers: int) -> None:
    net = network(workers)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h", "PING after")
    answer(net, net.last, [])
    out = carol.lines()
    assert " 366 " in out[2] and "PONG" in out[3] and len(out) == 4


def test_a_store_error_replays_nothing_and_lets_the_output_go(workers: int) -> None:
    net = network(workers)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h", "PING after")
    answer(net, net.last, [], "OperationalError: disk I/O error")
    assert "PONG" in carol.lines()[-1]


def test_a_labeled_join_holds_its_replay(workers: int) -> None:
    """Ergo puts its replay in the JOIN's response too: the replay is under the client's
    barrier, so it is part of the labeled reply, its batch nested in the labeled one."""
    net = network(workers)
    carol = net.negotiated(net.last, "carol", "batch", "labeled-response")
    carol.send("@label=j JOIN #h")
    answer(net, net.last, [row(0, "one")])
    out = carol.raw_lines()
    assert out[0].startswith(b"@label=j ") and out[0].endswith(b" labeled-response")
    outer = out[0].split(b" BATCH +")[1].split(b" ")[0]
    assert all(tags_of(line).get(b"batch") == outer for line in out[1:4])  # JOIN, NAMES
    assert tags_of(out[4]) == {b"batch": outer} and b"BATCH +history chathistory #h" in out[4]
    assert tags_of(out[5]) == {b"batch": b"history"} and out[5].endswith(b"PRIVMSG #h :one")
    assert tags_of(out[6]) == {b"batch": outer} and out[6].endswith(b"BATCH -history")
    assert out[7].endswith(b"BATCH -" + outer) and len(out) == 8


# -- who gets one -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [{"history_replay": 0}, {"history": False}, {"data_dir": ""}],
    ids=["none asked", "no history", "no store"],
)
def test_no_replay(workers: int, config: dict[str, Any]) -> None:
    net = network(workers, **config)
    talk(net, 2)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h", "PING after")
    out = carol.lines()
    assert " 366 " in out[2] and "PONG" in out[3]
    assert not net.cores[net.last].offload.queries


def test_no_replay_for_a_client_that_negotiated_chathistory(workers: int) -> None:
    net = network(workers)
    talk(net, 2)
    carol = net.negotiated(net.last, "carol", "draft/chathistory", "batch")
    carol.send("JOIN #h", "PING after")
    assert "PONG" in carol.lines()[-1]
    assert not net.cores[net.last].offload.queries


def test_autojoin_replays_too(workers: int) -> None:
    """The lobby everyone is put in at registration: a newcomer sees what was said."""
    net = network(workers, autojoin=(b"#lobby",))
    carol = net.connect(net.last)
    carol.send("NICK carol", "USER carol 0 * :carol")
    assert carol.lines() == []  # the welcome and the JOIN wait with the replay
    query = answer(net, net.last, [row(0, "hello")._replace(target_folded="#lobby")])
    assert query[:2] == ("before", "#lobby")
    out = carol.lines()
    assert " 001 " in out[0] and out[-1].endswith("PRIVMSG #lobby :hello")


def test_two_channels_in_one_join_each_after_its_own_names(workers: int) -> None:
    """The answers may come back in any order: each replay goes in its own place."""
    net = network(workers)
    carol = net.user("carol", net.last)
    carol.send("JOIN #a,#b", "PING after")
    core = net.cores[net.last]
    queries = list(core.offload.queries)
    assert [q.query[1] for q in queries] == ["#a", "#b"]
    core.offload.queries.clear()
    for q in reversed(queries):
        text = q.query[1].encode() + b" then"
        core.offload.history_answered(q.ticket, [row(0, text.decode())], "", net.now)
    out = carol.lines()
    joins = [i for i, line in enumerate(out) if " JOIN " in line]
    said = [i for i, line in enumerate(out) if " PRIVMSG " in line]
    assert len(joins) == 2 and len(said) == 2
    assert joins[0] < said[0] < joins[1] < said[1]
    assert out[said[0]].endswith("PRIVMSG #a :#a then")
    assert out[said[1]].endswith("PRIVMSG #b :#b then") and "PONG" in out[-1]


def test_a_hub_restart_loses_no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old hub may die holding the D_STORED of a JOIN's history barrier (it waits for the
    store, outside the frames a restart replays): the new hub's snapshot makes the worker
    ask again, and the replay comes, once."""
    net = network(2)
    talk(net, 2)
    carol = net.user("carol", 1)
    held: list[tuple[int, Record]] = []
    monkeypatch.setattr(net, "after_stored", lambda w, rec: held.append((w, rec)))
    carol.send("JOIN #h", "PING after")
    assert held and not net.cores[1].offload.queries
    monkeypatch.undo()
    net.queues[1].append((B_SNAPSHOT, net.state.snapshot(), {}))  # a new hub
    net.pump()
    [query] = net.cores[1].offload.queries
    answer(net, 1, [row(0, "line 1")._replace(msgid=query.query[2])])
    net.queues[1].append(held[0][1])  # the old hub's D_STORED, late after all: runs nothing
    out = carol.lines()
    assert texts(out) == ["line 1"] and "PONG" in out[-1]
    assert not net.cores[1].offload.queries


def test_a_client_that_quits_while_corked_gets_its_last_lines(workers: int) -> None:
    """Its output flows again at once (nobody will fill the place); its ERROR comes once
    nothing of its is left outstanding (the acknowledgement rule), the query included, whose
    answer is then dropped."""
    net = network(workers)
    carol = net.user("carol", net.last)
    carol.send("JOIN #h")
    net.cores[net.last].disconnect(carol.client, b"Bye")
    net.pump()
    assert " JOIN #h" in carol.lines()[0]
    answer(net, net.last, [row(0, "too late")])
    assert [line for line in carol.lines() if "PRIVMSG" in line or "ERROR" in line] == [
        f"ERROR :Closing link: (~carol@10.0.0.{net.last + 1}) [Bye]"
    ]


# -- the cut ----------------------------------------------------------------------------------------
def test_the_join_s_cut_is_the_last_kept_message(workers: int) -> None:
    net = network(workers)
    bob = talk(net, 0)
    bob.send("PRIVMSG #h :a", "PRIVMSG #h :b", "PRIVMSG #h :c")  # one run
    bob.send("@+x=1 TAGMSG #h", "PRIVMSG @#h :ops only")  # not kept
    assert last_of_run(net.storage.kept[b"#h"])[2] == 2  # bob's third message (0, 1, 2)


def test_last_of_run_agrees_with_the_writer() -> None:
    blob = b":b!~b@h PRIVMSG #h :one\r\n:b!~b@h NOTICE #h :two\r\n:b!~b@h PRIVMSG #h :3\r\n"
    record = (D_CHAN, b"#h", 7, blob, 4, b"", 0, 1000)
    _target, time_ms, sender, first, count, *_ = run_row(
        ("message_run", b"#h", 1000, 7, 4, b"", b"", blob)
    )
    assert last_of_run(record) == (time_ms, sender, first + count - 1) == (1000, 7, 6)
    assert msgid(*last_of_run(record)) == b"3e8-7-6"
    one = (D_CHAN, b"#h", 7, b":b!~b@h PRIVMSG #h :x", 9, b"", 0, 1000)  # no CR LF
    assert last_of_run(one) == (1000, 7, 9)
    assert run_row(("message_run", b"#h", 1000, 7, 9, b"", b"", one[3]))[4] == 1


def test_the_store_notes_only_what_it_keeps() -> None:
    storage = Storage(None)
    plain = (D_CHAN, b"#h", 5, b":a!b@c PRIVMSG #h :x\r\n", 0, b"", 0, 1000)
    storage.channel(plain)
    storage.channel((D_CHAN, b"#h", 5, b":a!b@c TAGMSG #h\r\n", 1, b"", TAGMSG, 1000))
    storage.channel((D_CHAN, b"#h", 5, b":a!b@c PRIVMSG @#h :x\r\n", 2, b"", OP, 1000))
    assert storage.kept == {b"#h": plain}
    off = Storage(None, history=False)
    off.channel(plain)
    assert off.kept == {}
