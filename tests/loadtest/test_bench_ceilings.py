"""The ceiling tools measure what they say: the worker core they time delivers each hub record
to exactly its local members and relays a talker's reads as records for the hub; the hub
they drive routes each message to exactly the workers holding its room (at 2 and 4 fake
workers, spread and clustered). Tiny and short: correctness, not speed."""

from __future__ import annotations

import marshal

import pytest

from bench import hubceiling, workerceiling
from fastchat.server.network.records import D_CHAN, D_CHANSEG, R_CHANSEG
from fastchat.server.runtime.bus import FrameReader


@pytest.mark.parametrize("segments", [True, False])
@pytest.mark.parametrize("local", [1, 3])
def test_worker_deliver_reaches_exactly_the_local_members(local: int, segments: bool) -> None:
    setup = workerceiling.Setup(
        rooms=3, members=5, local=local, run=2, per_room=2, segments=segments
    )
    bench = workerceiling.Bench(setup, "null")
    assert len(bench.core.clients) == 3 * local
    for batch in FrameReader().feed(bench.hub_frame()):
        # per_room records for each room, in one segment or one by one
        assert [r[0] for r in batch] == ([D_CHANSEG] if segments else [D_CHAN] * 3 * 2)
        bench.core.apply_batch(batch, bench.now)
    assert len(bench.core.dirty) == 3 * local
    for client in bench.core.clients.values():
        data = b"".join(client.pending)
        # two records for its room, each a run of two lines, from the remote sender
        assert data.count(b"\r\n") == 4 and data.count(b" PRIVMSG #r") == 4
    figures = bench.deliver(0.05)
    assert figures["deliveries"] == figures["records"] * local * 2


def test_worker_ingest_relays_runs_for_the_hub() -> None:
    setup = workerceiling.Setup(rooms=2, members=3, local=1, run=3)
    bench = workerceiling.Bench(setup, "null")
    client = bench.talkers[0]
    bench.core.data_received(client, b"PRIVMSG #r0 :hello\r\n" * 3, bench.now)
    ((record,),) = bench.core.take_requests()  # a segment of one run
    assert record[0] == R_CHANSEG
    key, _uid, line, *_ = marshal.loads(record[3])
    assert key == b"#r0" and line.count(b"\r\n") == 3
    assert bench.ingest(0.05)["messages"] > 0


@pytest.mark.parametrize("segments", [True, False])
@pytest.mark.parametrize("placement", ["spread", "clustered"])
@pytest.mark.parametrize("workers", [2, 4])
def test_hub_routes_each_message_to_its_visits(
    workers: int, placement: str, segments: bool
) -> None:
    load = hubceiling.HubLoad(
        workers=workers, rooms=8, members=5, run=2, batch=8, window=2, placement=placement,
        segments=segments,
    )  # fmt: skip
    row = hubceiling.measure(load, duration=0.3, warmup=0.1)
    assert row["records_routed_per_record"] == row["visits"] == hubceiling.visits(load)
    # the fake workers' segments carry the hub's epoch: all go whole (none without segments)
    assert row["whole"] == (1.0 if segments else 0.0)
    assert row["records_decided"] > 0 and row["hub_cpu_us_per_message"] > 0
