"""A worker process: one ``selectors`` loop over its clients, its listening socket and the bus.

Owns: sockets and their readiness, the clock, and carrying out the core's effects: one ``send``
per dirty connection per loop turn, ``EVENT_WRITE`` watched only while bytes are left over, one
bus frame per loop turn, and password checks and verification mails run on small thread
pools, off the loop.
Must never: decide anything about IRC; every line goes to :class:`~fastchat.server.engine.core.WorkerCore`.
The web port's connections (HTTP, and WebSocket until they are clients) are
:class:`~fastchat.server.runtime.webport.WebPort`'s; a WebSocket client's transport frames
its output (``WebSocketTransport``), so the output path here is the same for everyone.

Errors come in three tiers, as in asyncio's selector transport: ``BlockingIOError`` and
``InterruptedError`` mean "try later"; ``KeyboardInterrupt``/``SystemExit`` propagate; any other
``OSError`` on a client socket closes *that* client only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import selectors
import signal
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from fastchat.server.commands.context import LinkInfo, MailOutcome
from fastchat.server.config import Config, ConfigError, reloaded
from fastchat.server.configfile import Source
from fastchat.server.connection import NO_OUTPUT, Client
from fastchat.server.engine.core import WorkerCore
from fastchat.server.engine.placement import HANDOFF_SLOW
from fastchat.server.network.records import B_SNAPSHOT, E_INTRO, Record
from fastchat.server.render import lines
from fastchat.server.runtime import mailer, tls
from fastchat.server.runtime.accept import (
    Reserve,
    accept_from,
    answer_and_close,
    say_nothing,
)
from fastchat.server.runtime.bus import FrameReader, Link, Retained, encode
from fastchat.server.runtime.handoff import Handoff
from fastchat.server.runtime.klinefile import KLineFile
from fastchat.server.runtime.memory import Trimmer
from fastchat.server.runtime.readerproc import ReaderProcess
from fastchat.server.runtime.receive import FIRST_READ, READ_SIZE, Receiver
from fastchat.server.runtime.storage import Storage, StoreReport
from fastchat.server.runtime.webport import WebPort, WebSocketTransport
from fastchat.server.store import db

log = logging.getLogger("fastchat.worker")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
LINGER = 2.0  # seconds a closed connection may take to accept its last bytes
BUS_HIGH_WATER = 4 << 20  # stop reading clients while this much is unconfirmed (see
BUS_LOW_WATER = 1 << 20  # _check_backpressure)
REPORT_EVERY = 0.05  # seconds between B_RECEIVED reports (what we received, for "stable")
# Password checks (scrypt, ~70 ms of CPU each, with the GIL released) run on this many threads:
# OPER is rare, and a flood of attempts then waits its turn instead of taking every core.
PASSWORD_THREADS = 2
# Verification mails (register_verify) wait on an SMTP server, up to mailer.TIMEOUT each: on
# a pool of their own, so that a slow mail server never holds up a login's password check.
MAIL_THREADS = 2
# A send that cannot go now: try again when the socket is writable. A TLS socket says so with
# its own errors (SSLWantWriteError; SSLWantReadError while the peer must speak first).
SEND_LATER = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)


class Worker:
    """The I/O shell around a :class:`WorkerCore`."""

    def __init__(
        self,
        config: Config,
        slot: int,
        incarnation: int,
        listener: socket.socket,
        hub_address: str | None,
        lifeline_fd: int | None,
        ready_fd: int | None,
        reload: Source | None = None,
        started: float | None = None,
        tls_listener: socket.socket | None = None,
        tls_context: ssl.SSLContext | None = None,
        web_listener: socket.socket | None = None,
        web_tls_listener: socket.socket | None = None,
        web_tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """``started``: when the server started (the supervisor's clock), which RPL_CREATED
        and STATS u show the same at every worker; by default, when this worker runs.
        ``tls_listener`` and ``tls_context``: the TLS port's socket, if it has one;
        ``web_listener`` and ``web_tls_listener``: the web port's (HTTP and WebSocket), and
        ``web_tls_context`` the latter's context (the same certificate, no client's asked)."""
        self.config = config
        self.reload = reload
        self.reload_wanted = False
        self.started = started
        self.slot = slot
        self.listener = listener
        self.tls_listener = tls_listener
        self.tls_context = tls_context
        # TLS connections whose handshake is under way: socket -> (address, deadline). The
        # core hears of a connection only once its handshake is done.
        self.handshaking: dict[ssl.SSLSocket, tuple[bytes, float]] = {}
        # The web port (fastchat.server.runtime.webport): its listeners and the connections
        # whose HTTP request is under way; a WebSocket client then is a Client like any other
        self.web_tls_context = web_tls_context
        self.web: WebPort | None = None
        if web_listener is not None or web_tls_listener is not None:
            self.web = WebPort(self, web_listener, web_tls_listener, _recv_tls)
        self.hub_address = hub_address
        self.lifeline_fd = lifeline_fd
        self.ready_fd = ready_fd
        self.core = WorkerCore(
            config,
            slot,
            incarnation,
            standalone=hub_address is None,
            log=logging.getLogger("fastchat.core"),
        )
        self.core.reads_at_turn_end = hub_address is None
        # The K-line file, kept by the process that runs the sequencer: this one at one
        # worker; the hub at several
        self.klines = KLineFile(config.kline_file if hub_address is None else None)
        # and the store (accounts), likewise
        self.storage = Storage(
            config.data_dir if hub_address is None else None,
            config.history,
            config.history_days,
            config.history_limit,
        )
        self.sel = selectors.DefaultSelector()
        self.receiver = Receiver()  # every read of this loop: one reused buffer
        self.blocked: set[Client] = set()  # clients with EVENT_WRITE registered
        self.lingering: dict[Client, float] = {}  # closed, last bytes still going out
        self.paused: set[Client] = set()  # clients whose reading is paused (bus backpressure)
        self.reading_paused = False
        self.hub: Link | None = None
        self.stopping = False
        # Listeners not watched for a moment (accept_from asked), and until when
        self.accept_paused: list[tuple[socket.socket, Callable[[int], None]]] = []
        self.accept_paused_until = 0.0
        # The descriptor held back to answer a newcomer when the others are taken
        self.reserve = Reserve()
        self.now = time.time()
        self.report_at = 0.0
        self.retained = Retained(self.core.resync.first_seq)
        self._wake_r, self._wake_w = socket.socketpair()
        # Password checks under way (future -> the core's ticket); the pool starts with the
        # first check, so a worker that never sees an OPER runs no thread.
        self.checker: concurrent.futures.ThreadPoolExecutor | None = None
        self.checking: dict[concurrent.futures.Future[bool | str], int] = {}
        # The store's reading process (CHATHISTORY), started in run()
        self.reader: ReaderProcess | None = None
        # Verification mails under way (future -> the core's ticket), likewise
        self.mail_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.mailing: dict[concurrent.futures.Future[tuple[MailOutcome, str]], int] = {}
        # Channel-affine placement (engine/placement.py): sockets handed between workers
        self.handoff: Handoff | None = None
        # Fault injection for the test suite (--test-hooks only): die at the first hand-off
        # (``handoff``: before sending the session; ``arrival``: on receiving one), or be
        # stuck for a while before sending it (``handoff-slow``); or fall behind the bus
        # (``intro-lag``)
        self.crash_at = os.environ.get("FASTCHAT_TEST_CRASH_AT", "") if config.test_hooks else ""
        self.lagging: tuple[float, list[list[Record]]] | None = None  # (intro-lag: _lag)

    # -- setup ---------------------------------------------------------------------------------
    def _register(self, fileobj: Any, events: int, handler: Callable[[int], None]) -> None:
        self.sel.register(fileobj, events, handler)

    def _install_signals(self) -> None:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno())
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        self._register(self._wake_r, EVENT_READ, self._drain_wakeup)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_reload_signal(self, signum: int, frame: object) -> None:
        self.reload_wanted = True

    # -- reloading the config --------------------------------------------------------------------
    def _reload(self) -> None:
        """SIGHUP from the supervisor, which has checked the file: take what may change live
        (limits, MOTD, opers, flood control...), and read the TLS certificate again. Nobody
        is disconnected."""
        if self.reload is not None:
            try:
                config, _ = reloaded(self.core.config, self.reload.load())
            except ConfigError as exc:
                log.error("worker %d: reload failed, the old config stays: %s", self.slot, exc)
                return
            self.config = config
            self.core.reconfigure(config)
        if self.tls_listener is not None:
            context = self._tls_reloaded(self.config)
            if isinstance(context, ssl.SSLContext):
                self.tls_context = context  # for the handshakes to come; others keep theirs
                log.info("worker %d: TLS certificate reloaded", self.slot)
        if self.web_tls_context is not None:
            try:
                self.web_tls_context = tls.reloaded_context(self.config, client_certificates=False)
            except (OSError, ssl.SSLError) as exc:
                log.error("worker %d: the web port's certificate stays: %s", self.slot, exc)

    def _tls_reloaded(self, config: Config) -> ssl.SSLContext | str:
        """The TLS context with ``config``'s certificate files read again, or why they cannot
        be used (logged: the old certificate stays)."""
        try:
            return tls.reloaded_context(config)
        except (OSError, ssl.SSLError) as exc:
            why = f"the TLS certificate cannot be used, the old one stays: {exc}"
            log.error("worker %d: %s", self.slot, why)
            return why

    def _rehash(self) -> None:
        """REHASH from operators (the core asked): check the file and the TLS certificate
        here, so that the operator hears what is wrong with them; if either can be used,
        have the supervisor reload every process (the SIGHUP comes back to us too)."""
        core = self.core
        for uid in core.offload.rehash_requests:
            tls_error = None
            if self.reload is None:
                if self.tls_listener is None:
                    why = "the server was started without --config"
                    core.offload.rehash_done(uid, "", why, [])
                    continue
                checked = self._tls_reloaded(self.config)
                if isinstance(checked, str):
                    core.offload.rehash_done(uid, "", checked, [])
                    continue
                core.offload.rehash_done(
                    uid, tls.certificate_files(self.config, False)[0], None, []
                )
                os.kill(os.getppid(), signal.SIGHUP)
                continue
            try:
                new = self.reload.load()
            except ConfigError as exc:
                log.error("REHASH failed, the old config stays: %s", exc)
                core.offload.rehash_done(uid, self.reload.path, str(exc), [])
                continue
            config, restart = reloaded(core.config, new)
            if self.tls_listener is not None:
                checked = self._tls_reloaded(config)
                tls_error = checked if isinstance(checked, str) else None
            core.offload.rehash_done(uid, self.reload.path, None, restart, tls_error)
            os.kill(os.getppid(), signal.SIGHUP)
        core.offload.rehash_requests.clear()

    def _drain_wakeup(self, mask: int) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _connect_hub(self) -> None:
        """Say hello to the hub and load its snapshot before serving anyone."""
        assert self.hub_address is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.hub_address)
        sock.sendall(encode([self.core.resync.hello(False, self.retained.first_seq)]))
        reader = FrameReader()
        after: list[Record] = []
        loaded = False
        while not loaded:
            data = self.receiver.recv(sock)
            if not data:
                raise ConnectionError("hub closed the bus during start-up")
            for batch in reader.feed(data):
                for record in batch:
                    if not loaded and record[0] == B_SNAPSHOT:
                        self.core.apply(record)
                        loaded = True
                    elif loaded:
                        after.append(record)
        link = Link(sock)
        link.reader = reader
        self.hub = link
        self.core.apply_batch(after, time.time())
        self._register(sock, EVENT_READ, self._hub_ready)

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        self.core.set_start_time(self.started if self.started is not None else time.time())
        if self.hub_address is not None:
            self._connect_hub()
        else:
            self.klines.load(self.core.state, int(time.time() * 1000))
            self.storage.announce = self._store_report  # its health, to the core (E_STORE)
            self.storage.load(self.core.state)
            self.core.stored = self.storage.record  # the sequencer's events worth keeping
            if self.core.sequencer is not None:  # where a joiner's replay ends (EJoin.kept)
                self.core.sequencer.kept = self.storage.kept
            self.storage.watch(self.sel, self.storage.on_wakeup)  # its writing process
        if self.hub_address is not None and self.core.placement.enabled:
            self.handoff = Handoff(
                self.hub_address, self.slot, self._register, self.sel.unregister, self._arrived
            )
        if self.config.history and self.config.data_dir:
            self.reader = ReaderProcess(db.path_in(self.config.data_dir))
            assert self.reader.sock is not None
            self._register(self.reader.sock, EVENT_READ, self._history_answers)
        self.listener.setblocking(False)
        self._register(self.listener, EVENT_READ, self._accept)
        if self.tls_listener is not None:
            self.tls_listener.setblocking(False)
            self._register(self.tls_listener, EVENT_READ, self._accept_tls)
        if self.web is not None:
            self.web.start()
        if self.lifeline_fd is not None:
            self._register(self.lifeline_fd, EVENT_READ, self._lifeline)
        if self.ready_fd is not None:
            os.write(self.ready_fd, b"%d\n" % self.slot)
            os.close(self.ready_fd)
            self.ready_fd = None
        log.info("worker %d serving (pid %d)", self.slot, os.getpid())
        next_tick = time.time() + 1.0
        core = self.core
        select = self.sel.select
        trimmer = Trimmer(self.now)  # the heap's freed pages back, once quiet (memory.py)
        while not self.stopping:
            timeout = 0.02 if core.throttled else max(0.0, next_tick - self.now)
            if self.handoff is not None and self.handoff.retrying:
                timeout = min(timeout, 0.02)  # (a hand-off a full backlog turned away)
            if core.resync.seen_changed:
                timeout = min(timeout, max(0.0, self.report_at - self.now))
            timeout = self.storage.flush_in(timeout)  # history waiting to be handed over
            ready = select(timeout)
            self.now = now = time.time()
            for key, mask in ready:
                data = key.data
                if data.__class__ is Client:
                    if mask & EVENT_READ:
                        self._read(data)
                    if mask & EVENT_WRITE:
                        self._flush_client(data)
                else:
                    data(mask)
            if self.checking:
                self._finish_checks()
            if self.mailing:
                self._finish_mails()
            if self.reload_wanted:
                self.reload_wanted = False
                self._reload()
            if core.offload.rehash_requests:
                self._rehash()
            if core.throttled:
                core.release_throttled(now)
            if now >= next_tick:
                next_tick = now + 1.0
                self.storage.maybe_report(int(now * 1000))  # STATS S (one worker: its store)
                core.links = self._links()
                core.tick(now)
                for transport in core.placement.expire(now):
                    _close_quietly(transport)
                if self.lingering:
                    self._expire_lingering()
                if self.handshaking:
                    self._expire_handshakes()
                if self.web is not None:
                    self.web.tick()
                if self.accept_paused_until and now >= self.accept_paused_until:
                    self._resume_accepting()
                if self.lagging is not None and now >= self.lagging[0]:  # (a test hook)
                    lagged, self.lagging = self.lagging[1], None
                    for batch in lagged:
                        core.apply_batch(batch, now)
            self._flush_all()
            self.klines.maybe_save(core.state, int(now * 1000))
            self.storage.maybe_prune(int(now * 1000))
            self.storage.flush()  # history and accounts, to the store's writer (when due)
            if now >= trimmer.due:
                trimmer.check(now)
        self._shutdown()
        return 0

    def _flush_all(self) -> None:
        """Carry out the effects of this loop turn: bus frame, client sends, closes."""
        core = self.core
        if core.turn_reads:
            core.end_turn()
        if core.offload.checks:
            self._start_checks()
        if core.offload.stored_waits:
            self._hold_stored()
        if core.offload.queries:
            self._ask_history()
        if core.offload.mails:
            self._start_mails()
        placement = core.placement
        if placement.wanted:
            placement.propose(_movable)
        if placement.outgoing:
            self._hand_off()
        if self.handoff is not None and self.handoff.retrying:
            self.handoff.retry()
        if placement.adopted:
            self._adopt()
        hub = self.hub
        if hub is not None:
            queued = False
            if core.outbox:
                for batch in core.take_requests():
                    self.retained.add(hub.queue(batch), len(batch))
                queued = True
            ack = core.take_fence_ack()  # behind every request of the lines read so far
            if ack is not None:
                hub.queue([ack])  # not a request: neither numbered nor retained
                queued = True
            if core.resync.seen_changed and self.now >= self.report_at:
                # What we received, for the hub's "stable" (how long origins keep requests):
                # at most every REPORT_EVERY, not with every frame (measured: a report per
                # frame cost more CPU per delivery at four workers, for no gain)
                hub.queue([core.resync.take_report()])
                self.report_at = self.now + REPORT_EVERY
                queued = True
            if queued:
                self._flush_hub()
        if core.dirty:
            dirty = core.dirty
            core.dirty = []
            blocked = self.blocked
            for client in dirty:
                if client not in blocked:
                    self._flush_client(client)
                elif client.outbuf is not None and client.pending and not client.corked:
                    # the socket is still full: queue behind, and enforce --sendq now
                    client.outbuf += b"".join(client.pending)
                    client.pending.clear()
                    if len(client.outbuf) > self.config.sendq and not client.closed:
                        self.core.disconnect(client, b"SendQ exceeded", flush=False)
            if self.web is not None:
                self.web.frames.clear()
        if core.held_changed:
            changed = core.held_changed
            core.held_changed = []
            for client in changed:
                if client.closed or client.transport is None:
                    continue
                if client.held:
                    self._pause_client(client)
                elif not self.reading_paused:
                    self._unpause_client(client)
        if core.closing:
            closing = core.closing
            core.closing = []
            for client in closing:
                self._close(client)

    # -- channel-affine placement: handing sockets between workers ---------------------------------
    def _hand_off(self) -> None:
        """Send each client the core let go of (an E_MOVE from here) to its new worker, with
        its session; a client whose new worker cannot be reached is closed (that worker is
        gone, and its users with it: the hub quits them)."""
        assert self.handoff is not None
        if self.crash_at == "handoff":
            log.error("worker %d: dying before a hand-off (FASTCHAT_TEST_CRASH_AT)", self.slot)
            os._exit(70)
        if self.crash_at == "handoff-slow":  # an old worker far behind: stuck, then it sends
            self.crash_at = ""
            log.error("worker %d: stuck before a hand-off (FASTCHAT_TEST_CRASH_AT)", self.slot)
            time.sleep(HANDOFF_SLOW + 1.5)
        for dst, session, client in self.core.placement.take_outgoing():
            sock = None
            if client is not None:
                sock = client.transport
                client.transport = None
                if sock is not None and self._registered(sock):
                    self.sel.unregister(sock)
                self.blocked.discard(client)
                self.paused.discard(client)
                self.lingering.pop(client, None)
            log.info(
                "worker %d: client %#x moves to worker %d%s",
                self.slot,
                client.uid if client is not None else 0,
                dst,
                "" if sock is not None else " (gone already)",
            )
            self.handoff.send(dst, session, sock)

    def _arrived(self, session: bytes, sock: socket.socket | None) -> None:
        """A session came from another worker (runtime/handoff.py), with its socket."""
        if self.crash_at == "arrival":
            log.error("worker %d: dying at a hand-off (FASTCHAT_TEST_CRASH_AT)", self.slot)
            os._exit(70)
        self.core._now = self.now
        try:
            kept = self.core.placement.arrived(session, sock)
        except ValueError:
            log.error("worker %d: a hand-off that is no session; dropped", self.slot)
            kept = False
        if not kept and sock is not None:
            _close_quietly(sock)

    def _adopt(self) -> None:
        """Watch the sockets of the clients that arrived (their output goes this turn)."""
        adopted = self.core.placement.adopted
        self.core.placement.adopted = []
        for client in adopted:
            sock = client.transport
            if sock is None or client.closed:
                continue
            log.info("worker %d: client %#x arrived", self.slot, client.uid)
            sock.setblocking(False)
            self.sel.register(sock, EVENT_READ, client)
            if self.reading_paused or client.held:
                self._pause_client(client)

    # -- history queries: SQLite, off the loop ---------------------------------------------------
    def _ask_history(self) -> None:
        """Hand the core's store queries to the reader (without one: no history is kept,
        every answer is empty, at once)."""
        queries = self.core.offload.queries
        self.core.offload.queries = []
        for q in queries:
            if self.reader is None:
                self.core.offload.history_answered(q.ticket, [], "", self.now)
            else:
                self.reader.ask(q.query, q.ticket)
        reader = self.reader
        if reader is not None and reader.wants_write and reader.sock is not None:  # (rare)
            self.sel.modify(reader.sock, EVENT_READ | EVENT_WRITE, self._history_answers)

    def _hold_stored(self) -> None:
        """At one worker, the history barrier (engine/offload.py's ``after_stored``): each
        D_STORED the sequencer decided goes to the core once this process's store has
        written everything decided before it."""
        waits = self.core.offload.stored_waits
        self.core.offload.stored_waits = []
        for record in waits:
            self.storage.when_stored(functools.partial(self._stored, record))

    def _store_report(self, report: StoreReport) -> None:
        """At one worker, this process's store flipped health or its counts moved: the
        core's sequencer makes it network state (E_STORE), and the core tells its operators
        of a flip."""
        sequencer = self.core.sequencer
        assert sequencer is not None
        self.core._now = self.now
        sequencer.store_status(*report, int(self.now * 1000))

    def _stored(self, record: Record) -> None:
        self.core._now = self.now
        self.core.apply(record)

    def _history_answers(self, mask: int) -> None:
        """The reading process's socket: answers came, it takes the queries that waited,
        or it died (its unanswered queries get an error; another starts)."""
        reader = self.reader
        assert reader is not None and reader.sock is not None
        if mask & EVENT_WRITE:
            reader.on_writable()
            if not reader.wants_write:
                self.sel.modify(reader.sock, EVENT_READ, self._history_answers)
        for answer in reader.answers():
            self.core.offload.history_answered(answer.ticket, answer.rows, answer.error, self.now)
        if reader.died:
            self.sel.unregister(reader.sock)
            reader.restart()
            assert reader.sock is not None
            self._register(reader.sock, EVENT_READ, self._history_answers)

    # -- password checks: blocking work, off the loop ------------------------------------------
    def _start_checks(self) -> None:
        """Hand the core's password checks to the pool. Each one, once done, wakes the loop
        (the wakeup socketpair), which takes the answer back to the core itself: the core is
        never touched from another thread."""
        checks = self.core.offload.checks
        self.core.offload.checks = []
        if self.checker is None:
            self.checker = concurrent.futures.ThreadPoolExecutor(
                PASSWORD_THREADS, thread_name_prefix=f"fastchat-passwords{self.slot}"
            )
        for check in checks:
            future = self.checker.submit(check.run)
            self.checking[future] = check.ticket
            future.add_done_callback(self._wake)

    def _wake(self, future: concurrent.futures.Future[Any]) -> None:
        """On a pool thread: wake the loop's ``select`` (a full socketpair is awake already)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _finish_checks(self) -> None:
        """Give the core the answers of the checks that are done."""
        for future in [f for f in self.checking if f.done()]:
            ticket = self.checking.pop(future)
            try:
                matched = future.result()
            except Exception:
                log.exception(
                    "worker %d: a password check failed; counted as a mismatch", self.slot
                )
                matched = False  # (a failed hashing: the command's continuation refuses it)
            self.core.offload.password_checked(ticket, matched, self.now)

    # -- verification mails: blocking work, off the loop -----------------------------------------
    def _start_mails(self) -> None:
        """Hand the core's verification mails to the mail pool; as for password checks,
        each wakes the loop when done, and the loop gives the core the outcome."""
        mails = self.core.offload.mails
        self.core.offload.mails = []
        if self.mail_pool is None:
            self.mail_pool = concurrent.futures.ThreadPoolExecutor(
                MAIL_THREADS, thread_name_prefix=f"fastchat-mail{self.slot}"
            )
        for mail in mails:
            future = self.mail_pool.submit(mailer.send, self.config, mail)
            self.mailing[future] = mail.ticket
            future.add_done_callback(self._wake)

    def _finish_mails(self) -> None:
        """Give the core the outcomes of the mails that are done."""
        for future in [f for f in self.mailing if f.done()]:
            ticket = self.mailing.pop(future)
            try:
                outcome, error = future.result()
            except Exception as e:  # our bug: the registration fails, and says so
                log.exception("worker %d: sending a verification mail failed", self.slot)
                outcome, error = MailOutcome.FAILED, f"{type(e).__name__}: {e}"
            self.core.offload.mail_done(ticket, outcome, error, self.now)

    # -- clients -------------------------------------------------------------------------------
    def _accept(self, mask: int) -> None:
        if accept_from(self.listener, self.reserve, self._accepted, self._out_of_descriptors):
            self.pause_accepting(self.listener, self._accept)

    def _accepted(self, sock: socket.socket, ip: bytes) -> None:
        refusal = self.core.admission(ip)
        if refusal is not None:
            with contextlib.suppress(OSError):
                sock.send(lines.closing_link(b"*", ip, refusal))
            sock.close()
            return
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = self.core.connect(ip, self.now)
        client.transport = sock
        self.sel.register(sock, EVENT_READ, client)

    @staticmethod
    def _out_of_descriptors(sock: socket.socket, ip: bytes) -> None:
        answer_and_close(sock, lines.closing_link(b"*", ip, b"Server out of file descriptors"))

    def pause_accepting(self, listener: socket.socket, handler: Callable[[int], None]) -> None:
        """Stop watching ``listener`` for a second (accept_from says when: out of
        descriptors without a reserve, or of kernel memory), rather than spin on a
        listening socket that stays readable."""
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(listener)
        self.accept_paused.append((listener, handler))
        self.accept_paused_until = self.now + 1.0

    def _resume_accepting(self) -> None:
        self.accept_paused_until = 0.0
        paused, self.accept_paused = self.accept_paused, []
        for listener, handler in paused:
            self._register(listener, EVENT_READ, handler)

    # -- TLS: accepting and handshaking ------------------------------------------------------------
    def _accept_tls(self, mask: int) -> None:
        """Accept on the TLS port and start each handshake; the core sees the connection
        only once its handshake is done (it owes nothing to one that never finishes)."""
        assert self.tls_listener is not None
        # (out of descriptors: closed without words, it does not speak TLS with us yet)
        if accept_from(self.tls_listener, self.reserve, self._accepted_tls, say_nothing):
            self.pause_accepting(self.tls_listener, self._accept_tls)

    def _accepted_tls(self, sock: socket.socket, ip: bytes) -> None:
        assert self.tls_context is not None
        if self.core.admission(ip) is not None or self._too_many_handshakes(ip):
            sock.close()  # (no words: it does not speak TLS with us yet)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls_sock = self.tls_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:
            log.debug("TLS from %s: cannot start: %s", ip.decode(), exc)
            sock.close()
            return
        self.handshaking[tls_sock] = (ip, self.now + self.config.tls_handshake_timeout)
        self.sel.register(tls_sock, EVENT_READ, functools.partial(self._handshake, tls_sock))

    def _handshake(self, sock: ssl.SSLSocket, mask: int) -> None:
        """One step of a handshake: wait for what it wants (reading or writing), fail
        quietly (a plaintext client, a scanner), or make it an ordinary client."""
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(sock, EVENT_READ, functools.partial(self._handshake, sock))
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(sock, EVENT_WRITE, functools.partial(self._handshake, sock))
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError, a reset, EOF in the middle
            ip, _ = self.handshaking.get(sock, (b"?", 0.0))
            log.debug("TLS handshake from %s failed: %s", ip.decode(), exc)
            self._drop_handshake(sock)
            return
        ip, _ = self.handshaking.pop(sock)
        refusal = self.core.admission(ip)  # again: others may have come while it shook hands
        if refusal is not None:
            with contextlib.suppress(OSError):  # now it can read why
                sock.send(lines.closing_link(b"*", ip, refusal))
            self._drop_handshake(sock)
            return
        client = self.core.connect(ip, self.now)
        client.transport = sock
        client.secure = True
        client.certfp = tls.certfp(sock)  # CertFP: WHOIS 276, SASL EXTERNAL
        self.sel.modify(sock, EVENT_READ, client)
        # Lines sent right behind the handshake may already wait inside the SSL object
        self._read(client)

    def _too_many_handshakes(self, ip: bytes) -> bool:
        """--max-clients-per-ip for connections the core does not know yet: this worker's
        handshakes from ``ip`` (the core counts the rest when the handshake is done), so that
        stalled handshakes cannot hold descriptors without bound until they time out."""
        limit = self.config.max_clients_per_ip
        if not limit or len(self.handshaking) < limit:
            return False
        return sum(1 for other, _ in self.handshaking.values() if other == ip) >= limit

    def _close_gently(self, sock: socket.socket) -> None:
        """Close with FIN, not RST: shut our side, drain unread input (a few reads), close;
        the peer then reads what we sent last (an ERROR)."""
        try:
            sock.shutdown(socket.SHUT_WR)
            for _ in range(4):
                if not self.receiver.recv(sock):
                    break
        except OSError:
            pass
        sock.close()

    def _drop_handshake(self, sock: ssl.SSLSocket) -> None:
        self.handshaking.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        self._close_gently(sock)  # (shutdown drops the SSL layer: the raw stream is drained)

    def _expire_handshakes(self) -> None:
        """Close the handshakes that took longer than --tls-handshake-timeout (a client
        that connected and stalled, or a plaintext client waiting for us to speak)."""
        for sock, (ip, deadline) in list(self.handshaking.items()):
            if self.now >= deadline:
                log.debug("TLS handshake from %s timed out", ip.decode())
                self._drop_handshake(sock)

    def _read(self, client: Client) -> None:
        sock = client.transport
        if sock is None:
            return
        try:
            # One class test per read is all a plain client pays for TLS and WebSocket
            cls = sock.__class__
            if cls is socket.socket:
                data = self.receiver.recv(sock)
            elif cls is ssl.SSLSocket:
                data = _recv_tls(sock)
            else:
                assert self.web is not None
                self.web.read(client)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.core.connection_lost(
                client, b"Read error: " + (exc.strerror or "").encode(), self.now
            )
            return
        if not data:
            self.core.connection_lost(client, b"Remote host closed the connection", self.now)
            return
        self.core.data_received(client, data, self.now)
        if self.reading_paused and not client.closed:
            self._pause_client(client)

    def _flush_client(self, client: Client) -> None:
        """Send everything ``client`` is owed in one ``send``; keep what the kernel refuses in
        ``outbuf``, watch writability only then, and bound it by --sendq. While a place is
        kept in its output (``client.corked``: a JOIN's replay on its way from the store),
        only what the kernel refused before goes; the rest waits for the core to fill it."""
        sock = client.transport
        if sock is None:
            return
        pending = client.pending if not client.corked else []
        outbuf = client.outbuf
        data: bytes | bytearray
        chunks: list[bytes] | None = None
        if outbuf is not None:
            if pending:
                outbuf += b"".join(pending)
                pending.clear()
            data = outbuf
        elif pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            if sock.__class__ is WebSocketTransport:  # (one class test: plain pays no more)
                chunks = pending.copy()  # framed once per turn, by chunk (FrameCache)
            pending.clear()
        else:
            self._unblock(client)
            return
        try:
            if chunks is None:
                sent = sock.send(data)
            else:
                assert isinstance(sock, WebSocketTransport) and isinstance(data, bytes)
                sent = sock.send_chunks(chunks, data)
        except SEND_LATER:
            sent = 0
        except OSError as exc:
            client.outbuf = None
            reason = b"Write error: " + (exc.strerror or "").encode()
            self.core.connection_lost(client, reason, self.now)
            return
        if sent == len(data):
            client.outbuf = None
            if client in self.lingering:
                self._finish_close(client)
            elif client in self.blocked:
                self._unblock(client)
            return
        if outbuf is None:
            client.outbuf = outbuf = bytearray(memoryview(data)[sent:])
        else:
            del outbuf[:sent]
        if len(outbuf) > self.config.sendq and not client.closed:
            self.core.disconnect(client, b"SendQ exceeded", flush=False)
            return
        if client not in self.blocked:
            self.blocked.add(client)
            if client in self.paused:
                if self._registered(sock):
                    self.sel.modify(sock, EVENT_WRITE, client)
                else:
                    self.sel.register(sock, EVENT_WRITE, client)
            else:
                self.sel.modify(sock, EVENT_READ | EVENT_WRITE, client)

    def _registered(self, sock: socket.socket) -> bool:
        try:
            self.sel.get_key(sock)
        except KeyError:
            return False
        return True

    def _unblock(self, client: Client) -> None:
        if client in self.blocked:
            self.blocked.discard(client)
            sock = client.transport
            if sock is not None:
                if client in self.paused:
                    self.sel.unregister(sock)
                else:
                    self.sel.modify(sock, EVENT_READ, client)

    def _close(self, client: Client) -> None:
        """Close a connection the core has finished with, after its last bytes (the ERROR line).

        If the kernel will not take them now (a slow reader cut for SendQ has a full socket
        buffer), the connection lingers, watched for writing only, until they are out or
        ``LINGER`` seconds pass: the peer learns why it was cut, and nobody else waits.
        """
        sock = client.transport
        if sock is None:
            self.core.forget(client)
            return
        data = bytes(client.outbuf or b"") + b"".join(client.pending)
        client.pending = NO_OUTPUT
        client.outbuf = None
        sent = 0
        if data:
            try:
                sent = sock.send(data)
            except SEND_LATER:
                sent = 0
            except OSError:
                sent = len(data)  # the peer is gone: nothing more to wait for
        if sent < len(data):
            client.outbuf = bytearray(memoryview(data)[sent:])
            self.lingering[client] = self.now + LINGER
            self.blocked.add(client)
            self.paused.discard(client)
            if self._registered(sock):
                self.sel.modify(sock, EVENT_WRITE, client)
            else:
                self.sel.register(sock, EVENT_WRITE, client)
            return
        self._finish_close(client)

    def _finish_close(self, client: Client) -> None:
        sock = client.transport
        assert sock is not None
        self.lingering.pop(client, None)
        if self._registered(sock):
            self.sel.unregister(sock)
        self.paused.discard(client)
        self._close_gently(sock)
        client.transport = None
        client.outbuf = None
        self.blocked.discard(client)
        self.core.forget(client)

    def _expire_lingering(self) -> None:
        for client, deadline in list(self.lingering.items()):
            if self.now >= deadline and client.transport is not None:
                self._finish_close(client)

    # -- backpressure: the bus (every client) or one client's held input (its socket) ---------------
    def _pause_client(self, client: Client) -> None:
        sock = client.transport
        if sock is None:
            return
        if client in self.paused:
            return
        self.paused.add(client)
        events = EVENT_WRITE if client in self.blocked else 0
        if events:
            self.sel.modify(sock, events, client)
        else:
            self.sel.unregister(sock)

    def _resume_reading(self) -> None:
        self.reading_paused = False
        for client in list(self.paused):
            if not client.held:  # a client the core holds stays paused (core._recvq_full)
                self._unpause_client(client)

    def _unpause_client(self, client: Client) -> None:
        if client not in self.paused:
            return
        self.paused.discard(client)
        sock = client.transport
        if sock is None or client.closed:
            return
        events = EVENT_READ | (EVENT_WRITE if client in self.blocked else 0)
        try:
            self.sel.modify(sock, events, client)
        except KeyError:
            self.sel.register(sock, events, client)

    # -- the hub link -----------------------------------------------------------------------------
    def _links(self) -> tuple[LinkInfo, ...]:
        """This worker's links for STATS l, refreshed every tick: the bus link to the hub."""
        hub = self.hub
        if hub is None:
            return ()
        name = b"%s[worker%d->hub]" % (self.config.server_name, self.slot)
        return (
            LinkInfo(
                name,
                hub.backlog,
                hub.sent_records,
                hub.sent_bytes,
                hub.received_records,
                hub.received_bytes,
                hub.opened,
            ),
        )

    def _flush_hub(self) -> None:
        hub = self.hub
        assert hub is not None
        try:
            done = hub.flush()
        except OSError as exc:
            self._hub_lost(f"write failed: {exc}")
            return
        events = EVENT_READ if done else EVENT_READ | EVENT_WRITE
        self.sel.modify(hub.sock, events, self._hub_ready)
        self._check_backpressure()

    def _check_backpressure(self) -> None:
        """Stop reading clients while too many of our requests are unconfirmed: not yet sent
        to the hub, or not yet received by every worker (``retained`` holds both, so it
        bounds this worker's memory even when another worker is stopped)."""
        size = self.retained.size
        if size > BUS_HIGH_WATER and not self.reading_paused:
            log.warning("%d bytes of requests unconfirmed: pausing client input", size)
            self.reading_paused = True
        elif self.reading_paused and size < BUS_LOW_WATER:
            self._resume_reading()

    def _hub_ready(self, mask: int) -> None:
        hub = self.hub
        if hub is None:
            return
        if mask & EVENT_WRITE:
            self._flush_hub()
        if mask & EVENT_READ:
            try:
                batches = hub.receive()
            except OSError as exc:
                self._hub_lost(f"read failed: {exc}")
                return
            if batches is None:
                self._hub_lost("hub closed the bus")
                return
            apply_batch = self.core.apply_batch
            now = self.now
            if self.crash_at == "intro-lag":
                batches = self._lag(batches, now)
            for batch in batches:
                apply_batch(batch, now)
            if self.core.resync.acked > self.retained.first_seq:
                self.retained.ack(self.core.resync.acked)
                if self.reading_paused:
                    self._check_backpressure()

    def _lag(self, batches: list[list[Record]], now: float) -> list[list[Record]]:
        """Test hook ``intro-lag``: from the frame that introduces another worker's user
        whose nick starts with ``lag``, what the hub sends waits 1.5 s before it is applied
        (then all of it, in order): a worker far behind the bus (engine/placement.py)."""
        if self.lagging is not None:
            self.lagging[1].extend(batches)
            return []
        for i, batch in enumerate(batches):
            if any(r[0] == E_INTRO and r[6] != self.slot and r[2][:3] == b"lag" for r in batch):
                log.error("worker %d: behind the bus (FASTCHAT_TEST_CRASH_AT)", self.slot)
                self.lagging = (now + 1.5, batches[i:])
                return batches[:i]
        return batches

    def _hub_lost(self, why: str) -> None:
        """The hub died. Keep every client: reconnect to its replacement and resync.

        The supervisor holds the hub's listening socket, so ``connect`` succeeds at once and
        our hello waits in its backlog until the new hub accepts it. The hello carries our whole
        replica: the new hub rebuilds the network by merging what every worker knows. Until it
        answers, requests queue in the bus (and backpressure pauses clients if it fills).
        """
        if self.stopping:
            return
        log.error("worker %d lost the hub (%s); reconnecting", self.slot, why)
        self.core.placement.hub_lost()  # (a wait for a moving client stops meanwhile)
        old = self.hub
        self.hub = None
        if old is not None:
            if self._registered(old.sock):
                self.sel.unregister(old.sock)
            old.close()
        assert self.hub_address is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.hub_address)
        except OSError as exc:
            log.error("worker %d cannot reach a new hub (%s); stopping", self.slot, exc)
            sock.close()
            self.stopping = True
            return
        link = Link(sock)
        link.queue([self.core.resync.hello(True, self.retained.first_seq)])
        for frame in self.retained.frames():
            link.queue_frame(frame)
        self.hub = link
        self._register(sock, EVENT_READ, self._hub_ready)
        self._flush_hub()

    def _lifeline(self, mask: int) -> None:
        """The supervisor holds the write end; EOF here means it is gone: stop serving."""
        try:
            data = os.read(self.lifeline_fd, 64) if self.lifeline_fd is not None else b""
        except OSError:
            data = b""
        if not data:
            log.error("worker %d: supervisor is gone; stopping", self.slot)
            self.stopping = True
            assert self.lifeline_fd is not None
            self.sel.unregister(self.lifeline_fd)

    # -- stopping -------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        """Tell every client, flush for up to ``shutdown_grace`` seconds, then close."""
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self.listener)
        if self.tls_listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.tls_listener)
        for sock in list(self.handshaking):
            self._drop_handshake(sock)
        if self.web is not None:
            self.web.stop()
        if self.checker is not None:
            self.checker.shutdown(wait=False, cancel_futures=True)
        if self.mail_pool is not None:
            self.mail_pool.shutdown(wait=False, cancel_futures=True)
        self.core.shutdown(b"Server shutting down")
        closing = self.core.closing
        self.core.closing = []
        self.core.dirty = []
        deadline = time.time() + self.config.shutdown_grace
        waiting = [c for c in closing if c.transport is not None]
        for client in waiting:
            self._flush_client(client)
        while time.time() < deadline and any(
            (c.pending or c.outbuf) and c.transport for c in waiting
        ):
            for key, mask in self.sel.select(0.05):
                if key.data.__class__ is Client and mask & EVENT_WRITE:
                    self._flush_client(key.data)
        for client in closing:
            self._close(client)
        for client in list(self.lingering):
            self._finish_close(client)
        self.reserve.close()
        self.klines.close()
        self.storage.close()
        if self.reader is not None:
            self.reader.close()
        if self.handoff is not None:
            self.handoff.close()
        log.info("worker %d stopped", self.slot)


def _movable(client: Client) -> bool:
    """May ``client`` move to another worker? Only plain TCP: a TLS session cannot leave
    the process (Python's ``ssl`` cannot export it), nor a WebSocket client's (its
    transport may sit on TLS, and holds the WebSocket's own state)."""
    return client.transport.__class__ is socket.socket


def _close_quietly(transport: Any) -> None:
    with contextlib.suppress(OSError):
        transport.close()


def _recv_tls(sock: ssl.SSLSocket) -> bytes:
    """What a TLS client sent, decrypted: ``recv`` until the SSL object wants more from the
    network, for up to ``READ_SIZE`` bytes and never leaving data inside the SSL object
    (``pending()``), which no ``select`` would report. ``b""`` at the end of the stream;
    ``BlockingIOError`` when nothing came (a record not complete yet, a key update)."""
    chunks: list[bytes] = []
    size = 0
    while size < READ_SIZE or sock.pending():
        try:
            chunk = sock.recv(FIRST_READ)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            break
        if not chunk:
            if chunks:
                break  # the end again at the next read (the socket stays readable)
            return b""
        chunks.append(chunk)
        size += len(chunk)
    if not chunks:
        raise BlockingIOError
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
