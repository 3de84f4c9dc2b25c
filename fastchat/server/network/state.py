"""Users and channels: the network's state, and the one function that changes it.

Owns: :class:`User`, :class:`Channel`, :class:`KLine` and :class:`State`, and
:meth:`State.apply`, which applies a sequenced event. The sequencer's copy is authoritative; every worker holds a replica that it
updates with the same events in the same order, so each worker can answer NAMES, WHO, WHOIS,
LIST and LUSERS for the whole network without asking anyone.
Must never: format lines, touch sockets, or read the clock (times arrive inside events).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from operator import attrgetter
from typing import Any, NamedTuple

from fastchat.irc.casemap import fold
from fastchat.server.network import access
from fastchat.server.network.access import LIST_MODES, Entry
from fastchat.server.network.markers import Owner, ReadMarkers
from fastchat.server.network.metadata import Metadata
from fastchat.server.network.records import (
    E_ACCOUNT,
    E_ACCOUNTCERTS,
    E_ACCOUNTDROP,
    E_ACCOUNTPASSWORD,
    E_ACCOUNTVERIFY,
    E_AWAY,
    E_CHGHOST,
    E_COUNTS,
    E_INTRO,
    E_INVITE,
    E_JOIN,
    E_KICK,
    E_KILL,
    E_KLINE,
    E_LOGIN,
    E_MARKREAD,
    E_METADATA,
    E_MODE,
    E_MOVE,
    E_NICK,
    E_OPER,
    E_PART,
    E_QUIT,
    E_REDACT,
    E_REVEAL,
    E_SETNAME,
    E_STORE,
    E_TOPIC,
    E_UMODE,
    E_UNKLINE,
    HIDDEN,
    OP,
    VOICE,
    EAccount,
    EAccountCerts,
    EAccountDrop,
    EAccountPassword,
    EAccountVerify,
    EAway,
    EChghost,
    ECounts,
    EIntro,
    EInvite,
    EJoin,
    EKick,
    EKill,
    EKline,
    ELogin,
    EMarkread,
    EMetadata,
    EMode,
    EMove,
    ENick,
    EOper,
    EPart,
    ERedact,
    EReveal,
    ESetname,
    EStore,
    ETopic,
    EUmode,
    EUnkline,
    Record,
    make,
)

#: Channel modes every new channel starts with (Modern IRC: most servers default to +nt).
DEFAULT_CHANNEL_MODES = b"nt"
NO_PRIVILEGES: frozenset[str] = frozenset()
#: The user mode that marks a bot (IRCv3 bot-mode, ISUPPORT ``BOT=B``): ``BOT_MODE in
#: user.modes``. Its user sets it like any user mode (MODE nick +B, through the sequencer).
BOT_MODE = b"B"
#: WHOWAS entries kept when nobody says otherwise (the ``whowas_size`` setting's default).
WHOWAS_SIZE = 1000
#: The longest realname (USER's, SETNAME's), announced as ISUPPORT ``NAMELEN`` (IRCv3 setname).
REALNAMELEN = 100
#: How many distinct usernames, hosts and realnames a state keeps to share (:meth:`State.shared`)
SHARED_BYTES = 4096
#: A channel's invites while it has none: shared, replaced by a set at the first INVITE
NO_INVITES: frozenset[int] = frozenset()
#: ``Channel.hidden`` while nobody is hidden (nearly every channel: one empty set less each)
NO_HIDDEN: frozenset[int] = frozenset()
#: ``Channel.visible`` while nobody is hidden, and ``Channel.local`` while no member is this
#: process's client (the hub's channels, and on a worker the channels held elsewhere): one
#: shared empty dict each instead of 64 bytes per channel in every process. Never written:
#: a channel gets a dict of its own first (:func:`_unhide`, :meth:`State.add_local`).
NO_VISIBLE: dict[int, None] = {}
NO_LOCAL: dict[int, Any] = {}


class WhowasEntry(NamedTuple):
    """A nick that was given up, for WHOWAS (RFC 2812 §3.6.3): who held it, and when (in
    milliseconds, the time of the E_NICK or E_QUIT that gave it up). Also the row of
    :attr:`Snapshot.whowas`, as a plain tuple."""

    nick: bytes
    username: bytes
    host: bytes
    realname: bytes
    time: int


class KLine(NamedTuple):
    """A server ban (a K-line, Modern IRC's "K-line" in STATS k): nobody whose ``user@host``
    matches ``mask`` may be on the server until ``expires``. Also the row of
    :attr:`Snapshot.klines` and, written out, of the K-line file."""

    mask: bytes  # user@host, with * and ?, as the operator wrote it
    setter: bytes  # the operator's nick
    reason: bytes
    set_at: int  # Unix ms, the sequencer's decision
    expires: int  # Unix ms; 0: never

    def active(self, now: int) -> bool:
        """Is it in force at ``now`` (Unix ms)? An expired K-line is ignored everywhere."""
        return not self.expires or now < self.expires


#: How long a registration awaits its VERIFY (``register_verify``) before it is forgotten and
#: its name free again: a day, in ms (Ergo's default is similar: 32 hours).
VERIFY_TIMEOUT_MS = 24 * 3600 * 1000


class Account(NamedTuple):
    """A services account (issue 12): what logging in to it checks. ``name`` keeps the case
    it was registered with; the network knows it by the folded name. ``code`` not empty: a
    registration awaiting email verification (:attr:`State.pending`), not an account yet."""

    name: bytes
    password_hash: bytes
    email: bytes
    created: int  # Unix ms
    code: bytes = b""
    # TLS client certificate fingerprints that log in to it (SASL EXTERNAL; NickServ CERT)
    certfps: tuple[bytes, ...] = ()

    def expired(self, now: int) -> bool:
        """Has this registration awaited its VERIFY too long by ``now`` (Unix ms)?"""
        return now >= self.created + VERIFY_TIMEOUT_MS


#: How many certificate fingerprints an account may hold
MAX_CERTFPS = 16
_HEX = frozenset(b"0123456789abcdef")


def maybe_certfp(text: bytes) -> bytes | None:
    """A certificate fingerprint as stored and shown (SHA-256, 64 lowercase hex digits),
    from what a user typed (any case, ``:`` between bytes allowed); None if it is not one.

    >>> maybe_certfp(b"AB:" * 31 + b"AB") == b"ab" * 32, maybe_certfp(b"abc")
    (True, None)
    """
    fp = text.replace(b":", b"").lower()
    return fp if len(fp) == 64 and _HEX.issuperset(fp) else None


class StoreStatus(NamedTuple):
    """The store's writer as its process last reported it (E_STORE): what STATS S shows, and
    whether the history can be read (:attr:`State.history_available`)."""

    healthy: bool
    error: bytes  # the last failure's reason (b"": none yet)
    queued: int  # write operations not committed yet
    committed: int  # write operations committed, in all
    dropped: int  # history writes dropped while writing failed, in all
    time: int  # Unix ms of the report


class SnapshotUser(NamedTuple):
    """One user row of :meth:`State.snapshot` (rows cross the bus as plain tuples)."""

    uid: int
    nick: bytes
    username: bytes
    host: bytes
    realname: bytes
    worker: int
    signon: int
    away: bytes
    modes: bytes
    oper: bytes
    privileges: tuple[str, ...]
    ip: bytes
    account: bytes  # b"": logged in to none
    certfp: bytes  # b"": no TLS client certificate

    def intro(self) -> Record:
        """The ``EIntro`` that introduces this user (the signon in milliseconds)."""
        return make(
            EIntro,
            self.uid,
            self.nick,
            self.username,
            self.host,
            self.realname,
            self.worker,
            self.certfp,
            self.signon * 1000,
        )


class SnapshotChannel(NamedTuple):
    """One channel row of :meth:`State.snapshot`."""

    name: bytes
    created: int
    topic: bytes
    topic_setter: bytes
    topic_time: int
    modes: bytes
    password: bytes
    limit: int
    bans: tuple[tuple[bytes, bytes, int], ...]  # access.Entry rows, as plain tuples
    invites: tuple[int, ...]
    members: tuple[tuple[int, int], ...]
    excepts: tuple[tuple[bytes, bytes, int], ...]
    invex: tuple[tuple[bytes, bytes, int], ...]


class Snapshot(NamedTuple):
    """:meth:`State.snapshot`: the whole network as plain tuples (it crosses the bus in
    B_SNAPSHOT and B_HELLO, and ``marshal`` refuses tuple subclasses such as this one: this
    schema only names the parts, ``Snapshot._make(snap)``)."""

    users: tuple[tuple[Any, ...], ...]  # SnapshotUser rows
    channels: tuple[tuple[Any, ...], ...]  # SnapshotChannel rows
    max_users: int
    whowas: tuple[tuple[Any, ...], ...]  # WhowasEntry rows, oldest first
    command_counts: tuple[tuple[int, tuple[tuple[bytes, int], ...]], ...]  # see State
    klines: tuple[tuple[Any, ...], ...]  # KLine rows
    accounts: tuple[tuple[Any, ...], ...]  # Account rows (those awaiting VERIFY too)
    markers: tuple[tuple[Any, ...], ...]  # read markers: (owner, folded target, ms)
    metadata: tuple[tuple[Any, ...], ...]  # metadata: (uid or folded channel, key, value)


class UserRare:
    """The fields of a :class:`User` that most users leave as they start (away, logged in,
    a client certificate, an operator, a changed host): held apart, and made only when one of
    them changes, because every worker and the hub hold every user (issue 14's idle memory:
    seven fields and the folded nick held apart take a user from 160 bytes to 112)."""

    __slots__ = ("account", "away", "certfp", "ip", "modes", "oper", "privileges")

    def __init__(self, ip: bytes) -> None:
        self.ip = ip
        self.modes = b""
        self.away = b""
        self.account: bytes | None = None
        self.certfp = b""
        self.oper = b""
        self.privileges: frozenset[str] = NO_PRIVILEGES


class _NickDerived:
    """How a username follows from its user's nick (:attr:`User.username`)."""

    __slots__ = ()


USERNAME_IS_NICK = _NickDerived()
USERNAME_IS_TILDE_NICK = _NickDerived()


def username_of(username: bytes, nick: bytes) -> bytes | _NickDerived:
    """What :class:`User` keeps for ``username`` while its nick is ``nick``."""
    if username == nick:
        return USERNAME_IS_NICK
    if username[:1] == b"~" and username[1:] == nick:
        return USERNAME_IS_TILDE_NICK
    return username


class User:
    """A registered user somewhere on the network."""

    __slots__ = (
        "_rare",
        "_username",
        "channels",
        "host",
        "nick",
        "realname",
        "signon",
        "uid",
        "worker",
    )

    def __init__(
        self,
        uid: int,
        nick: bytes,
        username: bytes,
        host: bytes,
        realname: bytes,
        worker: int,
        signon: int,
    ) -> None:
        self.uid = uid
        self.nick = nick
        self.username = username
        self.host = host
        self.realname = realname
        self.worker = worker
        self.signon = signon
        # A tuple, rebuilt on JOIN and PART: a user is in few channels, and every worker
        # holds every user, so an idle one in one channel costs 48 bytes here, not a list's 88
        self.channels: tuple[Channel, ...] = ()
        # away, account, certfp, ip, modes, oper, privileges: None while all are as they start
        self._rare: UserRare | None = None

    def rare(self) -> UserRare:
        """The rare fields, made now if they were not (with ``ip`` the host as it is)."""
        rare = self._rare
        if rare is None:
            rare = self._rare = UserRare(self.host)
        return rare

    # The address the user connected from: its host until a CHGHOST changes that (no DNS
    # lookups here). WHOX ``%i`` shows it to the user and to operators who ``see``.
    @property
    def ip(self) -> bytes:
        rare = self._rare
        return self.host if rare is None else rare.ip

    @ip.setter
    def ip(self, value: bytes) -> None:
        if self._rare is not None or value != self.host:
            self.rare().ip = value

    @property
    def away(self) -> bytes:
        rare = self._rare
        return b"" if rare is None else rare.away

    @away.setter
    def away(self, value: bytes) -> None:
        if self._rare is not None or value:
            self.rare().away = value

    # The services account the user is logged in to, None for none (what IRCv3
    # extended-join shows as ``*``; ``Replica.notify_account``, IRCv3 account-notify).
    @property
    def account(self) -> bytes | None:
        rare = self._rare
        return None if rare is None else rare.account

    @account.setter
    def account(self, value: bytes | None) -> None:
        if self._rare is not None or value is not None:
            self.rare().account = value

    # The SHA-256 fingerprint of the TLS client certificate it connected with (b"": none):
    # WHOIS 276 shows it to the user and to operators (CertFP)
    @property
    def certfp(self) -> bytes:
        rare = self._rare
        return b"" if rare is None else rare.certfp

    @certfp.setter
    def certfp(self, value: bytes) -> None:
        if self._rare is not None or value:
            self.rare().certfp = value

    # Operator (user mode +o): the [[oper]] block's name and what it may do (the
    # sequencer's overrides, WHO/WHOIS "see"; its worker copies them to the client).
    @property
    def oper(self) -> bytes:
        rare = self._rare
        return b"" if rare is None else rare.oper

    @oper.setter
    def oper(self, value: bytes) -> None:
        if self._rare is not None or value:
            self.rare().oper = value

    @property
    def privileges(self) -> frozenset[str]:
        rare = self._rare
        return NO_PRIVILEGES if rare is None else rare.privileges

    @privileges.setter
    def privileges(self, value: frozenset[str]) -> None:
        if self._rare is not None or value:
            self.rare().privileges = value

    # The username (``~`` and the USER parameter when it was not verified): kept as
    # USERNAME_IS_NICK or USERNAME_IS_TILDE_NICK while it is the nick or ``~`` and the nick,
    # what a client that sends its nick as its username gets (bots, the benchmarks): one
    # object less per user in every process (issue 14's idle memory).
    @property
    def username(self) -> bytes:
        username = self._username
        if username.__class__ is bytes:
            return username
        return self.nick if username is USERNAME_IS_NICK else b"~" + self.nick

    @username.setter
    def username(self, value: bytes) -> None:
        self._username = username_of(value, self.nick)

    def rename(self, nick: bytes) -> None:
        """Set the nick (and with it the folded :attr:`key`); the username stays what it was."""
        if self._username.__class__ is not bytes:
            self._username = self.username
        self.nick = nick

    @property
    def key(self) -> bytes:
        """The folded nick, the user's key in ``State.nicks``: folded when asked, not held
        (a nick already in lower case folds to the same object, so the dict's key costs
        nothing either)."""
        return fold(self.nick)

    @property
    def modes(self) -> bytes:
        """User modes, sorted letters; "i" (invisible) matters to others."""
        rare = self._rare
        return b"" if rare is None else rare.modes

    @modes.setter
    def modes(self, value: bytes) -> None:
        if self._rare is not None or value:
            self.rare().modes = value

    @property
    def mask(self) -> bytes:
        """``nick!user@host``, the source of this user's messages (RFC 2812 §2.3.1 prefix).
        Built on demand: every worker holds every user, and only rare events need it (a local
        client's hot-path prefix is cached on the client)."""
        return b"%s!%s@%s" % (self.nick, self.username, self.host)


class Channel:
    """A channel and its members. ``local`` holds this worker's member clients for fan-out.

    Delayed join (channel mode +D, InspIRCd's ``delayjoin``): a member that joined while the
    channel had +D carries the HIDDEN member flag until it speaks in the channel (E_REVEAL),
    is given +o/+v, or the channel loses +D (E_MODE); until then nobody else is shown its
    JOIN, PART, QUIT, NICK... nor finds it in NAMES or WHO. ``hidden`` holds those members and
    ``visible`` the others, in the order they were shown: both follow from the flags and are
    kept here, so a JOIN's NAMES costs the visible members, not all of them.
    ``shown_version`` moves whenever what NAMES shows of the visible members may change (who,
    their prefixes, nicks, hosts): the NAMES renderer keeps the visible members' entries in
    ``names_cache`` against it (render/replies.py), so the many hidden JOINs of a big +D
    lobby render them once."""

    __slots__ = (
        "alone",
        "bans",
        "created",
        "excepts",
        "hidden",
        "invex",
        "invites",
        "key",
        "limit",
        "local",
        "members",
        "modes",
        "name",
        "names_cache",
        "password",
        "shown_version",
        "topic",
        "topic_setter",
        "topic_time",
        "visible",
        "workers",
    )

    def __init__(self, name: bytes, created: int) -> None:
        self.name = name
        self.key = fold(name)
        self.created = created
        self.members: dict[int, int] = {}  # uid -> OP|VOICE flags
        # worker slot -> members there: what the hub routes by and places by, and a worker's
        # segments name as their route (empty where State.routes is off)
        self.workers: dict[int, int] = {}
        # uid -> this worker's client (fan-out list); NO_LOCAL until the first local member
        self.local: dict[int, Any] = NO_LOCAL
        self.topic = b""
        self.topic_setter = b""
        self.topic_time = 0
        self.modes = DEFAULT_CHANNEL_MODES  # simple flag modes, sorted letters
        self.password = b""  # +k
        self.limit = 0  # +l, 0 = none
        # The access lists (network/access.py): +b, +e, +I entries (tuples: most channels
        # have none, and share the one empty tuple)
        self.bans: tuple[Entry, ...] = ()
        self.excepts: tuple[Entry, ...] = ()
        self.invex: tuple[Entry, ...] = ()
        # uids invited (for +i); NO_INVITES until the first INVITE (an empty set is 216 bytes,
        # and every worker holds every channel)
        self.invites: set[int] | frozenset[int] = NO_INVITES
        # members with the HIDDEN flag (delayed join, +D); NO_HIDDEN while there are none
        self.hidden: set[int] | frozenset[int] = NO_HIDDEN
        # while some are hidden, the other members, in the order they were shown (NO_VISIBLE
        # while none are: then every member is shown, see :func:`shown`)
        self.visible: dict[int, None] = NO_VISIBLE
        self.shown_version = 0
        self.names_cache: Any = None  # the renderer's, see above
        # ``user.channels`` of every member in this channel alone: one tuple per channel,
        # shared by those members (a big lobby's idle users, a room's), not 48 bytes per user
        # in every process. Cleared when the channel goes (it refers to the channel).
        self.alone: tuple[Channel, ...] = (self,)

    def mode_string(self) -> tuple[bytes, ...]:
        """Modes and their arguments as RPL_CHANNELMODEIS wants them (RFC 2812 §5.1, 324)."""
        letters = b"+" + self.modes
        args: list[bytes] = []
        if self.password:
            letters += b"k"
            args.append(self.password)
        if self.limit:
            letters += b"l"
            args.append(b"%d" % self.limit)
        return (letters, *args)


def prefix_of(flags: int) -> bytes:
    """The highest membership prefix (``@`` before ``+``), Modern IRC "Channel membership"."""
    if flags & OP:
        return b"@"
    if flags & VOICE:
        return b"+"
    return b""


def prefixes_of(flags: int) -> bytes:
    """Every membership prefix, highest first (``@+``): what IRCv3 ``multi-prefix`` shows."""
    return (b"@" if flags & OP else b"") + (b"+" if flags & VOICE else b"")


class State:
    """Every user and channel of the network, as far as the events applied so far say."""

    __slots__ = (
        "_apply_table",
        "_shared",
        "_signon",
        "_whowas_log",
        "accounts",
        "channels",
        "command_counts",
        "invisible",
        "klines",
        "klines_changed",
        "load",
        "local",
        "markers",
        "max_users",
        "metadata",
        "nicks",
        "opers",
        "pending",
        "routes",
        "store",
        "users",
        "whowas",
        "whowas_size",
    )

    def __init__(self, *, routes: bool = True) -> None:
        # Keep ``Channel.workers``, which the hub routes by and its sequencer places by, and
        # which a worker's segments name as their route (engine/segments.py) and its
        # placement scores by: a replica that needs neither (one worker, or kernel
        # placement) passes False and saves a dict per channel
        self.routes = routes
        self.users: dict[int, User] = {}
        self.nicks: dict[bytes, User] = {}  # folded nick -> user
        self.channels: dict[bytes, Channel] = {}  # folded name -> channel
        # uid -> this worker's client, for the users it holds; empty in the sequencer.
        self.local: dict[int, Any] = {}
        # worker slot -> its users, kept as users come, go and move where ``routes`` is on
        # (the sequencer's placement weighs it at each R_MOVE; exact, and no pass over users)
        self.load: dict[int, int] = {}
        self.invisible = 0  # users with user mode +i (for LUSERS, kept as events apply)
        self.opers = 0  # users with user mode +o (LUSERS 252)
        self.max_users = 0  # the most users at once (LUSERS 265/266), carried by snapshots
        # WHOWAS history: every nick given up (a nick change, a quit), newest last, by folded
        # nick; ``_whowas_log`` holds the same entries in the order they were added, so the
        # oldest goes first once there are more than ``whowas_size`` (its owner sets it from
        # the configuration). Fed by E_NICK and E_QUIT, so every replica holds the same.
        self.whowas: dict[bytes, list[WhowasEntry]] = {}
        self._whowas_log: deque[WhowasEntry] = deque()
        self.whowas_size = WHOWAS_SIZE
        # STATS m: how often each command ran, by worker incarnation (each worker's totals
        # since it started, as it last reported them, about once a second: E_COUNTS). The
        # counts of a worker that died stay: they were used on this server all the same.
        self.command_counts: dict[int, dict[bytes, int]] = {}
        # Server bans (E_KLINE, E_UNKLINE), by folded mask; only the sequencer enforces them.
        # ``klines_changed`` counts their changes: the process that keeps the K-line file
        # rewrites it when the count moves.
        self.klines: dict[bytes, KLine] = {}
        self.klines_changed = 0
        # Services accounts by folded name (E_ACCOUNT); who is logged in to one is
        # ``User.account`` (E_LOGIN)
        self.accounts: dict[bytes, Account] = {}
        # The store's writer as the sequencer's process last reported it (E_STORE); None:
        # no report (no store, or none received yet). Not in snapshots: the hub sends a
        # worker its last report right after the snapshot (runtime/hub.py)
        self.store: StoreStatus | None = None
        # Registrations awaiting email verification (``register_verify``), by folded name:
        # nobody may log in to one; its name is taken until it is verified (E_ACCOUNTVERIFY
        # moves it to ``accounts``) or dropped (expired: ``Account.expired``)
        self.pending: dict[bytes, Account] = {}
        # IRCv3 draft/read-marker: up to where each account (or connection logged in to
        # none) has read each target (E_MARKREAD; network/markers.py)
        self.markers = ReadMarkers()
        # IRCv3 draft/metadata-3: users' (by uid) and channels' (by folded name) keys and
        # values (E_METADATA; network/metadata.py)
        self.metadata = Metadata()
        # Usernames, hosts and realnames as this state already holds them (see shared())
        self._shared: dict[bytes, bytes] = {}
        self._signon = 0  # the last user's signon (see _intro)
        self._apply_table = {
            E_INTRO: self._intro,
            E_NICK: self._nick,
            E_JOIN: self._join,
            E_PART: self._part,
            E_QUIT: self._quit,
            E_TOPIC: self._topic,
            E_MODE: self._mode,
            E_KICK: self._kick,
            E_AWAY: self._away,
            E_INVITE: self._invite,
            E_UMODE: self._umode,
            E_OPER: self._oper,
            E_KILL: self._kill,
            E_KLINE: self._kline,
            E_UNKLINE: self._unkline,
            E_COUNTS: self._counts,
            E_SETNAME: self._setname,
            E_CHGHOST: self._chghost,
            E_ACCOUNT: self._account,
            E_LOGIN: self._login,
            E_ACCOUNTDROP: self._account_drop,
            E_STORE: self._store,
            E_ACCOUNTVERIFY: self._account_verify,
            E_ACCOUNTCERTS: self._account_certs,
            E_ACCOUNTPASSWORD: self._account_password,
            E_REVEAL: self._reveal,
            E_MOVE: self._move,
            E_MARKREAD: self._markread,
            E_REDACT: self._redact,
            E_METADATA: self._metadata,
        }

    # -- queries --------------------------------------------------------------------------------
    def user_by_nick(self, nick: bytes) -> User | None:
        return self.nicks.get(fold(nick))

    def channel(self, name: bytes) -> Channel | None:
        return self.channels.get(fold(name))

    def active_klines(self, now: int) -> list[KLine]:
        """The K-lines in force at ``now`` (Unix ms), oldest first (STATS k, the file)."""
        return sorted((k for k in self.klines.values() if k.active(now)), key=attrgetter("set_at"))

    @staticmethod
    def owner_of(user: User) -> Owner:
        """Whose read markers ``user`` reads and sets: its account's (folded), or, logged in
        to none, its own connection's (its uid)."""
        return user.uid if user.account is None else fold(user.account)

    def account_taken(self, key: bytes, now: int) -> bool:
        """Is the folded name ``key`` an account's, or a registration's that awaits its VERIFY
        and has not expired by ``now`` (Unix ms)? Either way no one else may register it."""
        if key in self.accounts:
            return True
        pending = self.pending.get(key)
        return pending is not None and not pending.expired(now)

    def whowas_of(self, nick: bytes) -> list[WhowasEntry]:
        """Who held ``nick`` before (RFC 2812 §3.6.3: "the most recent entry first")."""
        return self.whowas.get(fold(nick), [])[::-1]

    @property
    def history_available(self) -> bool:
        """Can the history be read as the network decided it? Not while the store's writer
        fails (a locked file, a full disk): the file then lacks the newest messages."""
        store = self.store
        return store is None or store.healthy

    def shared(self, value: bytes) -> bytes:
        """``value``, or an equal bytes object this state holds already: users that connect
        from one host, or with one client's default username or realname, then share one
        object (every worker and the hub hold every user, and each record that brings a user
        arrives with bytes of its own). Bounded: the table is emptied when it holds
        :data:`SHARED_BYTES` values, so values nobody holds any more do not pile up."""
        table = self._shared
        have = table.get(value)
        if have is None:
            if len(table) >= SHARED_BYTES:
                table.clear()
            table[value] = have = value
        return have

    # -- the one way state changes ------------------------------------------------------------
    def apply(self, event: Record) -> bool:
        """Apply a sequenced event. Returns False when it changed nothing (events are
        idempotent, so a replayed event after a resync is harmless)."""
        return self._apply_table[event[0]](event)

    def _intro(self, ev: Record) -> bool:
        e = EIntro._make(ev)
        if e.uid in self.users:
            return False
        shared = self.shared
        signon = e.time // 1000
        if signon == self._signon:  # users that came in the same second share the int
            signon = self._signon
        self._signon = signon
        username = e.username
        if username_of(username, e.nick) is username:  # (else it follows from the nick)
            username = shared(username)
        user = User(e.uid, e.nick, username, shared(e.host), shared(e.realname), e.worker, signon)
        user.certfp = e.certfp
        self.users[e.uid] = user
        self.nicks[user.key] = user
        if self.routes:
            self.load[e.worker] = self.load.get(e.worker, 0) + 1
        if len(self.users) > self.max_users:
            self.max_users = len(self.users)
        return True

    def _nick(self, ev: Record) -> bool:
        e = ENick._make(ev)
        new = e.nick
        user = self.users.get(e.uid)
        if user is None or user.nick == new:
            return False
        if self.nicks.get(user.key) is user:
            del self.nicks[user.key]
        if fold(new) != user.key:  # only its case changed: the nick is still in use
            self._remember(user, e.time)
        user.rename(new)
        self.nicks[user.key] = user
        for chan in user.channels:
            chan.shown_version += 1
        return True

    def _join(self, ev: Record) -> bool:
        e = EJoin._make(ev)
        user = self.users.get(e.uid)
        if user is None:
            return False
        # the user's own int as the key in members, visible, hidden and local, not the one
        # this record brought (32 bytes more per membership in every process otherwise)
        uid = user.uid
        key = fold(e.channel)
        chan = self.channels.get(key)
        if chan is None:
            chan = self.channels[key] = Channel(e.channel, e.created)
        elif uid in chan.members:
            return False
        chan.members[uid] = e.flags
        if e.flags & HIDDEN:
            if isinstance(chan.hidden, set):
                chan.hidden.add(uid)
            else:  # the first one hidden: the others are the shown ones, kept from now on
                chan.visible = dict.fromkeys(u for u in chan.members if u != uid)
                chan.hidden = {uid}
        else:
            if chan.hidden:
                chan.visible[uid] = None
            chan.shown_version += 1
        if self.routes:
            chan.workers[user.worker] = chan.workers.get(user.worker, 0) + 1
        if uid in chan.invites:
            chan.invites = (chan.invites - {uid}) or NO_INVITES
        client = self.local.get(uid)
        if client is not None:
            add_local(chan, uid, client)
        user.channels = _channels((*user.channels, chan))
        return True

    def _move(self, ev: Record) -> bool:
        """A user's connection moved to another worker (engine/placement.py): route its
        channels' messages and its private messages there from now on."""
        e = EMove._make(ev)
        user = self.users.get(e.uid)
        if user is None or user.worker != e.src or e.src == e.dst:
            return False
        for chan in user.channels if self.routes else ():
            left = chan.workers[e.src] - 1
            if left:
                chan.workers[e.src] = left
            else:
                del chan.workers[e.src]
            chan.workers[e.dst] = chan.workers.get(e.dst, 0) + 1
        if self.routes:
            self._unload(e.src)
            self.load[e.dst] = self.load.get(e.dst, 0) + 1
        user.worker = e.dst
        return True

    def _unload(self, worker: int) -> None:
        left = self.load[worker] - 1
        if left:
            self.load[worker] = left
        else:
            del self.load[worker]

    def _remove_member(self, chan: Channel, user: User) -> None:
        del chan.members[user.uid]
        chan.local.pop(user.uid, None)
        if user.uid in chan.hidden:
            _unhide(chan, user.uid)
        else:
            chan.visible.pop(user.uid, None)
            chan.shown_version += 1
        if chan in user.channels:
            user.channels = _channels(tuple(c for c in user.channels if c is not chan))
        if self.routes:
            left = chan.workers[user.worker] - 1
            if left:
                chan.workers[user.worker] = left
            else:
                del chan.workers[user.worker]
        if not chan.members:
            del self.channels[chan.key]
            self.metadata.drop(chan.key)
            chan.alone = ()  # (the cycle through it would keep the channel until a collection)

    def _part(self, ev: Record) -> bool:
        e = EPart._make(ev)
        user = self.users.get(e.uid)
        chan = self.channels.get(e.channel)
        if user is None or chan is None or e.uid not in chan.members:
            return False
        self._remove_member(chan, user)
        return True

    def _kick(self, ev: Record) -> bool:
        e = EKick._make(ev)
        user = self.users.get(e.target)
        chan = self.channels.get(e.channel)
        if user is None or chan is None or e.target not in chan.members:
            return False
        self._remove_member(chan, user)
        return True

    def _reveal(self, ev: Record) -> bool:
        e = EReveal._make(ev)
        chan = self.channels.get(e.channel)
        if chan is None:
            return False
        return any([reveal(chan, uid) for uid in e.uids])

    def _quit(self, ev: Record) -> bool:
        return self._remove_user(ev[1], ev[3])  # EQuit.uid, EQuit.time

    def _kill(self, ev: Record) -> bool:
        e = EKill._make(ev)
        return self._remove_user(e.target, e.time)

    def _remove_user(self, uid: int, time: int) -> bool:
        """``uid`` leaves the network (a quit or a kill) at ``time``: WHOWAS remembers it."""
        user = self.users.pop(uid, None)
        if user is None:
            return False
        self._remember(user, time)
        if self.routes:
            self._unload(user.worker)
        for chan in user.channels:
            self._remove_member(chan, user)
        if self.nicks.get(user.key) is user:
            del self.nicks[user.key]
        if b"i" in user.modes:
            self.invisible -= 1
        if b"o" in user.modes:
            self.opers -= 1
        self.local.pop(uid, None)
        self.markers.drop(uid)
        self.metadata.drop(uid)
        return True

    def _kline(self, ev: Record) -> bool:
        """A K-line is set (or set again: the new one replaces it), and the users it matched
        leave the network, each with a WHOWAS entry, as a quit would."""
        e = EKline._make(ev)
        changed = self._expire_klines(e.time)
        line = KLine(e.mask, e.setter, e.reason, e.set_at, e.expires)
        key = fold(e.mask)
        if line.active(e.time) and self.klines.get(key) != line:
            self.klines[key] = line
            self.klines_changed += 1
            changed = True
        for uid in e.victims:
            changed = self._remove_user(uid, e.time) or changed
        return changed

    def _unkline(self, ev: Record) -> bool:
        e = EUnkline._make(ev)
        changed = self._expire_klines(e.time)
        if self.klines.pop(fold(e.mask), None) is not None:
            self.klines_changed += 1
            changed = True
        return changed

    def _expire_klines(self, now: int) -> bool:
        """Forget the K-lines expired by ``now`` (Unix ms). Done as K-line events apply, at
        their time: every replica forgets the same ones at the same point of the order."""
        expired = [key for key, k in self.klines.items() if not k.active(now)]
        for key in expired:
            del self.klines[key]
        if expired:
            self.klines_changed += 1
        return bool(expired)

    def _topic(self, ev: Record) -> bool:
        e = ETopic._make(ev)
        topic, setter, when = e.topic, e.setter, e.when
        chan = self.channels.get(e.channel)
        if chan is None or (chan.topic, chan.topic_setter, chan.topic_time) == (
            topic,
            setter,
            when,
        ):
            return False
        chan.topic, chan.topic_setter, chan.topic_time = topic, setter, when
        return True

    def _mode(self, ev: Record) -> bool:
        e = EMode._make(ev)
        changes, args = e.modes, e.args
        chan = self.channels.get(e.channel)
        if chan is None:
            return False
        before = (
            chan.modes,
            chan.password,
            chan.limit,
            chan.bans,
            chan.excepts,
            chan.invex,
            tuple(chan.members.items()),
        )
        setter = self.users.get(e.uid)
        apply_mode_changes(self, chan, changes, args, setter.mask if setter else b"", e.time)
        return before != (
            chan.modes,
            chan.password,
            chan.limit,
            chan.bans,
            chan.excepts,
            chan.invex,
            tuple(chan.members.items()),
        )

    def _away(self, ev: Record) -> bool:
        e = EAway._make(ev)
        user = self.users.get(e.uid)
        if user is None or user.away == e.message:
            return False
        user.away = e.message
        return True

    def _account(self, ev: Record) -> bool:
        """A new account (draft/account-registration, ``fastchat accounts create``), or a
        registration awaiting verification (``code``)."""
        e = EAccount._make(ev)
        key = fold(e.name)
        if key in self.accounts or key in self.pending:
            return False
        account = Account(e.name, e.password_hash, e.email, e.time, e.code)
        (self.pending if e.code else self.accounts)[key] = account
        return True

    def _account_verify(self, ev: Record) -> bool:
        """A registration awaiting verification was verified: it is an account now."""
        key = fold(EAccountVerify._make(ev).name)
        pending = self.pending.pop(key, None)
        if pending is None:
            return False
        self.accounts[key] = pending._replace(code=b"")
        return True

    def _account_drop(self, ev: Record) -> bool:
        """An account dropped (NickServ DROP): its users were logged out first. Or a
        registration awaiting verification forgotten (expired, or its mail not sent)."""
        key = fold(EAccountDrop._make(ev).name)
        dropped = self.accounts.pop(key, None) or self.pending.pop(key, None)
        self.markers.drop(key)
        return dropped is not None

    def _account_certs(self, ev: Record) -> bool:
        """An account's certificate fingerprints changed (NickServ CERT ADD/DEL)."""
        e = EAccountCerts._make(ev)
        return self._change_account(e.name, certfps=tuple(e.certfps))

    def _account_password(self, ev: Record) -> bool:
        """An account's password changed (NickServ PASSWD)."""
        e = EAccountPassword._make(ev)
        return self._change_account(e.name, password_hash=e.password_hash)

    def _change_account(self, name: bytes, **fields: Any) -> bool:
        """The account ``name`` with ``fields`` as given; False if it has none such or they
        are as they were."""
        key = fold(name)
        account = self.accounts.get(key)
        if account is None:
            return False
        changed = account._replace(**fields)
        if changed == account:
            return False
        self.accounts[key] = changed
        return True

    def account_by_certfp(self, certfp: bytes) -> Account | None:
        """The account that holds the certificate fingerprint ``certfp`` (at most one does:
        the sequencer sees to it). A scan, not an index: it runs once per SASL EXTERNAL
        or CERT ADD, and an index would be one more thing every replica keeps in step."""
        if not certfp:
            return None
        for account in self.accounts.values():
            if certfp in account.certfps:
                return account
        return None

    def _login(self, ev: Record) -> bool:
        """A user logged in to an account (or out: b"")."""
        e = ELogin._make(ev)
        user = self.users.get(e.uid)
        account = e.account or None
        if user is None or user.account == account:
            return False
        user.account = account
        self.markers.drop(user.uid)  # (a connection's own markers end when it logs in)
        return True

    def _metadata(self, ev: Record) -> bool:
        """A user's or a channel's metadata set, removed or cleared (IRCv3 draft/metadata-3),
        while it is there."""
        e = EMetadata._make(ev)
        owner = e.user or e.channel
        if (e.user not in self.users) if e.user else (e.channel not in self.channels):
            return False
        if e.key:
            return self.metadata.set(owner, e.key, e.value)
        had = bool(self.metadata.of(owner))
        self.metadata.drop(owner)
        return had

    def _redact(self, ev: Record) -> bool:
        """A message redacted (IRCv3 draft/message-redaction): the network holds no
        messages, so nothing here changes (the store leaves it out of the history, and the
        channel's members or the conversation's parties are told); True while the channel
        or the other party is there, as when it was decided."""
        e = ERedact._make(ev)
        return e.peer in self.users if e.peer else fold(e.target) in self.channels

    def _markread(self, ev: Record) -> bool:
        """A read marker moved forward (IRCv3 draft/read-marker): an account's, or a
        connection's that is logged in to none (and still here)."""
        e = EMarkread._make(ev)
        if not e.owner and e.uid not in self.users:
            return False
        return self.markers.set(e.owner or e.uid, e.target, e.ms)

    def _setname(self, ev: Record) -> bool:
        """IRCv3 setname: a new realname, which WHOIS, WHO and WHOWAS show from now on."""
        e = ESetname._make(ev)
        user = self.users.get(e.uid)
        if user is None or user.realname == e.realname:
            return False
        user.realname = self.shared(e.realname)
        return True

    def _chghost(self, ev: Record) -> bool:
        """A new ``user@host`` (IRCv3 chghost): the user's mask, and what bans and K-lines
        match from now on."""
        e = EChghost._make(ev)
        user = self.users.get(e.target)
        if user is None or (user.username, user.host) == (e.username, e.host):
            return False
        user.rare()  # its address stays the one it connected from (``User.ip``)
        user.username, user.host = self.shared(e.username), self.shared(e.host)
        for chan in user.channels:
            chan.shown_version += 1
        return True

    def _umode(self, ev: Record) -> bool:
        e = EUmode._make(ev)
        modes = e.modes
        user = self.users.get(e.uid)
        if user is None or user.modes == modes:
            return False
        self.invisible += (b"i" in modes) - (b"i" in user.modes)
        self.opers += (b"o" in modes) - (b"o" in user.modes)
        user.modes = modes
        if b"o" not in modes:
            user.oper, user.privileges = b"", NO_PRIVILEGES  # -o drops the privileges too
        return True

    def _oper(self, ev: Record) -> bool:
        e = EOper._make(ev)
        user = self.users.get(e.uid)
        privileges = frozenset(e.privileges)
        if user is None or (
            b"o" in user.modes and user.oper == e.name and user.privileges == privileges
        ):
            return False
        if b"o" not in user.modes:
            user.modes = bytes(sorted(user.modes + b"o"))
            self.opers += 1
        user.oper, user.privileges = e.name, privileges
        return True

    def _counts(self, ev: Record) -> bool:
        """A worker's totals. Each count only grows, so the larger of two reports wins, per
        command: a report applied twice, or after a newer one (a replay after a hub restart),
        changes nothing, and replicas that merge agree."""
        e = ECounts._make(ev)
        if not e.counts:
            return False
        have = self.command_counts.setdefault(e.incarnation, {})
        changed = False
        for name, count in e.counts.items():
            if count > have.get(name, 0):
                have[name] = count
                changed = True
        return changed

    def total_counts(self, live: tuple[int, dict[bytes, int]] | None = None) -> dict[bytes, int]:
        """How often each command ran on the whole server, from every worker's last report;
        ``live``: one worker's (incarnation, counts) as it knows them now, in place of its
        report."""
        total: dict[bytes, int] = {}
        parts = list(self.command_counts.items())
        if live is not None:
            parts = [p for p in parts if p[0] != live[0]] + [live]
        for _incarnation, counts in parts:
            for name, count in counts.items():
                total[name] = total.get(name, 0) + count
        return total

    def _store(self, ev: Record) -> bool:
        """The store's health and counts: the last report wins (reports come from one
        process, in order)."""
        e = EStore._make(ev)
        status = StoreStatus(e.healthy, e.error, e.queued, e.committed, e.dropped, e.time)
        if status == self.store:
            return False
        self.store = status
        return True

    def _invite(self, ev: Record) -> bool:
        e = EInvite._make(ev)
        chan = self.channels.get(e.channel)
        if chan is None or e.target in chan.invites:
            return False
        chan.invites = {*chan.invites, e.target}
        return True

    # -- WHOWAS history -------------------------------------------------------------------------
    def _remember(self, user: User, time: int) -> None:
        """Keep ``user``'s nick, which it is giving up at ``time``, for WHOWAS."""
        self._add_whowas(WhowasEntry(user.nick, user.username, user.host, user.realname, time))
        self.trim_whowas()

    def _add_whowas(self, entry: WhowasEntry) -> None:
        self.whowas.setdefault(fold(entry.nick), []).append(entry)
        self._whowas_log.append(entry)

    def set_whowas_size(self, size: int) -> None:
        """Keep at most ``size`` WHOWAS entries from now on (the setting, after a reload)."""
        if size != self.whowas_size:
            self.whowas_size = size
            self.trim_whowas()

    def trim_whowas(self) -> None:
        """Forget the oldest entries beyond ``whowas_size`` (every replica trims the same
        entries: they all hold the same history, and the same configuration)."""
        log = self._whowas_log
        while len(log) > self.whowas_size:
            key = fold(log.popleft().nick)
            entries = self.whowas[key]
            del entries[0]  # a nick's entries are in the log's order: its oldest is first
            if not entries:
                del self.whowas[key]

    def _load_whowas(self, entries: list[WhowasEntry]) -> None:
        self.whowas.clear()
        self._whowas_log.clear()
        for entry in entries:
            self._add_whowas(entry)
        self.trim_whowas()

    def merge_whowas(self, rows: tuple[tuple[Any, ...], ...]) -> None:
        """Add the entries of another replica's history that this one lacks, in time order
        (the hub after a restart: replicas hold the same history, each as far as it got)."""
        have = set(self._whowas_log)
        new = [e for e in map(WhowasEntry._make, rows) if e not in have]
        if new:
            # sorted() is stable: entries of the same millisecond keep their order
            self._load_whowas(sorted([*self._whowas_log, *new], key=attrgetter("time")))

    # -- whole-state transfer (a worker that starts or restarts) --------------------------------
    def snapshot(self) -> Record:
        """Everything, as marshal-able tuples laid out as a :class:`Snapshot`: users, channels
        with their members, the peak user count, the WHOWAS history, the command counts, the
        K-lines."""
        users = tuple(
            (
                u.uid,
                u.nick,
                u.username,
                u.host,
                u.realname,
                u.worker,
                u.signon,
                u.away,
                u.modes,
                u.oper,
                tuple(sorted(u.privileges)),
                u.ip,
                u.account or b"",
                u.certfp,
            )
            for u in self.users.values()
        )
        channels = tuple(
            (
                c.name,
                c.created,
                c.topic,
                c.topic_setter,
                c.topic_time,
                c.modes,
                c.password,
                c.limit,
                tuple(map(tuple, c.bans)),
                tuple(c.invites),
                tuple(c.members.items()),
                tuple(map(tuple, c.excepts)),
                tuple(map(tuple, c.invex)),
            )
            for c in self.channels.values()
        )
        whowas = tuple(tuple(e) for e in self._whowas_log)
        counts = tuple(
            (incarnation, tuple(sorted(c.items())))
            for incarnation, c in self.command_counts.items()
        )
        klines = tuple(tuple(k) for k in self.klines.values())
        accounts = tuple(tuple(a) for a in [*self.accounts.values(), *self.pending.values()])
        markers = self.markers.rows()
        metadata = self.metadata.rows()
        return tuple(
            Snapshot(
                users,
                channels,
                self.max_users,
                whowas,
                counts,
                klines,
                accounts,
                markers,
                metadata,
            )
        )

    def load_snapshot(self, snap: Record) -> None:
        """Replace everything with ``snap`` (keeps ``local``, which only its worker knows)."""
        snapshot = Snapshot._make(snap)
        users, channels, max_users, whowas, counts, klines, accounts = snapshot[:7]
        rows = list(map(Account._make, accounts))
        self.accounts = {fold(a.name): a for a in rows if not a.code}
        self.pending = {fold(a.name): a for a in rows if a.code}
        self.users.clear()
        self.nicks.clear()
        self.load.clear()
        for gone in self.channels.values():
            gone.alone = ()
        self.channels.clear()
        self.invisible = 0
        self.opers = 0
        for u in map(SnapshotUser._make, users):
            self._intro(u.intro())
            self.users[u.uid].away = u.away
            self.users[u.uid].ip = u.ip
            self.users[u.uid].account = u.account or None
            self._umode(make(EUmode, u.uid, u.modes, b"", 0))
            if u.oper:
                self._oper(make(EOper, u.uid, u.oper, u.privileges, False, 0))
        for c in map(SnapshotChannel._make, channels):
            for uid, flags in c.members:
                self._join(make(EJoin, uid, c.name, flags, c.created, (), 0))
            chan = self.channels.get(fold(c.name))
            if chan is None:
                continue
            chan.topic, chan.topic_setter, chan.topic_time = c.topic, c.topic_setter, c.topic_time
            chan.modes, chan.password, chan.limit = c.modes, c.password, c.limit
            chan.bans = tuple(map(Entry._make, c.bans))
            chan.excepts = tuple(map(Entry._make, c.excepts))
            chan.invex = tuple(map(Entry._make, c.invex))
            chan.invites = set(c.invites) if c.invites else NO_INVITES
        self.max_users = max(max_users, len(self.users))
        self._load_whowas(list(map(WhowasEntry._make, whowas)))
        self.command_counts = {incarnation: dict(c) for incarnation, c in counts}
        self.markers.load(snapshot.markers)
        self.metadata.load(snapshot.metadata)
        loaded = {fold(k.mask): k for k in map(KLine._make, klines)}
        if loaded != self.klines:
            self.klines = loaded
            self.klines_changed += 1

    def users_on_worker(self, worker: int) -> list[int]:
        return [uid for uid, u in self.users.items() if u.worker == worker]


def apply_mode_changes(
    state: State,
    chan: Channel,
    changes: bytes,
    args: tuple[bytes, ...],
    setter: bytes = b"",
    at: int = 0,
) -> None:
    """Apply already-validated channel mode changes such as ``+o-t`` with their arguments.

    The sequencer validates (:func:`fastchat.server.network.sequencer`); this only applies, so every
    replica ends in the same state. A list entry added records ``setter`` (the source's
    ``nick!user@host``; empty: the server) and ``at`` (the event's time, Unix ms).
    """
    adding = True
    it = iter(args)
    for letter in changes:
        c = bytes((letter,))
        if c == b"+":
            adding = True
        elif c == b"-":
            adding = False
        elif c in (b"o", b"v"):
            target = state.user_by_nick(next(it))
            if target is not None and target.uid in chan.members:
                bit = OP if c == b"o" else VOICE
                chan.shown_version += 1
                if adding:
                    reveal(chan, target.uid)  # a prefix shows a hidden member (+D)
                old = chan.members[target.uid]
                chan.members[target.uid] = (old | bit) if adding else (old & ~bit)
        elif c == b"k":
            key = next(it)  # "-k" carries the key too (RFC 2812 §3.2.3), so both consume one
            chan.password = key if adding else b""
        elif c == b"l":
            chan.limit = int(next(it)) if adding else 0
        elif c in LIST_MODES:
            access.change(chan, c, adding, next(it), setter, at)
        elif adding and c not in chan.modes:
            chan.modes = bytes(sorted(chan.modes + c))
        elif not adding:
            chan.modes = chan.modes.replace(c, b"")
            if c == b"D":  # delayed join ends: every hidden member is shown (as InspIRCd)
                for uid in list(chan.hidden):
                    reveal(chan, uid)


def reveal(chan: Channel, uid: int) -> bool:
    """Show the hidden member ``uid`` of ``chan`` (delayed join, +D); False if it was not
    hidden."""
    if uid not in chan.hidden:
        return False
    chan.members[uid] &= ~HIDDEN
    if _unhide(chan, uid):
        chan.visible[uid] = None
    chan.shown_version += 1
    return True


def _unhide(chan: Channel, uid: int) -> bool:
    """``uid`` is no longer among ``chan``'s hidden members; False when it was the last (then
    nothing more is kept: every member is shown)."""
    hidden = chan.hidden
    assert isinstance(hidden, set)  # (it held uid)
    hidden.discard(uid)
    if hidden:
        return True
    chan.hidden = NO_HIDDEN
    chan.visible = NO_VISIBLE
    return False


def add_local(chan: Channel, uid: int, client: Any) -> None:
    """``client`` (this worker's, ``uid``) is a member of ``chan``: into its fan-out list,
    which becomes a dict of its own at the first (:data:`NO_LOCAL` is shared)."""
    local = chan.local
    if local is NO_LOCAL:
        local = chan.local = {}
    local[uid] = client


def _channels(chans: tuple[Channel, ...]) -> tuple[Channel, ...]:
    """A user's ``channels`` from now on: a channel's shared ``alone`` when it is in that one
    alone (see :attr:`Channel.alone`)."""
    return chans[0].alone if len(chans) == 1 else chans


def shown(chan: Channel) -> Iterable[int]:
    """The members of ``chan`` the others see (delayed join, +D: not the hidden ones)."""
    return chan.visible if chan.hidden else chan.members


def visible(chan: Channel, uid: int) -> bool:
    """May ``uid`` see ``chan`` in NAMES, LIST, TOPIC and WHO (RFC 2812 §3.2.3: a secret
    channel, +s, is seen only by its members)?"""
    return b"s" not in chan.modes or uid in chan.members


def seen_by(me: User, them: User) -> bool:
    """May ``me`` find ``them`` in a WHO (RFC 2812 §3.1.5: "+i - marks a users as invisible";
    Modern IRC: an invisible user is listed only to those who share a channel with them)?"""
    uid = them.uid
    return (
        b"i" not in them.modes
        or them is me
        or any(uid in c.members and uid not in c.hidden for c in me.channels)
    )
