"""One connection's protocol state as the worker core sees it.

Owns: what a connection has said (nick, user, registration progress), what it is owed (output
queue), what it has sent but we have not processed yet (input queue, ordering barrier, flood
clock) and its liveness clocks.
Must never: touch the socket. ``transport`` is an opaque slot that the I/O shell fills in.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastchat.irc.linebuffer import LineBuffer
from fastchat.server.network.state import User
from fastchat.server.registration import Phase

_NO_PRIVILEGES: frozenset[str] = frozenset()
_T = TypeVar("_T")


class ClientRare:
    """The fields of a :class:`Client` that registration, SASL and OPER use and an idle
    client leaves as they start: held apart, made only when one changes (issue 14's idle
    memory: nine slots fewer take a client from 352 bytes to 288)."""

    __slots__ = (
        "account",
        "cap_version",
        "certfp",
        "metadata_subs",
        "oper_failures",
        "oper_retry_at",
        "password",
        "pre_away",
        "refused_nick",
        "sasl",
        "sasl_mechanism",
        "sasl_state",
        "secure",
    )

    def __init__(self) -> None:
        self.account = b""
        self.cap_version = 0
        self.certfp = b""
        self.metadata_subs: frozenset[bytes] = frozenset()
        self.oper_failures = 0
        self.oper_retry_at = 0.0
        self.password = b""
        self.pre_away = b""
        self.sasl: bytes | None = None
        self.sasl_mechanism = b""
        self.sasl_state: Any = None
        self.secure = False
        self.refused_nick = b""


class _Rare(Generic[_T]):
    """A :class:`Client` attribute kept in its :class:`ClientRare`: ``default`` while there
    is none; setting anything else makes it."""

    def __init__(self, default: _T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, client: Any, owner: Any = None) -> _T:
        if client is None:  # looked up on the class (introspection): what a new client reads
            return self.default
        rare = client._rare
        return self.default if rare is None else getattr(rare, self.name)

    def __set__(self, client: Any, value: _T) -> None:
        rare = client._rare
        if rare is None:
            if value == self.default:
                return
            rare = client._rare = ClientRare()
        setattr(rare, self.name, value)


class Labeled:
    """The reply owed to a command that came with an IRCv3 ``label`` tag, while it is being
    produced (see :mod:`fastchat.server.engine.labels`): the label (escaped, as it goes
    out), the reply's lines so far, and the reference of its batch once one is open."""

    __slots__ = ("batch", "label", "lines")

    def __init__(self, label: bytes) -> None:
        self.label = label
        self.lines: list[bytes] = []
        self.batch = b""


class OutputSlot:
    """A place kept in a client's output for lines that come later (a JOIN's replay of the
    history, answered off the loop): ``at`` is its index in ``Client.pending``. While any is
    open the shell sends the client nothing (see :attr:`Client.corked`), so everything queued
    after it waits behind it, in order; the core fills it (``WorkerCore.fill_output``)."""

    __slots__ = ("at",)

    def __init__(self, at: int) -> None:
        self.at = at


#: ``Client.inq`` while nothing waits (nearly always): one shared empty list, never written
#: (``WorkerCore._hold`` gives a client a list of its own first), 56 bytes less per client
NO_INPUT: list[bytes] = []


class _Sealed(list[bytes]):
    """An empty list that refuses to grow: a shared sentinel written by mistake fails
    loudly instead of sending one client's lines to every idle client."""

    __slots__ = ()

    def append(self, item: bytes) -> None:
        raise TypeError("the shared empty output is never written")

    def extend(self, items: object) -> None:
        raise TypeError("the shared empty output is never written")

    def insert(self, index: object, item: bytes) -> None:
        raise TypeError("the shared empty output is never written")

    def __setitem__(self, index: object, value: object) -> None:
        raise TypeError("the shared empty output is never written")

    def __iadd__(self, items: object) -> _Sealed:  # type: ignore[override,misc]
        raise TypeError("the shared empty output is never written")


#: ``Client.pending`` of an idle client: one shared empty list, never written. Whoever
#: queues for a client whose output is empty checks for it in the branch that already marks
#: the client dirty (``if not pending:``, once per client per loop turn, not per line) and
#: gives it a list of its own; the shell clears that list once sent and keeps it for the
#: next turn (a list made per turn costs ~5% of a worker's delivery with one member per
#: room), and ``WorkerCore.tick`` puts this back on a client whose list stayed empty for
#: a tick: 56 bytes less per idle client (issue 14).
NO_OUTPUT: list[bytes] = _Sealed()


class Client:
    """A local connection. Slots keep an idle client small (see the idle benchmark)."""

    __slots__ = (
        "_rare",
        "caps",
        "closed",
        "connected_at",
        "flood_clock",
        "held",
        "inq",
        "inq_bytes",
        "ip",
        "label",
        "last_active",
        "linebuf",
        "msgs",
        "nick",
        "outbuf",
        "pending",
        "phase",
        "ping_sent",
        "privileges",
        "quitting",
        "realname",
        "received",
        "slots",
        "source",
        "streamed",
        "synced_upto",
        "transport",
        "uid",
        "user",
        "username",
        "waiting",
    )

    # registration, SASL and OPER's fields (see ClientRare); their comments are in __init__
    account = _Rare(b"")
    cap_version = _Rare(0)
    certfp = _Rare(b"")
    # IRCv3 draft/metadata-3: the keys it subscribed to (METADATA * SUB), what it is told of
    metadata_subs: _Rare[frozenset[bytes]] = _Rare(frozenset())
    oper_failures = _Rare(0)
    oper_retry_at = _Rare(0.0)
    password = _Rare(b"")
    # IRCv3 draft/pre-away: the away message given before registering (RRegister.away)
    pre_away = _Rare(b"")
    sasl: _Rare[bytes | None] = _Rare(None)
    sasl_mechanism = _Rare(b"")
    # a multi-step mechanism's progress (SCRAM-SHA-256: its scram.Exchange), None before it
    sasl_state: _Rare[Any] = _Rare(None)
    secure = _Rare(False)
    # The nick a registering client asked for and was refused (433: someone holds it): what
    # REGISTER * names before connecting, so the holder's nick is not registered from under
    # it (ACCOUNT_EXISTS: draft/account-registration's "no land grabs")
    refused_nick = _Rare(b"")

    def __init__(self, uid: int, ip: bytes, now: float) -> None:
        self._rare: ClientRare | None = None
        self.uid = uid
        self.ip = ip
        self.nick = b""  # tentative until registered, then mirrors user.nick
        self.username = b""
        self.realname = b""
        self.password = b""
        self.user: User | None = None  # set once the sequencer has introduced us
        # ":nick!user@host ", the prefix of every line this client sends to others, cached:
        # b"" until the relay first needs it (:func:`source_of`; an idle client never
        # does), and again after NICK, CHGHOST or a move (made anew from the new mask)
        self.source = b""
        # Where registration stands (see fastchat.server.registration, its one state machine)
        self.phase = Phase.NEW
        self.caps = 0  # negotiated IRCv3 capabilities, a bit set (fastchat.server.caps)
        # PRIVMSG/NOTICE/TAGMSG sent so far: each one's number is part of its msgid
        self.msgs = 0
        # messages relayed without a barrier since the last one (see engine/labels.py)
        self.streamed = False
        self.label: Labeled | None = None  # the labeled command being answered, if any
        # IRCv3 SASL: the base64 received so far of an exchange under way (None: none), and
        # the account it proved before registration (registration logs the user in to it)
        self.sasl: bytes | None = None
        self.sasl_mechanism = b""  # of the exchange under way (sasl.MECHANISMS)
        self.account = b""
        self.cap_version = 0  # the version of CAP LS the client asked for (302), or 0
        # TLS (set by the shell when the handshake is done): the connection is TLS, and the
        # SHA-256 fingerprint of the certificate it showed (b"": none), lowercase hex (CertFP)
        self.secure = False
        self.certfp = b""
        # Operator privileges, what the dispatcher checks command rows against: a copy of
        # the user's (network state: E_OPER gives them, -o takes them), set by its worker.
        self.privileges = _NO_PRIVILEGES
        # OPER failures in a row, and when the next OPER may be checked (commands/operators)
        self.oper_failures = 0
        self.oper_retry_at = 0.0
        # the unfinished line received so far; None (nearly always: an idle client has no
        # partial line) while there is none, see WorkerCore.data_received
        self.linebuf: LineBuffer | None = None
        # received lines not yet processed (barrier/flood); a list, not a deque: it is only
        # appended to and taken whole; NO_INPUT (shared) while empty
        self.inq: list[bytes] = NO_INPUT
        self.inq_bytes = 0
        # Flood control off and more than --recvq waiting behind the barrier: the shell stops
        # reading this socket (backpressure) until the queue drains.
        self.held = False
        self.waiting = 0  # requests with the sequencer not yet decided: the ordering barrier
        # The read barrier (see engine.dispatch.Dispatcher.handle_line): lines received so far, and how many of
        # them a completed sync round trip covers; a query among those is answered at once.
        self.received = 0
        self.synced_upto = 0
        # Set while a QUIT waits for the sequencer: the ERROR line owed once it has decided.
        self.quitting = b""
        self.flood_clock = 0.0
        # output owed, joined into one send per loop turn; NO_OUTPUT (shared) while idle
        self.pending: list[bytes] = NO_OUTPUT
        # Places kept in ``pending`` for lines still to come (OutputSlot), oldest first; None
        # (not an empty list: an idle client stays small) while there are none
        self.slots: list[OutputSlot] | None = None
        # What the kernel would not take yet; exists only while the socket is full, and is
        # what --sendq bounds.
        self.outbuf: bytearray | None = None
        self.connected_at = now
        self.last_active = now
        self.ping_sent = 0.0
        self.closed = False
        self.transport: Any = None

    @property
    def host(self) -> bytes:
        """The host it connected from, as its user is introduced with: its address (no
        reverse DNS, no cloak; CHGHOST changes the user's, not this). Not a slot: 8 bytes
        per client (issue 14)."""
        return self.ip

    @property
    def corked(self) -> bool:
        """Must the shell leave ``pending`` alone? While a slot is open in it, unless the
        client is closing (its last lines go out, and nobody fills the slot any more)."""
        return self.slots is not None and not self.closed and not self.quitting

    @property
    def registered(self) -> bool:
        return self.user is not None

    @property
    def name(self) -> bytes:
        """The nick to address numerics to: ``*`` before one is set (Modern IRC)."""
        return self.nick or b"*"

    def __repr__(self) -> str:
        return f"<Client {self.uid:#x} {self.nick.decode(errors='replace')} {self.ip.decode()}>"


def source_of(client: Client) -> bytes:
    """``client``'s cached prefix, ``:nick!user@host `` (made now if it was not yet, or was
    dropped): the relay's, for a registered client."""
    source = client.source
    if not source:
        source = client.source = b":" + user_of(client).mask + b" "
    return source


def user_of(client: Client) -> User:
    """The user of a registered ``client`` (the dispatcher runs a command that needs
    registration only for a registered client)."""
    user = client.user
    assert user is not None
    return user
