"""Channel-affine placement: hand a client to the worker that holds its channels' members.

Owns: when a local client should move (:meth:`Placement.consider`, :meth:`Placement.propose`),
what of it travels (:func:`export_session`, :func:`adopt_session`), and this worker's side of
the ``E_MOVE`` event: the old worker detaches the client and queues its session for the shell
to send with the socket; the new worker stops applying the bus (:class:`Stall`) until it has
the session, then applies what waited, in order.
Must never: touch a socket or a file descriptor (the shell's runtime/handoff.py carries them),
read the clock (``now`` comes from the core), or move a client that is not quiescent.

Why: SO_REUSEPORT spreads a room of 10 over nearly every worker, so at four workers a
channel message visits 3.87 workers, each of which decodes it, finds the channel and flushes
its members, and the hub routes one copy per visit (bench/FINDINGS.md, issue 14). A room
whose members sit on one worker costs one visit.

The design, step by step:

1. *When to move.* After this worker applies the ``E_JOIN`` of one of its local clients
   (not into an autojoin channel: everyone is there, so it says nothing about where anyone
   belongs), it scores each worker by the share of each of the client's other channels'
   members it holds (a share, so a big channel weighs as much as a small one, not more).
   If another worker scores strictly higher than this one (the client itself not counted),
   the client *wants* to move there. Ties stay: no move without a gain, which with the
   strict rule rules out ping-pong between two equal halves.
2. *Who decides.* The worker proposes (``R_MOVE``), the sequencer decides. The worker is
   where the facts about the connection are: only it knows whether the client is plain TCP
   (TLS and WebSocket state cannot leave the process: Python's ``ssl`` cannot export a
   session, and the WebSocket transport is bound to its TLS socket too) and whether nothing
   is under way for it. The sequencer has the authoritative, serial view: it picks the
   target again, among the workers that are up and would hold no more than 1.5 times the
   average number of users per worker (or the average plus a slack of 16, so that small
   networks can cluster at all): a full best worker is passed over for the next best, so a
   room too big for one worker's share gathers on two rather than staying spread over all.
   It refuses a move when the user is not on the proposing worker any more, when no such
   worker scores higher than the user's own, or when the user moved less than
   ``placement_interval`` ago. Proposals are decided one at a time in the one order, so two
   workers' proposals never cross and each load check sees every earlier move.
3. *Quiescence.* A client is proposed only while nothing of it is in flight: registered,
   not closing, nothing under its barrier (``waiting == 0``: no request undecided, no password
   check, history query or history barrier), no labeled reply open, no output slot (a JOIN's
   replay) open, no SASL exchange. ``R_MOVE`` goes under the client's barrier, so from then on
   its input is read but held (``inq``), exactly as for any request: no request of the client
   can be decided after the move on behalf of the old worker. Nor does the worker start
   anything for it on its own meanwhile (``moving``: nick protection's rename waits), so the
   ``E_MOVE`` finds nothing in flight: an answer that came to the old worker after it (a
   password check's, a history query's) would be lost.
4. *The hand-off is a sequenced event.* ``E_MOVE(uid, src, dst)`` changes ``user.worker`` and
   each channel's ``workers`` count in every replica and in the hub, so everything decided
   before it is routed to ``src`` and everything after to ``dst`` (the bus is FIFO per link).
   ``src``, on applying it, has already queued every line decided before it: it detaches the
   client and hands the shell the session (caps, modes, counters, the held input and the
   unfinished line, the output not yet sent, MONITOR list) to send with the socket's
   descriptor (``SCM_RIGHTS``) to ``dst``, then closes its copy. Bytes the client sent that
   ``src`` never read stay in the socket, for ``dst`` to read. ``dst``, on applying it, stops
   applying records (everything after it may concern the client) until the session arrives,
   puts the owed output first in the client's queue, then applies what waited: nothing is
   lost or sent twice, and the order is the sequencer's.
5. *Faults, and slowness.* While the hub is up, the wait for a session has no deadline that
   load can reach: ``src`` sends it when it applies the ``E_MOVE``, however far behind the
   bus it is (a loaded worker on a small machine can be seconds behind), and ``dst`` applies
   the ``E_MOVE`` of a session that came early, however far behind it is. Giving up on a
   slow worker's client would close a healthy connection. What ends a wait early is
   ``src``'s death: the hub tells every worker (``B_DOWN``, sequenced after the ``E_MOVE``;
   ``dst`` sees it among the records waiting behind its ``E_MOVE``), and ``dst`` gives up
   after ``HANDOFF_GRACE`` (what ``src`` sent before dying is still read) and quits the user
   (it is ``dst``'s user now, so the hub's cleanup of ``src`` would not). A wait longer than
   ``HANDOFF_SLOW`` is logged; ``HANDOFF_TIMEOUT`` is a safety net for a worker that hangs
   without dying. ``dst`` dies: its users, the mover included, quit through the hub's
   usual cleanup; ``src``'s send fails and it closes the socket (a full hand-off backlog is
   not that: ``src`` tries again, runtime/handoff.py). The client hangs up during the move:
   ``src`` reads the end of the stream under the barrier and quits the user as usual
   (``R_QUIT`` after ``R_MOVE``), or ``dst`` reads it; either way one QUIT, no ghost. A
   session that arrives after ``dst`` gave up is closed. A transfer that arrives before
   ``dst`` applied its ``E_MOVE`` waits for it (``early``), even one whose user ``dst`` has
   not heard of yet (its ``E_INTRO`` is still to come: a client can register, join and move
   within the time ``dst`` is behind); only a session ``dst`` gave up on is late. An early
   session whose user quits before its ``E_MOVE`` comes (a new hub's sweep) is closed
   (:meth:`Placement.gone`). With one worker nothing ever moves (the sequencer knows no
   workers there).
6. *The hub dies during a move* (the ``E_MOVE`` reached both workers, one, neither, or only
   some third worker): each worker's hello to the new hub undoes the moves in flight
   (:meth:`Placement.as_before`: ``dst`` reports the client it waits for on ``src``, ``src``
   the clients it handed over lately as its own) and names them in fields of their own
   (``BHello.handed``: uid and where the socket went; ``BHello.awaited``: uid and where it
   comes from). If ``src`` resends the ``R_MOVE`` (not every worker had the ``E_MOVE``) and
   some worker acted on it (``src`` sent the socket, or ``dst`` waits for it), the move is a
   fact: the new hub puts the user back on ``src`` whatever replica it merged first, sends
   every worker its snapshot only then (so every replica agrees), and decides the move again
   in the old hub's order, to the worker the socket went to, never refused, and tells every
   worker of it (hub.py ``_settle``, ``Sequencer.redo``); the lines decided before it reach
   the client once, where it was, and those after it where it went. If that worker is gone,
   the user quits, once. ``src`` sends nothing for a client it already handed over. A resent
   move nobody acted on is decided afresh (a refusal leaves the client where it is). If the
   ``R_MOVE`` is not resent, the hub puts the user on the worker that holds or awaits it.
   ``dst`` counts as received the frames waiting behind its ``E_MOVE`` (resync.py), adopts
   an early session once the new hub puts its user here (:meth:`Placement.resynced`), and
   corrects its replica for a client it holds (``WorkerCore.load_snapshot``). Its wait for
   a session (``HANDOFF_TIMEOUT``, arriving or early) stops while the hub is away (the
   session may come only once the new hub decided the move again) and starts again, whole,
   when the new hub's snapshot comes (:meth:`Placement.hub_lost`, :meth:`Placement.hub_back`).
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastchat.irc.casemap import fold
from fastchat.irc.linebuffer import LineBuffer
from fastchat.server.connection import NO_INPUT, NO_OUTPUT, Client
from fastchat.server.network.records import (
    B_DOWN,
    B_SNAPSHOT,
    EMove,
    Record,
    RMove,
    RQuit,
    make,
)
from fastchat.server.network.sequencer import affine_worker
from fastchat.server.network.state import Channel, SnapshotUser, User, add_local
from fastchat.server.registration import Phase

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore

#: Seconds the new worker waits for a client's session (or for the E_MOVE of a session
#: that came early) before it gives up: a safety net for a worker that hangs without dying
#: (a dead one is told by B_DOWN). A live worker, however loaded, sends the session.
HANDOFF_TIMEOUT = 30.0
#: Seconds a wait goes on after B_DOWN of the worker the session comes from (what it sent
#: before dying is in this worker's hand-off backlog: read within a loop turn or two).
HANDOFF_GRACE = 0.5
#: A wait longer than this is logged, once (a worker this far behind the bus is overloaded).
HANDOFF_SLOW = 2.0
#: Seconds after a hand-off during which a new hub is told the client is still here (its
#: R_MOVE is resent to a new hub until every worker has received the move: well within this).
LEFT_FOR = 10.0
#: Seconds a wish to move waits for its client to become quiescent before it is dropped.
WANT_FOR = 5.0
#: A join or a move makes this worker look again at a channel's local members, up to this many.
RECONSIDER_UP_TO = 64
#: The :class:`Client` fields that travel as they are (everything else is named below).
SESSION_FIELDS = (
    "account",
    "cap_version",
    "caps",
    "certfp",
    "connected_at",
    "flood_clock",
    "held",
    "inq",
    "inq_bytes",
    "ip",
    "last_active",
    "metadata_subs",
    "msgs",
    "nick",
    "oper_failures",
    "oper_retry_at",
    "password",
    "ping_sent",
    "realname",
    "received",
    "sasl_mechanism",
    "secure",
    "streamed",
    "synced_upto",
    "username",
)
#: The :class:`Client` fields that do not travel as they are, and why (a test checks that
#: every field is in one list or the other, so a new field cannot be forgotten).
REBUILT_FIELDS = {
    "uid": "the session's key",
    "phase": "by value (an enum)",
    "linebuf": "its unfinished line (LineBuffer.saved)",
    "pending": "with outbuf: the output owed, one bytes object, first in the new queue",
    "outbuf": "see pending",
    "user": "the new worker's replica's User",
    "source": "empty: made from the user when next needed (connection.source_of)",
    "privileges": "the user's (network state)",
    "transport": "the shell's: the descriptor travels beside the session",
    "waiting": "zero: a client moves only with nothing in flight but its R_MOVE",
    "label": "None: a client moves only with no labeled reply open",
    "slots": "None: a client moves only with no output slot open",
    "sasl": "None: a client moves only with no SASL exchange under way",
    "sasl_state": "None: see sasl",
    "closed": "False: a closed client does not move",
    "refused_nick": "only for REGISTER * before connecting: a registered client has a nick",
    "pre_away": "only before registering: the registration carried it",
    "quitting": "empty: a quitting client does not move",
}


#: What travels with a session besides the client: its MONITOR list, its nick deadline
_Extras = tuple[list[tuple[bytes, bytes]], tuple[float, bytes] | None]
#: Where a user's worker is in a snapshot's user row
_WORKER_COLUMN = SnapshotUser._fields.index("worker")


class Stall(Exception):
    """Raised by the ``E_MOVE`` that brings a client here: apply nothing more until it
    arrives (``WorkerCore.apply_batch`` keeps the rest of the batch)."""


def export_session(
    client: Client,
    monitored: list[tuple[bytes, bytes]],
    moved_at: float,
    deadline: tuple[float, bytes] | None = None,
) -> bytes:
    """``client``'s session as bytes for another worker of this server (``marshal``: the
    same interpreter on both sides)."""
    owed = bytes(client.outbuf or b"") + b"".join(client.pending)
    fields = tuple(getattr(client, name) for name in SESSION_FIELDS)
    return marshal.dumps(
        (
            client.uid,
            fields,
            client.phase.value,
            client.linebuf.saved() if client.linebuf is not None else (b"", False),
            owed,
            tuple(monitored),
            moved_at,
            deadline,
        )
    )


def gone_session(uid: int) -> bytes:
    """What the old worker sends when the client it was to hand over is gone already."""
    return marshal.dumps((uid, None))


def session_uid(blob: bytes) -> int:
    """The uid a session (or a ``gone`` notice) is for; ValueError if it is none."""
    try:
        data = marshal.loads(blob)
    except (EOFError, ValueError, TypeError) as exc:
        raise ValueError("not a session") from exc
    if not isinstance(data, tuple) or not data or not isinstance(data[0], int):
        raise ValueError("not a session")
    return data[0]


Adopted = tuple[Client, bytes, list[tuple[bytes, bytes]], float, tuple[float, bytes] | None]


def share_with_user(client: Client, user: User, shared: Callable[[bytes], bytes]) -> None:
    """An adopted client's fields that equal its user's (or the state's shared values) become
    those objects: the session brought copies of its own, which an idle client would keep
    (its uid, nick, username, realname, address, times, an empty input queue:
    ~250 bytes per moved client)."""
    client.uid = user.uid
    if not client.inq:
        client.inq = NO_INPUT
    if client.last_active == client.connected_at:
        client.last_active = client.connected_at
    if not client.flood_clock:
        client.flood_clock = 0.0
    if not client.ping_sent:
        client.ping_sent = 0.0
    if client.nick == user.nick:
        client.nick = user.nick
    if client.username == user.username:
        client.username = user.username
    if client.realname == user.realname:
        client.realname = user.realname
    client.ip = shared(client.ip)


def adopt_session(blob: bytes, max_line: int) -> Adopted | None:
    """The client a session describes (without user, transport or queue), the output it is
    owed, its MONITOR list, when it last moved and when nick protection renames it (None:
    it does not); None for a ``gone`` notice."""
    data = marshal.loads(blob)
    uid, fields = data[0], data[1]
    if fields is None:
        return None
    _, _, phase, saved, owed, monitored, moved_at, deadline = data
    client = Client(uid, b"", 0.0)
    for name, value in zip(SESSION_FIELDS, fields, strict=True):
        setattr(client, name, value)
    client.phase = Phase(phase)
    if saved[0] or saved[1]:  # an unfinished line (or the rest of an overlong one) to hold
        client.linebuf = LineBuffer(max_line)
        client.linebuf.restore(saved)
    return client, owed, list(monitored), moved_at, deadline


class Placement:
    """This worker's part in channel-affine placement (see the module docstring)."""

    __slots__ = (
        "adopted",
        "arriving",
        "autojoin",
        "away",
        "came_from",
        "core",
        "early",
        "enabled",
        "gave_up",
        "left",
        "moved_at",
        "moving",
        "outgoing",
        "slow_at",
        "stalled",
        "wanted",
    )

    def __init__(self, core: WorkerCore, standalone: bool) -> None:
        self.core = core
        self.enabled = not standalone and core.config.placement == "affine"
        self.autojoin = frozenset(fold(c) for c in core.config.autojoin)
        # local clients that should move: uid -> (worker, give up at)
        self.wanted: dict[int, tuple[int, float]] = {}
        # local clients whose R_MOVE is undecided (its E_MOVE, or the D_DONE alone of a
        # refusal, ends it): nothing of theirs may start meanwhile (nick protection waits)
        self.moving: set[int] = set()
        # clients to hand over at the end of this turn: (worker, uid, the client or None if
        # gone, its MONITOR list and nick protection's deadline)
        self.outgoing: list[tuple[int, int, Client | None, _Extras]] = []
        # the client whose session this worker waits for: (uid, give up at), and the
        # records received since its E_MOVE (None: not stalled)
        self.arriving: tuple[int, float] | None = None
        self.came_from: int | None = None  # (the worker it comes from)
        self.slow_at = 0.0  # (when the wait is logged as slow)
        self.stalled: list[Record] | None = None
        # sessions that came before their E_MOVE: uid -> (session, transport)
        self.early: dict[int, tuple[bytes, Any, float]] = {}
        # the clients this worker gave up waiting for: uid -> when (a session that comes
        # after that is late, and closed)
        self.gave_up: dict[int, float] = {}
        self.moved_at: dict[int, float] = {}  # local clients that moved here: when
        # clients handed to another worker lately: uid -> (until when a new hub may still be
        # told they are ours (their R_MOVE may be resent to it: see as_before), the worker
        # their socket went to)
        self.left: dict[int, tuple[float, int]] = {}
        self.adopted: list[Client] = []  # clients that arrived, for the shell to watch
        # The hub link is lost and no new hub's snapshot has come yet: the waits for a
        # session do not run out meanwhile (a move in flight may be decided again only once
        # the new hub is up: see hub_lost)
        self.away = False

    # -- the old worker: deciding to move -------------------------------------------------------
    def consider(self, uid: int) -> None:
        """A local client joined a channel: should it live on another worker?"""
        core = self.core
        user = core.state.users.get(uid)
        if user is None:
            return
        now = core.now
        if now - self.moved_at.get(uid, -1e9) < core.config.placement_interval:
            return
        best = affine_worker(user, self.autojoin)
        if best is not None:
            self.wanted[uid] = (best, now + WANT_FOR)

    def reconsider(self, chan: Channel, but: int) -> None:
        """Someone joined ``chan`` or moved: its local members (but ``but``) may be better
        off elsewhere now. A member that stayed because its worker held the most of the
        channel when it joined would otherwise stay when the channel gathers elsewhere.
        Not for an autojoin channel, nor a big one (where it would cost a pass over many
        members per join, and a member's share of it hardly moves)."""
        if chan.key in self.autojoin or len(chan.local) > RECONSIDER_UP_TO:
            return
        for uid in chan.local:
            if uid != but:
                self.consider(uid)

    def propose(self, movable: Any) -> None:
        """The shell's turn: propose each wanted move whose client is quiescent now (and
        ``movable(client)``: plain TCP); drop wishes that waited too long."""
        core = self.core
        now = core.now
        for uid, (dst, until) in list(self.wanted.items()):
            client = core.clients.get(uid)
            if client is None or now > until or not movable(client) or client.closed:
                del self.wanted[uid]
                continue
            if (
                client.user is None
                or client.quitting
                or client.waiting
                or client.label is not None
                or client.slots is not None
                or client.sasl is not None
            ):
                continue  # not now: try again next turn
            del self.wanted[uid]
            core.submit(make(RMove, uid, dst))  # under the barrier: input held from now on
            self.moving.add(uid)

    # -- the E_MOVE -------------------------------------------------------------------------------
    def e_move(self, rec: Record) -> None:
        """Apply an E_MOVE; hand over the client (``src``) or wait for it (``dst``)."""
        core = self.core
        e = EMove._make(rec)
        if not core.state.apply(rec):
            return
        user = core.state.users[e.uid]
        for chan in user.channels:
            self.reconsider(chan, e.uid)
        if e.src == core.slot:
            self._leave(e.uid, e.dst)
        elif e.dst == core.slot:
            early = self.early.pop(e.uid, None)
            if early is not None:
                client = self._adopt(early[0], early[1])
                if client is not None:
                    core.resume(client)
                return
            self.arriving = (e.uid, core.now + HANDOFF_TIMEOUT)
            self.came_from = e.src
            self.slow_at = core.now + HANDOFF_SLOW
            raise Stall

    def _leave(self, uid: int, dst: int) -> None:
        """Detach ``uid``'s client from this worker: it is sent nothing more from here. Its
        session is taken at the end of this loop turn (:meth:`take_outgoing`), so that what
        the shell reads from its socket until then travels too (held under its barrier:
        the R_MOVE's D_DONE finds no client here, so the barrier never drops here)."""
        core = self.core
        self.wanted.pop(uid, None)
        self.moving.discard(uid)
        client = core.clients.get(uid)
        if client is None and uid in self.left:
            # a move this worker made already, decided again by a new hub (point 6): its
            # socket went with the first E_MOVE, and nothing is sent for it again
            return
        if client is None or client.closed or client.quitting:
            # gone already (its R_QUIT follows, or followed, the move): dst waits for nothing
            self.outgoing.append((dst, uid, None, ([], None)))
            return
        # Nothing of it is in flight but its R_MOVE (``waiting`` is 1): it was proposed only
        # when quiescent, its input has been held since, and the one request a worker makes
        # for a client on its own, nick protection's rename, waits while it moves
        # (``moving``). So no answer comes here for it after this (an OPER's password check
        # or a CHATHISTORY query under way would be answered to a client that has left).
        monitored = list(core.monitors.lists.get(uid, {}).items())
        del core.clients[uid]
        core.state.local.pop(uid, None)
        user = client.user
        if user is not None:
            for chan in user.channels:
                chan.local.pop(uid, None)
        core.monitors.clear(uid)
        core.throttled.discard(client)
        if client.caps & core.special_mask:
            core.tagged -= 1
        client.waiting = max(client.waiting, 1)  # input read from now on is only held
        extras = (monitored, core.nick_deadlines.pop(uid, None))
        self.outgoing.append((dst, uid, client, extras))
        left = self.left
        now = core.now
        stale = []
        for u, (until, _) in left.items():  # (oldest first: pruned from the front as it goes)
            if until > now:
                break
            stale.append(u)
        for u in stale:
            del left[u]
        left.pop(uid, None)
        left[uid] = (now + LEFT_FOR, dst)

    def take_outgoing(self) -> list[tuple[int, bytes, Client | None]]:
        """For the shell, at the end of the loop turn: each client to hand over, as (its
        new worker, its session, the client, whose transport the shell sends with it; None
        if it was gone already)."""
        now = self.core.now
        out: list[tuple[int, bytes, Client | None]] = []
        for dst, uid, client, (monitored, deadline) in self.outgoing:
            if client is None or client.closed or client.quitting:
                # (it hung up while detached here: its R_QUIT is on its way, and the shell
                # closes its socket as usual)
                out.append((dst, gone_session(uid), None))
                continue
            out.append((dst, export_session(client, monitored, now, deadline), client))
            self.moved_at.pop(uid, None)
            client.pending = NO_OUTPUT
            client.outbuf = None
            client.closed = True  # nothing more is queued here for it
        self.outgoing = []
        return out

    # -- the new worker: receiving ------------------------------------------------------------
    def arrived(self, session: bytes, transport: Any) -> bool:
        """The shell received a session and its socket (``transport``; None with a ``gone``
        notice). True: the core keeps ``transport`` (its client is served here now, in
        :attr:`adopted` for the shell to watch, or it waits for its E_MOVE); False: the shell
        closes it (the user is gone, or this worker gave up on it)."""
        core = self.core
        uid = session_uid(session)
        if self.arriving is not None and self.arriving[0] == uid:
            client = self._adopt(session, transport)
            self._resume()
            return client is not None
        if self.gave_up.pop(uid, None) is not None:
            return False  # late: this worker gave up on it (and quit its user)
        user = core.state.users.get(uid)
        if user is None or user.worker != core.slot:
            # Early: its E_MOVE is still to come here, or even its E_INTRO (a client can
            # register, join and move within the time this worker is behind the bus: the
            # session must wait for it then too, not be closed as a stranger's)
            self.early[uid] = (session, transport, core.now + HANDOFF_TIMEOUT)
            return True
        return False  # its user is here already: no session for it can come now

    def gone(self, uid: int) -> None:
        """An E_QUIT or E_KILL was applied: if a session came early for that user (a new
        hub's sweep quit it: its old worker died with the old hub), it is closed at the next
        :meth:`expire`, not at its deadline."""
        early = self.early.get(uid)
        if early is not None and uid not in self.core.state.users:
            self.early[uid] = (early[0], early[1], 0.0)

    def _adopt(self, session: bytes, transport: Any) -> Client | None:
        """Serve the client of ``session`` here: the output it is owed goes first."""
        core = self.core
        adopted = adopt_session(session, core.input_limit)
        if adopted is None or transport is None:
            return None
        client, owed, monitored, moved_at, deadline = adopted
        user = core.state.users.get(client.uid)
        if user is None:
            return None
        share_with_user(client, user, core.state.shared)
        client.transport = transport
        client.user = user
        client.privileges = user.privileges
        core.clients[client.uid] = client
        core.state.local[client.uid] = client
        for chan in user.channels:
            add_local(chan, client.uid, client)
        for key, nick in monitored:
            core.monitors.add(client.uid, key, nick)
        if client.caps & core.special_mask:
            core.tagged += 1
        self.moved_at[client.uid] = moved_at
        if deadline is not None:
            core.nick_deadlines[client.uid] = deadline
        if owed:
            core.queue(client, owed)
        if client.held:
            core.held_changed.append(client)
        self.adopted.append(client)
        return client

    def _resume(self) -> None:
        """The client arrived (or this worker gave up): apply what waited, in order, then
        the input the client sent before and during its move."""
        self.arriving = None
        records = self.stalled or []
        self.stalled = None
        core = self.core
        core.apply_batch(records, core.now)
        for client in self.adopted:
            core.resume(client)

    def expire(self, now: float) -> list[Any]:
        """Give up on a session that did not come in time (its old worker died: B_DOWN; or
        the safety net): quit its user (it is this worker's now, so nobody else would), and
        apply what waited. Returns the sockets of sessions that came early and whose E_MOVE
        never followed, for the shell to close. Nothing runs out while the hub is away
        (:meth:`hub_lost`)."""
        if self.away:
            return []
        arriving = self.arriving
        log = self.core.log
        if arriving is not None and now >= self.slow_at:
            self.slow_at = float("inf")
            log.warning(
                "worker %d: client %#x still on its way from worker %s after %.0f s "
                "(that worker is behind the bus); waiting",
                self.core.slot,
                arriving[0],
                self.came_from,
                HANDOFF_SLOW,
            )
        if arriving is not None and now >= arriving[1]:
            uid = arriving[0]
            log.error(
                "worker %d: client %#x did not arrive from its old worker; quitting it",
                self.core.slot,
                uid,
            )
            self.core.submit(make(RQuit, uid, b"Lost while moving between workers"), False)
            self.gave_up[uid] = now
            self._resume()
        if self.gave_up:
            self.gave_up = {u: t for u, t in self.gave_up.items() if now - t < HANDOFF_TIMEOUT}
        # An early session whose E_MOVE never came in time (the safety net), or whose user
        # quit meanwhile (:meth:`gone`): closed
        stale = [uid for uid, early in self.early.items() if now >= early[2]]
        for uid in stale:
            log.error(
                "worker %d: client %#x came, its move did not; closing it", self.core.slot, uid
            )
        closing = [self.early.pop(uid)[1] for uid in stale]
        return [transport for transport in closing if transport is not None]  # (None: gone)

    def behind(self, records: Iterable[Record]) -> None:
        """Records that come while a client is on its way here wait behind its E_MOVE, in
        order (:attr:`stalled`). Two of them matter at once, as they come: the B_DOWN of
        the worker the session comes from (:meth:`worker_down`), and a new hub's snapshot
        (:meth:`hub_back`)."""
        stalled = self.stalled
        assert stalled is not None
        start = len(stalled)
        stalled.extend(records)
        for i in range(start, len(stalled)):
            kind = stalled[i][0]
            if kind == B_DOWN:
                self.worker_down(stalled[i][1])
            elif kind == B_SNAPSHOT and self.away:
                self.hub_back()

    def worker_down(self, slot: int) -> None:
        """B_DOWN: worker ``slot`` is gone. If this worker waits for a session from it, what
        it sent before dying is read within ``HANDOFF_GRACE``; then the wait ends
        (:meth:`expire`)."""
        arriving = self.arriving
        if arriving is not None and self.came_from == slot:
            self.arriving = (arriving[0], min(arriving[1], self.core.now + HANDOFF_GRACE))

    def b_down(self, rec: Record) -> None:
        """B_DOWN applied in order. A wait for a session stalls the records behind its
        E_MOVE, a B_DOWN among them included: :meth:`behind` finds it there, as it comes.
        Applied, it finds no wait of its own."""
        self.worker_down(rec[1])

    def hub_lost(self) -> None:
        """The hub link is lost. A session this worker waits for may come only once a new
        hub has decided its move again (the old worker never had the E_MOVE), which takes
        as long as the restart: the waits stop until the new hub's snapshot comes
        (:meth:`hub_back`), and start again from there."""
        self.away = True

    def hub_back(self) -> None:
        """A new hub's snapshot came (applied, or waiting behind an E_MOVE to this worker):
        each wait for a session starts again, whole, from now."""
        if not self.away:
            return
        self.away = False
        until = self.core.now + HANDOFF_TIMEOUT
        self.slow_at = self.core.now + HANDOFF_SLOW
        if self.arriving is not None:
            self.arriving = (self.arriving[0], until)
        for uid, (session, transport, _) in list(self.early.items()):
            self.early[uid] = (session, transport, until)

    def resynced(self) -> None:
        """A new hub's snapshot is loaded (after the old hub died in the middle of a move):
        a session that came before its E_MOVE, for a user the new hub puts here, is ours
        now. The E_MOVE that would have brought it may never come: the old hub died before
        sending it here, and the new one, which already has the user here, decides no move."""
        core = self.core
        for uid in list(self.early):
            user = core.state.users.get(uid)
            if user is not None and user.worker == core.slot and uid not in core.clients:
                session, transport, _ = self.early.pop(uid)
                client = self._adopt(session, transport)
                if client is not None:
                    core.resume(client)

    def as_before(self, snapshot: Any) -> Any:
        """``snapshot`` (this worker's replica, for a new hub) with each move in flight
        undone: the client this worker waits for still on the worker it comes from, and the
        clients it handed over lately still here. The new hub decides such a move again, in
        the old hub's order, if its R_MOVE is among the requests resent to it (the lines
        decided before it then reach the client where it was, once, and not again where it
        goes); if not, the new hub learns where the client is from the hellos (hub.py
        ``_settle``)."""
        now = self.core.now
        self.left = {uid: kept for uid, kept in self.left.items() if kept[0] > now}
        undo = dict.fromkeys(self.left, self.core.slot)
        if self.arriving is not None and self.came_from is not None:
            undo[self.arriving[0]] = self.came_from
        if not undo:
            return snapshot
        at = _WORKER_COLUMN
        users = tuple(
            row if row[0] not in undo else (*row[:at], undo[row[0]], *row[at + 1 :])
            for row in snapshot[0]
        )
        return (users, *snapshot[1:])

    def holding(self) -> list[int]:
        """The users whose clients are on their way here (for a new hub: they are ours)."""
        held = list(self.early)
        if self.arriving is not None:
            held.append(self.arriving[0])
        return held

    def awaited(self) -> tuple[tuple[int, int], ...]:
        """The clients on their way here, as (uid, the worker they come from): the one whose
        E_MOVE this worker applied, and those whose session came before their E_MOVE (from
        where this worker's replica still has them)."""
        users = self.core.state.users
        pairs = [(uid, users[uid].worker) for uid in self.early if uid in users]
        if self.arriving is not None and self.came_from is not None:
            pairs.append((self.arriving[0], self.came_from))
        return tuple(pairs)

    def handed(self) -> tuple[tuple[int, int], ...]:
        """The clients handed to another worker lately, as (uid, the worker their socket
        went to): ours only if their R_MOVE is resent to a new hub (call after
        :meth:`as_before`, which forgets the old ones)."""
        return tuple((uid, dst) for uid, (_, dst) in self.left.items())

    def forget(self, uid: int) -> None:
        """A local client is gone."""
        self.wanted.pop(uid, None)
        self.moving.discard(uid)
        self.moved_at.pop(uid, None)
