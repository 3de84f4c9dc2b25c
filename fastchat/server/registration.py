"""Connection registration as one state machine: every phase, every input, one table.

Owns: the phases a connection goes through before it is a user (RFC 2812 §3.1, Modern IRC
"Connection Registration", IRCv3 "Capability Negotiation") and which input moves it where.
Everything that changes ``Client.phase`` goes through :func:`advance`; the command handlers
(:mod:`fastchat.server.commands.registration`) and the engine (the sequencer's answer) feed it
inputs and act on the outcome.
Must never: send, submit or decide anything itself (it is a table, as in h11's ``_state.py``).

The phases::

    NEW ──CAP LS/REQ──▶ NEGOTIATING ──CAP END──▶ NEW
    NEW (nick and user given) ──READY──▶ PENDING ──INTRO──▶ REGISTERED
                                          PENDING ──REFUSED (nick taken)──▶ NEW

A connection in NEGOTIATING may give PASS, NICK and USER; registration waits for CAP END. In
PENDING the sequencer holds its request: a NICK then is ignored (the answer decides), and
PASS/USER are refused like after registration. A later issue adds AUTHENTICATE (SASL) as
inputs of NEGOTIATING.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    NEW = "new"  # connected; may be giving PASS, NICK, USER
    NEGOTIATING = "negotiating"  # CAP LS/REQ seen: registration waits for CAP END
    PENDING = "pending"  # NICK and USER given; the sequencer decides (R_REGISTER)
    REGISTERED = "registered"  # introduced to the network (E_INTRO)


class Input(enum.Enum):
    CAP_START = "CAP LS/REQ"
    CAP_END = "CAP END"
    PASS = "PASS"
    NICK = "NICK"
    USER = "USER"
    READY = "ready"  # NICK and USER given (and no negotiation open): ask the sequencer
    INTRO = "intro"  # the sequencer introduced the user
    REFUSED = "refused"  # the sequencer refused the registration (nick in use)


class Outcome(enum.Enum):
    """What the handler must do besides moving to the next phase."""

    ACCEPT = "accept"  # take the input (store the nick, user, password...)
    IGNORE = "ignore"  # nothing to do
    ALREADY_REGISTERED = "462"  # ERR_ALREADYREGISTERED


Ph, In, Out = Phase, Input, Outcome

#: (phase, input) -> (next phase, outcome). A pair not in the table cannot happen (a bug).
TRANSITIONS: dict[tuple[Phase, Input], tuple[Phase, Outcome]] = {
    # before registration: collect PASS, NICK, USER; CAP suspends registration until END
    (Ph.NEW, In.CAP_START): (Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEW, In.CAP_END): (Ph.NEW, Out.IGNORE),
    (Ph.NEW, In.PASS): (Ph.NEW, Out.ACCEPT),
    (Ph.NEW, In.NICK): (Ph.NEW, Out.ACCEPT),
    (Ph.NEW, In.USER): (Ph.NEW, Out.ACCEPT),
    (Ph.NEW, In.READY): (Ph.PENDING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.CAP_START): (Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.CAP_END): (Ph.NEW, Out.ACCEPT),
    (Ph.NEGOTIATING, In.PASS): (Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.NICK): (Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.USER): (Ph.NEGOTIATING, Out.ACCEPT),
    (Ph.NEGOTIATING, In.READY): (Ph.NEGOTIATING, Out.IGNORE),  # waits for CAP END
    # the sequencer has the request: its answer decides
    (Ph.PENDING, In.CAP_START): (Ph.PENDING, Out.ACCEPT),
    (Ph.PENDING, In.CAP_END): (Ph.PENDING, Out.IGNORE),
    (Ph.PENDING, In.PASS): (Ph.PENDING, Out.ALREADY_REGISTERED),
    (Ph.PENDING, In.NICK): (Ph.PENDING, Out.IGNORE),
    (Ph.PENDING, In.USER): (Ph.PENDING, Out.ALREADY_REGISTERED),
    (Ph.PENDING, In.READY): (Ph.PENDING, Out.IGNORE),
    (Ph.PENDING, In.INTRO): (Ph.REGISTERED, Out.ACCEPT),
    (Ph.PENDING, In.REFUSED): (Ph.NEW, Out.ACCEPT),
    # registered: CAP may still be negotiated (IRCv3 allows it after registration)
    (Ph.REGISTERED, In.CAP_START): (Ph.REGISTERED, Out.ACCEPT),
    (Ph.REGISTERED, In.CAP_END): (Ph.REGISTERED, Out.IGNORE),
    (Ph.REGISTERED, In.PASS): (Ph.REGISTERED, Out.ALREADY_REGISTERED),
    (Ph.REGISTERED, In.USER): (Ph.REGISTERED, Out.ALREADY_REGISTERED),
    (Ph.REGISTERED, In.READY): (Ph.REGISTERED, Out.IGNORE),
}


def advance(phase: Phase, event: Input) -> tuple[Phase, Outcome]:
    """The next phase after ``event`` in ``phase``, and what to do about the input.

    >>> advance(Phase.NEGOTIATING, Input.CAP_END)
    (<Phase.NEW: 'new'>, <Outcome.ACCEPT: 'accept'>)
    """
    try:
        return TRANSITIONS[phase, event]
    except KeyError:
        raise RuntimeError(f"registration: {event.value} cannot happen in {phase.value}") from None
