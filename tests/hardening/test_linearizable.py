"""Several workers answer like one process: no stale reads, no early acknowledgements.

Once a client has read the server's answer to its command (its ``001``, its ``JOIN``, its
``NICK``, the ``ERROR`` after ``QUIT``), everybody else must see the effect, whichever worker
they are on: the acknowledgement is sent only after the sequencer decided, and every query
passes a read barrier through the sequencer before it answers from the replica (README,
"Why it behaves like one server"). Each test repeats the race many times with observers on two
different workers, so every trial has an observer on another worker than the actor; any stale
answer fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker
from tests.ircclient import IRCClient

TRIALS = {1: 40, 4: 200}


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    with process.running(["--no-flood-control"], workers=request.param) as srv:
        yield srv


@pytest.fixture
def observers(server: process.ServerProcess) -> Iterator[list[IRCClient]]:
    """Two registered clients in #room, on two different workers when there are several."""
    pids = server.worker_pids()
    clients = [client_on_worker(server, pid, f"obs{i}") for i, pid in enumerate(pids[:2])]
    try:
        for c in clients:
            c.send("JOIN #room")
            c.expect(rf" 366 {c.nick} #room ")
        yield clients
    finally:
        for c in clients:
            c.close()


def _ask(observer: IRCClient, *lines: str) -> list[str]:
    for line in lines:
        observer.send(line)
    return observer.sync()


def _register(client: IRCClient, nick: str) -> str:
    """Send NICK/USER; return the numeric that decided it (001 or 433)."""
    client.nick = nick
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    got = client.expect_until(r" (001|433) ")
    return got[-1].split()[1]


def test_registration_and_quit_are_seen_at_once(
    server: process.ServerProcess, observers: list[IRCClient]
) -> None:
    """QUIT, then at once: WHOIS, ISON and NAMES from any worker no longer see the quitter,
    and the same nick can be taken again straight away (what every IRC client that restarts
    does). A fresh registration is visible to WHOIS as soon as its 001 was read."""
    stale: list[str] = []
    for n in range(TRIALS[server.workers]):
        nick = f"q{n}"
        with IRCClient(server.host, server.port) as actor:
            assert _register(actor, nick) == "001"
            for obs in observers:
                if " 311 " not in "\n".join(_ask(obs, f"WHOIS {nick}")):
                    stale.append(f"trial {n}: {obs.nick} missed {nick} after its 001")
            actor.send("JOIN #room")
            actor.expect(rf" 366 {nick} #room ")
            for obs in observers:
                names = [ln for ln in _ask(obs, "NAMES #room") if " 353 " in ln]
                if nick not in " ".join(names).replace("@", " ").split():
                    stale.append(f"trial {n}: {obs.nick} NAMES missed {nick} after its JOIN")
            actor.send("QUIT :bye")
            assert "ERROR" in " ".join(actor.wait_closed())
        for obs in observers:
            seen = _ask(obs, f"WHOIS {nick}", f"ISON {nick}", "NAMES #room")
            text = "\n".join(ln for ln in seen if " QUIT " not in ln and " JOIN " not in ln)
            if f" 311 {obs.nick} {nick} " in text:
                stale.append(f"trial {n}: {obs.nick} WHOIS still found {nick}")
            ison = [ln for ln in seen if " 303 " in ln]
            if not ison or nick in ison[0].split(":")[-1].split():
                stale.append(f"trial {n}: {obs.nick} ISON still found {nick}: {ison}")
            names = " ".join(ln for ln in seen if " 353 " in ln).replace("@", " ").split()
            if nick in names:
                stale.append(f"trial {n}: {obs.nick} NAMES still lists {nick}")
        with IRCClient(server.host, server.port) as again:
            if _register(again, nick) != "001":
                stale.append(f"trial {n}: {nick} was not free right after its QUIT")
            again.send("QUIT")
            again.wait_closed()
    assert not stale, f"{len(stale)} stale answers:\n" + "\n".join(stale[:20])


def test_join_and_nick_are_seen_at_once(
    server: process.ServerProcess, observers: list[IRCClient]
) -> None:
    """A channel just created answers MODE, NAMES, WHO and LIST from every worker; a nick
    just changed is found under its new name and the old one is free for anybody."""
    stale: list[str] = []
    pids = server.worker_pids()
    actor = client_on_worker(server, pids[-1], "actor0")
    taker = client_on_worker(server, pids[0], "taker0")
    try:
        for n in range(TRIALS[server.workers]):
            chan = f"#fresh{n}"
            actor.send(f"JOIN {chan}")
            actor.expect(rf" 366 {actor.nick} {chan} ")
            for obs in observers:
                seen = "\n".join(
                    _ask(obs, f"MODE {chan}", f"NAMES {chan}", f"WHO {chan}", f"LIST {chan}")
                )
                for code, what in (
                    (" 324 ", "MODE"),
                    (f" 353 {obs.nick} = {chan} :@{actor.nick}", "NAMES"),
                    (f" 352 {obs.nick} {chan} ", "WHO"),
                    (f" 322 {obs.nick} {chan} 1 ", "LIST"),
                ):
                    if code not in seen:
                        stale.append(f"trial {n}: {obs.nick} {what} {chan} is stale:\n{seen}")
            actor.send(f"PART {chan}")
            old, new = actor.nick, f"actor{n + 1}"
            actor.send(f"NICK {new}")
            actor.expect(rf"^:{old}!\S+ NICK :?{new}$")
            actor.nick = new
            for obs in observers:
                seen = "\n".join(_ask(obs, f"WHOIS {new}", f"ISON {old} {new}"))
                if f" 311 {obs.nick} {new} " not in seen:
                    stale.append(f"trial {n}: {obs.nick} WHOIS missed {new}")
                if f" 303 {obs.nick} :{new}" not in seen:
                    stale.append(f"trial {n}: {obs.nick} ISON stale after NICK: {seen}")
            taker.send(f"NICK {old}")
            got = taker.expect(rf"^:{taker.nick}!\S+ NICK :?{old}$| 433 ")
            if " 433 " in got.group(0):
                stale.append(f"trial {n}: {old} was not free right after {new}'s NICK")
            else:
                taker.nick = old
    finally:
        actor.close()
        taker.close()
    assert not stale, f"{len(stale)} stale answers:\n" + "\n".join(stale[:20])


def test_pong_and_away_are_current(
    server: process.ServerProcess, observers: list[IRCClient]
) -> None:
    """PING is a barrier too: after a JOIN was acknowledged to the joiner, a member's PONG
    comes after the JOIN line (what irctest and clients rely on). RPL_AWAY follows AWAY at
    once: set, the next private message gets 301; cleared, it no longer does."""
    stale: list[str] = []
    pids = server.worker_pids()
    actor = client_on_worker(server, pids[-1], "roamer")
    try:
        for n in range(TRIALS[server.workers]):
            actor.send("JOIN #room")
            actor.expect(r" 366 roamer #room ")
            for obs in observers:
                if not any(" JOIN " in ln and ln.startswith(":roamer!") for ln in obs.sync()):
                    stale.append(f"trial {n}: {obs.nick}'s PONG came before roamer's JOIN")
            actor.send("PART #room")
            actor.expect(r"^:roamer!\S+ PART #room")
            actor.send(f"AWAY :gone {n}")
            actor.expect(r" 306 roamer ")
            for obs in observers:
                if f" 301 {obs.nick} roamer :gone {n}" not in "\n".join(
                    _ask(obs, f"PRIVMSG roamer :hi {n}")
                ):
                    stale.append(f"trial {n}: {obs.nick} got no 301 after AWAY")
            actor.send("AWAY")
            actor.expect(r" 305 roamer ")
            for obs in observers:
                if " 301 " in "\n".join(_ask(obs, f"PRIVMSG roamer :back? {n}")):
                    stale.append(f"trial {n}: {obs.nick} got 301 after the AWAY was cleared")
            actor.drain()
    finally:
        actor.close()
    assert not stale, f"{len(stale)} stale answers:\n" + "\n".join(stale[:20])
