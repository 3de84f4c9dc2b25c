"""The rules of ``--workers auto`` and ``--max-clients auto`` (runtime/limits.py), how
``auto`` is written and kept across a reload, and the accept loop's answer when descriptors
run out (runtime/accept.py), with a fake listener."""

from __future__ import annotations

import argparse
import errno
import os
import resource
import socket
from pathlib import Path

import pytest

from fastchat.server import config
from fastchat.server.config import AUTO, Config, ConfigError, from_args, from_mapping, with_auto
from fastchat.server.configfile import Source
from fastchat.server.runtime import accept, limits


@pytest.mark.parametrize(
    ("cores", "workers"),
    [(1, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 4), (8, 6), (10, 8), (16, 8), (128, 8)],
)
def test_auto_workers(cores: int, workers: int) -> None:
    """One worker below four cores (on two, one relays the most); then one per core
    besides the hub's and the store writer's, at most eight."""
    assert limits.auto_workers(cores) == workers


def test_auto_workers_never_leaves_the_serial_processes_without_a_core() -> None:
    for cores in range(limits.AUTO_WORKERS_MIN_CORES, 64):
        assert 1 <= limits.auto_workers(cores) <= cores - limits.SERIAL_PROCESSES


@pytest.mark.parametrize(
    ("soft", "workers", "expected"),
    [(1024, 1, 1024 - 27), (1024, 4, 4 * 997), (20000, 2, 2 * 19973), (64, 4, 4 * 37), (20, 3, 3)],
)
def test_auto_max_clients(soft: int, workers: int, expected: int) -> None:
    """Each worker's limit, less its own (10 with one listener), the spare 16 and the
    reserve, times the workers; at least one each."""
    overhead = limits.worker_overhead(Config(placement="kernel"))  # 10: base 9, one listener
    assert limits.auto_max_clients(soft, overhead, workers) == expected


def test_auto_max_clients_without_a_limit_is_no_limit() -> None:
    assert limits.auto_max_clients(resource.RLIM_INFINITY, 10, 4) == 0


def test_worker_overhead_counts_the_listeners() -> None:
    base = limits.worker_overhead(Config())
    assert limits.worker_overhead(Config(tls_port=-1)) == base + 1
    assert limits.worker_overhead(Config(tls_port=-1, web_port=-1, web_tls_port=-1)) == base + 3
    # the hand-off listener of channel-affine placement (the default)
    assert limits.worker_overhead(Config(placement="kernel")) == base - 1


def test_auto_is_the_default_and_a_number_still_overrides() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    assert (Config().workers, Config().max_clients) == (AUTO, AUTO)
    got = from_args(parser.parse_args(["--workers", "3", "--max-clients", "0"]))
    assert (got.workers, got.max_clients) == (3, 0)
    got = from_args(parser.parse_args(["--workers", "auto", "--max-clients", "auto"]))
    assert (got.workers, got.max_clients) == (AUTO, AUTO)
    with pytest.raises(SystemExit):
        parser.parse_args(["--workers", "many"])


def test_auto_in_a_config_file() -> None:
    assert from_mapping({"workers": "auto", "max_clients": 500}).workers == AUTO
    assert from_mapping({"workers": 2}).workers == 2
    with pytest.raises(ConfigError, match="'workers'"):
        from_mapping({"workers": "many"})
    with pytest.raises(ConfigError, match="'nicklen'"):
        from_mapping({"nicklen": "auto"})  # only the settings that say so take auto


def test_with_auto_replaces_only_what_was_auto() -> None:
    picks = {"workers": 4, "max_clients": 3000}
    assert with_auto(Config(), picks) == Config(workers=4, max_clients=3000)
    assert with_auto(Config(workers=2, max_clients=0), picks) == Config(workers=2, max_clients=0)


def test_a_reload_keeps_what_auto_picked_at_start(tmp_path: Path) -> None:
    """The supervisor decides once; a reloaded file that still says auto gets the same."""
    path = tmp_path / "fastchat.toml"
    path.write_text('max_clients = "auto"\nnicklen = 20\n')
    source = Source(str(path), {"workers": "auto"}, {"workers": 3, "max_clients": 900})
    loaded = source.load()
    assert (loaded.workers, loaded.max_clients, loaded.nicklen) == (3, 900, 20)
    path.write_text("max_clients = 50\n")
    assert source.load().max_clients == 50
    _, restart = config.reloaded(loaded, source.load())
    assert restart == []  # workers still auto: no restart asked for


def test_decide_picks_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="fastchat.limits")
    picked = limits.decide(Config())
    cores = limits.usable_cores()
    assert picked.config.workers == limits.auto_workers(cores) == picked.auto["workers"]
    assert picked.config.max_clients == picked.auto["max_clients"] >= 0
    assert f"workers: auto -> {picked.config.workers} ({cores} cores usable" in caplog.text
    assert "descriptors: soft" in caplog.text
    assert "max clients: auto -> " in caplog.text
    # given numbers stay, and what auto would mean is kept for a reload that says auto
    given = limits.decide(Config(workers=2, max_clients=7))
    assert (given.config.workers, given.config.max_clients) == (2, 7)
    assert given.auto["workers"] == limits.auto_workers(cores)
    overhead = limits.worker_overhead(Config())
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert given.auto["max_clients"] == limits.auto_max_clients(soft, overhead, 2)


# -- the accept loop, with a fake listener ---------------------------------------------------------


class FakeListener:
    """accept() gives, in turn, each of ``outcomes``: an errno to raise, or a connection
    (a socketpair's end; the other end is kept for the test to read)."""

    def __init__(self, outcomes: list[int | str]) -> None:
        self.outcomes = outcomes
        self.peers: list[socket.socket] = []

    def accept(self) -> tuple[socket.socket, tuple[str, int]]:
        if not self.outcomes:
            raise BlockingIOError(errno.EAGAIN, "nothing")
        what = self.outcomes.pop(0)
        if isinstance(what, int):
            raise OSError(what, os.strerror(what))
        ours, theirs = socket.socketpair()
        self.peers.append(theirs)
        return ours, (what, 1234)


def _run(listener: FakeListener, reserve: accept.Reserve) -> tuple[bool, list[bytes], list[bytes]]:
    taken: list[bytes] = []
    refused: list[bytes] = []

    def on_socket(sock: socket.socket, ip: bytes) -> None:
        taken.append(ip)
        sock.close()

    def refuse(sock: socket.socket, ip: bytes) -> None:
        refused.append(ip)
        accept.answer_and_close(sock, b"ERROR :no room for " + ip + b"\r\n")

    pause = accept.accept_from(listener, reserve, on_socket, refuse)  # type: ignore[arg-type]
    return pause, taken, refused


def test_out_of_descriptors_each_newcomer_is_answered_with_the_reserve() -> None:
    reserve = accept.Reserve()
    try:
        listener = FakeListener(["1.1.1.1", errno.EMFILE, "2.2.2.2", errno.EMFILE, "3.3.3.3"])
        pause, taken, refused = _run(listener, reserve)
        assert (pause, taken, refused) == (False, [b"1.1.1.1"], [b"2.2.2.2", b"3.3.3.3"])
        assert listener.peers[1].recv(100) == b"ERROR :no room for 2.2.2.2\r\n"
        assert listener.peers[1].recv(100) == b""  # and closed
        assert reserve.fd is not None  # taken back
    finally:
        reserve.close()
        for peer in listener.peers:
            peer.close()


@pytest.mark.parametrize("code", [errno.ENOBUFS, errno.ENOMEM, errno.EMFILE])
def test_no_reserve_or_no_memory_pauses_the_listener(code: int) -> None:
    class Unavailable(accept.Reserve):
        def restore(self) -> bool:  # (as if another thread held the freed number)
            return False

    pause, taken, refused = _run(FakeListener([code]), Unavailable())
    assert (pause, taken, refused) == (True, [], [])


def test_a_reserve_lost_to_another_thread_is_taken_back_at_the_next_accept() -> None:
    reserve = accept.Reserve()
    reserve.release()
    try:
        listener = FakeListener([errno.EMFILE, "4.4.4.4"])
        assert _run(listener, reserve) == (False, [], [b"4.4.4.4"])
        assert reserve.fd is not None
    finally:
        reserve.close()
        for peer in listener.peers:
            peer.close()


def test_emfile_with_nothing_waiting_any_more_restores_the_reserve() -> None:
    reserve = accept.Reserve()
    try:
        pause, taken, refused = _run(FakeListener([errno.EMFILE]), reserve)
        assert (pause, taken, refused) == (False, [], [])
        assert reserve.fd is not None
    finally:
        reserve.close()


def test_other_errors_neither_pause_nor_stop_the_server() -> None:
    reserve = accept.Reserve()
    try:
        pause, taken, _ = _run(FakeListener([errno.ECONNABORTED]), reserve)
        assert (pause, taken) == (False, [])
    finally:
        reserve.close()
