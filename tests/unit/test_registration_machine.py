"""Connection registration as one state machine (``fastchat.server.registration``).

First the table itself, pair by pair; then what a client sees through it, on one worker (the
sequencer in-process) and on two (an in-memory hub), transcript style. RFC 2812 §3.1, Modern
IRC "Connection Registration", IRCv3 "Capability Negotiation".
"""

from __future__ import annotations

import itertools
import re

import pytest

from fastchat.server.registration import TRANSITIONS, Input, Outcome, Phase, advance
from tests.unit.fakenet import FakeClient, FakeNet

Ph, In, Out = Phase, Input, Outcome

# --- the table ----------------------------------------------------------------------------------

DOCUMENTED = [
    # NEW ──CAP LS/REQ──▶ NEGOTIATING ──CAP END──▶ NEW
    (Ph.NEW, In.CAP_START, Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.CAP_END, Ph.NEW, Out.ACCEPT),
    # NEW (nick and user given) ──READY──▶ PENDING ──INTRO──▶ REGISTERED
    (Ph.NEW, In.READY, Ph.PENDING, Out.ACCEPT),
    (Ph.PENDING, In.INTRO, Ph.REGISTERED, Out.ACCEPT),
    # PENDING ──REFUSED (nick taken)──▶ NEW
    (Ph.PENDING, In.REFUSED, Ph.NEW, Out.ACCEPT),
    # CAP END with no negotiation open: nothing happens
    (Ph.NEW, In.CAP_END, Ph.NEW, Out.IGNORE),
    # a connection in NEGOTIATING may give PASS, NICK and USER; READY waits for CAP END
    (Ph.NEGOTIATING, In.PASS, Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.NICK, Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.USER, Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.READY, Ph.NEGOTIATING, Out.IGNORE),
    # in PENDING, a NICK is ignored: the sequencer's answer decides
    (Ph.PENDING, In.NICK, Ph.PENDING, Out.IGNORE),
    # IRCv3 allows CAP after registration; it does not change the phase
    (Ph.REGISTERED, In.CAP_START, Ph.REGISTERED, Out.ACCEPT),
    (Ph.REGISTERED, In.CAP_END, Ph.REGISTERED, Out.IGNORE),
]


@pytest.mark.parametrize(
    ("phase", "event", "after", "outcome"),
    DOCUMENTED,
    ids=[f"{p.name}-{e.name}" for p, e, _, _ in DOCUMENTED],
)
def test_documented_transitions(phase: Phase, event: Input, after: Phase, outcome: Outcome) -> None:
    """The paths the module's diagram and prose promise (IRCv3 capability negotiation: "the
    server MUST NOT complete registration until the client sends a CAP END")."""
    assert advance(phase, event) == (after, outcome)


@pytest.mark.parametrize(
    ("phase", "event"),
    list(itertools.product([Ph.PENDING, Ph.REGISTERED], [In.PASS, In.USER])),
    ids=lambda x: x.name,
)
def test_pass_and_user_after_ready_are_already_registered(phase: Phase, event: Input) -> None:
    """RFC 2812 §3.1.1 and §3.1.3: PASS and USER once registration is under way or done are
    ERR_ALREADYREGISTRED (462); the phase does not move."""
    assert advance(phase, event) == (phase, Out.ALREADY_REGISTERED)


IMPOSSIBLE = [(p, e) for p in Phase for e in Input if (p, e) not in TRANSITIONS]


def test_impossible_pairs_exist() -> None:
    """Some pairs are bugs by construction (an INTRO before READY, a REFUSED out of the blue,
    a NICK fed after registration, which is a rename and bypasses the machine)."""
    assert {(Ph.NEW, In.INTRO), (Ph.NEW, In.REFUSED), (Ph.REGISTERED, In.NICK)} <= set(IMPOSSIBLE)


@pytest.mark.parametrize(
    ("phase", "event"), IMPOSSIBLE, ids=[f"{p.name}-{e.name}" for p, e in IMPOSSIBLE]
)
def test_impossible_pair_raises(phase: Phase, event: Input) -> None:
    """A pair not in the table cannot happen: it is our bug (a local error), raised loudly,
    not a reply to the peer."""
    with pytest.raises(RuntimeError, match=re.escape(phase.value)):
        advance(phase, event)


def test_registered_is_final() -> None:
    """Nothing leads out of REGISTERED, and only INTRO leads into it."""
    for (phase, event), (after, _) in TRANSITIONS.items():
        if phase is Ph.REGISTERED:
            assert after is Ph.REGISTERED
        if after is Ph.REGISTERED and phase is not Ph.REGISTERED:
            assert event is In.INTRO


def test_every_phase_is_reachable_from_new() -> None:
    """The table is connected: each phase can be reached from a fresh connection."""
    seen, todo = {Ph.NEW}, [Ph.NEW]
    while todo:
        phase = todo.pop()
        for (p, _), (after, _) in TRANSITIONS.items():
            if p is phase and after not in seen:
                seen.add(after)
                todo.append(after)
    assert seen == set(Phase)


def test_a_whole_negotiated_registration() -> None:
    """CAP LS, NICK, USER (READY ignored while negotiating), CAP END, READY, INTRO."""
    phase = Ph.NEW
    steps = [
        (In.CAP_START, Ph.NEGOTIATING, Out.ACCEPT),
        (In.NICK, Ph.NEGOTIATING, Out.ACCEPT),
        (In.USER, Ph.NEGOTIATING, Out.ACCEPT),
        (In.READY, Ph.NEGOTIATING, Out.IGNORE),
        (In.CAP_END, Ph.NEW, Out.ACCEPT),
        (In.READY, Ph.PENDING, Out.ACCEPT),
        (In.INTRO, Ph.REGISTERED, Out.ACCEPT),
    ]
    for event, after, outcome in steps:
        phase, got = advance(phase, event)
        assert (phase, got) == (after, outcome), event


# --- through the worker cores ---------------------------------------------------------------------


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param)


def phase_of(c: FakeClient) -> Phase:
    """The client's phase (read through a function, so each check reads it afresh)."""
    return c.client.phase


def numerics(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith(":fastchat.local ")]


def known_anywhere(net: FakeNet, nick: bytes) -> bool:
    return any(core.state.user_by_nick(nick) is not None for core in net.cores)


@pytest.mark.parametrize(
    "script",
    [
        ["CAP LS 302", "NICK a", "USER a 0 * :A"],
        ["CAP LS", "NICK a", "USER a 0 * :A"],
        ["NICK a", "CAP LS 302", "USER a 0 * :A"],
        ["CAP REQ :nope", "USER a 0 * :A", "NICK a"],
    ],
    ids=["ls302-first", "ls-first", "ls-between", "req-first"],
)
def test_cap_holds_registration_until_cap_end(net: FakeNet, script: list[str]) -> None:
    """IRCv3 capability negotiation: "If the client sends a CAP LS or CAP REQ before
    registration, the server MUST NOT complete registration until the client sends a CAP
    END". No 001, and no registration request reaches the sequencer, before it."""
    c = net.connect(net.last)
    for line in script:
        c.send(line)
    got = c.lines()
    assert got and all(line.startswith(":fastchat.local CAP ") for line in got), got
    assert phase_of(c) is Ph.NEGOTIATING
    assert not known_anywhere(net, b"a")
    c.send("CAP END")
    got = c.lines()
    host = f"10.0.0.{net.last + 1}"
    assert got[0] == f":fastchat.local 001 a :Welcome to the fastchat IRC network a!~a@{host}"
    assert phase_of(c) is Ph.REGISTERED
    assert all(core.state.user_by_nick(b"a") is not None for core in net.cores)


def test_registration_without_cap_is_immediate(net: FakeNet) -> None:
    """RFC 2812 §3.1: a client that never speaks CAP registers on NICK and USER alone."""
    c = net.connect(net.last)
    c.send("NICK a", "USER a 0 * :A")
    assert numerics(c.lines())[0] == "001"
    assert phase_of(c) is Ph.REGISTERED


def test_cap_end_without_ls_is_harmless(net: FakeNet) -> None:
    """CAP END with no negotiation open gets no reply and changes nothing, before and after
    registration."""
    c = net.connect(net.last)
    assert phase_of(c) is Ph.NEW
    c.send("CAP END")
    assert c.lines() == []
    assert phase_of(c) is Ph.NEW
    c.send("NICK a", "CAP END", "USER a 0 * :A")
    assert numerics(c.lines())[0] == "001"
    c.send("CAP END")
    assert c.lines() == []
    assert phase_of(c) is Ph.REGISTERED


def test_pass_during_negotiation_counts(net: FakeNet) -> None:
    """RFC 2812 §3.1.1: PASS before registration completes is taken, even while CAP
    negotiation holds it; the password is checked when registration goes ahead."""
    net = FakeNet(workers=len(net.cores), password=b"sesame")
    c = net.connect(net.last)
    c.send("CAP LS 302", "PASS sesame", "NICK a", "USER a 0 * :A")
    assert "001" not in numerics(c.lines())
    c.send("CAP END")
    assert numerics(c.lines())[0] == "001"


def test_pass_after_registration_is_462(net: FakeNet) -> None:
    """RFC 2812 §3.1.1 / Modern IRC PASS: after registration, ERR_ALREADYREGISTERED (462)."""
    c = net.connect(net.last, "a")
    c.lines()
    c.send("PASS whatever")
    assert c.lines() == [":fastchat.local 462 a :You may not reregister"]
    assert phase_of(c) is Ph.REGISTERED


def test_second_user_after_registration_is_462(net: FakeNet) -> None:
    """RFC 2812 §3.1.3 / Modern IRC USER: "If a client tries to send the USER command after
    they have already completed registration ... ERR_ALREADYREGISTERED (462)"; nothing
    about the user changes."""
    c = net.connect(net.last, "a")
    c.lines()
    c.send("USER b 0 * :B")
    assert c.lines() == [":fastchat.local 462 a :You may not reregister"]
    c.send("WHOIS a")
    assert re.search(r" 311 a a ~a \S+ \* :Real a$", c.lines()[0])


def test_second_user_before_registration_is_462(net: FakeNet) -> None:
    """A second USER before NICK is refused the same way; the first one stands."""
    c = net.connect(net.last)
    c.send("USER first 0 * :First", "USER second 0 * :Second")
    assert c.lines() == [":fastchat.local 462 * :You may not reregister"]
    c.send("NICK a")
    got = c.lines()
    assert got[0].endswith(f" a!~first@10.0.0.{net.last + 1}")


def test_nick_refused_by_the_sequencer_lets_the_client_try_again(net: FakeNet) -> None:
    """The replica said the nick was free, but by the time USER completes registration
    another connection (on another worker, with two) holds it: the sequencer refuses with
    ERR_NICKNAMEINUSE (433, RFC 2812 §3.1.2), addressed to ``*``, the phase goes back to NEW
    (PENDING ──REFUSED──▶ NEW), and a NICK with another name registers."""
    late = net.connect(net.last)
    late.send("NICK same")
    assert late.lines() == []
    early = net.connect(0)
    assert numerics(early.register("same"))[0] == "001"
    late.send("USER late 0 * :Late")
    assert late.lines() == [":fastchat.local 433 * same :Nickname is already in use"]
    assert phase_of(late) is Ph.NEW and late.client.user is None
    late.send("NICK another")
    got = late.lines()
    assert got[0].startswith(":fastchat.local 001 another :Welcome")
    assert got[0].endswith(f" another!~late@10.0.0.{net.last + 1}")
    assert phase_of(late) is Ph.REGISTERED


@pytest.mark.parametrize("first", [0, 1], ids=["worker0-first", "worker1-first"])
def test_nick_race_loser_registers_under_another_nick(first: int) -> None:
    """Two workers register one nick at once: the sequencer takes the first it sees and
    refuses the other with 433; the loser, back in NEW, picks another nick and registers."""
    net = FakeNet(workers=2)
    a, b = net.connect(0), net.connect(1)
    a.send("NICK same", "USER a 0 * :A", pump=False)
    b.send("NICK same", "USER b 0 * :B", pump=False)
    net.pump(order=[first, 1 - first])
    winner, loser = (a, b) if first == 0 else (b, a)
    assert numerics(winner.lines())[0] == "001"
    assert loser.lines() == [":fastchat.local 433 * same :Nickname is already in use"]
    assert phase_of(loser) is Ph.NEW
    loser.send("NICK second")
    assert numerics(loser.lines())[0] == "001"
    assert phase_of(loser) is Ph.REGISTERED
    for core in net.cores:
        assert core.state.user_by_nick(b"same") is not None
        assert core.state.user_by_nick(b"second") is not None
