"""The worker's replica: apply what the sequencer decided, and show it to local clients.

Owns: applying each sequenced event to this worker's copy of the network state, and
delivering what local clients must see of it: a channel's messages (the hot path), private
messages, WALLOPS, and the lines every state change shows (JOIN, PART, QUIT, NICK, TOPIC,
MODE, KICK, INVITE, KILL, K-lines, AWAY replies, OPER's answer, and the welcome burst on
registration), the IRCv3 notifications of those changes (extended-join, away-notify,
invite-notify, setname, chghost, account-notify), and MONITOR's online/offline notices, which
:mod:`fastchat.server.commands.monitor` renders. Each line is rendered once
(:mod:`fastchat.server.render`) and the same bytes go to every recipient with the same
capabilities.
Must never: decide anything (the sequencer did) or touch a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, NamedTuple

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.server.caps import (
    Meta,
    Registry,
    account_notify,
    away_notify,
    chghost,
    extended_join,
    invite_notify,
    message_redaction,
    message_tags,
    metadata,
    multi_prefix,
    no_implicit_names,
    read_marker,
    setname,
    userhost_in_names,
)
from fastchat.server.commands import accounts, history, monitor, nickserv, readmarker
from fastchat.server.commands import metadata as metadata_command
from fastchat.server.commands.registration import feed
from fastchat.server.connection import NO_OUTPUT, Client
from fastchat.server.network.records import (
    D_CHAN,
    D_USER,
    D_WALLOPS,
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
    ECHO,
    HIDDEN,
    OP,
    TAGMSG,
    VOICE,
    DChan,
    DUser,
    DWallops,
    EAway,
    EChghost,
    EInvite,
    EJoin,
    EKick,
    EKill,
    EKline,
    ELogin,
    EMarkread,
    EMetadata,
    EMode,
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
    Record,
)
from fastchat.server.network.state import Channel, User
from fastchat.server.registration import Input
from fastchat.server.render import dates, lines, replies
from fastchat.server.render.variants import Variants

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore


class NotifyBits(NamedTuple):
    """The bits of the IRCv3 capabilities that change which state-change lines a client is
    sent (0 for one the registry does not offer: nobody has it)."""

    extended_join: int
    away_notify: int
    account_notify: int
    invite_notify: int
    setname: int
    chghost: int

    @classmethod
    def of(cls, caps: Registry) -> NotifyBits:
        return cls(
            caps.bit(extended_join.NAME),
            caps.bit(away_notify.NAME),
            caps.bit(account_notify.NAME),
            caps.bit(invite_notify.NAME),
            caps.bit(setname.NAME),
            caps.bit(chghost.NAME),
        )


class Replica:
    """Applies a core's sequenced records and renders them for its local clients."""

    __slots__ = ("_message_tags", "bits", "core", "state", "table")

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        self.state = core.state
        self._message_tags = core.caps.bit(message_tags.NAME)
        self.bits = NotifyBits.of(core.caps)
        self.table: dict[int, Callable[[Record], None]] = {
            D_CHAN: self.d_chan,
            D_USER: self._d_user,
            E_INTRO: self._e_intro,
            E_NICK: self._e_nick,
            E_JOIN: self._e_join,
            E_PART: self._e_part,
            E_QUIT: self._e_quit,
            E_TOPIC: self._e_topic,
            E_MODE: self._e_mode,
            E_KICK: self._e_kick,
            E_AWAY: self._e_away,
            E_INVITE: self._e_invite,
            E_UMODE: self._e_umode,
            E_OPER: self._e_oper,
            E_KILL: self._e_kill,
            E_KLINE: self._e_kline,
            E_UNKLINE: self._e_unkline,
            D_WALLOPS: self._d_wallops,
            E_COUNTS: self._e_counts,
            E_SETNAME: self._e_setname,
            E_ACCOUNT: self._e_account,
            E_LOGIN: self._e_login,
            E_ACCOUNTDROP: self._e_account,
            E_ACCOUNTVERIFY: self._e_account,
            E_ACCOUNTCERTS: self._e_account,
            E_ACCOUNTPASSWORD: self._e_account,
            E_CHGHOST: self._e_chghost,
            E_STORE: self._e_store,
            E_REVEAL: self._e_reveal,
            E_MARKREAD: self._e_markread,
            E_REDACT: self._e_redact,
            E_METADATA: self._e_metadata,
        }

    # -- delivering ---------------------------------------------------------------------------
    def d_chan(self, rec: Record) -> None:
        """DChan: a message (or a run of them) for a channel's local members but its sender
        (unless it negotiated echo-message).

        The hot path: one formatted line, the same bytes appended to every local member's
        queue. No per-delivery accounting: the shell bounds a queue (--sendq) only once the
        kernel stops taking its bytes. Only while some local client negotiated a capability
        that changes what it is sent (tags, or echo-message: its own messages back) does the
        fan-out look at each member's capabilities (``core.tagged``); until then it costs
        nothing."""
        chan = self.state.channels.get(rec[1])
        if chan is None:
            return
        core = self.core
        if core.tagged or rec[6]:  # DChan.flags: a TAGMSG or a STATUSMSG
            self._d_chan_for_some(chan, rec)
            return
        sender = rec[2]
        line = rec[3]
        dirty = core.dirty
        for uid, client in chan.local.items():
            if uid != sender:
                pending = client.pending
                if not pending:
                    if pending is NO_OUTPUT:  # (shared: a list of its own first)
                        pending = client.pending = []
                    dirty.append(client)
                pending.append(line)

    def _d_chan_for_some(self, chan: Channel, rec: Record) -> None:
        """A channel message whose recipients' capabilities or membership matter: the sender
        too if it negotiated echo-message (in the channel's one order), a TAGMSG only to
        clients that negotiated message-tags, a STATUSMSG only to members with one of its
        member flags (and its sender's echo).

        Hot while any local client has tags: one pass over the members, and the variant
        looked up only when a member's capabilities differ from the previous member's (in
        a room, most members asked for the same)."""
        d = DChan._make(rec)
        core = self.core
        sender, flags = d.sender, d.flags
        echo = core.echo_bit
        tags_only = self._message_tags if flags & TAGMSG else 0
        status = flags & (OP | VOICE)
        members = chan.members
        get = self._variants(d.line, self._message_meta(d.time, sender, d.first, d.tags)).get
        mask = core.caps.tag_mask
        dirty = core.dirty
        key = 0
        data = d.line
        for uid, client in chan.local.items():
            caps = client.caps
            if uid == sender:
                if not caps & echo:
                    continue
            elif status and not members.get(uid, 0) & status:
                continue
            if tags_only and not caps & tags_only:
                continue
            if caps & mask != key:
                key = caps & mask
                data = get(key)
            if client.label is not None:  # rare: a labeled command is open
                self._deliver(client, data, sender)
                continue
            pending = client.pending
            if not pending:
                if pending is NO_OUTPUT:  # (shared: a list of its own first)
                    pending = client.pending = []
                dirty.append(client)
            pending.append(data)

    def _message_meta(self, time: int, sender: int, first: int, tags: bytes) -> Meta:
        """What the tags of a relayed PRIVMSG/NOTICE/TAGMSG are made of (see Meta)."""
        user = self.state.users.get(sender)
        bot = user is not None and b"B" in user.modes  # IRCv3 bot-mode: user mode +B
        return Meta(time, sender, first, tags, bot)

    def _variants(self, line: bytes, meta: Meta) -> Variants:
        """The forms of ``line`` for each capability set, tagged from ``meta`` (and its
        sender's account, IRCv3 account-tag, from the state as this line's place in the
        order has it)."""
        registry = self.core.caps
        if meta.sender and meta.account is None:
            sender = self.state.users.get(meta.sender)
            if sender is not None and sender.account is not None:
                meta = meta._replace(account=sender.account)
        if meta.seq < 0:
            return Variants(line, lambda key: registry.tags(key, meta))
        # a message: each line of a run is a message with its own msgid (caps/message_tags.py)
        stem = message_tags.msgid_prefix(meta.time, meta.sender)
        return Variants(line, lambda key: registry.tags(key, meta), b"msgid", stem, meta.seq)

    def _deliver(self, client: Client, data: bytes, caused_by: int) -> None:
        """One line to a client whose labeled command may be open: a line it did not cause
        is not part of that command's reply (engine/labels.py)."""
        if client.label is not None and client.uid != caused_by:
            self.core.labels.other(client, data)
        else:
            self.core.send(client, data)

    def _fanout(
        self, clients: Iterable[Client], line: bytes, meta: Meta, caused_by: int = -1
    ) -> None:
        """Send ``line`` to ``clients``, each in the variant its capabilities ask for: one
        ``bytes`` per distinct variant, the plain one shared by everyone without tags. For a
        client whose labeled command is open, a line it did not cause (``caused_by``, by
        default the line's sender) is not part of the reply (engine/labels.py)."""
        core = self.core
        send = core.send
        if not core.tagged:
            for client in clients:
                send(client, line)
            return
        mask = core.caps.tag_mask
        get = self._variants(line, meta).get
        cause = meta.sender if caused_by == -1 else caused_by
        for client in clients:
            self._deliver(client, get(client.caps & mask), cause)

    def _d_user(self, rec: Record) -> None:
        d = DUser._make(rec)
        client = self.state.local.get(d.target)
        if client is None:
            return
        if d.flags & TAGMSG and not client.caps & self._message_tags:
            return
        meta = self._message_meta(d.time, d.sender, d.first, d.tags)
        # A message to oneself arrives twice with echo-message: as delivered, which is not
        # the reply to a labeled PRIVMSG, and as the echo, which is (labeled-response).
        caused_by = d.sender if d.sender != d.target or d.flags & ECHO else 0
        self._fanout((client,), d.line, meta, caused_by)

    def _members_of_channels(self, uid: int) -> dict[int, Client]:
        """Local clients that share a channel with ``uid`` (each once), but the channels
        where ``uid`` is a hidden member (delayed join, +D): nobody there has seen it join,
        so nobody there is told of its NICK, QUIT, AWAY... (InspIRCd's delayjoin does the
        same)."""
        user = self.state.users.get(uid)
        seen: dict[int, Client] = {}
        if user is not None:
            for chan in user.channels:
                if uid not in chan.hidden:
                    seen.update(chan.local)
        return seen

    def _with_cap(self, clients: Iterable[Client], bit: int) -> list[Client]:
        """Those of ``clients`` that negotiated the capability ``bit``."""
        return [c for c in clients if c.caps & bit]

    def _show_join(
        self, user: User, chan: Channel, clients: Collection[Client], meta: Meta
    ) -> None:
        """``user``'s JOIN of ``chan`` for ``clients``: IRCv3 extended-join's form (account and
        realname) for those that negotiated it, the plain one for the others, each rendered
        once."""
        bit = self.bits.extended_join
        extended = [c for c in clients if c.caps & bit]
        # the common case, nobody here asked for it: one pass, and all get the plain line
        plain = [c for c in clients if not c.caps & bit] if extended else clients
        if plain:
            self._fanout(plain, lines.join(user.mask, chan.name), meta)
        if extended:
            line = lines.join_extended(user.mask, chan.name, user.account, user.realname)
            self._fanout(extended, line, meta)

    def _show_away_on_join(self, user: User, clients: Iterable[Client], meta: Meta) -> None:
        """IRCv3 away-notify: "clients will be sent an AWAY message ... when a user joins and
        has an away message set", right after its JOIN (not to the user itself)."""
        if user.away:
            told = [c for c in clients if c.caps & self.bits.away_notify and c.uid != user.uid]
            if told:
                self._fanout(told, lines.away(user.mask, user.away), meta)

    def notify_account(self, user: User, time: int) -> None:
        """IRCv3 account-notify: ``user`` logged in to ``user.account`` (None: logged out).
        ``:nick!user@host ACCOUNT <account>`` (or ``*``) goes to the local clients that share
        a channel with it, itself included, that negotiated account-notify.

        Called where E_LOGIN is applied, with its time."""
        recipients = self._members_of_channels(user.uid)
        me = self.state.local.get(user.uid)
        if me is not None:
            recipients[user.uid] = me
        self._add_watchers(recipients, user, self.bits.account_notify)
        told = self._with_cap(recipients.values(), self.bits.account_notify)
        if told:
            self._fanout(told, lines.account(user.mask, user.account), Meta(time, user.uid))

    def _add_watchers(self, recipients: dict[int, Client], user: User, bit: int) -> None:
        """IRCv3 extended-monitor: the local clients that MONITOR ``user``'s nick and
        negotiated both extended-monitor and ``bit`` get its notification too (each once)."""
        for client in monitor.extended_watchers(self.core, user, bit):
            recipients.setdefault(client.uid, client)

    # -- events ---------------------------------------------------------------------------------
    def _e_intro(self, ev: Record) -> None:
        core = self.core
        client = core.clients.get(ev[1])  # EIntro.uid
        if client is not None:  # the user takes the client's uid object, not the record's
            ev = (ev[0], client.uid, *ev[2:])
        if not self.state.apply(ev):
            return
        uid = ev[1]
        monitor.signed_on(core, self.state.users[uid])
        if client is None or client.closed:
            return
        user = self.state.users[uid]
        client.user = user
        # the state's copies, shared with other users (State.shared): the client's own go
        client.nick, client.username, client.realname = user.nick, user.username, user.realname
        # (its prefix, ``client.source``, is made when it first speaks: connection.source_of)
        feed(client, Input.INTRO)
        self.state.local[uid] = client
        cfg = core.config
        core.send_lines(client, replies.welcome(cfg, user, core.created))
        core.send_lines(client, replies.lusers(cfg, user.nick, self.state, core.local_count))
        core.send_lines(client, replies.motd(cfg, user.nick))
        nickserv.took_nick(core, client, user, core.nick_deadlines)

    def _e_nick(self, ev: Record) -> None:
        e = ENick._make(ev)
        user = self.state.users.get(e.uid)
        if user is None:
            return
        line = lines.nick(user.mask, e.nick)
        old_nick = user.nick
        recipients = self._members_of_channels(user.uid)
        me = self.state.local.get(user.uid)
        if me is not None:
            recipients[user.uid] = me
        self.state.apply(ev)
        self._fanout(recipients.values(), line, Meta(e.time, e.uid))
        monitor.renamed(self.core, user, old_nick)
        if me is not None:
            me.nick = user.nick
            me.source = b""  # made again from the new mask when next needed (source_of)
            nickserv.took_nick(self.core, me, user, self.core.nick_deadlines)

    def _e_join(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        e = EJoin._make(ev)
        user = self.state.users[e.uid]
        chan = self.state.channels[fold(e.channel)]
        me = chan.local.get(user.uid)
        meta = Meta(e.time, e.uid)
        if e.flags & HIDDEN:  # delayed join (+D): the joiner alone sees it, for now
            if me is not None:
                self._show_join(user, chan, (me,), meta)
        else:
            members = list(chan.local.values())
            self._show_join(user, chan, members, meta)
            self._show_away_on_join(user, members, meta)
        if me is not None:
            core = self.core
            cfg = core.config
            if chan.topic:
                core.send_lines(me, replies.topic(cfg, me.name, chan))
            caps = core.caps
            names = not caps.bit(no_implicit_names.NAME) & me.caps
            if names:
                shown = replies.name_replies(
                    cfg,
                    me.name,
                    self.state,
                    chan,
                    multi_prefix=bool(caps.bit(multi_prefix.NAME) & me.caps),
                    userhost=bool(caps.bit(userhost_in_names.NAME) & me.caps),
                    asker=me.uid,
                )
                core.send_lines(me, shown)
            if caps.bit(read_marker.NAME) & me.caps:  # "before RPL_ENDOFNAMES"
                marker = self.state.markers.get(self.state.owner_of(user), chan.name)
                core.send(me, readmarker.line(cfg.server_name, chan.name, marker))
            if names:
                core.send(me, replies.end_of_names(cfg, me.name, chan.name))
            if caps.bit(metadata.NAME) & me.caps and me.metadata_subs:
                metadata_command.sync_on_join(core, me, chan)
            history.replay_on_join(core, me, chan, e.kept, e.time)  # the last lines, maybe

    def _reveal_to(self, chan: Channel, uids: Iterable[int], meta: Meta) -> None:
        """Delayed join (+D): the JOINs of ``chan``'s members ``uids``, just revealed, for
        its local members but each revealed one itself (it saw its JOIN when it joined),
        with away-notify's AWAY as a visible join has it (InspIRCd's delayjoin)."""
        users = self.state.users
        for uid in uids:
            user = users.get(uid)
            if user is None:
                continue
            members = [c for other, c in chan.local.items() if other != uid]
            if members:
                self._show_join(user, chan, members, meta._replace(sender=uid))
                self._show_away_on_join(user, members, meta._replace(sender=uid))

    def _e_reveal(self, ev: Record) -> None:
        """Delayed join: hidden members speak in ``chan`` (the message follows this in the
        order): the others are shown their JOIN first."""
        e = EReveal._make(ev)
        chan = self.state.channels.get(e.channel)
        if chan is None:
            return
        revealed = [uid for uid in e.uids if uid in chan.hidden]
        self.state.apply(ev)
        self._reveal_to(chan, revealed, Meta(e.time, 0))

    def _own_only(self, chan: Channel, uid: int, *also: int) -> list[Client]:
        """The local clients of ``chan`` that may see what its hidden member ``uid`` does:
        itself, and ``also`` (a KICK's kicker). Everyone, when ``uid`` is not hidden."""
        if uid not in chan.hidden:
            return list(chan.local.values())
        return [c for other in (uid, *also) if (c := chan.local.get(other)) is not None]

    def _e_part(self, ev: Record) -> None:
        e = EPart._make(ev)
        chan = self.state.channels.get(e.channel)
        user = self.state.users.get(e.uid)
        if chan is None or user is None or user.uid not in chan.members:
            return
        line = lines.part(user.mask, chan.name, e.reason)
        self._fanout(self._own_only(chan, user.uid), line, Meta(e.time, e.uid))
        self.state.apply(ev)

    def _e_kick(self, ev: Record) -> None:
        e = EKick._make(ev)
        chan = self.state.channels.get(e.channel)
        kicker = self.state.users.get(e.uid)
        target = self.state.users.get(e.target)
        if chan is None or kicker is None or target is None or target.uid not in chan.members:
            return
        line = lines.kick(kicker.mask, chan.name, target.nick, e.reason or kicker.nick)
        recipients = self._own_only(chan, target.uid, kicker.uid)
        self._fanout(recipients, line, Meta(e.time, e.uid))
        self.state.apply(ev)

    def _e_quit(self, ev: Record) -> None:
        e = EQuit._make(ev)
        user = self.state.users.get(e.uid)
        if user is None:
            return
        line = lines.quit_(user.mask, e.reason)
        recipients = self._members_of_channels(user.uid)
        recipients.pop(user.uid, None)
        self.state.apply(ev)
        self._fanout(recipients.values(), line, Meta(e.time, e.uid))
        core = self.core
        monitor.signed_off(core, (user,))
        me = core.clients.get(user.uid)
        if me is not None and not me.closed and not me.quitting:
            # the sequencer removed a user we still hold (e.g. a resync collision)
            core.disconnect(me, e.reason)

    def _e_topic(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        e = ETopic._make(ev)
        chan = self.state.channels[e.channel]
        user = self.state.users.get(e.uid)
        source = user.mask if user is not None else e.setter
        line = lines.topic(source, chan.name, e.topic)
        self._fanout(chan.local.values(), line, Meta(e.time, e.uid))

    def _e_mode(self, ev: Record) -> None:
        e = EMode._make(ev)
        chan = self.state.channels.get(e.channel)
        user = self.state.users.get(e.uid)
        hidden = set(chan.hidden) if chan is not None and chan.hidden else None
        if chan is None or not self.state.apply(ev):
            return
        meta = Meta(e.time, e.uid)
        if hidden is not None and len(chan.hidden) < len(hidden):
            # a +o/+v, or -D, showed hidden members (delayed join): their JOINs first, in the
            # order they joined, as InspIRCd's delayjoin sends them
            revealed = [uid for uid in chan.members if uid in hidden and uid not in chan.hidden]
            self._reveal_to(chan, revealed, meta)
        source = user.mask if user is not None else self.core.config.server_name
        line = lines.channel_mode(source, chan.name, e.modes, e.args)
        self._fanout(chan.local.values(), line, meta)

    def _e_away(self, ev: Record) -> None:
        """RFC 2812 §4.1 AWAY: 306 or 305 to the user; and IRCv3 away-notify: when its away
        state changed, ``:nick!user@host AWAY [:message]`` to the local clients that share a
        channel with it and negotiated away-notify (not to itself: it has its numeric)."""
        e = EAway._make(ev)
        changed = self.state.apply(ev)
        me = self.state.local.get(e.uid)
        if me is not None:
            if e.message:
                self.core.reply(me, N.RPL_NOWAWAY, b"You have been marked as being away")
            else:
                self.core.reply(me, N.RPL_UNAWAY, b"You are no longer marked as being away")
        user = self.state.users.get(e.uid)
        if changed and user is not None:
            peers = self._members_of_channels(user.uid)
            self._add_watchers(peers, user, self.bits.away_notify)
            peers.pop(user.uid, None)
            told = self._with_cap(peers.values(), self.bits.away_notify)
            if told:
                self._fanout(told, lines.away(user.mask, e.message), Meta(e.time, e.uid))

    def _e_account(self, ev: Record) -> None:
        """A new account (or one awaiting verification), a verified one, a dropped one
        (NickServ DROP, its users logged out first; an expired registration), or one whose
        certificate fingerprints (NickServ CERT) or password (NickServ PASSWD) changed:
        network state (logging in to it checks it); nobody is told."""
        self.state.apply(ev)

    def _e_metadata(self, ev: Record) -> None:
        """IRCv3 metadata-3: a user's or a channel's key set, removed or (every key) cleared.
        The setter, if it is this worker's, is answered with the result (761, or 766; for
        CLEAR a ``metadata`` batch of 766 for each key cleared), even when nothing changed;
        when something did, each local client that negotiated the capability, subscribed
        to the key and can see the target (shares a channel with the user, or is on the
        channel) is told, from the server with ``*`` for its nick; not the setter."""
        e = EMetadata._make(ev)
        state = self.state
        owner = e.user or e.channel
        cleared = [] if e.key else list(state.metadata.of(owner))
        changed = state.apply(ev)
        core = self.core
        server = core.config.server_name
        recipients: dict[int, Client]
        if e.user:
            user = state.users.get(e.user)
            if user is None:
                return
            target = user.nick
            recipients = self._members_of_channels(e.user)
            me = state.local.get(e.user)
            if me is not None:
                recipients[e.user] = me
        else:
            chan = state.channels.get(e.channel)
            if chan is None:
                return
            target = chan.name
            recipients = dict(chan.local)
        keys = [e.key] if e.key else cleared

        def line(nick: bytes, key: bytes, deleted: bytes) -> bytes:
            if e.key and e.value is not None:
                return metadata_command.keyvalue(server, nick, target, key, e.value)
            return metadata_command.keynotset(server, nick, target, key, deleted)

        setter = core.clients.get(e.uid)
        if setter is not None:
            if e.key:
                core.send(setter, line(setter.name, e.key, b"Key deleted"))
            else:
                out = [line(setter.name, key, b"Metadata value cleared") for key in keys]
                params = b" " + target
                batch = metadata_command.BATCH_TYPE
                history.wrap_batch(core, setter, batch, params, out, batch)
        if not changed:
            return
        bit = core.caps.bit(metadata.NAME)
        for client in recipients.values():
            subs = client.metadata_subs
            if client.uid != e.uid and client.caps & bit and subs:
                for key in keys:
                    if key in subs:
                        core.notify(client, line(b"*", key, b"Key deleted"))

    def _e_redact(self, ev: Record) -> None:
        """IRCv3 message-redaction: the REDACT of a message, for those of this worker that
        negotiated it ("MUST NOT" for the others): a channel's local members (the redactor
        too), or a private conversation's two parties."""
        if not self.state.apply(ev):
            return
        e = ERedact._make(ev)
        user = self.state.users.get(e.uid)
        if user is None:
            return
        if e.peer:
            local = self.state.local
            parties = [c for uid in dict.fromkeys((e.uid, e.peer)) if (c := local.get(uid))]
        else:
            chan = self.state.channel(e.target)
            parties = list(chan.local.values()) if chan is not None else []
        told = self._with_cap(parties, self.core.caps.bit(message_redaction.NAME))
        if told:
            line = lines.redact(user.mask, e.target, e.msgid, e.reason)
            self._fanout(told, line, Meta(e.time, e.uid))

    def _e_markread(self, ev: Record) -> None:
        """A read marker set (IRCv3 draft/read-marker): the setter, if it is this worker's
        and negotiated the capability, is answered with the marker as it is now (its own
        timestamp, or a later one held already); when it moved, the owner's other local
        connections that negotiated it are told too (an account's: every connection
        logged in to it)."""
        moved = self.state.apply(ev)
        e = EMarkread._make(ev)
        core = self.core
        bit = core.caps.bit(read_marker.NAME)
        owner = e.owner or e.uid
        data = readmarker.line(
            core.config.server_name, e.target, self.state.markers.get(owner, e.target)
        )
        setter = core.clients.get(e.uid)
        if setter is not None and setter.caps & bit:
            core.send(setter, data)
        if not (moved and e.owner and bit):
            return
        for client in core.clients.values():
            user = client.user
            if (
                client.caps & bit
                and client.uid != e.uid
                and user is not None
                and user.account is not None
                and fold(user.account) == e.owner
            ):
                core.notify(client, data)

    def _e_login(self, ev: Record) -> None:
        """A user logged in to an account (issue 12): its own worker answers it (REGISTER
        SUCCESS and 900 for a REGISTER, VERIFY SUCCESS and 900 for a VERIFY, 900 and 903 for
        SASL after registration; nothing for SASL during registration, answered then), and
        IRCv3 account-notify tells the local clients that share a channel with it."""
        if not self.state.apply(ev):
            return
        e = ELogin._make(ev)
        user = self.state.users[e.uid]
        me = self.state.local.get(e.uid)
        core = self.core
        if me is not None and e.account:
            if e.how == b"register":
                accounts.registered(core, me, e.account)
            elif e.how == b"verify":
                accounts.verified(core, me, e.account)
            elif e.how == b"sasl-late":
                accounts.logged_in(core, me, e.account)
                core.reply(me, N.RPL_SASLSUCCESS, b"SASL authentication successful")
            elif e.how in (b"nickserv", b"nickserv-register", b"nickserv-verify"):
                if e.how == b"nickserv-register":
                    nickserv.notice(core, me, b"Account %s registered" % e.account)
                elif e.how == b"nickserv-verify":
                    nickserv.notice(core, me, b"Account %s verified" % e.account)
                accounts.logged_in(core, me, e.account)
                nickserv.notice(core, me, b"You are now logged in as " + e.account)
        self.notify_account(user, e.time)

    def _e_setname(self, ev: Record) -> None:
        """IRCv3 setname: the new realname is network state; ``:nick!user@host SETNAME
        :realname`` goes to the user and the local clients that share a channel with it, those
        that negotiated setname only ("MUST NOT be sent to clients which do not have the
        setname capability negotiated")."""
        e = ESetname._make(ev)
        user = self.state.users.get(e.uid)
        if user is None:
            return
        self.state.apply(ev)
        recipients = self._members_of_channels(user.uid)
        me = self.state.local.get(user.uid)
        if me is not None:
            recipients[user.uid] = me
        self._add_watchers(recipients, user, self.bits.setname)
        told = self._with_cap(recipients.values(), self.bits.setname)
        if told:
            self._fanout(told, lines.setname(user.mask, e.realname), Meta(e.time, e.uid))

    def _e_chghost(self, ev: Record) -> None:
        """A user's new ``user@host`` (an operator's CHGHOST). IRCv3 chghost: ``:nick!old@old
        CHGHOST user host`` to the local clients that share a channel with it and negotiated
        chghost, and to the user itself if it did; the others that share a channel get the
        spec's fallback, "the simulated events SHOULD include appropriate QUIT, JOIN and MODE
        commands": its QUIT, then for each channel they share its JOIN (extended-join's form
        for those that asked), the server's MODE giving back its prefixes, and its AWAY for
        those with away-notify. Its own worker updates the client's cached prefix; the
        operator's tells it (a NOTICE) and logs it."""
        e = EChghost._make(ev)
        state = self.state
        user = state.users.get(e.target)
        if user is None:
            return
        old_mask = user.mask
        if not state.apply(ev):
            return
        core = self.core
        meta = Meta(e.time, e.target)
        bit = self.bits.chghost
        peers = self._members_of_channels(user.uid)
        peers.pop(user.uid, None)
        watchers = {c.uid: c for c in monitor.extended_watchers(core, user, bit)}
        told = self._with_cap({**watchers, **peers}.values(), bit)
        told = [c for c in told if c.uid != user.uid]
        me = state.local.get(user.uid)
        if me is not None:
            me.source = b""  # made again from the new mask when next needed (source_of)
            if me.caps & bit:
                told.append(me)
        if told:
            self._fanout(told, lines.chghost(old_mask, user.username, user.host), meta)
        fallback = {uid for uid, c in peers.items() if not c.caps & bit}
        if fallback:
            self._fanout(
                [peers[uid] for uid in fallback], lines.quit_(old_mask, b"Changing hostname"), meta
            )
            for chan in user.channels:
                if user.uid in chan.hidden:
                    continue  # delayed join: nobody there was shown it
                members = [c for uid, c in chan.local.items() if uid in fallback]
                if not members:
                    continue
                self._show_join(user, chan, members, meta)
                flags = chan.members.get(user.uid, 0)
                letters = (b"o" if flags & OP else b"") + (b"v" if flags & VOICE else b"")
                if letters:
                    nicks = (user.nick,) * len(letters)
                    line = lines.channel_mode(
                        core.config.server_name, chan.name, b"+" + letters, nicks
                    )
                    self._fanout(members, line, meta)
                self._show_away_on_join(user, members, meta)
        oper = state.local.get(e.uid)
        if oper is not None:
            text = b"*** CHGHOST: %s is now %s" % (old_mask, user.mask)
            core.send(oper, lines.notice(core.config.server_name, oper.name, text))
            core.audit(oper, "CHGHOST: " + text[4:].decode(errors="replace"))

    def _e_umode(self, ev: Record) -> None:
        e = EUmode._make(ev)
        user = self.state.users.get(e.uid)
        was_oper = user is not None and b"o" in user.modes
        self.state.apply(ev)
        me = self.state.local.get(e.uid)
        if me is None:
            return
        if e.changes:
            self._fanout((me,), lines.user_mode(me.name, e.changes), Meta(e.time, e.uid))
        if was_oper and user is not None and b"o" not in user.modes:
            me.privileges = user.privileges  # none: -o drops them
            self.core.audit(me, "MODE -o: no longer an operator")

    def _e_oper(self, ev: Record) -> None:
        """Modern IRC OPER succeeded: the operator's own worker gives its client the
        privileges, and answers 381 RPL_YOUREOPER and the MODE +o echo."""
        e = EOper._make(ev)
        user = self.state.users.get(e.uid)
        if user is None:
            return
        was_oper = b"o" in user.modes
        self.state.apply(ev)
        me = self.state.local.get(e.uid)
        if me is None:
            return
        me.privileges = user.privileges
        if not e.answer:
            return
        core = self.core
        core.reply(me, N.RPL_YOUREOPER, b"You are now an IRC operator")
        if not was_oper:
            self._fanout((me,), lines.user_mode(me.name, b"+o"), Meta(e.time, e.uid))
        name = e.name.decode(errors="replace")
        privileges = ", ".join(e.privileges) or "none"
        core.audit(me, f"OPER {name}: now an operator (privileges: {privileges})")

    def _e_kill(self, ev: Record) -> None:
        """Modern IRC KILL: the victim's channels see it quit with ``Killed (<killer>
        (<comment>))``; its own worker sends it the KILL, then the ERROR, and closes it. The
        killer's worker logs who killed whom."""
        e = EKill._make(ev)
        state = self.state
        killer = state.users.get(e.uid)
        victim = state.users.get(e.target)
        if killer is None or victim is None:
            return
        # Modern IRC: the QUIT's reason "typically has the form Killed (<killer> (<reason>))";
        # the victim's ERROR says the same
        reason = b"Killed (%s (%s))" % (killer.nick, e.comment)
        recipients = self._members_of_channels(victim.uid)
        recipients.pop(victim.uid, None)
        victim_mask = victim.mask
        core = self.core
        me = core.clients.get(victim.uid)
        if me is not None and not me.closed and not me.quitting:
            self._fanout(
                (me,), lines.kill(killer.mask, victim.nick, e.comment), Meta(e.time, e.uid)
            )
        oper = state.local.get(killer.uid)
        if oper is not None:
            victim_text = victim_mask.decode(errors="replace")
            core.audit(oper, f"KILL {victim_text} ({e.comment.decode(errors='replace')})")
        state.apply(ev)
        line = lines.quit_(victim_mask, reason)
        self._fanout(recipients.values(), line, Meta(e.time, e.target))
        monitor.signed_off(core, (victim,))
        if me is not None and not me.closed and not me.quitting:
            core.disconnect(me, reason)

    def _e_kline(self, ev: Record) -> None:
        """A K-line: every user it matched leaves at once, as KILL's victim does, wherever it
        is: its channels see ``QUIT :K-Lined: <reason>``; its own worker sends it 465
        ERR_YOUREBANNEDCREEP and the ERROR, and closes it. The operator's worker tells it
        what was done (a NOTICE) and logs it. A restored K-line (``uid`` 0) shows nothing."""
        e = EKline._make(ev)
        state = self.state
        core = self.core
        reason = b"K-Lined: " + e.reason
        gone = set(e.victims)
        victims = [user for uid in e.victims if (user := state.users.get(uid)) is not None]
        quits = [
            (
                [c for uid, c in self._members_of_channels(v.uid).items() if uid not in gone],
                lines.quit_(v.mask, reason),
                v.uid,
            )
            for v in victims
        ]
        mine = [
            client
            for v in victims
            if (client := core.clients.get(v.uid)) is not None
            and not client.closed
            and not client.quitting
        ]
        oper = state.local.get(e.uid) if e.uid else None
        replaced = fold(e.mask) in state.klines
        state.apply(ev)
        for recipients, line, uid in quits:
            self._fanout(recipients, line, Meta(e.time, uid))
        monitor.signed_off(core, victims)
        banned = b"You are banned from this server (%s)" % e.reason
        for client in mine:
            core.reply(client, N.ERR_YOUREBANNEDCREEP, banned)
            core.disconnect(client, reason)
        if oper is None:
            return
        if e.expires:
            length = b"for %s" % dates.duration((e.expires - e.set_at) // 1000)
        else:
            length = b"permanent"
        removed = b", ".join(v.nick for v in victims) or b"nobody"
        text = b"%s K-line on %s (%s): %s; removed: %s" % (
            b"Replaced" if replaced else b"Added",
            e.mask,
            length,
            e.reason,
            removed,
        )
        core.send(oper, lines.notice(core.config.server_name, oper.name, b"*** " + text))
        core.audit(oper, "KLINE: " + text.decode(errors="replace"))

    def _e_unkline(self, ev: Record) -> None:
        """A K-line lifted: the operator's worker tells it (a NOTICE) and logs it."""
        e = EUnkline._make(ev)
        state = self.state
        line = state.klines.get(fold(e.mask))
        state.apply(ev)
        oper = state.local.get(e.uid)
        if oper is None or line is None:
            return
        core = self.core
        text = b"Removed K-line on %s (set by %s: %s)" % (line.mask, line.setter, line.reason)
        core.send(oper, lines.notice(core.config.server_name, oper.name, b"*** " + text))
        core.audit(oper, "UNKLINE: " + text.decode(errors="replace"))

    def _d_wallops(self, rec: Record) -> None:
        """RFC 2812 §4.7 WALLOPS: to this worker's users with user mode +w."""
        d = DWallops._make(rec)
        users = self.state.users
        readers = [
            client
            for uid, client in self.state.local.items()
            if (user := users.get(uid)) is not None and b"w" in user.modes
        ]
        self._fanout(readers, d.line, Meta(d.time, d.sender))

    def _e_counts(self, ev: Record) -> None:
        """A worker's command counts: network state that nobody is shown (STATS m reads it)."""
        self.state.apply(ev)

    def _e_store(self, ev: Record) -> None:
        """The store's health (E_STORE): network state (CHATHISTORY, STATS S). When it
        flipped, the report carries a notice for every IRC operator on the network: each
        worker gives it to its own (user mode +o), as a server NOTICE. One per flip: the
        writer's retries in between report nothing."""
        self.state.apply(ev)
        e = EStore._make(ev)
        if not e.notice:
            return
        users = self.state.users
        opers = [
            client
            for uid, client in self.state.local.items()
            if (user := users.get(uid)) is not None and b"o" in user.modes
        ]
        if not opers:
            return
        core = self.core
        server = core.config.server_name
        text = b"*** " + e.notice
        for client in opers:  # a line it did not ask for: never part of a labeled reply
            core.notify(client, lines.notice(server, client.name, text))

    def _e_invite(self, ev: Record) -> None:
        e = EInvite._make(ev)
        self.state.apply(ev)
        chan = self.state.channels.get(e.channel)
        inviter = self.state.users.get(e.uid)
        target = self.state.users.get(e.target)
        if chan is None or inviter is None or target is None:
            return
        core = self.core
        me = self.state.local.get(inviter.uid)
        if me is not None:
            core.send(
                me,
                replies.numeric_tokens(
                    core.config.server_name, me.name, N.RPL_INVITING, target.nick, chan.name
                ),
            )
        # The invited user, and (IRCv3 invite-notify) the channel's local operators that
        # negotiated it, but the inviter and the invited: the same line, rendered once
        told = [
            c
            for uid, c in chan.local.items()
            if c.caps & self.bits.invite_notify
            and chan.members.get(uid, 0) & OP
            and uid not in (inviter.uid, target.uid)
        ]
        them = self.state.local.get(target.uid)
        if them is not None:
            told.append(them)
        if told:
            line = lines.invite(inviter.mask, target.nick, chan.name)
            self._fanout(told, line, Meta(e.time, e.uid))
