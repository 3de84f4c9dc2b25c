"""What a command handler may see and do: the narrow interface between commands and engine.

Owns: :class:`Context`, the protocol the worker's engine implements for its handlers: reply,
send, submit a request to the sequencer, relay a message, disconnect, check a password off
the loop, mail a verification code off the loop (:class:`MailOutcome`), log an operator's
action, the time, the network state replica, the configuration,
the capability registry, this worker's MONITOR lists, and what the server queries read of
the engine (the command table, start time, command counts, links: :class:`LinkInfo`).
Nothing else of the engine is reachable from a handler (mypy checks it), so the engine
imports the commands and never the reverse.
Must never: hold an implementation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from fastchat.server.caps import Registry
from fastchat.server.commands.table import Command
from fastchat.server.config import Config
from fastchat.server.connection import Client, OutputSlot
from fastchat.server.network.records import Record
from fastchat.server.network.state import State

if TYPE_CHECKING:
    from fastchat.server.commands.monitor import Monitors


class LinkInfo(NamedTuple):
    """One of this worker's links to the rest of the server (STATS l): at several workers,
    its bus link to the hub, whose messages are records."""

    name: bytes
    sendq: int  # bytes queued that the peer has not taken yet
    sent_messages: int
    sent_bytes: int
    received_messages: int
    received_bytes: int
    opened: float  # Unix time


class MailOutcome(enum.Enum):
    """What became of a verification code (:meth:`Context.send_verification`)."""

    SENT = "sent"  # the SMTP server took the mail
    LOGGED = "logged"  # no SMTP server: the code is in the log, for the operator to pass on
    REFUSED = "refused"  # the SMTP server refused the address
    FAILED = "failed"  # the SMTP server could not be reached, or failed otherwise


class Context(Protocol):
    """The engine, as a command handler sees it."""

    config: Config
    state: State  # this worker's replica of the whole network
    caps: Registry  # the capabilities this server offers
    created: bytes  # when the server started, as RPL_CREATED shows it
    started: float  # when the server started, Unix time (STATS u)
    links: tuple[LinkInfo, ...]  # this worker's links, as of the last second (STATS l)
    monitors: Monitors  # this worker's clients' MONITOR lists (commands/monitor.py)

    #: failed OPERs by address: (failures in a row, no check before this time)
    oper_backoff: dict[bytes, tuple[int, float]]

    @property
    def now(self) -> float:
        """The current time (the shell passes it in; handlers never read a clock)."""

    @property
    def commands(self) -> Mapping[bytes, Command]:
        """The command table this worker dispatches through (HELP lists it)."""

    @property
    def local_count(self) -> int:
        """Connections on this worker (LUSERS' local count)."""

    def command_counts(self) -> dict[bytes, int]:
        """How often each command ran on the whole server (STATS m): every worker's counts,
        this worker's as of now, the others' as of their last report (a second or so)."""

    def send(self, client: Client, data: bytes) -> None:
        """Queue ``data`` (whole lines) for ``client``."""

    def notify(self, client: Client, data: bytes) -> None:
        """Queue ``data`` for ``client``: a line it did not ask for (a MONITOR notice), so
        never part of the reply to its open labeled command (labeled-response)."""

    def send_lines(self, client: Client, lines: Iterable[bytes]) -> None:
        """Queue several lines for ``client`` as one write."""

    def reserve_output(self, client: Client) -> OutputSlot:
        """Keep a place in ``client``'s output, here, for lines that come later (an answer
        from off the loop); what it is sent meanwhile waits behind it, in order."""

    def fill_output(self, client: Client, slot: OutputSlot, write: Callable[[], None]) -> None:
        """Put what ``write()`` sends ``client`` in ``slot``'s place; the client's output
        flows again once no slot is left."""

    def reply(self, client: Client, code: bytes, *params: bytes) -> None:
        """Queue a numeric reply for ``client``."""

    def fail(
        self, client: Client, command: bytes, code: bytes, why: bytes, *context: bytes
    ) -> None:
        """Queue an IRCv3 standard reply for ``client``: ``FAIL <command> <code> [<context>...]
        :<why>``."""

    def submit(self, request: Record, barrier: bool = True) -> None:
        """Hand a request to the sequencer; with ``barrier``, the client's next lines wait
        for its decision (so every command sees the effects of the ones before it)."""

    def relay_message(
        self,
        client: Client,
        target: bytes,
        line: bytes,
        notice: bool,
        tags: bytes = b"",
        flags: int = 0,
    ) -> None:
        """Send one formatted PRIVMSG/NOTICE/TAGMSG ``line`` from ``client`` towards
        ``target``, with the client-only ``tags`` to relay (wire form) and ``flags``
        (``records.TAGMSG``)."""

    def request_rehash(self, client: Client) -> None:
        """Reload the config file (I/O, done by the shell), answering ``client``."""

    def set_caps(self, client: Client, caps: int) -> None:
        """Record ``client``'s negotiated capability set."""

    def disconnect(
        self, client: Client, reason: bytes, flush: bool = True, quit_message: bytes | None = None
    ) -> None:
        """Close ``client`` with ERROR; its channels see it quit with ``quit_message``."""

    def check_password(
        self, client: Client, password: bytes, stored: str, then: Callable[[bool], None]
    ) -> None:
        """Check ``password`` against the hash ``stored`` (:mod:`fastchat.server.passwords`)
        off the loop, since scrypt costs tens of milliseconds by design, and call
        ``then(matched)`` back on the loop. ``client``'s next lines wait until it has run (its
        ordering barrier), so they still see what it does."""

    def after_stored(self, client: Client, then: Callable[[], None]) -> None:
        """Call ``then()`` back on the loop, under ``client``'s barrier, once the store has
        written every message decided before now (the history barrier: a query of the
        history that ``then`` makes sees them all); a read barrier too."""

    def ask_history(
        self, client: Client, query: tuple[Any, ...], then: Callable[[tuple[list[Any], str]], None]
    ) -> None:
        """Run a query of the store (``store/reader.py``'s form) off the loop and call
        ``then((rows, error))`` back on the loop, under ``client``'s barrier."""

    def hash_password(self, client: Client, password: bytes, then: Callable[[str], None]) -> None:
        """Hash a new ``password`` for storing, off the loop (scrypt), and call
        ``then(stored)`` back on the loop, under ``client``'s barrier like check_password."""

    def send_verification(
        self,
        client: Client | None,
        account: bytes,
        email: bytes,
        code: bytes,
        then: Callable[[MailOutcome], None],
    ) -> None:
        """Mail the verification ``code`` of ``account`` to ``email`` off the loop (SMTP
        blocks), or, with no SMTP server configured, log it for the operator; then call
        ``then(outcome)`` back on the loop, even if ``client`` (the registrant, None if it
        has gone) is gone meanwhile. ``client``'s next lines wait until it has run."""

    def audit(self, client: Client, action: str, *, failed: bool = False) -> None:
        """Log an operator's action (or a failed attempt at one), naming who did it and from
        where."""
