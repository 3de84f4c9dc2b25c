"""IRCv3 draft/read-marker (MARKREAD) in the pure core, at one and two workers: get and set,
the marker only moving forward, the FAILs, the MARKREAD of a JOIN before its 366, an
account's markers shared by its connections (on either worker) and a connection's own
ending with it; the table's bound; snapshots; and the store keeping an account's markers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fastchat.server.config import Config
from fastchat.server.network.markers import MAX_MARKERS, ReadMarkers
from fastchat.server.network.records import (
    E_ACCOUNTPASSWORD,
    E_MARKREAD,
    EAccount,
    EAccountPassword,
    EMarkread,
    make,
)
from fastchat.server.network.state import State
from fastchat.server.runtime.hub import Hub
from fastchat.server.store import db, reader, schema
from fastchat.server.store.writer import Writer
from tests.unit.fakenet import FakeClient, FakeNet

SRV = ":fastchat.local"
CAP = "draft/read-marker"
T1, T1_MS = "2019-01-04T14:33:26.123Z", 1546612406123
T2 = "2020-03-15T10:00:00.000Z"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


def markreads(c: FakeClient) -> list[str]:
    return [line for line in c.lines() if " MARKREAD " in line]


def logged_in(net: FakeNet, nick: str, worker: int, account: str = "ann") -> FakeClient:
    """A client with the capability on ``worker``, logged in to ``account`` (registered by
    the first one that asks)."""
    c = net.negotiated(worker, nick, CAP)
    if account not in {a.decode() for a in net.cores[0].state.accounts}:
        c.send(f"REGISTER {account} * {account}-secret")
    else:
        c.send(f"PRIVMSG NickServ :IDENTIFY {account} {account}-secret")
    assert net.cores[worker].state.users[c.client.uid].account == account.encode()
    c.lines()
    return c


def test_get_set_and_only_forward(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", CAP)
    ann.send("MARKREAD #nowhere")
    assert ann.lines() == [f"{SRV} MARKREAD #nowhere *"]
    ann.send(f"MARKREAD #Chan timestamp={T2}")
    assert ann.lines() == [f"{SRV} MARKREAD #Chan timestamp={T2}"]
    ann.send(f"MARKREAD #chan timestamp={T1}")  # older: answered with the one held
    assert ann.lines() == [f"{SRV} MARKREAD #chan timestamp={T2}"]
    ann.send("MARKREAD #CHAN", "MARKREAD bob")
    assert ann.lines() == [f"{SRV} MARKREAD #CHAN timestamp={T2}", f"{SRV} MARKREAD bob *"]
    for core in net.cores:  # every replica holds the connection's marker
        assert core.state.markers.get(ann.client.uid, b"#chan") > T1_MS


def test_fails(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", CAP)
    ann.send(
        "MARKREAD",
        "MARKREAD #chan *",
        "MARKREAD #chan timestamp=yesterday",
        "MARKREAD #chan msgid=abc",
        "MARKREAD #chan timestamp=1970-01-01T00:00:00.000Z",
        "MARKREAD not,a,target",
    )
    assert ann.lines() == [
        f"{SRV} FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters",
        f"{SRV} FAIL MARKREAD INVALID_PARAMS #chan :Invalid timestamp",
        f"{SRV} FAIL MARKREAD INVALID_PARAMS #chan :Invalid timestamp",
        f"{SRV} FAIL MARKREAD INVALID_PARAMS #chan :Invalid timestamp",
        f"{SRV} FAIL MARKREAD INVALID_PARAMS #chan :Invalid timestamp",
        f"{SRV} FAIL MARKREAD INVALID_PARAMS not,a,target :Invalid target",
    ]
    bob = net.user("bob")  # without the capability the command does not exist for it
    bob.send("MARKREAD #chan")
    assert bob.lines() == [f"{SRV} 421 bob MARKREAD :Unknown command"]


def test_join_sends_the_marker_before_366(net: FakeNet) -> None:
    ann = net.negotiated(net.last, "ann", CAP)
    ann.send("JOIN #test")
    got = ann.lines()
    assert got[-2:] == [f"{SRV} MARKREAD #test *", f"{SRV} 366 ann #test :End of /NAMES list."]
    ann.send(f"MARKREAD #test timestamp={T1}", "PART #test")
    ann.lines()
    ann.send("JOIN #TEST")  # (the channel is made again, under this name)
    assert f"{SRV} MARKREAD #TEST timestamp={T1}" in ann.lines()
    bob = net.user("bob", net.last)  # no capability: no MARKREAD
    bob.send("JOIN #test")
    assert not [line for line in bob.lines() if "MARKREAD" in line]


def test_an_accounts_connections_share_markers_on_any_worker(net: FakeNet) -> None:
    one = logged_in(net, "one", 0)
    two = logged_in(net, "two", net.last)
    other = logged_in(net, "other", net.last, account="zed")
    plain = net.user("plain", net.last)
    plain.send("PRIVMSG NickServ :IDENTIFY ann ann-secret")  # no capability: told nothing
    plain.lines()
    one.send(f"MARKREAD #test timestamp={T1}")
    assert markreads(one) == [f"{SRV} MARKREAD #test timestamp={T1}"]
    assert markreads(two) == [f"{SRV} MARKREAD #test timestamp={T1}"]
    assert markreads(other) == [] and plain.lines() == []
    two.send(f"MARKREAD #test timestamp={T1}")  # no move: only the setter is answered
    assert markreads(two) == [f"{SRV} MARKREAD #test timestamp={T1}"] and markreads(one) == []
    two.send("JOIN #test")
    assert f"{SRV} MARKREAD #test timestamp={T1}" in two.lines()
    other.send("MARKREAD #test")
    assert markreads(other) == [f"{SRV} MARKREAD #test *"]


def test_a_connections_own_markers_end_with_it_or_at_login(net: FakeNet) -> None:
    ann = net.negotiated(0, "ann", CAP)
    ann.send(f"MARKREAD #test timestamp={T1}")
    uid = ann.client.uid
    assert all(core.state.markers.get(uid, b"#test") == T1_MS for core in net.cores)
    ann.send("REGISTER ann * ann-secret")  # logged in: the account's markers now
    ann.lines()
    ann.send("MARKREAD #test")
    assert ann.lines() == [f"{SRV} MARKREAD #test *"]
    bob = net.negotiated(net.last, "bob", CAP)
    bob.send(f"MARKREAD ann timestamp={T1}")
    bob.send("QUIT")
    bob.core.connection_lost(bob.client, b"Client quit", net.now)
    net.pump()
    for core in net.cores:
        assert uid not in core.state.markers.by_owner
        assert bob.client.uid not in core.state.markers.by_owner


def test_drop_forgets_the_accounts_markers(net: FakeNet) -> None:
    ann = logged_in(net, "ann", 0)
    ann.send(f"MARKREAD #test timestamp={T1}", "PRIVMSG NickServ :DROP ann-secret")
    for core in net.cores:
        assert b"ann" not in core.state.markers.by_owner


def test_an_owner_keeps_the_latest_markers_only() -> None:
    markers = ReadMarkers()
    for n in range(MAX_MARKERS + 2):
        markers.set(b"ann", b"#c%d" % n, 1000 + n)
    have = markers.by_owner[b"ann"]
    assert len(have) == MAX_MARKERS and b"#c0" not in have and b"#c1" not in have
    assert markers.set(b"ann", b"#c0", 5)  # a new one pushes out the oldest again
    assert b"#c2" not in have and have[b"#c0"] == 5


def test_markers_cross_a_snapshot() -> None:
    state = State()
    state.apply(make(EMarkread, b"ann", 0, b"#Test", T1_MS, 0))
    copy = State()
    copy.load_snapshot(state.snapshot())
    assert copy.markers.get(b"ann", b"#test") == T1_MS
    assert copy.markers.rows() == state.markers.rows()


def test_the_store_keeps_an_accounts_markers(tmp_path: Path) -> None:
    path = db.prepare(str(tmp_path), schema.MIGRATIONS)
    writer = Writer(path)
    writer.start()
    writer.submit_many(
        [
            ("marker_put", "ann", "#test", 20),
            ("marker_put", "ann", "#test", 10),  # never back
            ("marker_put", "ann", "bob", 15),
            ("marker_put", "zed", "#test", 5),
            ("account_drop", "zed"),
            *(("marker_put", "many", f"#c{n}", n) for n in range(MAX_MARKERS + 3)),
        ]
    )
    assert writer.close()
    rows = reader.load_markers(path)
    assert [r for r in rows if r[0] == "ann"] == [("ann", "bob", 15), ("ann", "#test", 20)]
    assert not [r for r in rows if r[0] == "zed"]
    many = [r[1] for r in rows if r[0] == "many"]
    assert len(many) == MAX_MARKERS and "#c0" not in many and f"#c{MAX_MARKERS + 2}" in many


def test_a_new_hub_takes_the_later_markers_and_passwords_from_a_replica() -> None:
    """After a hub crash the new hub merges a worker's replica: a read marker later than the
    hub's (or one it lacks) comes back as an E_MARKREAD, an earlier one changes nothing, a
    connection's own comes back only while the connection is there; a password changed
    while the store lagged (NickServ PASSWD) comes back as an E_ACCOUNTPASSWORD."""
    net = FakeNet(workers=1, autojoin=())
    ann = net.negotiated(0, "ann", CAP)
    ann.send("REGISTER ann * ann-secret", f"MARKREAD #new timestamp={T2}")
    ann.send(f"MARKREAD #old timestamp={T1}", "PRIVMSG NickServ :PASSWD ann-secret new-secret")
    guest = net.negotiated(0, "guest", CAP)
    guest.send(f"MARKREAD #g timestamp={T1}")
    replica = net.cores[0].state.snapshot()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        hub = Hub(Config(workers=1), listener, None)
        hub.out[0] = []
        hub.state.apply(make(EAccount, b"ann", b"old-hash", b"", b"", 1))
        hub.state.apply(make(EMarkread, b"ann", 0, b"#old", T1_MS + 1, 0))  # later already
        hub._merge(0, replica, set(net.cores[0].state.users))
        back = {(r[1], r[2], r[3]) for r in hub.out[0] if r[0] == E_MARKREAD}
        assert back == {(b"ann", 0, b"#new"), (b"", guest.client.uid, b"#g")}
        assert hub.state.markers.get(b"ann", b"#old") == T1_MS + 1
        changed = [r for r in hub.out[0] if r[0] == E_ACCOUNTPASSWORD]
        assert changed == [make(EAccountPassword, b"ann", changed[0][2], changed[0][3])]
        assert hub.state.accounts[b"ann"].password_hash == changed[0][2] != b"old-hash"
