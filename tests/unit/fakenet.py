"""An in-memory fastchat network for unit tests: worker cores and a sequencer, no sockets.

With ``workers=1`` the single core runs the sequencer itself (as ``--workers 1`` does); with
more, a :class:`FakeNet` plays the hub: it routes each core's outbox through a
:class:`Sequencer` and queues the results per worker, and ``pump`` delivers until quiet. Tests
can also hold records back (``pump(worker_order=...)``) to force interleavings.

It also plays the worker shell's password pool: ``pump`` runs each core's password checks
synchronously (``passwords.verify``) and hands the answers back, unless ``hold_checks`` is set;
then they wait in ``core.offload.checks`` until :meth:`FakeNet.finish_checks`. And its mail
pool: the verification mails go to ``mailbox`` (nothing is sent), each with the outcome
``mail_outcome`` (sent, by default), held likewise.

And the store, as far as the sequencer sees it: a :class:`Storage` with no file notes each
channel's last kept run (``Sequencer.kept``, where a JOIN's replay ends). Store queries are
not answered: they wait in ``core.offload.queries`` for a test to answer by hand. So the
replay on JOIN is off unless a test turns it on (``history_replay``), and :meth:`collect`
sends a client nothing while a place is kept in its output (``client.corked``), as the
shell does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastchat.irc.message import parse, parse_tags
from fastchat.server.caps import CAPABILITIES, Registry
from fastchat.server.commands.context import MailOutcome
from fastchat.server.config import Config
from fastchat.server.engine.core import WorkerCore
from fastchat.server.engine.offload import VerificationMail
from fastchat.server.network.records import B_SNAPSHOT, Record
from fastchat.server.network.sequencer import Sequencer
from fastchat.server.network.state import Channel, State
from fastchat.server.runtime.storage import Storage

_LOG = logging.getLogger("fastchat.core")


class FakeClient:
    def __init__(
        self, net: FakeNet, worker: int, core: WorkerCore, ip: bytes | None = None
    ) -> None:
        self.net = net
        self.worker = worker
        self.core = core
        self.client = core.connect(ip or b"10.0.0.%d" % (worker + 1), net.now)
        self.received: list[bytes] = []

    def send(self, *lines: str | bytes, pump: bool = True) -> None:
        data = b"".join((x.encode() if isinstance(x, str) else x) + b"\r\n" for x in lines)
        self.core.data_received(self.client, data, self.net.now)
        if pump:
            self.net.pump()

    def lines(self) -> list[str]:
        """Everything received since the last call, as text lines."""
        self.net.collect()
        out = [x.decode(errors="replace") for x in self.received]
        self.received.clear()
        return out

    def raw_lines(self) -> list[bytes]:
        """Like :meth:`lines`, as the bytes received (each without its CR LF)."""
        self.net.collect()
        out = self.received[:]
        self.received.clear()
        return out

    def register(self, nick: str) -> list[str]:
        self.send(f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
        return self.lines()


class FakeNet:
    def __init__(self, workers: int = 1, *, caps: Registry = CAPABILITIES, **config: Any) -> None:
        """``caps``: the capability registry every core offers (a test may declare its own);
        the rest are :class:`Config` settings."""
        config.setdefault("flood_control", False)
        config.setdefault("history_replay", 0)
        self.config = Config(workers=workers, **config)
        self.now = 1_000_000.0
        self.standalone = workers == 1
        self.cores = [
            WorkerCore(self.config, i, i + 1, standalone=self.standalone, log=_LOG, caps=caps)
            for i in range(workers)
        ]
        for core in self.cores:
            core.set_start_time(self.now)
        self.state = State()
        self.state.whowas_size = self.config.whowas_size
        self.sequencer = Sequencer(self.state, self.config, self)
        self.storage = Storage(None)  # no file: it notes the last kept run of each channel
        self.sequencer.kept = self.storage.kept
        if self.standalone:
            core = self.cores[0]
            core.stored = self.storage.record
            assert core.sequencer is not None
            core.sequencer.kept = self.storage.kept
        self.queues: list[list[Record]] = [[] for _ in range(workers)]
        self.clients: list[FakeClient] = []
        self.hold_checks = False
        self.mailbox: list[VerificationMail] = []  # every verification mail "sent"
        self.mail_outcome = MailOutcome.SENT
        if not self.standalone:
            for i in range(workers):
                self.queues[i].append((B_SNAPSHOT, self.state.snapshot(), {}))

    # -- Router (the hub's role) -------------------------------------------------------------
    def event(self, event: Record) -> None:
        self.state.apply(event)
        for queue in self.queues:
            queue.append(event)

    def to_channel(self, chan: Channel, record: Record) -> None:
        self.storage.channel(record)
        for worker in chan.workers:
            self.queues[worker].append(record)

    def to_worker(self, worker: int, record: Record) -> None:
        self.queues[worker].append(record)

    def after_stored(self, worker: int, record: Record) -> None:
        self.queues[worker].append(record)  # no store here: nothing to wait for

    # -- the store's health (the process that owns the writer: runtime/storage.py) ------------
    def store_report(
        self,
        healthy: bool,
        error: bytes = b"",
        queued: int = 0,
        committed: int = 0,
        dropped: int = 0,
        notice: bytes = b"",
    ) -> None:
        """What the sequencer's process does when its store's writer flips health or its
        counts move: the sequencer (this hub's, or the one worker's) makes it an E_STORE."""
        core = self.cores[0]
        sequencer = core.sequencer if self.standalone else self.sequencer
        assert sequencer is not None
        sequencer.store_status(
            healthy, error, queued, committed, dropped, notice, int(self.now * 1000)
        )
        self.pump()

    # -- driving ---------------------------------------------------------------------------------
    def connect(
        self, worker: int = 0, nick: str | None = None, ip: bytes | None = None
    ) -> FakeClient:
        """A new connection on ``worker`` (from 10.0.0.<worker + 1> unless ``ip`` says)."""
        c = FakeClient(self, worker, self.cores[worker], ip)
        self.clients.append(c)
        if nick:
            c.register(nick)
        return c

    @property
    def last(self) -> int:
        """The last worker: another one than 0 when there are several."""
        return len(self.cores) - 1

    def user(self, nick: str, worker: int = 0) -> FakeClient:
        """A registered client on ``worker``, with what it was sent so far read."""
        c = self.connect(worker, nick)
        c.lines()
        return c

    def negotiated(self, worker: int, nick: str, *caps: str) -> FakeClient:
        """A client that asks ``CAP LS 302``, requests ``caps`` (if any), registers and ends
        the negotiation, with what it was sent so far read."""
        c = self.connect(worker)
        c.send("CAP LS 302")
        if caps:
            c.send("CAP REQ :" + " ".join(caps))
        c.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}", "CAP END")
        assert any(" 001 " in line for line in c.lines())
        return c

    def pump(self, order: Iterable[int] | None = None, lagging: int | None = None) -> list[Record]:
        """Move requests to the sequencer and records to workers until nothing moves.
        ``order`` picks the order in which workers' outboxes reach the sequencer. Worker
        ``lagging`` (if given) is far behind the bus: what is sent to it is kept, not
        applied, and returned."""
        held: list[Record] = []
        moved = True
        while moved:
            moved = not self.hold_checks and self.finish_checks()
            if self.standalone:
                continue
            for i in order if order is not None else range(len(self.cores)):
                core = self.cores[i]
                if core.outbox:
                    batch, core.outbox = core.outbox, []
                    for request in batch:
                        self.sequencer.handle(i, request, int(self.now * 1000))
                    moved = True
            for i, queue in enumerate(self.queues):
                if queue:
                    batch, self.queues[i] = queue, []
                    if i == lagging:
                        held += batch
                        continue
                    records = []
                    for record in batch:
                        if record[0] == B_SNAPSHOT:
                            self.cores[i].apply(record)
                        else:
                            records.append(record)
                    self.cores[i].apply_batch(records, self.now)
                    moved = True
        return held

    def finish_checks(self) -> bool:
        """Run every password check the cores asked for, as the shell's pool would, and give
        each core its answers; "send" every verification mail (to ``mailbox``). True if
        there were any."""
        ran = False
        for core in self.cores:
            while core.offload.checks:
                check = core.offload.checks.pop(0)
                core.offload.password_checked(check.ticket, check.run(), self.now)
                ran = True
            while core.offload.stored_waits:  # one worker: its shell's history barrier
                core.apply(core.offload.stored_waits.pop(0))
            while core.offload.mails:
                mail = core.offload.mails.pop(0)
                self.mailbox.append(mail)
                error = "" if self.mail_outcome is MailOutcome.SENT else "the test says so"
                core.offload.mail_done(mail.ticket, self.mail_outcome, error, self.now)
                ran = True
        return ran

    def collect(self) -> None:
        """What a loop turn's flush would send: move each client's output to ``received``."""
        self.pump()
        for core in self.cores:
            core.dirty.clear()
            core.closing.clear()
        for c in self.clients:
            if c.client.corked:
                continue  # a place is kept in its output: the shell sends nothing yet
            for chunk in c.client.pending:
                c.received.extend(chunk.split(b"\r\n")[:-1])
            c.client.pending.clear()


def tags_of(line: bytes) -> dict[bytes, bytes]:
    """The IRCv3 tags of a received line (unescaped), empty when it has none."""
    msg = parse(line)
    return parse_tags(msg.tags) if msg.tags else {}
