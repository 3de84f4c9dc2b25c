"""Message history (issue 12) in the pure core: CHATHISTORY as an effect (the query the
shell's store reader runs) under the client's barrier, the rendering of the store's rows,
its refusals; what the one worker hands the store for each delivered run; and the writer's
row for a run. No SQLite thread runs here: answers are fed by hand."""

from __future__ import annotations

import pytest

from fastchat.server.commands import history
from fastchat.server.network.records import D_CHAN, OP, TAGMSG, Record
from fastchat.server.runtime.storage import Storage
from fastchat.server.store import schema
from fastchat.server.store.schema import HistoryRow
from fastchat.server.store.writer import run_row
from tests.unit.fakenet import FakeClient, FakeNet, tags_of

CAPS = ("draft/chathistory", "batch", "server-time", "message-tags")


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=(), chathistory_max=50)


def members(net: FakeNet) -> tuple[FakeClient, FakeClient]:
    alice = net.negotiated(0, "alice", *CAPS)
    bob = net.user("bob", net.last)
    for c in (alice, bob):
        c.send("JOIN #Hist")
        c.lines()
    alice.lines()
    return alice, bob


ROW = HistoryRow(
    "#hist", "abc-1-0", 1_764_120_000_123, "bob!~bob@10.0.0.2", "", "PRIVMSG", "", b"hi"
)


def test_latest_is_an_effect_answered_in_a_batch(net: FakeNet) -> None:
    alice, _ = members(net)
    alice.send("CHATHISTORY LATEST #hist * 500", "PING after")
    core = net.cores[0]
    [query] = core.offload.queries
    assert query.query == ("latest", "#hist", None, 50)  # capped at CHATHISTORY=50
    assert alice.lines() == []  # the PING waits behind the query (the barrier)
    core.offload.queries.clear()
    core.offload.history_answered(query.ticket, [ROW], "", net.now)
    out = alice.raw_lines()
    assert out[0].endswith(b" BATCH +history chathistory #Hist")
    assert tags_of(out[1]) == {
        b"batch": b"history",
        b"time": b"2025-11-26T01:20:00.123Z",
        b"msgid": b"abc-1-0",
    }
    assert out[1].endswith(b" :bob!~bob@10.0.0.2 PRIVMSG #Hist :hi")
    assert out[2].endswith(b" BATCH -history")
    assert b"PONG" in out[3]


def test_references_become_queries(net: FakeNet) -> None:
    alice, _ = members(net)
    alice.send(
        "CHATHISTORY BEFORE #hist msgid=abc-1-0 5",
        "CHATHISTORY BETWEEN #hist timestamp=1970-01-01T00:00:01.000Z msgid=x 5",
    )
    core = net.cores[0]
    [query] = core.offload.queries  # the second waits behind the first
    assert query.query == ("before", "#hist", "abc-1-0", 5)
    core.offload.queries.clear()
    core.offload.history_answered(query.ticket, [], "", net.now)
    net.pump()  # the second's history barrier
    [query] = core.offload.queries
    assert query.query == ("between", "#hist", 1000, "x", 5)


def test_the_query_waits_for_the_store_to_catch_up(
    net: FakeNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history barrier: CHATHISTORY is asked of the store only once the sequencer's
    D_STORED says the store has everything decided before it (held by the hub, or at one
    worker by the worker's shell); the client's next lines wait meanwhile."""
    alice, bob = members(net)
    held: list[tuple[int, Record]] = []
    if len(net.cores) > 1:  # the hub's side: hold what it would send once stored
        monkeypatch.setattr(net, "after_stored", lambda w, rec: held.append((w, rec)))
    else:
        net.hold_checks = True  # the shell's side: its store has not caught up
    bob.send("PRIVMSG #hist :just now")
    alice.send("CHATHISTORY LATEST #hist * 5", "PING after")
    core = net.cores[0]
    assert not core.offload.queries
    assert [line for line in alice.lines() if "PONG" in line] == []
    if held:
        [(worker, record)] = held
        net.queues[worker].append(record)
    else:
        [record] = core.offload.stored_waits
        core.offload.stored_waits.clear()
        core.apply(record)
    net.pump()
    [query] = core.offload.queries
    assert query.query == ("latest", "#hist", None, 5)


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        ("LATEST #nowhere * 10", "FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :"),
        ("LATEST #hist * 0", "FAIL CHATHISTORY INVALID_PARAMS LATEST :"),
        ("LATEST #hist * many", "FAIL CHATHISTORY INVALID_PARAMS LATEST :"),
        ("BEFORE #hist yesterday 10", "FAIL CHATHISTORY INVALID_PARAMS BEFORE yesterday :"),
        ("SIDEWAYS #hist * 10", "FAIL CHATHISTORY INVALID_PARAMS SIDEWAYS :"),
        ("AFTER #hist", "FAIL CHATHISTORY INVALID_PARAMS AFTER :"),
    ],
)
def test_refusals(net: FakeNet, request_: str, reply: str) -> None:
    members(net)
    carol = net.negotiated(0, "carol", *CAPS)
    carol.send("CHATHISTORY " + request_)
    assert reply in carol.lines()[0]
    assert not net.cores[0].offload.queries


def test_only_members_read_a_channel(net: FakeNet) -> None:
    members(net)
    carol = net.negotiated(0, "carol", *CAPS)
    carol.send("CHATHISTORY LATEST #hist * 10")
    assert "FAIL CHATHISTORY INVALID_TARGET LATEST #hist :" in carol.lines()[0]


def test_a_store_error_is_a_message_error(net: FakeNet) -> None:
    alice, _ = members(net)
    alice.send("CHATHISTORY LATEST #hist * 10")
    core = net.cores[0]
    query = core.offload.queries.pop()
    core.offload.history_answered(query.ticket, [], "OperationalError: disk I/O error", net.now)
    assert "FAIL CHATHISTORY MESSAGE_ERROR LATEST #Hist :" in alice.lines()[0]


def test_one_worker_hands_every_delivered_run_to_the_store() -> None:
    net = FakeNet(workers=1, autojoin=())
    kept: list[Record] = []
    net.cores[0].stored = kept.append
    alice, bob = net.user("alice"), net.user("bob")
    for c in (alice, bob):
        c.send("JOIN #h")
    alice.send("PRIVMSG #h :one", "PRIVMSG #h :two")
    runs = [r for r in kept if r[0] == D_CHAN]
    assert len(runs) == 1  # one run of two lines
    assert runs[0][3].count(b"\r\n") == 2


def test_the_writer_keeps_a_run_as_one_row() -> None:
    blob = b":bob!~b@h PRIVMSG #h :one\r\n:bob!~b@h NOTICE #h :two words\r\n"
    row = run_row(("message_run", b"#h", 1000, 7, 4, b"acct", b"+x=1", blob))
    assert row == ("#h", 1000, 7, 4, 2, "acct", "+x=1", blob)


@pytest.mark.parametrize(("a", "b"), [("ann", "*bob"), ("*bob", "ann"), ("ann", "ann")])
def test_the_command_keys_conversations_as_the_store_does(a: str, b: str) -> None:
    assert history.dm_target(a, b) == schema.dm_target(a, b)


def test_a_conversation_is_keyed_by_account_else_by_nick() -> None:
    assert history.dm_party(b"ann", b"annie") == "ann"
    assert history.dm_party(None, b"annie") == "*annie"  # never an account's name


def test_a_private_query_of_a_user_logged_in_to_no_account_is_empty() -> None:
    net = FakeNet(workers=1, autojoin=())
    alice = net.negotiated(0, "alice", *CAPS)
    net.user("bob")
    alice.send("CHATHISTORY LATEST bob * 10")
    out = alice.lines()
    assert out[0].endswith("BATCH +history chathistory bob") and out[1].endswith("BATCH -history")
    assert not net.cores[0].offload.queries


def test_a_labeled_request_nests_its_batch_in_the_labeled_response(net: FakeNet) -> None:
    alice = net.negotiated(0, "alice", *CAPS, "labeled-response")
    alice.send("JOIN #hist")
    alice.lines()
    alice.send("@label=q1 CHATHISTORY LATEST #hist * 10")
    core = net.cores[0]
    query = core.offload.queries.pop()
    core.offload.history_answered(query.ticket, [ROW], "", net.now)
    out = alice.raw_lines()
    assert out[0].startswith(b"@label=q1 ") and out[0].endswith(b" labeled-response")
    outer = out[0].split(b" BATCH +")[1].split(b" ")[0]
    assert tags_of(out[1]) == {b"batch": outer} and b"BATCH +history chathistory" in out[1]
    assert tags_of(out[2])[b"batch"] == b"history" and b" PRIVMSG #hist :hi" in out[2]
    assert tags_of(out[3]) == {b"batch": outer} and out[3].endswith(b"BATCH -history")
    assert out[4].endswith(b"BATCH -" + outer)


def test_retention_prunes_at_most_hourly() -> None:
    storage = Storage(None, True, days=2, limit=500)
    ops: list[tuple[object, ...]] = []
    storage._submit = ops.append
    day = 86_400_000
    storage.maybe_prune(10 * day)
    storage.maybe_prune(10 * day + 1000)  # within the hour: nothing
    storage.maybe_prune(10 * day + 3_600_000)
    assert ops == [("prune", 8 * day, 500), ("prune", 8 * day + 3_600_000, 500)]


def test_no_retention_prunes_nothing() -> None:
    storage = Storage(None)
    ops: list[tuple[object, ...]] = []
    storage._submit = ops.append
    storage.maybe_prune(10**12)
    assert ops == []


def test_only_plain_channel_messages_are_kept() -> None:
    storage = Storage(None)
    ops: list[tuple[object, ...]] = []
    storage._submit = ops.append
    storage.channel((D_CHAN, b"#h", 5, b":a!b@c PRIVMSG #h :x\r\n", 0, b"", 0, 1000))
    storage.channel((D_CHAN, b"#h", 5, b":a!b@c TAGMSG #h\r\n", 1, b"", TAGMSG, 1000))
    storage.channel((D_CHAN, b"#h", 5, b":a!b@c PRIVMSG @#h :x\r\n", 2, b"", OP, 1000))
    assert ops == [("message_run", b"#h", 1000, 5, 0, b"", b"", b":a!b@c PRIVMSG #h :x\r\n")]
