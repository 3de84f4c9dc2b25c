"""Blocking work as effects: what a command needs that must not run on the worker's loop.

Owns: the requests the engine hands its I/O shell for work that blocks or burns CPU (a scrypt
password check for OPER: ~70 ms by design; reading the config file for REHASH; mailing a
verification code, which waits on an SMTP server), and carrying on with the command when the
shell brings the answer back, on the loop, in order: the client's barrier holds its next lines
meanwhile; history queries (CHATHISTORY), which the shell hands to its store reader
(``store/reader.py``), off the loop too; and the history barrier (:meth:`Offload.after_stored`),
which waits for the store's writer.
Must never: do the work itself (the shell runs checks and mails on thread pools and reads
files), or touch a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from fastchat.irc import numerics as N
from fastchat.server import passwords
from fastchat.server.commands.context import MailOutcome
from fastchat.server.connection import Client
from fastchat.server.network.records import R_HISTSYNC, Record
from fastchat.server.render import lines

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore


class PasswordCheck(NamedTuple):
    """A password to check against a stored hash, or (``stored`` empty) to hash for storing,
    off the loop (an effect for the shell, which calls :meth:`run` on its pool)."""

    ticket: int  # hand it back to :meth:`WorkerCore.password_checked`
    uid: int  # the client that waits for it
    password: bytes
    stored: str

    def run(self) -> bool | str:
        """The blocking part: does the password match (bool), or its hash (str)."""
        if self.stored:
            return passwords.verify(self.password, self.stored)
        return passwords.account_hash(self.password)


class HistoryQuery(NamedTuple):
    """A query of the store (``store/reader.py``'s form) for the shell's reader; its answer
    comes back to :meth:`Offload.history_answered` under ``ticket``."""

    ticket: int
    uid: int
    query: tuple[Any, ...]


class VerificationMail(NamedTuple):
    """A verification code to mail (draft/account-registration ``VERIFY``): an effect for
    the shell, which composes the mail and sends it to its SMTP server on its mail pool, then
    hands :meth:`Offload.mail_done` the outcome."""

    ticket: int
    uid: int  # the registrant (it may have gone)
    to: bytes  # the address
    account: bytes
    code: bytes


class Offload:
    """A core's queue of blocking work for its shell, and the answers coming back."""

    __slots__ = (
        "_checking",
        "_histsyncs",
        "_mailing",
        "_next_ticket",
        "checks",
        "core",
        "mails",
        "queries",
        "rehash_requests",
        "stored_waits",
    )

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        self.checks: list[PasswordCheck] = []  # for the shell to run off the loop
        self._checking: dict[int, tuple[Client, Callable[[Any], None]]] = {}
        self.mails: list[VerificationMail] = []  # for the shell to send off the loop
        self._mailing: dict[int, tuple[Client | None, Callable[[MailOutcome], None], bytes]] = {}
        self._next_ticket = 0
        self.rehash_requests: list[int] = []  # REHASH from these users: the shell reads the file
        self.queries: list[HistoryQuery] = []  # for the shell's store reader
        # D_STORED answers the shell holds until its store has written everything decided
        # before them (at one worker, where the sequencer runs in this process)
        self.stored_waits: list[Record] = []
        # the history barriers still waiting for their D_STORED: ticket -> uid (see
        # hub_restarted)
        self._histsyncs: dict[int, int] = {}

    def after_stored(self, client: Client, then: Callable[[], None]) -> None:
        """The history barrier: run ``then`` (under ``client``'s barrier, as the other
        effects) once the store has written every message the sequencer decided before
        now, so a query of the history that ``then`` asks sees them all (CHATHISTORY right
        after a message, a JOIN's replay). An R_HISTSYNC through the sequencer: its D_STORED
        comes back when the store's writer has caught up (``runtime/storage.py``); it is a
        read barrier too (it follows every event decided before it)."""
        self._next_ticket += 1
        ticket = self._next_ticket
        client.waiting += 1
        self._checking[ticket] = (client, lambda _: then())
        self._histsyncs[ticket] = client.uid
        self.core.submit((R_HISTSYNC, client.uid, ticket), barrier=False)

    def hub_restarted(self) -> None:
        """A new hub sent its snapshot: ask it again for every history barrier still waiting.
        The old hub held their D_STORED until its store had written (``Storage.when_stored``),
        outside the frames a restart replays, so it may have died holding them: without this
        their clients (a JOIN's replay waits on one) would wait for ever. A barrier whose
        D_STORED comes twice runs once (the second finds its ticket gone)."""
        for ticket, uid in self._histsyncs.items():
            self.core.submit((R_HISTSYNC, uid, ticket), barrier=False)

    def ask_history(
        self,
        client: Client,
        query: tuple[Any, ...],
        then: Callable[[tuple[list[Any], str]], None],
    ) -> None:
        """Queue a store query for the shell under ``client``'s barrier, as
        :meth:`check_password` does; :meth:`history_answered` calls ``then((rows, error))``."""
        self._next_ticket += 1
        ticket = self._next_ticket
        client.waiting += 1
        self._checking[ticket] = (client, then)
        self.queries.append(HistoryQuery(ticket, client.uid, query))

    def history_answered(self, ticket: int, rows: list[Any], error: str, now: float) -> None:
        """The shell's answer to a :class:`HistoryQuery` (``error``: why it has no rows)."""
        self.password_checked(ticket, (rows, error), now)  # the same continuation, barrier

    def check_password(
        self, client: Client, password: bytes, stored: str, then: Callable[[Any], None]
    ) -> None:
        """Queue a password check for the shell (see :class:`PasswordCheck`) under
        ``client``'s barrier; :meth:`password_checked` calls ``then`` with the answer."""
        self._next_ticket += 1
        ticket = self._next_ticket
        client.waiting += 1
        self._checking[ticket] = (client, then)
        self.checks.append(PasswordCheck(ticket, client.uid, password, stored))

    def hash_password(self, client: Client, password: bytes, then: Callable[[str], None]) -> None:
        """Queue the hashing of a new password (REGISTER) for the shell, under ``client``'s
        barrier, as :meth:`check_password` does; ``then`` gets the stored form."""
        self.check_password(client, password, "", then)

    def password_checked(self, ticket: int, matched: Any, now: float) -> None:
        """The shell's answer to a :class:`PasswordCheck`: carry on with the command that asked
        (unless its client has gone meanwhile), then lift the client's barrier."""
        self.core._now = now
        found = self._checking.pop(ticket, None)
        self._histsyncs.pop(ticket, None)
        if found is None:
            return
        client, then = found
        if not client.closed and not client.quitting:
            self._carry_on(client, "password check", then, matched)
        self._barrier_down(client)

    def send_verification(
        self,
        client: Client | None,
        account: bytes,
        email: bytes,
        code: bytes,
        then: Callable[[MailOutcome], None],
    ) -> None:
        """Queue the mail of a verification code for the shell, under ``client``'s barrier
        if it is still here; :meth:`mail_done` calls ``then`` with the outcome. With no
        ``smtp_server``, the code goes to the log instead (at WARNING: an operator reads it
        there and passes it on, which suits a small server), and ``then`` runs at once.
        Never is the code sent to a client: the mail is the proof of the address."""
        if self.core.config.smtp_server is None:
            self.core.log.warning(
                "account %s (registered by connection %#x) awaits verification: no "
                "smtp_server to mail %s its code, which is %s",
                account.decode(errors="replace"),
                client.uid if client is not None else 0,
                email.decode(errors="replace"),
                code.decode(),
            )
            then(MailOutcome.LOGGED)
            return
        self._next_ticket += 1
        ticket = self._next_ticket
        if client is not None:
            client.waiting += 1
        self._mailing[ticket] = (client, then, account)
        uid = client.uid if client is not None else 0
        self.mails.append(VerificationMail(ticket, uid, email, account, code))

    def mail_done(self, ticket: int, outcome: MailOutcome, error: str, now: float) -> None:
        """The shell's answer to a :class:`VerificationMail` (``error``: why it failed, for
        the log): carry on with the registration, then lift the client's barrier. The
        continuation runs even when the registrant has gone: a mail that failed still
        frees the name."""
        self.core._now = now
        found = self._mailing.pop(ticket, None)
        if found is None:
            return
        client, then, account = found
        if outcome is MailOutcome.REFUSED or outcome is MailOutcome.FAILED:
            self.core.log.error(
                "account %s: its verification mail was not sent: %s",
                account.decode(errors="replace"),
                error,
            )
        self._carry_on(client, "verification mail", then, outcome)
        if client is not None:
            self._barrier_down(client)

    def _carry_on(
        self, client: Client | None, what: str, then: Callable[[Any], None], answer: Any
    ) -> None:
        """Run a command's continuation with the shell's answer: a remote error becomes its
        numeric, an unexpected one closes the client's connection (and is logged)."""
        try:
            then(answer)
        except N.IRCError as err:
            if client is not None:
                self.core.reply(client, err.numeric, *err.params)
        except Exception:
            uid = client.uid if client is not None else 0
            self.core.log.exception(
                "connection %#x: %s's continuation failed; disconnecting it", uid, what
            )
            if client is not None:
                self.core.disconnect(client, b"Internal server error")
        self.core.relay.flush()

    def _barrier_down(self, client: Client) -> None:
        # Lifted only now: what the continuation submitted (under the barrier too) keeps the
        # client's next lines waiting, and none runs in the middle of it.
        client.waiting -= 1
        self.core._barrier_down(client)

    def rehash_done(
        self,
        uid: int,
        path: str,
        error: str | None,
        restart: list[str],
        warning: str | None = None,
    ) -> None:
        """The shell's answer to a REHASH: 382 RPL_REHASHING, or a notice of why the file was
        refused (the old config stays); and which settings change only at a restart, and a
        ``warning`` (the TLS certificate that cannot be used, and stays as it was)."""
        client = self.core.clients.get(uid)
        if client is None:
            return
        server = self.core.config.server_name
        if error is not None:
            self.core.send(
                client,
                lines.notice(
                    server,
                    client.name,
                    b"REHASH failed, the old config stays: " + error.encode(errors="replace"),
                ),
            )
            return
        self.core.reply(client, N.RPL_REHASHING, path.encode(errors="replace"), b"Rehashing")
        if warning is not None:
            self.core.send(client, lines.notice(server, client.name, warning.encode()))
        if restart:
            text = b"These settings change only at a restart: " + ", ".join(restart).encode()
            self.core.send(client, lines.notice(server, client.name, text))
