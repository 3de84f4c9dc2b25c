"""Hostile input against the running server (issue 5, "Hostile input").

Every hostile connection is placed on the same worker as a well-behaved *bystander* (chosen
with ``worker_of``). Each test proves three things: the hostile input gets a defined answer (a
numeric, or a clean disconnect with ERROR when it cannot be answered), the worker processes are
the same before and after (nothing crashed and was restarted), and the bystander's transcript
of a fixed exchange is byte-for-byte what it was before any hostile input.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker
from tests.ircclient import IRCClient, wait_nicks_free

#: What answers a line the server cannot run: a numeric, or FAIL (a line that is not UTF-8)
REFUSAL = re.compile(r"^:fastchat\.local (\d{3}|FAIL) ")
UNAWAY = ":fastchat.local 305 %s :You are no longer marked as being away"


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    # No autojoin: hostile clients must not add JOIN/QUIT noise to the bystander's transcript.
    # A generous flood allowance keeps the fixed exchanges from being delayed; flood control
    # itself is tested in test_flood.py.
    args = ["--autojoin", "", "--flood-burst", "100", "--flood-rate", "100"]
    with process.running(args, workers=request.param) as srv:
        yield srv


def exchange(bystander: IRCClient) -> list[str]:
    """A fixed exchange whose replies depend on nothing the hostile clients can change."""
    me = bystander.nick
    for line in (
        "PING :fixed",
        f"PRIVMSG {me} :still chatting",
        # AWAY goes through the sequencer and holds back the client's later lines until it is
        # decided, so the echo of the PRIVMSG (which may travel through the hub) comes first
        # and the transcript's order is the same with one worker or several.
        "AWAY",
        "NAMES #calm",
        "MODE #calm",
        f"USERHOST {me}",
        f"ISON {me} nobody",
        "TOPIC #calm",
    ):
        bystander.send(line)
    return bystander.sync()


@dataclass
class Arena:
    """The bystander, its worker, and the baseline that every hostile test must leave intact."""

    server: process.ServerProcess
    bystander: IRCClient
    worker: int
    worker_pids: list[int]
    baseline: list[str]
    clients: list[IRCClient] = field(default_factory=list)

    def hostile(self, nick: str | None = None) -> IRCClient:
        """A connection on the bystander's worker (registered when ``nick`` is given)."""
        client = client_on_worker(self.server, self.worker, nick)
        self.clients.append(client)
        return client

    def assert_unharmed(self) -> None:
        assert sorted(self.server.worker_pids()) == self.worker_pids, "a worker was replaced"
        assert exchange(self.bystander) == self.baseline, "the bystander's replies changed"


@pytest.fixture(scope="module")
def calm(server: process.ServerProcess) -> Iterator[tuple[IRCClient, int, list[str]]]:
    with IRCClient(server.host, server.port, "bystander") as bystander:
        bystander.send("JOIN #calm")
        bystander.expect(r" 366 bystander #calm ")
        worker = server.worker_of(bystander.sock.getsockname()[1])
        assert worker is not None
        baseline = exchange(bystander)
        assert any("PRIVMSG bystander :still chatting" in line for line in baseline)
        yield bystander, worker, baseline


@pytest.fixture
def arena(server: process.ServerProcess, calm: tuple[IRCClient, int, list[str]]) -> Iterator[Arena]:
    bystander, worker, baseline = calm
    arena = Arena(server, bystander, worker, sorted(server.worker_pids()), baseline)
    yield arena
    nicks = [c.nick for c in arena.clients if c.nick]
    for client in arena.clients:
        client.close()
    if nicks:
        wait_nicks_free(server.host, server.port, nicks)


def test_random_bytes(arena: Arena) -> None:
    """Seeded random bytes (cut into lines wherever they hold CR or LF) are each answered with
    a numeric (unknown command, malformed, too long) or FAIL (not UTF-8), never relayed or
    crashing anything."""
    noisy = arena.hostile("noisy")
    noisy.send_raw(random.Random(5).randbytes(3000) + b"\r\n")
    replies = noisy.sync()
    assert replies, "random lines got no answer at all"
    assert all(REFUSAL.match(line) for line in replies), replies
    arena.assert_unharmed()


def test_nul_byte(arena: Arena) -> None:
    """A line holding NUL is rejected as malformed (400) and never relayed to its target."""
    nul = arena.hostile("nuller")
    nul.send(b"PRIVMSG bystander :before\x00after")
    assert nul.sync() == [
        ":fastchat.local 400 nuller * :Malformed message: message contains NUL, CR or LF"
    ]
    arena.assert_unharmed()  # the baseline comparison also proves nothing reached bystander


def test_lone_cr_ends_a_line(arena: Arena) -> None:
    """A lone CR ends a line (RFC 1459 §2.3.1 lets CR or LF end a message): two PINGs joined by
    CR get two PONGs, and a message cannot smuggle a CR to its recipient."""
    cr = arena.hostile("crafty")
    cr.send(b"PING :one\rPING :two")
    assert cr.sync() == [
        ":fastchat.local PONG fastchat.local :one",
        ":fastchat.local PONG fastchat.local :two",
    ]
    cr.send(b"PRIVMSG crafty :first\rPRIVMSG crafty :second\rAWAY")
    assert cr.sync() == [
        ":crafty!~crafty@127.0.0.1 PRIVMSG crafty :first",
        ":crafty!~crafty@127.0.0.1 PRIVMSG crafty :second",
        UNAWAY % "crafty",
    ]
    assert all("\r" not in line for line in cr.log)
    arena.assert_unharmed()


def test_invalid_utf8(arena: Arena) -> None:
    """A line that is not UTF-8 is refused whole with ``FAIL <command> INVALID_UTF8`` (IRCv3
    UTF8ONLY, on by default), a message and a nick alike; nothing of it is relayed."""
    bad = arena.hostile("badutf")
    bad.send(b"PRIVMSG badutf :\xff\xfe\xc3(")
    bad.send(b"NICK \xff\xfe")
    bad.send("AWAY")
    refused = (
        "INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network"
    )
    assert bad.sync() == [
        f":fastchat.local FAIL PRIVMSG {refused}",
        f":fastchat.local FAIL NICK {refused}",
        UNAWAY % "badutf",
    ]
    arena.assert_unharmed()


def test_100kb_line_without_newline(arena: Arena) -> None:
    """A 100 KB line with no line end is answered once with 417 ERR_INPUTTOOLONG as soon as it
    passes the line limit; the rest of it is discarded up to the next line end, and the
    connection then works normally."""
    big = arena.hostile("bigline")
    big.send_raw(b"PRIVMSG bystander :" + b"A" * 100_000)
    big.expect(r"^:fastchat\.local 417 bigline :Input line was too long$")
    big.send_raw(b"\r\n")
    assert big.sync() == []  # no second 417, and nothing of the line was taken as a command
    arena.assert_unharmed()


def test_thousands_of_lines_in_one_write(arena: Arena) -> None:
    """5000 lines in one write overflow the receive queue: the client is disconnected cleanly
    with ERROR ... Excess Flood (before that, the lines it was allowed were answered)."""
    flood = arena.hostile("flooder")
    flood.send_raw(b"".join(b"PING :n%d\r\n" % i for i in range(5000)))
    rest = flood.wait_closed()
    assert rest, "closed without a word"
    assert re.fullmatch(r"ERROR :Closing link: \(\S+\) \[Excess Flood\]", rest[-1]), rest[-5:]
    pongs = [line for line in rest if " PONG " in line]
    assert pongs == [f":fastchat.local PONG fastchat.local :n{i}" for i in range(len(pongs))]
    arena.assert_unharmed()


def test_half_a_line_then_hang_up(arena: Arena) -> None:
    """An unfinished line is not a command: half a PRIVMSG followed by a hang-up delivers
    nothing, and the client's nick is free again."""
    half = arena.hostile("halfway")
    half.send_raw(b"PRIVMSG bystander :this never ends")
    half.close()
    arena.assert_unharmed()  # the baseline comparison proves the half message was not relayed


def test_registration_that_never_finishes(arena: Arena) -> None:
    """Before registration only registration commands work: anything else is answered with
    451 ERR_NOTREGISTERED, and the half-registered connection holds no nick."""
    lonely = arena.hostile()
    lonely.send("NICK lonely")
    lonely.send("JOIN #calm")
    lonely.send("PRIVMSG bystander :hi")
    lonely.send("WHOIS bystander")
    assert lonely.sync() == [":fastchat.local 451 lonely :You have not registered"] * 3
    arena.bystander.send("ISON lonely")
    arena.bystander.expect(r" 303 bystander :$")
    arena.assert_unharmed()


MALFORMED = [
    ("FOO bar", "421 malformed FOO :Unknown command"),
    ("123 x", "421 malformed 123 :Unknown command"),
    (":", "400 malformed * :Malformed message: empty source"),
    ("@", "400 malformed * :Malformed message: empty tag section"),
    ("@a=1", "400 malformed * :Malformed message: missing command"),
    (":source.only", "400 malformed * :Malformed message: missing command"),
    ("\x01\x02", "400 malformed * :Malformed message: malformed command"),
    ("PRIVMSG", "411 malformed :No recipient given (PRIVMSG)"),
    ("PRIVMSG bystander", "412 malformed :No text to send"),
    ("JOIN", "461 malformed JOIN :Not enough parameters"),
    ("MODE", "461 malformed MODE :Not enough parameters"),
    ("NICK", "431 malformed :No nickname given"),
    ("USER a 0 *", "461 malformed USER :Not enough parameters"),
]


def test_unknown_and_malformed_commands(arena: Arena) -> None:
    """Unknown commands get 421, unparsable lines 400, missing parameters 461/411/412/431:
    one numeric per line, in order (Modern IRC, "Numerics"); a line of only spaces is an
    empty line, ignored without a reply (Modern IRC, "Messages")."""
    bad = arena.hostile("malformed")
    for line, _ in MALFORMED:
        bad.send(line)
        bad.send("   ")
    assert bad.sync() == [f":fastchat.local {reply}" for _, reply in MALFORMED]
    arena.assert_unharmed()


MISSING_TARGETS = [
    ("PRIVMSG nobody :hi", ["401 ghost nobody :No such nick/channel"]),
    ("PRIVMSG #nochan :hi", ["403 ghost #nochan :No such channel"]),
    ("NOTICE nobody :hi", []),  # RFC 2812 §3.3.2: never an automatic reply to a NOTICE
    ("WHOIS nobody", ["401 ghost nobody :No such nick/channel", "318 ghost nobody :End of /WHOIS list."]),
    ("MODE #nochan", ["403 ghost #nochan :No such channel"]),
    ("MODE nobody", ["401 ghost nobody :No such nick/channel"]),
    ("TOPIC #nochan", ["403 ghost #nochan :No such channel"]),
    ("KICK #nochan nobody", ["403 ghost #nochan :No such channel"]),
    ("INVITE nobody #calm", ["401 ghost nobody :No such nick/channel"]),
    ("PART #nochan", ["403 ghost #nochan :No such channel"]),
    ("NAMES #nochan", ["366 ghost #nochan :End of /NAMES list."]),
    ("WHO nobody", ["315 ghost nobody :End of WHO list"]),
]  # fmt: skip


def test_targets_that_do_not_exist(arena: Arena) -> None:
    """Commands aimed at nicks and channels that do not exist get the RFC 2812 numeric
    (401 ERR_NOSUCHNICK, 403 ERR_NOSUCHCHANNEL, or the end-of-list reply for queries)."""
    ghost = arena.hostile("ghost")
    for line, _ in MISSING_TARGETS:
        ghost.send(line)
    expected = [f":fastchat.local {r}" for _, replies in MISSING_TARGETS for r in replies]
    assert ghost.sync() == expected
    arena.assert_unharmed()
