"""The sequencer: decides every request in one global order (the network's single source of truth).

Owns: the rules that need the whole network to decide (is this nick free? may this user join,
speak, set the topic, change modes?) and the routing of what it decides.
Must never: touch sockets or the clock (``now`` is an argument), or format client lines other
than the numeric replies (and the text of an operator's notice) it hands back for the
requester's worker to send.

With one worker it runs inside that worker, called directly; with several it runs in the hub
process and every worker's requests reach it over the bus. Either way it is this same code, so
``--workers 4`` behaves exactly like ``--workers 1``: one order for everything, hence one order
per channel, unique nicks, and each sender's messages in the order sent.
"""

from __future__ import annotations

import hmac
import marshal
import secrets
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_channel
from fastchat.irc.message import MAX_LINE, truncate_utf8
from fastchat.server.config import Config
from fastchat.server.network import access, metadata
from fastchat.server.network.access import LIST_MODES, mask_matches
from fastchat.server.network.records import (
    D_CHAN,
    D_CHANSEG,
    D_DONE,
    ECHO,
    HIDDEN,
    OP,
    R_ACCOUNT,
    R_ACCOUNTDROP,
    R_AWAY,
    R_CERTFP,
    R_CHANMSG,
    R_CHANSEG,
    R_CHGHOST,
    R_COUNTS,
    R_GHOST,
    R_HISTSYNC,
    R_INVITE,
    R_JOIN,
    R_KICK,
    R_KILL,
    R_KLINE,
    R_LOGIN,
    R_MARKREAD,
    R_METADATA,
    R_MODE,
    R_MOVE,
    R_NICK,
    R_OPER,
    R_PART,
    R_PASSWORD,
    R_PENDINGDROP,
    R_PROTECT,
    R_QUIT,
    R_REDACT,
    R_REGISTER,
    R_SETNAME,
    R_SYNC,
    R_TOPIC,
    R_UMODE,
    R_UNKLINE,
    R_USERMSG,
    R_VERIFY,
    R_WALLOPS,
    SEG_FIELDS,
    TAGMSG,
    VOICE,
    DKill,
    DNotice,
    DOverride,
    DPending,
    DRegistered,
    DReply,
    DService,
    DStandard,
    DStored,
    DUser,
    DWallops,
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
    EQuit,
    ERedact,
    EReveal,
    ESetname,
    EStore,
    ETopic,
    EUmode,
    EUnkline,
    RAccount,
    RAccountDrop,
    RAway,
    RCertfp,
    RChghost,
    RCounts,
    Record,
    RGhost,
    RJoin,
    RKill,
    RKline,
    RLogin,
    RMarkread,
    RMetadata,
    RMove,
    ROper,
    RPart,
    RPassword,
    RPendingDrop,
    RProtect,
    RQuit,
    RRedact,
    RSetname,
    RUmode,
    RUnkline,
    RUserMsg,
    RVerify,
    RWallops,
    last_of_run,
    make,
)
from fastchat.server.network.state import MAX_CERTFPS, Channel, KLine, State, User

#: Channel modes we implement (announced in ISUPPORT CHANMODES=beI,k,l,CDimnst; the list
#: modes, LIST_MODES, are network/access.py's).
PARAM_ALWAYS = b"k"  # type B: argument on set and unset
PARAM_ON_SET = b"l"  # type C: argument on set only
#: type D; ``D`` is delayed join (InspIRCd's delayjoin: see state.Channel, and E_REVEAL)
FLAG_MODES = b"CDimnst"  # (+C: no CTCP but ACTION to the channel, see ctcp_blocked)
MEMBER_MODES = b"ov"
MAX_MODE_CHANGES = 6  # ISUPPORT MODES
#: Join refusals an IRC operator's ``override`` privilege passes (not CHANLIMIT: that is the
#: user's own limit, not a channel's rule).
_OVERRIDABLE_JOIN = frozenset(
    {N.ERR_INVITEONLYCHAN, N.ERR_BADCHANNELKEY, N.ERR_CHANNELISFULL, N.ERR_BANNEDFROMCHAN}
)
_NOT_OPERATOR = b"Permission Denied- You're not an IRC operator"


#: The longest K-line mask: a username (at most 18 bytes, with its ``~``) and a host (an
#: IPv6 address is at most 45), with room for wildcards.
KLINE_MASK_MAX = 100
#: What a K-line mask may hold: what usernames (letters, digits, ``-_.``, and the ``~`` of
#: no ident) and hosts (IPv4 and IPv6 addresses) are made of, and the wildcards.
_MASK_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~:*?@")
#: What a K-line's user part may be made of and still name nobody in particular: every
#: username has at least one byte, and every one here starts with ``~`` (no ident lookup).
_ANY_USER = frozenset(b"*?~")
#: The same for the host part: every host is an IPv4 or IPv6 address.
_ANY_HOST = frozenset(b"*?.:")


class Router(Protocol):
    """Where the sequencer's decisions go: the hub's bus, or a worker's own core."""

    def event(self, event: Record) -> None:
        """A state change: apply it to the sequencer's state and to every worker's replica."""

    def to_channel(self, chan: Channel, record: Record) -> None:
        """A delivery for the members of ``chan``: to every worker holding one."""

    def to_worker(self, worker: int, record: Record) -> None:
        """A delivery or answer for one worker."""

    def to_route(self, route: tuple[int, ...], record: Record, last: dict[bytes, int]) -> None:
        """A D_CHANSEG for the workers ``route`` (those of them still up): a worker's
        segment approved whole (only where the router keeps an epoch: the hub); ``last``:
        RChanSeg.last, for the history."""

    def after_stored(self, worker: int, record: Record) -> None:
        """An answer for one worker, sent once the store has written everything decided
        so far (the D_STORED of an R_HISTSYNC: the history barrier)."""


#: Member flags that may always speak in their channel (may_speak)
_SPEAKS = OP | VOICE

#: The requests answered without D_DONE (see :meth:`Sequencer.handle`)
_NO_DONE = frozenset({R_COUNTS, R_HISTSYNC, R_CHANSEG})

#: Channel-affine placement (R_MOVE, engine/placement.py): a worker may take a moving user
#: while it holds at most this many times the average number of users per worker, or the
#: average plus ``PLACEMENT_SLACK`` (so that a small network can cluster a room at all).
PLACEMENT_LOAD_FACTOR = 1.5
PLACEMENT_SLACK = 16


def kline_mask_problem(mask: bytes) -> bytes | None:
    """Why ``mask`` cannot be a K-line's, or None. A K-line mask is ``user@host`` (``*`` and
    ``?`` as wildcards; no nick: K-lines ban connections, not names) that names somebody: one
    that would match everyone (``*@*``, ``~*@*.*``...) is refused, since it would lock
    everybody out, the operators too.

    >>> kline_mask_problem(b"*@*") is None, kline_mask_problem(b"~bob@10.0.0.*") is None
    (False, True)
    """
    if len(mask) > KLINE_MASK_MAX:
        return b"is longer than %d bytes" % KLINE_MASK_MAX
    if b"!" in mask:
        return b"names a nick: a K-line is user@host only"
    if not _MASK_BYTES.issuperset(mask):
        return b"may hold only letters, digits, the wildcards * and ?, and - _ . ~ : @"
    user, at, host = mask.partition(b"@")
    if not at or not user or not host or b"@" in host:
        return b"is not a user@host mask"
    if _ANY_USER.issuperset(user) and _ANY_HOST.issuperset(host):
        return b"would match everyone"
    return None


def kline_matches(mask: bytes, user: User) -> bool:
    """Does the K-line mask ``user@host`` match ``user`` (whatever its nick)?"""
    return mask_matches(b"*!" + mask, user)


class Sequencer:
    """Decides requests against the authoritative :class:`State` and routes the outcome."""

    __slots__ = (
        "_moved_at",
        "_now",
        "_table",
        "config",
        "epoch",
        "kept",
        "redo",
        "router",
        "state",
        "workers",
    )

    def __init__(self, state: State, config: Config, router: Router) -> None:
        self.state = state
        self.config = config
        self.router = router
        self._now = 0  # the decision being made: its time, in ms (see handle)
        # Each channel's last message the store keeps (its D_CHAN, by folded name), as this
        # process's store has been handed them, in this order: the shell that keeps a store
        # shares its dict (runtime/storage.py). A JOIN tells its joiner where that is.
        self.kept: Mapping[bytes, Record] = {}
        # The state's version, where the router keeps one (the hub: every event bumps it);
        # -1 matches no segment's (RChanSeg.epoch), so each one is decided message by message
        self.epoch = -1
        self._table = {
            R_REGISTER: self._register,
            R_NICK: self._nick,
            R_JOIN: self._join,
            R_PART: self._part,
            R_QUIT: self._quit,
            R_TOPIC: self._topic,
            R_MODE: self._mode,
            R_KICK: self._kick,
            R_AWAY: self._away,
            R_INVITE: self._invite,
            R_CHANMSG: self._chanmsg,
            R_CHANSEG: self._chanseg,
            R_USERMSG: self._usermsg,
            R_SYNC: self._sync,
            R_HISTSYNC: self._histsync,
            R_UMODE: self._umode,
            R_OPER: self._oper,
            R_KILL: self._kill_user,
            R_WALLOPS: self._wallops,
            R_KLINE: self._kline,
            R_UNKLINE: self._unkline,
            R_COUNTS: self._counts,
            R_SETNAME: self._setname,
            R_CHGHOST: self._chghost,
            R_ACCOUNT: self._account,
            R_LOGIN: self._login,
            R_ACCOUNTDROP: self._account_drop,
            R_GHOST: self._ghost,
            R_PROTECT: self._protect,
            R_VERIFY: self._verify,
            R_PENDINGDROP: self._pending_drop,
            R_CERTFP: self._certfp,
            R_PASSWORD: self._password,
            R_MARKREAD: self._markread,
            R_REDACT: self._redact,
            R_METADATA: self._metadata,
            R_MOVE: self._move,
        }
        # The workers that are up (the hub's links); none where the sequencer runs inside the
        # one worker, so that nothing ever moves there.
        self.workers: Callable[[], Collection[int]] = tuple
        # when each user last moved (ms), for ``placement_interval``; pruned as it grows
        self._moved_at: dict[int, int] = {}
        # A new hub's replay (runtime/hub.py ``_settle``): the moves the old hub decided and
        # some worker acted on, whose R_MOVE is decided again: uid -> the worker its socket
        # went (or is to go) to. Not refusable, nor sent elsewhere: they are facts.
        self.redo: dict[int, int] = {}

    def handle(self, origin: int, request: Record, now: int) -> None:
        """Decide one request from worker ``origin`` at ``now`` (Unix time in milliseconds,
        stamped on everything the decision produces). Every request except a message is
        answered with ``D_DONE`` to its origin, after whatever it caused; so is a message the
        worker doubted (its last field), which it sent under the client's barrier. A report
        of command counts is no client's request: nobody waits for it; the history barrier's
        answer is its own (D_STORED)."""
        kind = request[0]
        self._now = now
        self._table[kind](origin, request, now)
        # A message waits for nothing, unless its worker doubted it; nobody waits for a
        # report of command counts; everything else is some client's barrier.
        messages = (R_CHANMSG, R_USERMSG)
        if request[5] if kind in messages else kind not in _NO_DONE:
            self.router.to_worker(origin, (D_DONE, request[1], now))  # DDone, by hand: hot

    def handle_batch(self, origin: int, requests: list[Record], now: int) -> None:
        """Decide a worker's batch, in order (the hub's loop).

        Shaped for the hot path: a channel message the worker's replica approved is nearly all
        the traffic, so it is checked and routed here without the per-request dispatch; any
        other request, or one that fails the check, takes :meth:`handle`. A segment of them
        (RChanSeg) approved on the state of the current ``epoch`` is not checked at all: the
        worker's replica held exactly this state, so its approvals are this decision.
        """
        state = self.state
        channels = state.channels
        to_channel = self.router.to_channel
        handle = self.handle
        for r in requests:
            if r[0] == R_CHANSEG and r[1] == self.epoch:
                # Nothing decided since the worker approved these (the state is the one its
                # replica held): each approval stands, and its route is the channels' now.
                # One record for the lot, whatever its length (issue 14: the hub's ceiling)
                self.router.to_route(r[2], (D_CHANSEG, r[3], now), r[4])  # DChanSeg, by hand
                continue
            if r[0] == R_CHANMSG and not r[5]:
                chan = channels.get(r[2])
                # may_speak's common answer inline (a member with voice or op, or a channel
                # without +m and bans: yes), the function for the rest: a call per message
                # is a measurable share of the hub's time (issue 14)
                if chan is not None and (
                    (
                        (flags := chan.members.get(r[1])) is not None
                        and (flags & _SPEAKS or (not chan.bans and b"m" not in chan.modes))
                    )
                    or may_speak(state, chan, r[1])
                ):
                    # DChan, by hand: hot
                    to_channel(chan, (D_CHAN, r[2], r[1], r[3], r[6], r[7], r[8], now))
                    continue
            handle(origin, r, now)

    def _sync(self, origin: int, r: Record, now: int) -> None:
        """A read barrier: nothing to decide. Its D_DONE (sent by :meth:`handle`) reaches the
        worker after every record decided before it, which is the whole point."""

    def _histsync(self, origin: int, r: Record, now: int) -> None:
        """The history barrier: nothing to decide; its D_STORED reaches the worker once the
        store has written everything decided before it (the router holds it until then)."""
        self.router.after_stored(origin, make(DStored, r[1], r[2], now))

    def _is_op(self, origin: int, uid: int, chan: Channel, action: bytes) -> bool:
        """May ``uid`` act as a channel operator of ``chan`` (``action``: what for, as the
        log will say it)? A channel operator may; so may an IRC operator with the
        ``override`` privilege (then its worker logs it). Otherwise answer 482
        ERR_CHANOPRIVSNEEDED."""
        if chan.members.get(uid, 0) & OP:
            return True
        if self._override(origin, uid, action + b" (not a channel operator)"):
            return True
        self._reply(origin, uid, N.ERR_CHANOPRIVSNEEDED, chan.name, b"You're not channel operator")
        return False

    def _override(self, origin: int, uid: int, action: bytes) -> bool:
        """Does ``uid`` hold the ``override`` privilege? If so, it is about to use it: tell
        its worker, which logs who did what (every operator action is logged)."""
        user = self.state.users.get(uid)
        if user is None or "override" not in user.privileges:
            return False
        self.router.to_worker(origin, make(DOverride, uid, action, self._now))
        return True

    def _reply(self, origin: int, uid: int, numeric: bytes, *params: bytes) -> None:
        self.router.to_worker(origin, make(DReply, uid, numeric, params, self._now))

    def _operator(self, origin: int, uid: int, privilege: str) -> User | None:
        """The user ``uid`` if it holds ``privilege``. Its worker asked its replica, but the
        privileges here are the truth (a MODE -o may have been decided since): else answer
        481 ERR_NOPRIVILEGES, and None."""
        user = self.state.users.get(uid)
        if user is None:
            return None
        if privilege not in user.privileges:
            self._reply(origin, uid, N.ERR_NOPRIVILEGES, _NOT_OPERATOR)
            return None
        return user

    # -- registration and nicks (RFC 2812 §3.1) -----------------------------------------------
    def _register(self, origin: int, r: Record, now: int) -> None:
        _, uid, nick, username, host, realname, account, certfp, away = r  # RRegister
        if uid in self.state.users:
            return  # resent after a hub restart, and already merged from a replica
        ban = self._kline_on(uid, nick, username, host, now)
        if ban is not None:
            # Modern IRC ERR_YOUREBANNEDCREEP: "the client ... is banned from the server";
            # then the connection is closed, as for any other refused connection
            banned = b"You are banned from this server (%s)" % ban.reason
            self._reply(origin, uid, N.ERR_YOUREBANNEDCREEP, banned)
            self.router.to_worker(origin, make(DKill, uid, b"K-Lined: " + ban.reason, now))
            return
        if fold(nick) in self.state.nicks:
            self._reply(origin, uid, N.ERR_NICKNAMEINUSE, nick, b"Nickname is already in use")
            return
        self.router.event(make(EIntro, uid, nick, username, host, realname, origin, certfp, now))
        known = self.state.accounts.get(fold(account)) if account else None
        if known is not None:
            # what its SASL authentication proved, in the same step: no one sees it
            # registered and not yet logged in (its JOINs show the account)
            self.router.event(make(ELogin, uid, known.name, b"sasl", now))
        if away:  # IRCv3 draft/pre-away: away from the start, before anyone sees it join
            self.router.event(make(EAway, uid, away, now))
        # Autojoin is part of registration, decided in the same step: nobody, on any worker,
        # can observe the user registered but not yet in #lobby.
        for channel in self.config.autojoin:
            self._join(origin, make(RJoin, uid, channel, b""), now)

    # -- accounts (issue 12) ---------------------------------------------------------------------
    def _account(self, origin: int, r: Record, now: int) -> None:
        """draft/account-registration REGISTER (or NickServ's): the account is created and
        its registrant logged in to it, unless someone registered that name first (``FAIL
        REGISTER ACCOUNT_EXISTS``; a registration awaiting verification holds its name too)
        or the registrant logged in meanwhile (``ALREADY_AUTHENTICATED``).

        With ``register_verify`` the account awaits verification instead: the code is drawn
        here, once, and carried in the E_ACCOUNT (every replica and the store keep the same
        one; nothing downstream draws a random number), and the registrant's worker is told
        to mail it (D_PENDING), which answers ``REGISTER VERIFICATION_REQUIRED``."""
        m = RAccount._make(r)
        self._expire_pending(now)
        user = self.state.users.get(m.uid)
        key = fold(m.name)
        holder = self.state.nicks.get(key)
        verify = self.config.register_verify
        if m.how == b"nickserv":
            if user is None or user.account is not None:
                self._service(origin, m.uid, b"You are already logged in")
                return
            if self.state.account_taken(key, now) or holder is not user:
                self._service(origin, m.uid, b"Account %s already exists" % m.name)
                return
            if verify and not m.email:
                self._service(origin, m.uid, b"An email address is required")
                return
            if not verify:
                self.router.event(make(EAccount, m.name, m.password_hash, m.email, b"", now))
                self.router.event(make(ELogin, m.uid, m.name, b"nickserv-register", now))
                return
        else:
            if user is not None and user.account is not None:
                self._standard(
                    origin,
                    m.uid,
                    b"REGISTER",
                    b"ALREADY_AUTHENTICATED",
                    (user.account,),
                    b"You are already logged in",
                )
                return
            if self.state.account_taken(key, now) or (holder is not None and holder is not user):
                # (a nick someone else is using is theirs to register: no land grabs)
                exists = b"Account already exists"
                self._standard(origin, m.uid, b"REGISTER", b"ACCOUNT_EXISTS", (m.name,), exists)
                return
            if verify and not m.email:
                # (the worker asks for one too: this one only misses it across a reload)
                needed = b"An email address is required"
                self._standard(origin, m.uid, b"REGISTER", b"INVALID_EMAIL", (m.name,), needed)
                return
        if verify:
            code = secrets.token_hex(16).encode()  # 128 bits: VERIFY logs its sender in
            self.router.event(make(EAccount, m.name, m.password_hash, m.email, code, now))
            self.router.to_worker(origin, make(DPending, m.uid, m.name, m.email, code, m.how, now))
            return
        self.router.event(make(EAccount, m.name, m.password_hash, m.email, b"", now))
        if user is None:  # before registering itself: it logs in when it registers
            self.router.to_worker(origin, make(DRegistered, m.uid, m.name, b"register", now))
        else:
            self.router.event(make(ELogin, m.uid, m.name, b"register", now))

    def _verify(self, origin: int, r: Record, now: int) -> None:
        """draft/account-registration ``VERIFY <account> <code>`` (or NickServ's): the right
        code turns the registration awaiting verification into an account, and logs its
        sender in to it (whoever sends it: the code is the proof, as in Ergo). A wrong code,
        an expired registration or none at all: ``FAIL VERIFY INVALID_CODE``."""
        m = RVerify._make(r)
        self._expire_pending(now)
        user = self.state.users.get(m.uid)
        nickserv = m.how == b"nickserv"
        if user is not None and user.account is not None:
            if nickserv:
                self._service(origin, m.uid, b"You are already logged in as " + user.account)
            else:
                self._standard(
                    origin,
                    m.uid,
                    b"VERIFY",
                    b"ALREADY_AUTHENTICATED",
                    (m.account,),
                    b"You are already logged in",
                )
            return
        pending = self.state.pending.get(fold(m.account))
        # compare_digest: how long a comparison takes tells nothing about the code
        if pending is None or not hmac.compare_digest(pending.code, m.code):
            if nickserv:
                self._service(origin, m.uid, b"Invalid or expired verification code")
            else:
                why = b"Invalid or expired verification code"
                self._standard(origin, m.uid, b"VERIFY", b"INVALID_CODE", (m.account,), why)
            return
        self.router.event(make(EAccountVerify, pending.name, now))
        if user is None:  # before registering itself: it logs in when it registers
            self.router.to_worker(origin, make(DRegistered, m.uid, pending.name, b"verify", now))
        else:
            how = b"nickserv-verify" if nickserv else b"verify"
            self.router.event(make(ELogin, m.uid, pending.name, how, now))

    def _pending_drop(self, origin: int, r: Record, now: int) -> None:
        """A verification mail could not be sent: the registration is forgotten (if it is
        still the one that code was drawn for), and its name free again."""
        m = RPendingDrop._make(r)
        pending = self.state.pending.get(fold(m.name))
        if pending is not None and hmac.compare_digest(pending.code, m.code):
            self.router.event(make(EAccountDrop, pending.name, now))

    def _expire_pending(self, now: int) -> None:
        """Forget the registrations that awaited their VERIFY too long (``VERIFY_TIMEOUT_MS``),
        store included. Checked whenever a registration or a verification is decided: few
        wait at once, and until then an expired one already holds its name no more."""
        for pending in [p for p in self.state.pending.values() if p.expired(now)]:
            self.router.event(make(EAccountDrop, pending.name, now))

    def _login(self, origin: int, r: Record, now: int) -> None:
        """A user proved it owns an account (its worker checked the password): log it in,
        unless the account is gone (904). With SASL after registration it may be logged in
        already: to another account, the new one replaces it (SASL 3.2 reauthentication;
        account-notify shows it); to the same one, it is answered as a login and nothing
        changes. NickServ IDENTIFY while logged in is refused."""
        m = RLogin._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        account = self.state.accounts.get(fold(m.account))
        if account is None:
            if m.how == b"nickserv":
                self._service(origin, m.uid, b"Account %s does not exist" % m.account)
            else:
                self._reply(origin, m.uid, N.ERR_SASLFAIL, b"SASL authentication failed")
            return
        if user.account is not None and m.how == b"nickserv":
            self._service(origin, m.uid, b"You are already logged in as " + user.account)
            return
        if user.account is not None and fold(user.account) == fold(account.name):
            # SASL again, to the same account: answered as a login, nothing changes
            self._reply(origin, m.uid, N.RPL_LOGGEDIN, user.mask, account.name,
                        b"You are now logged in as " + account.name)  # fmt: skip
            self._reply(origin, m.uid, N.RPL_SASLSUCCESS, b"SASL authentication successful")
            return
        # (SASL reauthentication to another account: the new one replaces it, one event)
        self.router.event(make(ELogin, m.uid, account.name, m.how, now))

    # -- NickServ (commands/nickserv.py) ---------------------------------------------------------
    def _service(self, origin: int, uid: int, text: bytes) -> None:
        """A NickServ NOTICE for ``uid``, decided here."""
        self.router.to_worker(origin, make(DService, uid, text, self._now))

    def _account_drop(self, origin: int, r: Record, now: int) -> None:
        """NickServ DROP: the account goes, unless it is not the user's own (any more).
        Whoever is logged in to it is logged out first (account-notify ``ACCOUNT *``), in the
        same step: nobody is ever logged in to an account that does not exist."""
        m = RAccountDrop._make(r)
        user = self.state.users.get(m.uid)
        key = fold(m.account)
        account = self.state.accounts.get(key)
        if user is None:
            return
        if account is None or user.account is None or fold(user.account) != key:
            self._service(origin, m.uid, b"You can only drop the account you are logged in to")
            return
        for holder in [u for u in self.state.users.values() if u.account is not None]:
            if fold(holder.account or b"") == key:
                self.router.event(make(ELogin, holder.uid, b"", b"drop", now))
        self.router.event(make(EAccountDrop, account.name, now))
        self._service(origin, m.uid, b"Account %s has been dropped" % account.name)

    def _certfp(self, origin: int, r: Record, now: int) -> None:
        """NickServ CERT ADD/DEL: a certificate fingerprint added to the account its asker
        is logged in to, or removed. One certificate logs in to one account (SASL EXTERNAL
        could not choose): a fingerprint another account holds is refused, as in Ergo."""
        m = RCertfp._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        account = self.state.accounts.get(fold(user.account)) if user.account else None
        if account is None:
            self._service(origin, m.uid, b"You are not logged in")
            return
        have = account.certfps
        if m.add:
            holder = self.state.account_by_certfp(m.certfp)
            if holder is account:
                self._service(origin, m.uid, b"That certificate fingerprint is already yours")
                return
            if holder is not None:
                why = b"That certificate fingerprint is registered to another account"
                self._service(origin, m.uid, why)
                return
            if len(have) >= MAX_CERTFPS:
                self._service(
                    origin, m.uid, b"An account holds %d fingerprints at most" % MAX_CERTFPS
                )
                return
            certfps = (*have, m.certfp)
            done = b"Added certificate fingerprint %s to %s" % (m.certfp, account.name)
        else:
            if m.certfp not in have:
                self._service(origin, m.uid, b"No such certificate fingerprint on your account")
                return
            certfps = tuple(fp for fp in have if fp != m.certfp)
            done = b"Removed certificate fingerprint %s from %s" % (m.certfp, account.name)
        self.router.event(make(EAccountCerts, account.name, certfps, now))
        self._service(origin, m.uid, done)

    def _password(self, origin: int, r: Record, now: int) -> None:
        """NickServ PASSWD: the account its asker is logged in to gets the new password,
        unless the asker was logged out (or the account dropped) while the passwords were
        checked and hashed. Nobody is logged out: the others logged in with a password that
        was right when they did, as in Ergo. NickServ SASET: any account, for an IRC
        operator who holds the ``accounts`` privilege (checked here: its worker's replica
        may lag a MODE -o; its worker logs it)."""
        m = RPassword._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        key = fold(m.account)
        account = self.state.accounts.get(key)
        if m.operator:  # NickServ SASET: an IRC operator's reset
            if self._operator(origin, m.uid, "accounts") is None:
                return
            if account is None:
                self._service(origin, m.uid, b"Account %s does not exist" % m.account)
                return
        elif account is None or user.account is None or fold(user.account) != key:
            self._service(origin, m.uid, b"You are not logged in to %s" % m.account)
            return
        self.router.event(make(EAccountPassword, account.name, m.password_hash, now))
        self._service(origin, m.uid, b"Password changed for %s" % account.name)

    # -- IRCv3 draft/read-marker (commands/readmarker.py) --------------------------------------
    def _markread(self, origin: int, r: Record, now: int) -> None:
        """MARKREAD set: the marker becomes the later of the one held and the one asked for
        (it only ever moves forward), for the account the setter is logged in to now (or its
        connection): one E_MARKREAD either way, which answers the setter with the result."""
        m = RMarkread._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        owner = self.state.owner_of(user)
        ms = max(m.ms, self.state.markers.get(owner, m.target))
        account = owner if isinstance(owner, bytes) else b""
        self.router.event(make(EMarkread, account, m.uid, m.target, ms, now))

    # -- IRCv3 draft/metadata-3 (commands/metadata.py) ----------------------------------------
    def _metadata(self, origin: int, r: Record, now: int) -> None:
        """METADATA SET or CLEAR: on oneself, or on a channel one is an operator of (an IRC
        operator who may ``override``: on anyone), within MAX_KEYS keys. One E_METADATA,
        which answers the setter with the result even when nothing changed."""
        m = RMetadata._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        if is_channel(m.target):
            chan = self.state.channel(m.target)
            owner: int | bytes = chan.key if chan is not None else b""
            allowed = chan is not None and bool(chan.members.get(m.uid, 0) & OP)
        else:
            holder = self.state.user_by_nick(m.target)
            owner = holder.uid if holder is not None else 0
            allowed = holder is user
        if not owner:
            why = b"Invalid metadata target"
            self._standard(origin, m.uid, b"METADATA", b"INVALID_TARGET", (m.target,), why)
            return
        if not (allowed or "override" in user.privileges):
            why = b"You do not have permission to change that"
            context = (m.target, m.key or b"*")
            self._standard(origin, m.uid, b"METADATA", b"KEY_NO_PERMISSION", context, why)
            return
        if m.key and m.value is not None and self.state.metadata.full(owner, m.key):
            why = b"Too many metadata keys"
            context = (m.target, b"%d" % metadata.MAX_KEYS)
            self._standard(origin, m.uid, b"METADATA", b"LIMIT_REACHED", context, why)
            return
        user_uid, channel = (owner, b"") if isinstance(owner, int) else (0, owner)
        self.router.event(make(EMetadata, m.uid, user_uid, channel, m.key, m.value, now))

    # -- IRCv3 draft/message-redaction (commands/redact.py) -------------------------------------
    def _redact(self, origin: int, r: Record, now: int) -> None:
        """REDACT: allowed to the message's sender (the same connection, or one logged in to
        the account it was sent from); in a channel, also to its operators and to IRC
        operators who may ``override``, and only to its members. Decided here, in the one
        order: those told see it after the message itself."""
        m = RRedact._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        peer = 0
        chan = None
        if is_channel(m.target):
            chan = self.state.channel(m.target)
            if chan is None or m.uid not in chan.members:
                why = b"You are not on that channel"
                self._standard(origin, m.uid, b"REDACT", b"INVALID_TARGET", (m.target,), why)
                return
        else:
            other = self.state.user_by_nick(m.target)
            if other is None:
                why = b"No such nick"
                self._standard(origin, m.uid, b"REDACT", b"INVALID_TARGET", (m.target,), why)
                return
            peer = other.uid
        mine = m.sender == m.uid or (
            bool(m.account) and user.account is not None and fold(m.account) == fold(user.account)
        )
        chanop = chan is not None and (chan.members[m.uid] & OP or "override" in user.privileges)
        if not (mine or chanop):
            why = b"You may only redact your own messages"
            context = (m.target, m.msgid)
            self._standard(origin, m.uid, b"REDACT", b"REDACT_FORBIDDEN", context, why)
            return
        target = chan.name if chan is not None else m.target
        self.router.event(make(ERedact, m.uid, target, m.msgid, m.reason, peer, m.stored, now))

    def _ghost(self, origin: int, r: Record, now: int) -> None:
        """NickServ GHOST: disconnect whoever uses ``nick``, if the nick is the asker's
        account's name or its holder is logged in to the asker's account (as Ergo allows)."""
        m = RGhost._make(r)
        user = self.state.users.get(m.uid)
        if user is None:
            return
        target = self.state.nicks.get(fold(m.nick))
        if target is None:
            self._service(origin, m.uid, b"No one is using the nick " + m.nick)
            return
        if target is user:
            self._service(origin, m.uid, b"You cannot GHOST yourself")
            return
        mine = fold(user.account) if user.account is not None else None
        theirs = fold(target.account) if target.account is not None else None
        if mine is None or (fold(target.nick) != mine and theirs != mine):
            self._service(origin, m.uid, b"The nick %s is not yours" % target.nick)
            return
        self.router.event(
            make(EKill, m.uid, target.uid, b"GHOST command used by " + user.nick, now)
        )
        self._service(origin, m.uid, b"%s has been ghosted" % target.nick)

    def _protect(self, origin: int, r: Record, now: int) -> None:
        """Nick protection's rename (``nick_protection = rename``), decided here so that it
        is the same at every worker count: ``uid`` still uses the registered ``nick`` and is
        not logged in to it, so it becomes ``Guest`` and five digits of its uid (the next
        free number when that nick is taken)."""
        m = RProtect._make(r)
        user = self.state.users.get(m.uid)
        key = fold(m.nick)
        if user is None or fold(user.nick) != key or key not in self.state.accounts:
            return
        if user.account is not None and fold(user.account) == key:
            return
        number = m.uid % 100000
        guest = b"Guest%05d" % number
        while fold(guest) in self.state.nicks:
            number = (number + 1) % 100000
            guest = b"Guest%05d" % number
        self.router.event(make(ENick, m.uid, guest, now))

    def _standard(
        self,
        origin: int,
        uid: int,
        command: bytes,
        code: bytes,
        context: tuple[bytes, ...],
        description: bytes,
    ) -> None:
        """An IRCv3 ``FAIL`` for ``uid``, decided here."""
        fail = make(DStandard, uid, b"FAIL", command, code, context, description, self._now)
        self.router.to_worker(origin, fail)

    def _nick(self, origin: int, r: Record, now: int) -> None:
        _, uid, new = r  # RNick
        user = self.state.users.get(uid)
        if user is None:
            return
        holder = self.state.nicks.get(fold(new))
        if holder is not None and holder is not user:
            self._reply(origin, uid, N.ERR_NICKNAMEINUSE, new, b"Nickname is already in use")
            return
        if user.nick != new:
            self.router.event(make(ENick, uid, new, now))

    def _quit(self, origin: int, r: Record, now: int) -> None:
        q = RQuit._make(r)
        if q.uid in self.state.users:
            self.router.event(make(EQuit, q.uid, q.reason, now))

    def _move(self, origin: int, r: Record, now: int) -> None:
        """Channel-affine placement: move ``uid`` to worker ``to``, if it is still on the
        worker that asks, ``to`` is up and not too full, and it has not moved within
        ``placement_interval`` (no ping-pong). Decided here, in the one order, so two
        workers' proposals never cross and the load check sees every earlier move.
        A refusal is the D_DONE alone (:meth:`handle`).

        A move a new hub decides again after the old one decided it and a worker acted on it
        (``redo``) is a fact, decided as the old hub did: to the worker the socket went to,
        whatever the load or the interval; if that worker is gone, so is the client, and the
        user quits (once: a ghost held by nobody would keep its nick forever)."""
        m = RMove._make(r)
        user = self.state.users.get(m.uid)
        if user is None or user.worker != origin:
            return
        if self.redo:
            dst = self.redo.pop(m.uid, None)
            if dst is not None:
                if dst in self.workers():
                    self._moved_at[user.uid] = now
                    self.router.event(make(EMove, m.uid, origin, dst, now))
                else:
                    self.router.event(make(EQuit, m.uid, b"Lost while moving between workers", now))
                return
        # Where the user belongs as of now, which may differ from what the worker's replica
        # said (members that joined or moved since): two members that join at once on two
        # workers must not swap places
        last = self._moved_at.get(m.uid)
        interval = int(self.config.placement_interval * 1000)
        if last is not None and now - last < interval:
            return
        # ...among the workers that are up and have room for one more (a full one is
        # passed over for the next best, not waited for)
        workers = self.workers()
        average = len(self.state.users) / max(1, len(workers))
        most = max(average * PLACEMENT_LOAD_FACTOR, average + PLACEMENT_SLACK)
        load = self.state.load
        to = affine_worker(
            user, self._autojoin, lambda slot: slot in workers and load.get(slot, 0) + 1 <= most
        )
        if to is None:
            return
        m = m._replace(to=to)
        if len(self._moved_at) > 4096:
            self._moved_at = {u: t for u, t in self._moved_at.items() if now - t < interval}
        self._moved_at[user.uid] = now  # (the user's int, not the record's)
        self.router.event(make(EMove, m.uid, origin, m.to, now))

    @property
    def _autojoin(self) -> frozenset[bytes]:
        return frozenset(fold(c) for c in self.config.autojoin)

    def _away(self, origin: int, r: Record, now: int) -> None:
        a = RAway._make(r)
        if a.uid in self.state.users:
            self.router.event(make(EAway, a.uid, a.message, now))

    def _setname(self, origin: int, r: Record, now: int) -> None:
        """IRCv3 setname: the worker checked the realname; it becomes network state, and
        the user's channels are told (those that negotiated setname)."""
        s = RSetname._make(r)
        if s.uid in self.state.users:
            self.router.event(make(ESetname, s.uid, s.realname, now))

    def _umode(self, origin: int, r: Record, now: int) -> None:
        """RFC 2812 §3.1.5 user modes: the worker has checked them (a user changes only its own);
        they become network state, so every replica knows who is invisible, and who stopped
        being an operator (-o)."""
        m = RUmode._make(r)
        user = self.state.users.get(m.uid)
        if user is None or (b"o" in m.modes and b"o" not in user.modes):
            return  # +o comes only from OPER (R_OPER); a worker never asks this
        self.router.event(make(EUmode, m.uid, m.modes, m.changes, now))

    # -- operators (Modern IRC "Operators", OPER, KILL, WALLOPS) ---------------------------------
    def _oper(self, origin: int, r: Record, now: int) -> None:
        """OPER succeeded: the worker checked the password (off its loop) and the host; +o
        and the privileges become network state."""
        o = ROper._make(r)
        if o.uid in self.state.users:
            self.router.event(make(EOper, o.uid, o.name, o.privileges, True, now))

    def _kill_user(self, origin: int, r: Record, now: int) -> None:
        """Modern IRC KILL: decided here, so a victim on any worker goes the same way: every
        worker removes it, its channels see it quit, its own worker disconnects it."""
        k = RKill._make(r)
        if self._operator(origin, k.uid, "kill") is None:
            return
        target = self.state.nicks.get(fold(k.target))
        if target is None:
            self._reply(origin, k.uid, N.ERR_NOSUCHNICK, k.target, b"No such nick/channel")
            return
        self.router.event(make(EKill, k.uid, target.uid, k.comment, now))

    def _chghost(self, origin: int, r: Record, now: int) -> None:
        """CHGHOST (privilege ``chghost``): a user's new ``user@host``, wherever it is; the
        worker checked both parts. Nobody by that nick: 401 ERR_NOSUCHNICK; nothing to change:
        a NOTICE saying so."""
        c = RChghost._make(r)
        if self._operator(origin, c.uid, "chghost") is None:
            return
        target = self.state.nicks.get(fold(c.target))
        if target is None:
            self._reply(origin, c.uid, N.ERR_NOSUCHNICK, c.target, b"No such nick/channel")
            return
        username = c.username or target.username
        if (target.username, target.host) == (username, c.host):
            text = b"*** CHGHOST: %s is already %s" % (target.nick, target.mask)
            self.router.to_worker(origin, make(DNotice, c.uid, text, now))
            return
        self.router.event(make(EChghost, c.uid, target.uid, username, c.host, now))

    def _wallops(self, origin: int, r: Record, now: int) -> None:
        """RFC 2812 §4.7 / Modern IRC WALLOPS: to every user with +w, on whichever worker. One
        delivery per worker holding such a user; each worker picks its own. A scan of the
        users: WALLOPS is rare and privileged, so no index of +w users is kept for it."""
        w = RWallops._make(r)
        if self._operator(origin, w.uid, "wallops") is None:
            return
        workers = {u.worker for u in self.state.users.values() if b"w" in u.modes}
        for worker in sorted(workers):
            self.router.to_worker(worker, make(DWallops, w.uid, w.line, now))

    # -- server bans (K-lines) ------------------------------------------------------------------
    def _kline_on(
        self, uid: int, nick: bytes, username: bytes, host: bytes, now: int
    ) -> KLine | None:
        """The K-line in force at ``now`` that bans the connection registering as
        ``nick!username@host``, if any. A scan: K-lines are few, and only registrations ask
        (nothing at all is done while there is no K-line)."""
        if not self.state.klines:
            return None
        user = User(uid, nick, username, host, b"", 0, 0)
        for line in self.state.klines.values():
            if line.active(now) and kline_matches(line.mask, user):
                return line
        return None

    def _kline(self, origin: int, r: Record, now: int) -> None:
        """KLINE (privilege ``kline``): the K-line becomes network state, stamped with this
        decision's time (its expiry counts from it), and every user it matches, on whichever
        worker, leaves the network in the same event: their channels see them quit, their
        workers disconnect them. Anyone who registers after this decision is refused."""
        k = RKline._make(r)
        oper = self._operator(origin, k.uid, "kline")
        if oper is None:
            return
        expires = now + k.duration * 1000 if k.duration else 0
        victims = tuple(u.uid for u in self.state.users.values() if kline_matches(k.mask, u))
        self.router.event(
            make(EKline, k.uid, k.mask, oper.nick, k.reason, now, expires, victims, now)
        )

    def _unkline(self, origin: int, r: Record, now: int) -> None:
        """UNKLINE (privilege ``kline``): lift the K-line on a mask (any case), or say there
        is none in force."""
        u = RUnkline._make(r)
        if self._operator(origin, u.uid, "kline") is None:
            return
        line = self.state.klines.get(fold(u.mask))
        if line is None or not line.active(now):
            text = b"*** UNKLINE: no K-line on %s" % u.mask
            self.router.to_worker(origin, make(DNotice, u.uid, text, now))
            return
        self.router.event(make(EUnkline, u.uid, line.mask, now))

    # -- the store's health (runtime/storage.py) ------------------------------------------------
    def store_status(
        self,
        healthy: bool,
        error: bytes,
        queued: int,
        committed: int,
        dropped: int,
        notice: bytes,
        now: int,
    ) -> None:
        """The store's writer, in this sequencer's process, turned unhealthy or healthy again
        (``notice``: what every operator is told of it), or its counts moved: network state
        (E_STORE), so every worker answers CHATHISTORY by it and shows it in STATS S. No
        worker asked: the process that owns the writer calls this (runtime/storage.py)."""
        self.router.event(make(EStore, healthy, error, queued, committed, dropped, notice, now))

    def _counts(self, origin: int, r: Record, now: int) -> None:
        """STATS m (Modern IRC): a worker's command counts become network state, so any
        worker can answer for the whole server."""
        c = RCounts._make(r)
        self.router.event(make(ECounts, c.incarnation, c.counts, now))

    # -- channels (RFC 2812 §3.2) ------------------------------------------------------------
    def _member(self, origin: int, uid: int, name: bytes) -> tuple[User, Channel] | None:
        """The user and the channel, if ``uid`` is on it; else reply 403/442 and None."""
        user = self.state.users.get(uid)
        if user is None:
            return None
        chan = self.state.channels.get(fold(name))
        if chan is None:
            self._reply(origin, uid, N.ERR_NOSUCHCHANNEL, name, b"No such channel")
            return None
        if uid not in chan.members:
            self._reply(origin, uid, N.ERR_NOTONCHANNEL, chan.name, b"You're not on that channel")
            return None
        return user, chan

    def _join(self, origin: int, r: Record, now: int) -> None:
        _, uid, name, key = r  # RJoin
        user = self.state.users.get(uid)
        if user is None:
            return
        chan = self.state.channels.get(fold(name))
        if chan is None:
            if len(user.channels) >= self.config.max_channels:
                self._reply(
                    origin, uid, N.ERR_TOOMANYCHANNELS, name, b"You have joined too many channels"
                )
                return
            self.router.event(make(EJoin, uid, name, OP, now // 1000, self._kept(name), now))
            return
        if uid in chan.members:
            return
        error = self._join_refusal(user, chan, key)
        if error is not None and not (
            error[0] in _OVERRIDABLE_JOIN
            and self._override(origin, uid, b"JOIN %s despite %s" % (chan.name, error[2]))
        ):
            self._reply(origin, uid, error[0], chan.name, error[1])
            return
        hidden = HIDDEN if b"D" in chan.modes else 0  # delayed join: shown when it speaks
        self.router.event(make(EJoin, uid, chan.name, hidden, chan.created, self._kept(name), now))
        self._maybe_delay_joins(chan, now)

    def _maybe_delay_joins(self, chan: Channel, now: int) -> None:
        """The ``lobby_delay_join_at`` setting: an autojoin channel that grew past that many
        members gets +D from the server (a MODE every member sees), so that each further
        JOIN costs one line to its joiner instead of one to every member (issue 14)."""
        at = self.config.lobby_delay_join_at
        if (
            at > 0
            and len(chan.members) > at
            and b"D" not in chan.modes
            and any(fold(name) == chan.key for name in self.config.autojoin)
        ):
            self.router.event(make(EMode, 0, chan.key, b"+D", (), now))

    def _kept(self, name: bytes) -> tuple[int, ...]:
        """Where a joiner's replay of the history ends (EJoin.kept): the last message the
        store keeps in the channel ``name``, or (); a channel created anew has the history of
        its name."""
        last = self.kept.get(fold(name))
        return last_of_run(last) if last is not None else ()

    def _join_refusal(
        self, user: User, chan: Channel, key: bytes
    ) -> tuple[bytes, bytes, bytes] | None:
        """Why ``user`` may not join ``chan``: the numeric, its text and the rule."""
        if len(user.channels) >= self.config.max_channels:
            return N.ERR_TOOMANYCHANNELS, b"You have joined too many channels", b"CHANLIMIT"
        invited = user.uid in chan.invites
        if b"i" in chan.modes and not invited and not access.invite_exempt(chan, user):
            return N.ERR_INVITEONLYCHAN, b"Cannot join channel (+i)", b"+i"
        if chan.password and key != chan.password:
            return N.ERR_BADCHANNELKEY, b"Cannot join channel (+k)", b"+k"
        if chan.limit and len(chan.members) >= chan.limit and not invited:
            return N.ERR_CHANNELISFULL, b"Cannot join channel (+l)", b"+l"
        if not invited and chan.bans and access.banned(chan, user):
            return N.ERR_BANNEDFROMCHAN, b"Cannot join channel (+b)", b"+b"
        return None

    def _part(self, origin: int, r: Record, now: int) -> None:
        p = RPart._make(r)
        found = self._member(origin, p.uid, p.channel)
        if found is not None:
            self.router.event(make(EPart, p.uid, found[1].key, p.reason, now))

    def _topic(self, origin: int, r: Record, now: int) -> None:
        _, uid, name, topic = r  # RTopic
        found = self._member(origin, uid, name)
        if found is None:
            return
        user, chan = found
        if b"t" in chan.modes and not self._is_op(origin, uid, chan, b"TOPIC " + chan.name):
            return
        topic = truncate_utf8(topic, self.config.topiclen)
        self.router.event(make(ETopic, uid, chan.key, topic, user.mask, now // 1000, now))

    def _kick(self, origin: int, r: Record, now: int) -> None:
        _, uid, name, target_nick, reason = r  # RKick
        found = self._member(origin, uid, name)
        if found is None:
            return
        _user, chan = found
        if not self._is_op(origin, uid, chan, b"KICK %s %s" % (chan.name, target_nick)):
            return
        target = self.state.nicks.get(fold(target_nick))
        if target is None or target.uid not in chan.members:
            self._reply(
                origin,
                uid,
                N.ERR_USERNOTINCHANNEL,
                target_nick,
                chan.name,
                b"They aren't on that channel",
            )
            return
        reason = truncate_utf8(reason, self.config.kicklen)
        self.router.event(make(EKick, uid, chan.key, target.uid, reason, now))

    def _invite(self, origin: int, r: Record, now: int) -> None:
        _, uid, target_nick, name = r  # RInvite
        target = self.state.nicks.get(fold(target_nick))
        if target is None:
            self._reply(origin, uid, N.ERR_NOSUCHNICK, target_nick, b"No such nick/channel")
            return
        found = self._member(origin, uid, name)
        if found is None:
            return
        _user, chan = found
        if b"i" in chan.modes and not self._is_op(
            origin, uid, chan, b"INVITE %s %s" % (target.nick, chan.name)
        ):
            return
        if target.uid in chan.members:
            self._reply(
                origin, uid, N.ERR_USERONCHANNEL, target.nick, chan.name, b"is already on channel"
            )
            return
        self.router.event(make(EInvite, uid, target.uid, chan.key, now))

    def _mode(self, origin: int, r: Record, now: int) -> None:
        """RFC 2812 §3.2.3 channel modes: validate each change, emit only the effective ones."""
        _, uid, name, modestring, args = r  # RMode
        found = self._member(origin, uid, name)
        if found is None:
            return
        user, chan = found
        is_op = bool(chan.members[uid] & OP)
        overriding = False
        changes = bytearray()
        applied_args: list[bytes] = []
        # The MODE line every member gets must fit in 512 bytes: room for the arguments once
        # the source, the channel, the mode letters with their signs and ':' are counted.
        room = MAX_LINE - len(b":%s MODE %s  :\r\n" % (user.mask, chan.name))
        room -= 2 * MAX_MODE_CHANGES
        pending = list(args)
        adding = True
        sign = 0
        count = 0
        # The channel as the changes accepted so far leave it: RFC 2812 §3.2.3 applies a
        # MODE's changes in order, so "+o-o bob bob" gives and takes, and "+mm" is one +m.
        members: dict[int, int] = {}
        # the access lists' masks (folded) as the changes so far leave them, and their size
        lists = {c: {fold(e.mask) for e in access.entries(chan, c)} for c in (b"b", b"e", b"I")}
        listed = access.count(chan)
        flags, password, limit = chan.modes, chan.password, chan.limit
        for letter in modestring:
            c = bytes((letter,))
            if c in b"+-":
                adding = c == b"+"
                continue
            if c not in LIST_MODES + PARAM_ALWAYS + PARAM_ON_SET + FLAG_MODES + MEMBER_MODES:
                self._reply(origin, uid, N.ERR_UNKNOWNMODE, c, b"is unknown mode char to me")
                continue
            if c in LIST_MODES and not pending:  # a list asked for (RFC 2812 §3.2.3)
                if access.may_list(chan, c, chan.members[uid]) or self._is_op(
                    origin, uid, chan, b"MODE %s %s" % (chan.name, c)
                ):
                    for reply in access.list_replies(chan, c, self.config.server_name):
                        self._reply(origin, uid, *reply)
                continue
            needs_arg = c in LIST_MODES + PARAM_ALWAYS + MEMBER_MODES or (
                c in PARAM_ON_SET and adding
            )
            arg = b""
            if needs_arg:
                if not pending:
                    if c == b"k" and not adding:
                        arg = b"*"
                    else:
                        continue  # a mode that needs an argument and has none is ignored
                else:
                    arg = pending.pop(0)
            if not is_op:
                if "override" not in user.privileges:
                    self._is_op(origin, uid, chan, b"")  # answers 482
                    return
                is_op = overriding = True  # an IRC operator's override (logged below)
            if count >= MAX_MODE_CHANGES:
                break
            if c in MEMBER_MODES:
                target = self.state.nicks.get(fold(arg))
                if target is None:
                    self._reply(origin, uid, N.ERR_NOSUCHNICK, arg, b"No such nick/channel")
                    continue
                if target.uid not in chan.members:
                    self._reply(
                        origin,
                        uid,
                        N.ERR_USERNOTINCHANNEL,
                        arg,
                        chan.name,
                        b"They aren't on that channel",
                    )
                    continue
                bit = OP if c == b"o" else VOICE
                had = members.get(target.uid, chan.members[target.uid])
                if bool(had & bit) == adding:
                    continue
                members[target.uid] = had | bit if adding else had & ~bit
                arg = target.nick
            elif c in LIST_MODES:
                entry = access.normalise(c, arg)
                if entry is None:
                    self._reply(
                        origin, uid, N.ERR_INVALIDMODEPARAM, chan.name, c, arg, b"Invalid mask"
                    )
                    continue
                held = lists[c]
                key = fold(entry)
                if (key in held) == adding:
                    continue
                if adding:
                    if listed >= access.MAX_ENTRIES:
                        full = b"Channel list is full"  # (Modern IRC: the mode, not the mask)
                        self._reply(origin, uid, N.ERR_BANLISTFULL, chan.name, c, full)
                        continue
                    held.add(key)
                    listed += 1
                else:  # (the entry as it was set: a replica removes it up to case)
                    held.discard(key)
                    listed -= 1
                arg = entry
            elif c == b"k":
                if adding and (not arg or b" " in arg or b"," in arg or arg == password):
                    continue
                if not adding and not password:
                    continue
                password = arg if adding else b""
            elif c == b"l":
                if adding:
                    if not arg.isdigit() or int(arg) <= 0 or int(arg) == limit:
                        continue
                    arg = b"%d" % int(arg)
                    limit = int(arg)
                elif not limit:
                    continue
                else:
                    limit = 0
            else:
                if (c in flags) == adding:
                    continue
                flags = flags + c if adding else flags.replace(c, b"")
            if needs_arg:
                if len(arg) + 1 > room:
                    continue  # a change whose argument would not fit in the line is ignored
                room -= len(arg) + 1
            want = 1 if adding else -1
            if sign != want:
                changes += b"+" if adding else b"-"
                sign = want
            changes += c
            if needs_arg:
                applied_args.append(arg)
            count += 1
        if changes:
            if overriding:
                action = b" ".join((b"MODE", chan.name, bytes(changes), *applied_args))
                self._override(origin, uid, action + b" (not a channel operator)")
            self.router.event(make(EMode, uid, chan.key, bytes(changes), tuple(applied_args), now))

    # -- messages (RFC 2812 §3.3): the hot path; no state changes, so no barrier -------------------
    def _chanmsg(self, origin: int, r: Record, now: int) -> None:
        _, uid, key, line, is_notice, _doubted, first, tags, flags = r  # RChanMsg
        chan = self.state.channels.get(key)
        if chan is not None and may_speak(self.state, chan, uid) and not ctcp_blocked(chan, line):
            if uid in chan.hidden:  # delayed join (+D): its JOIN is shown right before this
                self.router.event(make(EReveal, key, (uid,), now))
            # DChan, by hand
            self.router.to_channel(chan, (D_CHAN, key, uid, line, first, tags, flags, now))
            return
        # Either the worker doubted it too (it waits for this answer under its barrier), or a
        # change decided just before (a PART, a +m) won the race. Rare: only now find the
        # target's spelling for the reply.
        if not is_notice and not flags & TAGMSG:
            refusal = message_refusal(self.state, uid, key, line.split(b" ", 3)[2].rstrip(), True)
            if refusal is None and chan is not None and ctcp_blocked(chan, line):
                refusal = N.ERR_CANNOTSENDTOCHAN, chan.name, b"Cannot send CTCP to channel (+C)"
            if refusal is not None:
                self._reply(origin, uid, *refusal)

    def _chanseg(self, origin: int, r: Record, now: int) -> None:
        """A segment that cannot be taken whole (the state changed since its approvals, or
        a new hub decides again what the workers resent): each message as the R_CHANMSG it
        stands for, in order, exactly as if it had come alone."""
        payload = r[3]
        items = marshal.loads(payload) if isinstance(payload, bytes) else payload
        chanmsg = self._chanmsg
        for i in range(0, len(items), SEG_FIELDS):
            key, uid, line, first, notice = items[i : i + 5]
            chanmsg(origin, (R_CHANMSG, uid, key, line, notice, False, first, b"", 0), now)

    def _usermsg(self, origin: int, r: Record, now: int) -> None:
        m = RUserMsg._make(r)
        uid, line, is_notice = m.uid, m.line, m.notice
        target = self.state.nicks.get(m.target)
        if target is None:
            if not is_notice:
                nick = line.split(b" ", 3)[2].rstrip()
                self._reply(origin, uid, N.ERR_NOSUCHNICK, nick, b"No such nick/channel")
            return
        first, tags, flags = m.first, m.tags, m.flags
        self.router.to_worker(
            target.worker, make(DUser, target.uid, uid, line, first, tags, flags, now)
        )
        if m.echo:
            # IRCv3 echo-message: the sender's copy, decided here with the same time and
            # msgid, in order (to oneself too: then the delivery and the echo both arrive)
            echo = make(DUser, uid, uid, line, first, tags, flags | ECHO, now)
            self.router.to_worker(origin, echo)
        if target.away and not is_notice and not flags & TAGMSG:
            # decided here, not from the worker's replica, which may miss a recent AWAY
            self._reply(origin, uid, N.RPL_AWAY, target.nick, target.away)


def affine_worker(
    user: User, skip: frozenset[bytes], allowed: Callable[[int], bool] | None = None
) -> int | None:
    """The worker ``user`` would rather be on (channel-affine placement, engine/placement.py),
    or None where it is is as good as any: each worker scores the share of each of the
    user's channels' other members it holds (a share, so a big channel weighs no more than
    a small one), channels in ``skip`` (folded names: the autojoin channels, where everyone
    is) not counted. Another worker must score strictly higher, so ties never move anyone
    (no ping-pong between two equal halves). With ``allowed``, only the workers it lets in
    are candidates (the sequencer's: up, and not full), so a user whose best worker is full
    goes to the next best, and a room too big for one worker's share gathers on two
    instead of staying on all of them."""
    scores: dict[int, float] = {}
    here = user.worker
    for chan in user.channels:
        others = len(chan.members) - 1
        if others < 1 or chan.key in skip:
            continue
        share = 1.0 / others
        for slot, count in chan.workers.items():
            scores[slot] = scores.get(slot, 0.0) + (count - (slot == here)) * share
    if allowed is not None:
        scores = {slot: score for slot, score in scores.items() if slot == here or allowed(slot)}
    if not scores:
        return None
    best = max(scores, key=lambda slot: (scores[slot], slot == here))
    return best if best != here and scores[best] > scores.get(here, 0.0) else None


def is_ctcp(line: bytes) -> bool:
    """Is the formatted PRIVMSG/NOTICE ``line`` (``:src PRIVMSG #chan :text``) a CTCP other
    than ACTION (``/me``)? What +C keeps out of a channel (Modern IRC, "No CTCP")."""
    at = line.find(b" :\x01")
    return at >= 0 and line[at + 3 : at + 10] not in (b"ACTION ", b"ACTION\x01")


def ctcp_blocked(chan: Channel, line: bytes) -> bool:
    """+C: no CTCP but ACTION to the channel, from anyone (ERR_CANNOTSENDTOCHAN)."""
    return b"C" in chan.modes and is_ctcp(line)


def may_speak(state: State, chan: Channel, uid: int) -> bool:
    """RFC 2812 §3.3.1 / Modern IRC channel modes: may ``uid`` send to ``chan``?
    +n keeps out non-members; +m silences members without voice or op; a ban or a mute
    that no exception lifts silences members without voice or op (network/access.py)."""
    flags = chan.members.get(uid)
    if flags is None:
        if b"n" in chan.modes:
            return False
        flags = 0
    if flags & (OP | VOICE):
        return True
    if b"m" in chan.modes:
        return False
    if chan.bans:
        user = state.users.get(uid)
        return user is None or not access.muted(chan, user)
    return True


def message_refusal(
    state: State, uid: int, key: bytes, target: bytes, to_channel: bool
) -> tuple[bytes, bytes, bytes] | None:
    """Why ``uid`` may not send a PRIVMSG/NOTICE to ``target`` (folded: ``key``), as a numeric
    and its params, or None. The worker asks it of its replica to answer at once and in order;
    the sequencer asks it of the authoritative state to settle races."""
    if to_channel:
        chan = state.channels.get(key)
        if chan is None:
            return N.ERR_NOSUCHCHANNEL, target, b"No such channel"
        if not may_speak(state, chan, uid):
            return N.ERR_CANNOTSENDTOCHAN, chan.name, b"Cannot send to channel"
        return None
    if key not in state.nicks:
        return N.ERR_NOSUCHNICK, target, b"No such nick/channel"
    return None
