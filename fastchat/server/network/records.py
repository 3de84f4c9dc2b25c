"""The vocabulary between a worker and the sequencer: requests, sequenced events, deliveries.

Owns: the record kinds and the one schema of each kind.
Must never: hold logic.

A worker *requests* (``R_*``); the sequencer decides, in one global order, and answers with
*events* (``E_*``, broadcast to every worker, which all apply them to their replica of the
state) or *deliveries* (``D_*``, sent only to the workers that hold a recipient). Every record
the sequencer produces carries ``time``: the millisecond (Unix time) at which it decided,
stamped once, so every worker and every recipient sees the same time for the same decision.

Two forms of one record, by design:
- **On the wire and in the hot path**, a record is a plain tuple ``(kind, *fields)``: a whole
  batch crosses the bus as one ``marshal`` frame (marshal refuses tuple subclasses), and a
  relayed message costs one tuple allocation.
- **Everywhere else**, code names the fields through the kind's schema below, a
  :class:`~typing.NamedTuple` whose layout *is* the wire layout: ``make(EJoin, uid=...)``
  builds the tuple, ``EJoin._make(record)`` reads it back with names. Adding a field (an
  account, a msgid) is one edit here, plus whoever fills it in.

The few hot builders that write the tuple by hand (``R_CHANMSG``, ``D_CHAN``, ``D_DONE``) say
so next to their schema; ``tests/unit/test_records.py`` checks every kind against its schema.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Record = tuple[Any, ...]

# -- requests: worker -> sequencer ------------------------------------------------------------
R_REGISTER = 1
R_NICK = 2
R_JOIN = 3
R_PART = 4
R_QUIT = 5
R_TOPIC = 6
R_MODE = 7
R_KICK = 8
R_AWAY = 9
R_INVITE = 10
R_CHANMSG = 11
R_USERMSG = 12
R_SYNC = 13
R_UMODE = 14
R_OPER = 15
R_KILL = 16
R_WALLOPS = 17
R_KLINE = 18
R_COUNTS = 19
R_UNKLINE = 20

# -- events: sequencer -> every worker (state changes, in the one global order) -----------------
E_INTRO = 21
E_NICK = 22
E_JOIN = 23
E_PART = 24
E_QUIT = 25
E_TOPIC = 26
E_MODE = 27
E_KICK = 28
E_AWAY = 29
E_INVITE = 30
E_UMODE = 31
E_OPER = 32
E_KILL = 33
E_KLINE = 34
E_UNKLINE = 35
E_COUNTS = 39

# -- deliveries and answers: sequencer -> the workers that need them ----------------------------
D_CHAN = 41
D_USER = 42
D_REPLY = 43
D_DONE = 44
D_KILL = 45
D_WALLOPS = 46
D_OVERRIDE = 47
D_NOTICE = 48

# -- bus control: worker <-> hub ----------------------------------------------------------------
B_HELLO = 61
B_SNAPSHOT = 62
B_SEEN = 63
B_RECEIVED = 64


# -- requests ---------------------------------------------------------------------------------
class RRegister(NamedTuple):
    """Register a connection that gave NICK and USER (the sequencer stamps its signon).
    ``account``: the account its SASL authentication proved (b"": none); the sequencer logs
    it in (E_LOGIN) in the same step, if the account still exists. ``certfp``: the TLS
    client certificate's fingerprint (b"": none), which the user's E_INTRO carries.
    ``away``: its away message from before registering (IRCv3 draft/pre-away; b"": none),
    an E_AWAY in the same step."""

    kind: int
    uid: int
    nick: bytes
    username: bytes
    host: bytes
    realname: bytes
    account: bytes = b""
    certfp: bytes = b""
    away: bytes = b""


class RNick(NamedTuple):
    kind: int
    uid: int
    nick: bytes


class RJoin(NamedTuple):
    kind: int
    uid: int
    channel: bytes
    key: bytes


class RPart(NamedTuple):
    kind: int
    uid: int
    channel: bytes
    reason: bytes


class RQuit(NamedTuple):
    kind: int
    uid: int
    reason: bytes


class RTopic(NamedTuple):
    kind: int
    uid: int
    channel: bytes
    topic: bytes


class RMode(NamedTuple):
    """Channel mode changes as the client wrote them; the sequencer validates them."""

    kind: int
    uid: int
    channel: bytes
    modes: bytes
    args: tuple[bytes, ...]


class RKick(NamedTuple):
    kind: int
    uid: int
    channel: bytes
    target: bytes  # a nick
    reason: bytes


class RAway(NamedTuple):
    kind: int
    uid: int
    message: bytes  # empty: back


class RInvite(NamedTuple):
    kind: int
    uid: int
    target: bytes  # a nick
    channel: bytes


class RChanMsg(NamedTuple):
    """A PRIVMSG/NOTICE/TAGMSG (or a run of PRIVMSG/NOTICE, joined) to a channel. Hot: built
    by hand in ``engine/relay.py``. ``doubted``: the worker's replica refused it (or the
    client waits for its answer: a labeled message); the sequencer decides and answers with
    D_DONE (the worker waits under the client's barrier). ``first``, ``tags`` and ``flags``
    travel on to the D_CHAN unchanged (see :class:`DChan`)."""

    kind: int
    uid: int
    channel: bytes  # folded
    line: bytes  # formatted once by the sender's worker
    notice: bool
    doubted: bool
    first: int  # the sender's message number of the first line (msgid)
    tags: bytes  # the client-only tags to relay, in wire form (b"": none)
    flags: int  # TAGMSG, and the member flags a STATUSMSG is for (VOICE, OP)


class RUserMsg(NamedTuple):
    kind: int
    uid: int
    target: bytes  # folded nick
    line: bytes
    notice: bool
    doubted: bool
    echo: bool  # the sender negotiated echo-message: it gets the message too
    first: int
    tags: bytes
    flags: int  # TAGMSG or 0


class RSync(NamedTuple):
    """A read barrier: decides nothing; its D_DONE comes back after every event the
    sequencer decided before it, so a query answered then is current."""

    kind: int
    uid: int


class RUmode(NamedTuple):
    kind: int
    uid: int
    modes: bytes  # all the user's mode letters, sorted
    changes: bytes  # what this request changed, as the user's MODE echo shows it (b"+i-w")


class ROper(NamedTuple):
    """Make ``uid`` an operator: its worker has checked the OPER password and host."""

    kind: int
    uid: int
    name: bytes  # the [[oper]] block's name
    privileges: tuple[str, ...]  # sorted


class RKill(NamedTuple):
    kind: int
    uid: int  # the operator
    target: bytes  # a nick
    comment: bytes


class RWallops(NamedTuple):
    kind: int
    uid: int
    line: bytes  # formatted once by the sender's worker


class RKline(NamedTuple):
    """Ban ``mask`` (``user@host``, checked by the worker) from the server for ``duration``
    seconds (0: for good); the sequencer stamps it and removes whoever it matches."""

    kind: int
    uid: int  # the operator
    mask: bytes
    duration: int  # seconds; 0: permanent
    reason: bytes


class RUnkline(NamedTuple):
    kind: int
    uid: int  # the operator
    mask: bytes


class RCounts(NamedTuple):
    """How often each command ran on one worker (STATS m), reported about once a second while
    it changes: the totals since that worker (``incarnation``) started, by command name. The
    sequencer turns it into E_COUNTS and answers nothing (no D_DONE: nobody waits for it)."""

    kind: int
    incarnation: int
    counts: dict[bytes, int]


# -- events -------------------------------------------------------------------------------------
class EIntro(NamedTuple):
    """A user registered (its signon is ``time // 1000``). ``certfp``: the fingerprint of
    the TLS client certificate it connected with (b"": none): WHOIS 276 on every worker."""

    kind: int
    uid: int
    nick: bytes
    username: bytes
    host: bytes
    realname: bytes
    worker: int
    certfp: bytes
    time: int


class ENick(NamedTuple):
    kind: int
    uid: int
    nick: bytes
    time: int


class EJoin(NamedTuple):
    kind: int
    uid: int
    channel: bytes  # the channel's name as created
    flags: int  # member flags (OP, VOICE)
    created: int  # the channel's creation time, in seconds
    # The channel's last message the store keeps that was decided before this join, as its
    # msgid's parts (time, sender, seq: :func:`last_of_run`); () when its process has kept
    # none since it started (every kept message then predates ``time``), or keeps none.
    # Where the joiner's replay of the history ends (commands/history.py), exactly.
    kept: tuple[int, ...]
    time: int


class EPart(NamedTuple):
    kind: int
    uid: int
    channel: bytes  # folded
    reason: bytes
    time: int


class EQuit(NamedTuple):
    kind: int
    uid: int
    reason: bytes
    time: int


class ETopic(NamedTuple):
    kind: int
    uid: int  # 0: restored after a hub restart (the setter is then ``setter``)
    channel: bytes  # folded
    topic: bytes
    setter: bytes
    when: int  # seconds, as RPL_TOPICWHOTIME shows it
    time: int


class EMode(NamedTuple):
    kind: int
    uid: int  # 0: the server
    channel: bytes  # folded
    modes: bytes  # the applied changes, e.g. b"+o-t"
    args: tuple[bytes, ...]
    time: int


class EKick(NamedTuple):
    kind: int
    uid: int
    channel: bytes  # folded
    target: int  # uid
    reason: bytes
    time: int


class EAway(NamedTuple):
    kind: int
    uid: int
    message: bytes
    time: int


class EInvite(NamedTuple):
    kind: int
    uid: int
    target: int  # uid
    channel: bytes  # folded
    time: int


class EUmode(NamedTuple):
    """User modes are network state: +i hides from WHO on every worker."""

    kind: int
    uid: int
    modes: bytes
    changes: bytes
    time: int


class EOper(NamedTuple):
    """``uid`` is an operator (user mode +o) with ``privileges``, on every worker: WHO,
    WHOIS and LUSERS show it, and the sequencer lets it override channel rules. Dropped by
    an E_UMODE without "o" (``MODE nick -o``) or by leaving."""

    kind: int
    uid: int
    name: bytes
    privileges: tuple[str, ...]
    answer: bool  # the OPER's answer (381, the MODE echo); False: restored after a hub restart
    time: int


class EKill(NamedTuple):
    """An operator removed a user from the network (like E_QUIT, with who and why)."""

    kind: int
    uid: int  # the operator
    target: int  # uid
    comment: bytes
    time: int


class EKline(NamedTuple):
    """A K-line: nobody whose ``user@host`` ``mask`` matches may be on the server until
    ``expires`` (Unix ms; 0: never), and the users it matched when it was decided
    (``victims``) leave the network at once, each as by a QUIT. ``uid`` 0: restored (from the
    K-line file, or merged after a hub restart), which nobody is shown. Applying it also
    forgets the K-lines expired by ``time``."""

    kind: int
    uid: int  # the operator who set it; 0: restored
    mask: bytes
    setter: bytes  # the operator's nick, as STATS k shows it
    reason: bytes
    set_at: int  # Unix ms
    expires: int  # Unix ms; 0: permanent
    victims: tuple[int, ...]  # uids
    time: int


class EUnkline(NamedTuple):
    """The K-line on ``mask`` is lifted (and those expired by ``time`` are forgotten)."""

    kind: int
    uid: int  # the operator
    mask: bytes
    time: int


class ECounts(NamedTuple):
    """One worker's command counts: its totals, so every replica can sum the whole server's
    (applying a report again, or an older one after a newer one, changes nothing)."""

    kind: int
    incarnation: int
    counts: dict[bytes, int]
    time: int


# -- deliveries -----------------------------------------------------------------------------------
class DChan(NamedTuple):
    """A message (or a run of them) for a channel's members, to every worker holding one.
    Hot: built by hand in the sequencer's ``handle_batch`` and the worker's relay.

    Its tags are decided here, once, for every recipient on every worker: ``time`` (the
    sequencer's), the msgid of line *i* from (``time``, ``sender``, ``first`` + *i*) (see
    :mod:`fastchat.server.caps.message_tags`), and the sender's client-only ``tags``.
    ``flags``: ``TAGMSG`` (only clients that negotiated message-tags receive it), and for a
    STATUSMSG (``PRIVMSG @#chan``) the member flags (``OP``, ``VOICE``) of which a recipient
    must hold one; 0 for the common message to every member."""

    kind: int
    channel: bytes  # folded
    sender: int
    line: bytes
    first: int
    tags: bytes
    flags: int
    time: int


def last_of_run(record: Record) -> tuple[int, int, int]:
    """The msgid's parts (time, sender, seq) of the last message of a :class:`DChan` run:
    its line holds one message, or several each ending in CR LF (as the store's writer
    splits it, ``store/writer.py``'s ``expand_run``).

    >>> run = b":n PRIVMSG #a :x\\r\\n:n PRIVMSG #a :y\\r\\n"
    >>> last_of_run((D_CHAN, b"#a", 7, run, 4, b"", 0, 1000))
    (1000, 7, 5)
    """
    line = record[3]
    count = line.count(b"\r\n") if line.endswith(b"\r\n") else 1
    return record[7], record[2], record[4] + count - 1


class DUser(NamedTuple):
    """A private message (or its echo to the sender: ``target == sender``); fields as in
    :class:`DChan`."""

    kind: int
    target: int
    sender: int
    line: bytes
    first: int
    tags: bytes
    flags: int
    time: int


class DReply(NamedTuple):
    kind: int
    uid: int
    numeric: bytes
    params: tuple[bytes, ...]
    time: int


class DDone(NamedTuple):
    """The request of ``uid`` was decided; lifts its ordering barrier. Built by hand in the
    sequencer (one per request)."""

    kind: int
    uid: int
    time: int


class DKill(NamedTuple):
    """Disconnect a local client (a nick collision on resync; a connection a K-line refuses
    at registration)."""

    kind: int
    uid: int
    reason: bytes
    time: int


class DWallops(NamedTuple):
    """A WALLOPS, to every worker that holds a user with +w (each shows it to its own)."""

    kind: int
    sender: int
    line: bytes
    time: int


class DOverride(NamedTuple):
    """The sequencer let operator ``uid`` past a channel rule by its ``override``
    privilege; its worker logs ``action`` (e.g. b"JOIN #ops despite +i")."""

    kind: int
    uid: int
    action: bytes
    time: int


class DNotice(NamedTuple):
    """A server NOTICE answering operator ``uid``'s request where no numeric fits (an
    UNKLINE of a mask with no K-line); its worker shows it and logs it."""

    kind: int
    uid: int
    text: bytes
    time: int


# -- bus control ------------------------------------------------------------------------------------
class BHello(NamedTuple):
    """worker -> hub. A worker that starts sends no replica. One that lost its hub and
    reconnects to the new one sends its whole replica and the uids it holds (the hub merges
    them, see hub.py), the sequence number of the first request it will resend (every
    request not every worker has received yet follows the hello again), ``seen`` (origin slot
    -> how many of that origin's requests it has received the effects of) and ``order``, the
    old hub's decision order it knows beyond what every worker had.

    And the hand-offs in flight (engine/placement.py, point 6): ``handed``, the clients this
    worker handed to another lately, as (uid, the worker it sent the socket to); ``awaited``,
    the clients on their way here (also in ``local_uids``), as (uid, the worker they come
    from). The new hub decides such a move again, if its R_MOVE is resent, as the fact it is."""

    kind: int
    slot: int
    replica: Any  # a State.snapshot() or None
    local_uids: tuple[int, ...]
    first_seq: int
    seen: dict[int, int]
    order: tuple[tuple[int, int], ...]
    handed: tuple[tuple[int, int], ...] = ()
    awaited: tuple[tuple[int, int], ...] = ()


class BSnapshot(NamedTuple):
    """hub -> worker: the network, and every request decided so far (origin -> seq)."""

    kind: int
    snapshot: Any
    processed: dict[int, int]


class BSeen(NamedTuple):
    """hub -> worker, ending every frame. ``order``: the batches decided since the previous
    frame to this worker, as (origin slot, seq after the batch), in decision order; the frame
    holds every record they caused for this worker. ``stable``: origin slot -> seq below which
    every worker has received the effects (None: as in the last frame)."""

    kind: int
    order: tuple[tuple[int, int], ...]
    stable: dict[int, int] | None
    # the hub's state version once this frame is applied (bumped by every event; a new hub
    # starts from a number of its own): what a segment's approvals are stamped with (RChanSeg)
    epoch: int = 0


class BReceived(NamedTuple):
    """worker -> hub: how far this worker has received (origin slot -> seq)."""

    kind: int
    seen: dict[int, int]


#: Every kind's schema.
SCHEMAS: dict[int, type[Any]] = {
    R_REGISTER: RRegister,
    R_NICK: RNick,
    R_JOIN: RJoin,
    R_PART: RPart,
    R_QUIT: RQuit,
    R_TOPIC: RTopic,
    R_MODE: RMode,
    R_KICK: RKick,
    R_AWAY: RAway,
    R_INVITE: RInvite,
    R_CHANMSG: RChanMsg,
    R_USERMSG: RUserMsg,
    R_SYNC: RSync,
    R_UMODE: RUmode,
    R_OPER: ROper,
    R_KILL: RKill,
    R_WALLOPS: RWallops,
    R_KLINE: RKline,
    R_COUNTS: RCounts,
    R_UNKLINE: RUnkline,
    E_INTRO: EIntro,
    E_NICK: ENick,
    E_JOIN: EJoin,
    E_PART: EPart,
    E_QUIT: EQuit,
    E_TOPIC: ETopic,
    E_MODE: EMode,
    E_KICK: EKick,
    E_AWAY: EAway,
    E_INVITE: EInvite,
    E_UMODE: EUmode,
    E_OPER: EOper,
    E_KILL: EKill,
    E_KLINE: EKline,
    E_UNKLINE: EUnkline,
    E_COUNTS: ECounts,
    D_CHAN: DChan,
    D_USER: DUser,
    D_REPLY: DReply,
    D_DONE: DDone,
    D_KILL: DKill,
    D_WALLOPS: DWallops,
    D_OVERRIDE: DOverride,
    D_NOTICE: DNotice,
    B_HELLO: BHello,
    B_SNAPSHOT: BSnapshot,
    B_SEEN: BSeen,
    B_RECEIVED: BReceived,
}
_CODES: dict[type[Any], int] = {schema: code for code, schema in SCHEMAS.items()}


def make(schema: type[Any], *args: Any, **fields: Any) -> Record:
    """The wire form of a ``schema`` record: ``make(ENick, uid, b"new", time=now)``."""
    return tuple(schema(_CODES[schema], *args, **fields))


#: Events that change state: every worker and the hub apply them.
STATE_EVENTS = frozenset(
    {
        E_INTRO,
        E_NICK,
        E_JOIN,
        E_PART,
        E_QUIT,
        E_TOPIC,
        E_MODE,
        E_KICK,
        E_AWAY,
        E_INVITE,
        E_UMODE,
        E_OPER,
        E_KILL,
        E_KLINE,
        E_UNKLINE,
        E_COUNTS,
    }
)

# member flags in a channel (RFC 2812 §4.2.x / Modern IRC PREFIX)
VOICE = 1
OP = 2
# not a prefix: a member of a +D channel whose JOIN the others have not been shown yet
# (delayed join, see E_REVEAL); kept with the member flags so snapshots and merges carry it
HIDDEN = 4
# a message's flags (RChanMsg.flags, DChan.flags) besides the member flags of a STATUSMSG
TAGMSG = 1 << 8
ECHO = 1 << 9  # DUser: the sender's own copy (echo-message), not the delivery


# -- IRCv3 state-change notifications: SETNAME, CHGHOST -------------------------------------------
# Declared apart, at the end, and registered in the tables above from here: each new kind is
# one block (its code, its schema, its place in SCHEMAS and STATE_EVENTS).
R_SETNAME = 81
E_SETNAME = 82
R_CHGHOST = 83
E_CHGHOST = 84


class RSetname(NamedTuple):
    """IRCv3 setname: ``uid`` changes its realname (its worker checked it is valid)."""

    kind: int
    uid: int
    realname: bytes


class ESetname(NamedTuple):
    """``uid``'s realname is now ``realname``, on every worker (WHOIS, WHO, WHOWAS)."""

    kind: int
    uid: int
    realname: bytes
    time: int


class RChghost(NamedTuple):
    """Operator ``uid`` gives the user ``target`` (a nick) a new username and host (its
    worker checked both are valid); the sequencer checks the ``chghost`` privilege."""

    kind: int
    uid: int  # the operator
    target: bytes  # a nick
    username: bytes  # empty: the host only (the username stays what it is then)
    host: bytes


class EChghost(NamedTuple):
    """User ``target``'s ``user@host`` is now ``username@host``, on every worker (IRCv3
    chghost: its channels are told)."""

    kind: int
    uid: int  # the operator
    target: int  # uid
    username: bytes
    host: bytes
    time: int


SCHEMAS.update({R_SETNAME: RSetname, E_SETNAME: ESetname, R_CHGHOST: RChghost, E_CHGHOST: EChghost})
_CODES.update({RSetname: R_SETNAME, ESetname: E_SETNAME, RChghost: R_CHGHOST, EChghost: E_CHGHOST})
STATE_EVENTS = STATE_EVENTS | {E_SETNAME, E_CHGHOST}


# -- Accounts (issue 12): register, log in ------------------------------------------------------
R_ACCOUNT = 85
E_ACCOUNT = 86
R_LOGIN = 87
E_LOGIN = 88
D_STANDARD = 89
D_REGISTERED = 90


class RAccount(NamedTuple):
    """``uid`` registers the account ``name`` (draft/account-registration ``REGISTER``): its
    worker checked the name and hashed the password (off its loop)."""

    kind: int
    uid: int
    name: bytes
    password_hash: bytes  # passwords.hash_password's form
    email: bytes
    how: bytes  # b"register" (the REGISTER command: FAIL replies), b"nickserv" (notices)


class EAccount(NamedTuple):
    """The account ``name`` exists, on every worker (and, once stored, across restarts).
    ``code`` not empty: it awaits email verification (``register_verify``): nobody may log
    in to it, nor register its name, until a ``VERIFY`` with this code (E_ACCOUNTVERIFY) or
    until it expires (E_ACCOUNTDROP). The sequencer drew the code: it travels here, so that
    every replica and the store keep the same one."""

    kind: int
    name: bytes
    password_hash: bytes
    email: bytes
    code: bytes  # b"": a usable account
    time: int  # when it was registered


class RLogin(NamedTuple):
    """``uid`` proved it owns ``account`` (its worker checked the password): log it in."""

    kind: int
    uid: int
    account: bytes
    how: bytes  # b"sasl-late", b"nickserv" (see ELogin)


class ELogin(NamedTuple):
    """``uid`` is logged in to ``account`` (b"": logged out), on every worker: WHOIS 330,
    WHOX ``%a``, the ``account`` tag, account-notify, extended-join. ``how`` tells its own
    worker what to answer: ``register`` (REGISTER SUCCESS and 900), ``verify`` (VERIFY
    SUCCESS and 900), ``sasl`` (900 was sent during registration: nothing), ``sasl-late`` (900
    and 903), ``nickserv``, ``nickserv-register`` and ``nickserv-verify`` (900 and a NickServ
    notice), ``drop`` (logged out: nothing)."""

    kind: int
    uid: int
    account: bytes
    how: bytes
    time: int


class DStandard(NamedTuple):
    """An IRCv3 standard reply (``FAIL``, ``WARN``, ``NOTE``) the sequencer decided for
    ``uid``: ``FAIL <command> <code> [<context>...] :<description>``."""

    kind: int
    uid: int
    reply: bytes  # FAIL, WARN, NOTE
    command: bytes
    code: bytes
    context: tuple[bytes, ...]
    description: bytes
    time: int


SCHEMAS.update(
    {
        R_ACCOUNT: RAccount,
        E_ACCOUNT: EAccount,
        R_LOGIN: RLogin,
        E_LOGIN: ELogin,
        D_STANDARD: DStandard,
    }
)
_CODES.update(
    {
        RAccount: R_ACCOUNT,
        EAccount: E_ACCOUNT,
        RLogin: R_LOGIN,
        ELogin: E_LOGIN,
        DStandard: D_STANDARD,
    }
)
STATE_EVENTS = STATE_EVENTS | {E_ACCOUNT, E_LOGIN}


class DRegistered(NamedTuple):
    """A connection not registered yet created the account ``name`` (REGISTER before
    connecting), or verified it (VERIFY before connecting): it is logged in to it when it
    registers (``RRegister.account``)."""

    kind: int
    uid: int
    name: bytes
    how: bytes  # b"register" (REGISTER SUCCESS), b"verify" (VERIFY SUCCESS)
    time: int


SCHEMAS[D_REGISTERED] = DRegistered
_CODES[DRegistered] = D_REGISTERED


# -- NickServ (issue 12): the service for clients that know no REGISTER nor SASL ----------------
R_ACCOUNTDROP = 91
E_ACCOUNTDROP = 92
R_GHOST = 93
R_PROTECT = 94
D_SERVICE = 95


class RAccountDrop(NamedTuple):
    """``uid`` drops its own ``account`` (NickServ DROP; its worker checked the password)."""

    kind: int
    uid: int
    account: bytes


class EAccountDrop(NamedTuple):
    """The account ``name`` is gone, on every worker (and from the store). Whoever was logged
    in to it was logged out first (E_LOGIN with b""). Also how a registration awaiting
    verification goes, when it expires or its mail could not be sent."""

    kind: int
    name: bytes
    time: int


class RGhost(NamedTuple):
    """NickServ GHOST: ``uid`` asks that whoever uses ``nick`` be disconnected (allowed when
    the nick is ``uid``'s account's name, or its holder is logged in to ``uid``'s account)."""

    kind: int
    uid: int
    nick: bytes


class RProtect(NamedTuple):
    """Nick protection (``nick_protection = rename``): ``uid`` took the registered ``nick``
    and the grace period passed; rename it to a guest nick unless it has logged in to the
    account (or changed nick) meanwhile."""

    kind: int
    uid: int
    nick: bytes


class DService(NamedTuple):
    """A NOTICE from NickServ to ``uid``, decided by the sequencer (a refusal, a DROP)."""

    kind: int
    uid: int
    text: bytes
    time: int


SCHEMAS.update(
    {
        R_ACCOUNTDROP: RAccountDrop,
        E_ACCOUNTDROP: EAccountDrop,
        R_GHOST: RGhost,
        R_PROTECT: RProtect,
        D_SERVICE: DService,
    }
)
_CODES.update(
    {
        RAccountDrop: R_ACCOUNTDROP,
        EAccountDrop: E_ACCOUNTDROP,
        RGhost: R_GHOST,
        RProtect: R_PROTECT,
        DService: D_SERVICE,
    }
)
STATE_EVENTS = STATE_EVENTS | {E_ACCOUNTDROP}


# -- Email verification (draft/account-registration VERIFY, ``register_verify``) ---------------
R_VERIFY = 96
E_ACCOUNTVERIFY = 97
D_PENDING = 98
R_PENDINGDROP = 99


class RVerify(NamedTuple):
    """``uid`` sends the ``code`` mailed for the account awaiting verification ``account``:
    if it is that account's code, the account is verified and ``uid`` logged in to it."""

    kind: int
    uid: int
    account: bytes
    code: bytes
    how: bytes  # b"verify" (the VERIFY command: FAIL replies), b"nickserv" (notices)


class EAccountVerify(NamedTuple):
    """The account ``name``, which awaited verification, is verified: usable from now on,
    on every worker (and in the store)."""

    kind: int
    name: bytes
    time: int


class DPending(NamedTuple):
    """The account ``name`` that ``uid`` registered awaits verification (its E_ACCOUNT went
    first): its worker mails ``code`` to ``email`` (off the loop; without an SMTP server it
    logs it for the operator) and answers ``REGISTER VERIFICATION_REQUIRED``, or NickServ
    notices (``how``, as in RAccount)."""

    kind: int
    uid: int
    name: bytes
    email: bytes
    code: bytes
    how: bytes
    time: int


class RPendingDrop(NamedTuple):
    """The verification mail of the account ``name`` could not be sent: forget that
    registration (if it is still the one awaiting ``code``), so the name is free again."""

    kind: int
    uid: int
    name: bytes
    code: bytes


SCHEMAS.update(
    {
        R_VERIFY: RVerify,
        E_ACCOUNTVERIFY: EAccountVerify,
        D_PENDING: DPending,
        R_PENDINGDROP: RPendingDrop,
    }
)
_CODES.update(
    {
        RVerify: R_VERIFY,
        EAccountVerify: E_ACCOUNTVERIFY,
        DPending: D_PENDING,
        RPendingDrop: R_PENDINGDROP,
    }
)
STATE_EVENTS = STATE_EVENTS | {E_ACCOUNTVERIFY}


# -- history (issue 12) ----------------------------------------------------------------------
R_HISTSYNC = 100
D_STORED = 101


class RHistSync(NamedTuple):
    """The history barrier (a query of the store comes next: CHATHISTORY, a JOIN's replay):
    decides nothing, like R_SYNC; its D_STORED comes back once the store has written
    everything the sequencer decided before it (held until then: ``runtime/storage.py``)."""

    kind: int
    uid: int
    ticket: int  # the worker's continuation (engine/offload.py)


class DStored(NamedTuple):
    """The answer to an R_HISTSYNC: run the continuation ``ticket`` of ``uid``'s worker."""

    kind: int
    uid: int
    ticket: int
    time: int


SCHEMAS.update({R_HISTSYNC: RHistSync, D_STORED: DStored})
_CODES.update({RHistSync: R_HISTSYNC, DStored: D_STORED})


# -- the store's health (issue 12: "a full disk or a locked database file") ---------------------
E_STORE = 120


class EStore(NamedTuple):
    """The store's writer, as the process that owns it (the sequencer's: the hub, or the one
    worker) last saw it: network state (every worker's ``State.store``), so CHATHISTORY
    answers FAIL while writing fails and STATS S shows it. Reported at start, on every flip
    of ``healthy``, and at most once a second while the counts move. ``notice``: what the
    flip tells every operator (a server notice); b"" when nothing flipped."""

    kind: int
    healthy: bool
    error: bytes  # the last failure's reason (b"": none yet), e.g. b"database is locked"
    queued: int  # write operations not committed yet
    committed: int  # write operations committed, in all
    dropped: int  # history writes dropped while writing failed, in all
    notice: bytes
    time: int


SCHEMAS[E_STORE] = EStore
_CODES[EStore] = E_STORE
STATE_EVENTS = STATE_EVENTS | {E_STORE}


# -- TLS client certificates (issue 13): NickServ CERT, SASL EXTERNAL -------------------------
R_CERTFP = 121
E_ACCOUNTCERTS = 122


class RCertfp(NamedTuple):
    """NickServ ``CERT ADD|DEL``: ``uid`` adds a certificate fingerprint to the account it is
    logged in to, or removes one (its worker checked the fingerprint's form); the sequencer
    refuses one that another account holds (a certificate logs in to one account)."""

    kind: int
    uid: int
    add: bool  # False: remove
    certfp: bytes  # SHA-256, lowercase hex


class EAccountCerts(NamedTuple):
    """The account ``name``'s certificate fingerprints are now ``certfps`` (all of them), on
    every worker and in the store."""

    kind: int
    name: bytes
    certfps: tuple[bytes, ...]
    time: int


SCHEMAS.update({R_CERTFP: RCertfp, E_ACCOUNTCERTS: EAccountCerts})
_CODES.update({RCertfp: R_CERTFP, EAccountCerts: E_ACCOUNTCERTS})
STATE_EVENTS = STATE_EVENTS | {E_ACCOUNTCERTS}


# -- NickServ PASSWD: a password changed by its account's owner --------------------------------
R_PASSWORD = 142
E_ACCOUNTPASSWORD = 143


class RPassword(NamedTuple):
    """NickServ ``PASSWD``: ``uid`` sets a new password on ``account``, the one it is logged
    in to (its worker checked the current password and hashed the new one off the loop); the
    sequencer refuses if ``uid`` is no longer logged in to it. ``operator``: NickServ
    ``SASET <account> PASSWORD``, an IRC operator's reset of any account's password (the
    sequencer checks the ``accounts`` privilege instead)."""

    kind: int
    uid: int
    account: bytes
    password_hash: bytes  # passwords.account_hash's: scrypt, then the SCRAM keys
    operator: bool = False


class EAccountPassword(NamedTuple):
    """The account ``name``'s password is now the one ``password_hash`` checks, on every
    worker and in the store. Whoever is logged in stays logged in."""

    kind: int
    name: bytes
    password_hash: bytes
    time: int


SCHEMAS.update({R_PASSWORD: RPassword, E_ACCOUNTPASSWORD: EAccountPassword})
_CODES.update({RPassword: R_PASSWORD, EAccountPassword: E_ACCOUNTPASSWORD})
STATE_EVENTS = STATE_EVENTS | {E_ACCOUNTPASSWORD}


# -- IRCv3 draft/read-marker: where each owner has read up to (network/markers.py) -------------
R_MARKREAD = 144
E_MARKREAD = 145


class RMarkread(NamedTuple):
    """``MARKREAD <target> timestamp=...``: ``uid`` has read ``target`` (a channel or a nick,
    as it wrote it) up to ``ms`` (Unix ms; its worker checked the syntax)."""

    kind: int
    uid: int
    target: bytes
    ms: int


class EMarkread(NamedTuple):
    """The read marker of ``target`` is now ``ms`` for its owner: the account ``owner``
    (folded), or, when ``owner`` is b"", the connection ``uid`` (not logged in). ``ms`` is
    never less than it was (the sequencer took the larger): the setter ``uid`` is answered
    with it either way, the owner's other connections only when it moved. The store keeps an
    account's markers."""

    kind: int
    owner: bytes
    uid: int
    target: bytes
    ms: int
    time: int


SCHEMAS.update({R_MARKREAD: RMarkread, E_MARKREAD: EMarkread})
_CODES.update({RMarkread: R_MARKREAD, EMarkread: E_MARKREAD})
STATE_EVENTS = STATE_EVENTS | {E_MARKREAD}


# -- IRCv3 draft/message-redaction: a channel message withdrawn (commands/redact.py) -----------
R_REDACT = 146
E_REDACT = 147


class RRedact(NamedTuple):
    """``REDACT <target> <msgid> [:reason]`` from ``uid`` (a channel, or the nick of the
    other party of a private conversation), about a message its worker found in the history
    under ``stored`` (or, where none is kept, ``stored`` b"" and a msgid that parses):
    ``sender`` the uid that sent it (from the msgid), ``account`` the account it was sent
    from (b"": none, or not known). The sequencer decides whether ``uid`` may."""

    kind: int
    uid: int
    target: bytes
    msgid: bytes
    reason: bytes
    sender: int
    account: bytes
    stored: bytes  # the history's target (store/schema.py), b"": nothing to leave out


class ERedact(NamedTuple):
    """``uid`` redacted the message ``msgid`` of ``target``: a channel (its name), whose
    members that negotiated message-redaction are told, or, with ``peer`` (the other
    party's uid), a private conversation, whose two parties are. The store leaves the
    message out of the history under ``stored`` (b"": it keeps none)."""

    kind: int
    uid: int
    target: bytes
    msgid: bytes
    reason: bytes
    peer: int  # 0 for a channel
    stored: bytes
    time: int


SCHEMAS.update({R_REDACT: RRedact, E_REDACT: ERedact})
_CODES.update({RRedact: R_REDACT, ERedact: E_REDACT})
STATE_EVENTS = STATE_EVENTS | {E_REDACT}


# -- IRCv3 draft/metadata-3: keys and values on users and channels (network/metadata.py) ------
R_METADATA = 148
E_METADATA = 149


class RMetadata(NamedTuple):
    """``METADATA <target> SET <key> [:value]`` (``value`` None: remove it) or ``METADATA
    <target> CLEAR`` (``key`` b""): from ``uid``, about a user (its nick) or a channel; its
    worker checked the key and the value. The sequencer decides whether ``uid`` may (itself,
    or a channel it is an operator of) and whether there is room."""

    kind: int
    uid: int
    target: bytes
    key: bytes
    value: bytes | None


class EMetadata(NamedTuple):
    """``uid`` set ``key`` of a user (``user``, its uid) or of a channel (``channel``, its
    folded name; ``user`` 0) to ``value`` (None: removed); ``key`` b"": every key cleared.
    The setter is answered with the result either way; the subscribers that can see the
    target (who share a channel with the user, the channel's members) when it changed."""

    kind: int
    uid: int
    user: int
    channel: bytes
    key: bytes
    value: bytes | None
    time: int


SCHEMAS.update({R_METADATA: RMetadata, E_METADATA: EMetadata})
_CODES.update({RMetadata: R_METADATA, EMetadata: E_METADATA})
STATE_EVENTS = STATE_EVENTS | {E_METADATA}


# -- the fence: a read barrier in real time (see network/fence.py) ----------------------------
B_FENCE = 65
B_FENCED = 66


class BFence(NamedTuple):
    """hub -> worker: a read barrier waits for round ``round``. Answer with B_FENCED at the
    end of the loop turn, after the requests of every client line read so far."""

    kind: int
    round: int


class BFenced(NamedTuple):
    """worker -> hub, in a frame of its own (not a request: not numbered, not resent):
    everything this worker had read before it saw fence ``round`` is ahead of this on the
    link."""

    kind: int
    round: int


SCHEMAS.update({B_FENCE: BFence, B_FENCED: BFenced})
_CODES.update({BFence: B_FENCE, BFenced: B_FENCED})


# -- delayed join (issue 14: channel mode +D, InspIRCd's delayjoin) ----------------------------
E_REVEAL = 132


class EReveal(NamedTuple):
    """The hidden members ``uids`` of the +D channel ``channel`` (folded) are shown to the
    others: their JOIN is sent now, right before what revealed them (their first message to
    the channel). Decided by the sequencer, so every replica clears the same HIDDEN flags in
    the same place of the order. A +o/+v or a -D reveals within its E_MODE instead."""

    kind: int
    channel: bytes  # folded
    uids: tuple[int, ...]
    time: int


SCHEMAS[E_REVEAL] = EReveal
_CODES[EReveal] = E_REVEAL
STATE_EVENTS = STATE_EVENTS | {E_REVEAL}


# -- channel-affine placement (issue 14): a client's socket handed to another worker ------------
R_MOVE = 130
E_MOVE = 131


class RMove(NamedTuple):
    """A worker proposes to hand its local client ``uid`` to another worker: ``to``, where
    its replica saw most members of the client's channels, is a hint; the sequencer picks
    the worker again from its own state (engine/placement.py). Sent under the client's
    barrier, and only while nothing else is under it: its D_DONE comes after the E_MOVE, or
    alone (refused: the user is not on that worker any more, no worker is better for it now,
    or the better one is down or too full, or the user moved too recently)."""

    kind: int
    uid: int
    to: int


class EMove(NamedTuple):
    """``uid`` is on worker ``dst`` from now on: everything decided before this went to
    ``src``, everything after goes to ``dst``. ``src`` hands ``dst`` the socket and the
    session (runtime/handoff.py); ``dst`` applies nothing after this until it has them."""

    kind: int
    uid: int
    src: int
    dst: int
    time: int


B_DOWN = 133


class BDown(NamedTuple):
    """hub -> every worker: worker ``slot`` is gone (its link broke, or a new hub's sweep
    found it never came back); its users' E_QUITs follow. A worker waiting for a client's
    session from it stops waiting once what it sent before dying has been read."""

    kind: int
    slot: int


SCHEMAS.update({R_MOVE: RMove, E_MOVE: EMove, B_DOWN: BDown})
_CODES.update({RMove: R_MOVE, EMove: E_MOVE, BDown: B_DOWN})
STATE_EVENTS = STATE_EVENTS | {E_MOVE}


# -- channel segments (issue 14, session 2): a worker's approved messages, forwarded whole ------
R_CHANSEG = 140
D_CHANSEG = 141
#: The items of each message in a segment's payload (see :class:`RChanSeg`)
SEG_FIELDS = 6


class RChanSeg(NamedTuple):
    """worker -> hub: consecutive plain channel messages (what R_CHANMSG would carry with
    ``doubted`` False, ``tags`` b"" and ``flags`` 0) that the worker's replica approved while
    it held the hub's state of ``epoch`` (the last B_SEEN applied), to channels whose
    members sit on the workers ``route`` (sorted). One request, whatever its length.
    ``payload``: the marshal of a flat list, :data:`SEG_FIELDS` items per message: channel
    (folded), sender, line (a run), first, notice, and the sender's account (b"": none; for
    the history). ``last``: each channel of the segment -> where its last message starts in
    the payload's list (for the store's ``kept``: one entry per channel, not per message;
    empty from a worker whose config keeps no history).
    If the hub's epoch is still ``epoch``, nothing was decided since the approvals: the hub
    forwards the payload to ``route`` as one D_CHANSEG; otherwise it decides each message as
    an R_CHANMSG (network/sequencer.py)."""

    kind: int
    epoch: int
    route: tuple[int, ...]
    payload: Any  # bytes on the wire; the items list itself before the shell marshals it
    last: Any  # dict[bytes, int]; None until the shell marshals the payload


class DChanSeg(NamedTuple):
    """hub -> worker: an :class:`RChanSeg`'s messages, approved as a whole, decided at
    ``time``: each is delivered as the D_CHAN (tags b"", flags 0, this ``time``) it stands
    for, in order."""

    kind: int
    payload: bytes
    time: int


SCHEMAS.update({R_CHANSEG: RChanSeg, D_CHANSEG: DChanSeg})
_CODES.update({RChanSeg: R_CHANSEG, DChanSeg: D_CHANSEG})
