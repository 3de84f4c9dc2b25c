"""IRCv3 draft/read-marker on a real server, at one worker and at four: connections logged
in to one account, spread over the workers, share their read markers (a set on one reaches
the others, a get anywhere sees it, a JOIN shows it before its 366), and the markers outlive
a restart with the same data directory. Raw sockets; synchronised by waiting for replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastchat.server.runtime import process
from tests.ircclient import IRCClient, with_caps

CAP = "draft/read-marker"
T1 = "2021-05-20T08:30:00.000Z"
T0 = "2020-01-01T00:00:00.000Z"


def _session(srv: process.ServerProcess, nick: str, password: str = "correct-horse") -> IRCClient:
    """A connection with the capability, logged in to ``reader`` with SASL PLAIN."""
    c = IRCClient(srv.host, srv.port, register=False)
    c.nick = nick
    c.request_caps(f"sasl {CAP}")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.sasl_plain("reader", password)
    c.expect(rf" 903 {nick} ")
    c.send("CAP END")
    c.expect(r" 376 | 422 ")
    return c


@pytest.mark.parametrize("workers", [1, 4], ids=["1worker", "4workers"])
def test_markers_are_shared_and_kept(workers: int, tmp_path: Path) -> None:
    data = ["--no-flood-control", "--data-dir", str(tmp_path)]
    with process.running(data, workers=workers) as srv:
        reg = IRCClient(srv.host, srv.port, register=False)
        reg.register("regger")
        reg.send("REGISTER reader * correct-horse")
        reg.expect(r" REGISTER SUCCESS reader ")
        reg.close()
        sessions = [_session(srv, f"dev{i}") for i in range(4)]  # on every worker, at 4
        try:
            sessions[0].send(f"MARKREAD #room timestamp={T1}")
            for c in sessions:  # the setter's answer, and every other session told
                c.expect(rf"^:\S+ MARKREAD #room timestamp={T1}$")
            sessions[3].send(f"MARKREAD #ROOM timestamp={T0}")  # older: the one held
            sessions[3].expect(rf"^:\S+ MARKREAD #ROOM timestamp={T1}$")
            for c in sessions:
                c.send("MARKREAD #room")
                c.expect(rf"^:\S+ MARKREAD #room timestamp={T1}$")
                assert not [x for x in c.sync() if "MARKREAD" in x]  # nothing else was sent
            guest = with_caps(srv.host, srv.port, "guest", CAP)  # logged in to nothing
            guest.send("MARKREAD #room")
            guest.expect(r"^:\S+ MARKREAD #room \*$")
            guest.close()
        finally:
            for c in sessions:
                c.close()
    with process.running(data, workers=workers) as srv:
        back = _session(srv, "back")
        back.send("JOIN #room")
        lines = back.expect_until(r" 366 back #room ")
        assert lines[-2].endswith(f" MARKREAD #room timestamp={T1}"), lines
        back.close()
