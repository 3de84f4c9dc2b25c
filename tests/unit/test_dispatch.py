"""The one dispatcher (``fastchat.server.engine.dispatch``): the checks every command row
declares, done once before any handler runs, and errors turned into replies.

Each worker core gets a :class:`Dispatcher` over the real table plus a few test rows (a
privileged command, a capability-gated one, handlers that raise), and clients talk to it
through :class:`FakeNet`, at one worker and at two. Then the real table itself: every row's
handler takes the narrow ``Context`` and says which spec it implements.
"""

from __future__ import annotations

import inspect
import re
import typing

import pytest

from fastchat.irc import numerics as N
from fastchat.irc.message import Message
from fastchat.server.caps import Capability, Registry
from fastchat.server.commands import COMMANDS, Command
from fastchat.server.commands.context import Context
from fastchat.server.connection import Client
from fastchat.server.engine.dispatch import Dispatcher
from fastchat.server.network.records import R_SYNC
from tests.unit.fakenet import FakeClient, FakeNet


class Recorder:
    """A handler that remembers each call and tells the client it ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[Context, Client, Message]] = []

    def __call__(self, ctx: Context, client: Client, msg: Message) -> None:
        self.calls.append((ctx, client, msg))
        ctx.send(client, b":fastchat.local NOTICE %s :ran %s\r\n" % (client.name, msg.command))


def refuse(ctx: Context, client: Client, msg: Message) -> None:
    """A handler with a remote error: it *is* its reply."""
    raise N.IRCError(N.ERR_NOSUCHNICK, b"ghost", b"No such nick/channel")


def crash(ctx: Context, client: Client, msg: Message) -> None:
    """A handler with a bug."""
    raise ZeroDivisionError("our bug")


class Setup:
    """A network whose cores dispatch through ``COMMANDS`` plus the test rows."""

    def __init__(self, workers: int) -> None:
        self.ran = Recorder()
        self.net = FakeNet(workers=workers, caps=Registry([Capability(b"example/x")]))
        table = {
            **COMMANDS,
            b"SECRET": Command(b"SECRET", self.ran, 2, privilege="kill"),
            b"CAPPED": Command(b"CAPPED", self.ran, capability=b"example/x"),
            b"NEEDS": Command(b"NEEDS", self.ran, 2),
            b"EARLY": Command(b"EARLY", self.ran, 1, needs_registration=False),
            b"READS": Command(b"READS", self.ran, reads=True),
            b"REFUSE": Command(b"REFUSE", refuse),
            b"CRASH": Command(b"CRASH", crash),
        }
        for core in self.net.cores:
            core.dispatcher = Dispatcher(core, table)

    def worker(self) -> int:
        """The last worker (another than 0 when there are two)."""
        return len(self.net.cores) - 1

    def user(self, nick: str, worker: int | None = None) -> FakeClient:
        c = self.net.connect(self.worker() if worker is None else worker, nick)
        c.lines()
        return c


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def setup(request: pytest.FixtureRequest) -> Setup:
    return Setup(request.param)


def test_unknown_command_is_421(setup: Setup) -> None:
    """RFC 2812 §5 / Modern IRC: ERR_UNKNOWNCOMMAND (421) "<client> <command> :Unknown
    command", quoting the command."""
    a = setup.user("a")
    a.send("FROBNICATE x y")
    assert a.lines() == [":fastchat.local 421 a FROBNICATE :Unknown command"]


def test_unknown_command_before_registration_is_451(setup: Setup) -> None:
    """Modern IRC: before registration, a command the server does not take from an
    unregistered client is ERR_NOTREGISTERED (451); an unknown one too."""
    c = setup.net.connect(setup.worker())
    c.send("FROBNICATE")
    assert c.lines() == [":fastchat.local 451 * :You have not registered"]


def test_registration_needed_before_the_handler(setup: Setup) -> None:
    """A row with ``needs_registration`` gets 451 from an unregistered client, whatever its
    parameters, and its handler never runs."""
    c = setup.net.connect(setup.worker())
    c.send("NEEDS a b", "NEEDS", "SECRET a b", "CAPPED")
    assert c.lines() == [":fastchat.local 451 * :You have not registered"] * 4
    assert setup.ran.calls == []


def test_too_few_parameters_is_461(setup: Setup) -> None:
    """RFC 2812 §5 / Modern IRC: ERR_NEEDMOREPARAMS (461) "<client> <command> :Not enough
    parameters", before the handler runs; with enough, it runs."""
    a = setup.user("a")
    a.send("NEEDS", "NEEDS one", "needs one")
    assert a.lines() == [":fastchat.local 461 a NEEDS :Not enough parameters"] * 3
    assert setup.ran.calls == []
    a.send("NEEDS one two")
    assert a.lines() == [":fastchat.local NOTICE a :ran NEEDS"]
    assert setup.ran.calls[0][2].params == (b"one", b"two")


def test_too_few_parameters_before_registration(setup: Setup) -> None:
    """A row that does not need registration is checked for parameters all the same (461,
    addressed to ``*``)."""
    c = setup.net.connect(setup.worker())
    c.send("EARLY")
    assert c.lines() == [":fastchat.local 461 * EARLY :Not enough parameters"]
    assert setup.ran.calls == []
    c.send("EARLY x")
    assert c.lines() == [":fastchat.local NOTICE * :ran EARLY"]


def test_privilege_needed(setup: Setup) -> None:
    """RFC 2812 §5 ERR_NOPRIVILEGES (481) for a command whose row names a privilege the
    client does not hold (checked before the parameters, so the unprivileged learn nothing of
    its syntax); once ``client.privileges`` holds it, the command runs."""
    a = setup.user("a")
    a.send("SECRET x y", "SECRET")
    assert a.lines() == [":fastchat.local 481 a :Permission Denied- You're not an IRC operator"] * 2
    assert setup.ran.calls == []
    a.client.privileges = frozenset({"other"})
    a.send("SECRET x y")
    assert [line.split()[1] for line in a.lines()] == ["481"]
    a.client.privileges = frozenset({"other", "kill"})
    a.send("SECRET x", "SECRET x y")
    assert a.lines() == [
        ":fastchat.local 461 a SECRET :Not enough parameters",
        ":fastchat.local NOTICE a :ran SECRET",
    ]
    assert len(setup.ran.calls) == 1


def test_capability_gated_command_exists_only_once_negotiated(setup: Setup) -> None:
    """A row with a ``capability``: for a client that has not negotiated it the command does
    not exist (421); after ``CAP REQ`` (IRCv3) it runs; after ``CAP REQ :-cap``, 421 again."""
    a = setup.user("a")
    a.send("CAPPED")
    assert a.lines() == [":fastchat.local 421 a CAPPED :Unknown command"]
    a.send("CAP REQ :example/x", "CAPPED")
    assert a.lines() == [
        ":fastchat.local CAP a ACK :example/x",
        ":fastchat.local NOTICE a :ran CAPPED",
    ]
    a.send("CAP REQ :-example/x", "CAPPED")
    assert a.lines() == [
        ":fastchat.local CAP a ACK :-example/x",
        ":fastchat.local 421 a CAPPED :Unknown command",
    ]
    assert len(setup.ran.calls) == 1


def test_irc_error_becomes_its_numeric(setup: Setup) -> None:
    """A handler's :class:`IRCError` is a remote error that *is* its reply (jaraco/irc): the
    client gets that numeric and stays connected."""
    a = setup.user("a")
    a.send("REFUSE", "PING :still")
    assert a.lines() == [
        ":fastchat.local 401 a ghost :No such nick/channel",
        ":fastchat.local PONG fastchat.local :still",
    ]
    assert not a.client.closed


def test_handler_crash_disconnects_only_its_client(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """STYLE "Errors": an unexpected exception is our bug: it closes only the connection it
    came from (ERROR, then QUIT to its channels), logged with that connection's id; the
    others, on this worker and any other, carry on."""
    a = setup.user("a")
    near = setup.user("near")
    far = setup.user("far", worker=0)
    for c in (a, near, far):
        c.lines()
    a.send("CRASH", "PING :never")
    got = a.lines()
    assert got == [f"ERROR :Closing link: (~a@{a.client.ip.decode()}) [Internal server error]"]
    assert a.client.closed
    assert f"connection {a.client.uid:#x}" in caplog.text and "ZeroDivisionError" in caplog.text
    for other in (near, far):
        assert other.lines() == [f":a!~a@{a.client.ip.decode()} QUIT :Internal server error"]
        other.send("PING :alive")
        assert other.lines() == [":fastchat.local PONG fastchat.local :alive"]
        assert not other.client.closed


def test_handler_gets_the_core_as_its_context(setup: Setup) -> None:
    """Handlers see the engine only as a :class:`Context`: the worker core of the client's
    own worker, with the client and the parsed message."""
    a = setup.user("a")
    a.send("NEEDS x :y z")
    (ctx, client, msg) = setup.ran.calls[0]
    assert ctx is setup.net.cores[setup.worker()]
    assert client is a.client
    assert msg == Message(b"NEEDS", (b"x", b"y z"))


def test_a_reading_command_waits_for_the_sync_at_several_workers() -> None:
    """A row with ``reads`` must see every change acknowledged before it: at two workers it
    first sends R_SYNC through the sequencer and runs (once) when the sync comes back."""
    setup = Setup(2)
    a = setup.user("a")
    a.send("READS", pump=False)
    assert setup.ran.calls == []
    assert [r[0] for r in a.core.outbox] == [R_SYNC]
    setup.net.pump()
    assert len(setup.ran.calls) == 1
    assert a.lines() == [":fastchat.local NOTICE a :ran READS"]


def test_a_reading_command_runs_at_once_at_one_worker() -> None:
    """With one worker the replica *is* the sequencer's state: no sync, no wait."""
    setup = Setup(1)
    a = setup.user("a")
    a.send("READS", pump=False)
    assert len(setup.ran.calls) == 1


# --- the real table -----------------------------------------------------------------------------

CITES = re.compile(r"RFC \d{4}|Modern IRC|IRCv3|ircv3\.net")
#: Rows that implement no spec; their docstring says what they are instead.
NOT_IN_A_SPEC = {b"FAULT", b"NS", b"NICKSERV"}  # FAULT: a test hook; NickServ: no spec


@pytest.mark.parametrize("name", sorted(COMMANDS), ids=lambda n: n.decode())
def test_every_row_has_a_context_handler_with_a_docstring(name: bytes) -> None:
    """STYLE "Growing without sprawl": handlers see a narrow context, so each takes
    ``(ctx: Context, client: Client, msg: Message)``; and each public function cites the RFC
    1459/2812, Modern IRC or IRCv3 section it implements (or, for a test hook, says what it
    is)."""
    row = COMMANDS[name]
    assert row.name == name and name == name.upper()
    handler = row.handler
    params = list(inspect.signature(handler).parameters.values())
    assert len(params) == 3
    hints = typing.get_type_hints(handler)
    assert hints[params[0].name] is Context
    assert hints[params[1].name] is Client and hints[params[2].name] is Message
    doc = inspect.getdoc(handler) or ""
    assert len(doc) > 10, f"{name!r} has no docstring"
    if name not in NOT_IN_A_SPEC:
        assert CITES.search(doc), f"{name!r}: {doc.splitlines()[0]}"


def test_rows_are_well_formed() -> None:
    """Every row's checks are sane: a non-negative parameter count, a privilege or
    capability only as a name."""
    for row in COMMANDS.values():
        assert row.min_params >= 0
        assert row.privilege is None or (isinstance(row.privilege, str) and row.privilege)
        assert row.capability is None or (isinstance(row.capability, bytes) and row.capability)
