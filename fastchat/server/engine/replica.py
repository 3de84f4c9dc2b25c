"""The worker's replica: apply what the sequencer decided, and show it to local clients.

Owns: applying each sequenced event to this worker's copy of the network state, and
delivering what local clients must see of it: a channel's messages (the hot path), private
messages, WALLOPS, and the lines every state change shows (JOIN, PART, QUIT, NICK, TOPIC,
MODE, KICK, INVITE, KILL, K-lines, AWAY replies, OPER's answer, the welcome burst on
registration, and MONITOR's online/offline notices, which :mod:`fastchat.server.commands.monitor` renders). Each line is rendered once (:mod:`fastchat.server.render`) and the same bytes
go to every recipient with the same capabilities.
Must never: decide anything (the sequencer did) or touch a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold
from fastchat.server.caps import Meta, message_tags, multi_prefix, userhost_in_names
from fastchat.server.commands import monitor
from fastchat.server.commands.registration import feed
from fastchat.server.connection import Client
from fastchat.server.network.records import (
    D_CHAN,
    D_USER,
    D_WALLOPS,
    E_AWAY,
    E_COUNTS,
    E_INTRO,
    E_INVITE,
    E_JOIN,
    E_KICK,
    E_KILL,
    E_KLINE,
    E_MODE,
    E_NICK,
    E_OPER,
    E_PART,
    E_QUIT,
    E_TOPIC,
    E_UMODE,
    E_UNKLINE,
    ECHO,
    OP,
    TAGMSG,
    VOICE,
    DChan,
    DUser,
    DWallops,
    EAway,
    EInvite,
    EJoin,
    EKick,
    EKill,
    EKline,
    EMode,
    ENick,
    EOper,
    EPart,
    EQuit,
    ETopic,
    EUmode,
    EUnkline,
    Record,
)
from fastchat.server.network.state import Channel
from fastchat.server.registration import Input
from fastchat.server.render import dates, lines, replies
from fastchat.server.render.variants import Variants

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore


class Replica:
    """Applies a core's sequenced records and renders them for its local clients."""

    __slots__ = ("_message_tags", "core", "state", "table")

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        self.state = core.state
        self._message_tags = core.caps.bit(message_tags.NAME)
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
                    dirty.append(client)
                pending.append(line)

    def _d_chan_for_some(self, chan: Channel, rec: Record) -> None:
        """A channel message whose recipients' capabilities or membership matter: the sender
        too if it negotiated echo-message (in the channel's one order), a TAGMSG only to
        clients that negotiated message-tags, a STATUSMSG only to members with one of its
        member flags (and its sender's echo)."""
        d = DChan._make(rec)
        core = self.core
        sender, flags = d.sender, d.flags
        echo = core.echo_bit
        tags_only = self._message_tags if flags & TAGMSG else 0
        status = flags & (OP | VOICE)
        members = chan.members
        out = []
        for uid, client in chan.local.items():
            if uid == sender:
                if not client.caps & echo:
                    continue
            elif status and not members.get(uid, 0) & status:
                continue
            if flags & TAGMSG and not client.caps & tags_only:
                continue
            out.append(client)
        if out:
            self._fanout(out, d.line, self._message_meta(d.time, sender, d.first, d.tags))

    def _message_meta(self, time: int, sender: int, first: int, tags: bytes) -> Meta:
        """What the tags of a relayed PRIVMSG/NOTICE/TAGMSG are made of (see Meta)."""
        user = self.state.users.get(sender)
        bot = user is not None and b"B" in user.modes  # IRCv3 bot-mode: user mode +B
        return Meta(time, sender, first, tags, bot)

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
        registry = core.caps
        mask = registry.tag_mask
        if meta.seq >= 0:

            def tags_for(key: int, i: int) -> list[tuple[bytes, bytes]]:
                return registry.tags(key, meta._replace(seq=meta.seq + i) if i else meta)

        else:

            def tags_for(key: int, i: int) -> list[tuple[bytes, bytes]]:
                return registry.tags(key, meta)

        variants = Variants(line, tags_for, numbered=meta.seq >= 0)
        cause = meta.sender if caused_by == -1 else caused_by
        for client in clients:
            if client.label is not None and client.uid != cause:
                core.labels.other(client, variants.get(client.caps & mask))
            else:
                send(client, variants.get(client.caps & mask))

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
        """Local clients that share a channel with ``uid`` (each once)."""
        user = self.state.users.get(uid)
        seen: dict[int, Client] = {}
        if user is not None:
            for chan in user.channels:
                seen.update(chan.local)
        return seen

    # -- events ---------------------------------------------------------------------------------
    def _e_intro(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        core = self.core
        uid = ev[1]  # EIntro.uid
        monitor.signed_on(core, self.state.users[uid])
        client = core.clients.get(uid)
        if client is None or client.closed:
            return
        user = self.state.users[uid]
        client.user = user
        client.source = b":" + user.mask + b" "
        feed(client, Input.INTRO)
        self.state.local[uid] = client
        cfg = core.config
        core.send_lines(client, replies.welcome(cfg, user, core.created))
        core.send_lines(client, replies.lusers(cfg, user.nick, self.state, core.local_count))
        core.send_lines(client, replies.motd(cfg, user.nick))

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
            me.source = b":" + user.mask + b" "

    def _e_join(self, ev: Record) -> None:
        if not self.state.apply(ev):
            return
        e = EJoin._make(ev)
        user = self.state.users[e.uid]
        chan = self.state.channels[fold(e.channel)]
        self._fanout(chan.local.values(), lines.join(user.mask, chan.name), Meta(e.time, e.uid))
        me = chan.local.get(user.uid)
        if me is not None:
            core = self.core
            cfg = core.config
            if chan.topic:
                core.send_lines(me, replies.topic(cfg, me.name, chan))
            caps = core.caps
            core.send_lines(
                me,
                replies.names(
                    cfg,
                    me.name,
                    self.state,
                    chan,
                    multi_prefix=bool(caps.bit(multi_prefix.NAME) & me.caps),
                    userhost=bool(caps.bit(userhost_in_names.NAME) & me.caps),
                ),
            )

    def _e_part(self, ev: Record) -> None:
        e = EPart._make(ev)
        chan = self.state.channels.get(e.channel)
        user = self.state.users.get(e.uid)
        if chan is None or user is None or user.uid not in chan.members:
            return
        line = lines.part(user.mask, chan.name, e.reason)
        self._fanout(list(chan.local.values()), line, Meta(e.time, e.uid))
        self.state.apply(ev)

    def _e_kick(self, ev: Record) -> None:
        e = EKick._make(ev)
        chan = self.state.channels.get(e.channel)
        kicker = self.state.users.get(e.uid)
        target = self.state.users.get(e.target)
        if chan is None or kicker is None or target is None or target.uid not in chan.members:
            return
        line = lines.kick(kicker.mask, chan.name, target.nick, e.reason or kicker.nick)
        self._fanout(list(chan.local.values()), line, Meta(e.time, e.uid))
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
        if chan is None or not self.state.apply(ev):
            return
        source = user.mask if user is not None else self.core.config.server_name
        line = lines.channel_mode(source, chan.name, e.modes, e.args)
        self._fanout(chan.local.values(), line, Meta(e.time, e.uid))

    def _e_away(self, ev: Record) -> None:
        e = EAway._make(ev)
        self.state.apply(ev)
        me = self.state.local.get(e.uid)
        if me is not None:
            if e.message:
                self.core.reply(me, N.RPL_NOWAWAY, b"You have been marked as being away")
            else:
                self.core.reply(me, N.RPL_UNAWAY, b"You are no longer marked as being away")

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
        them = self.state.local.get(target.uid)
        if them is not None:
            line = lines.invite(inviter.mask, target.nick, chan.name)
            self._fanout((them,), line, Meta(e.time, e.uid))
