"""Client commands: the explicit command table and one handler per command.

Owns: what each command means (RFC 2812 §3, Modern IRC "Client Messages"): checking its
parameters, answering queries from the local replica, and turning changes into requests for the
sequencer. Handlers write their effects into the core (queued lines, requests, disconnects).
Must never: touch sockets or the clock (the core carries ``now``), or change shared state
directly: only the sequencer's events do that, in one order for every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_channel, is_valid_channel, is_valid_nick
from fastchat.irc.message import Message, fit_line, truncate_utf8
from fastchat.server.network.records import (
    R_AWAY,
    R_INVITE,
    R_JOIN,
    R_KICK,
    R_MODE,
    R_NICK,
    R_PART,
    R_REGISTER,
    R_TOPIC,
    R_UMODE,
)
from fastchat.server.network.sequencer import mask_matches
from fastchat.server.network.state import Channel, User
from fastchat.server.render import replies

if TYPE_CHECKING:
    from fastchat.server.connection import Client
    from fastchat.server.engine.core import WorkerCore

HandlerFn = Callable[["WorkerCore", "Client", Message], None]

#: The longest QUIT reason kept (InspIRCd's default ``maxquit``): the QUIT line the channels
#: see and the ERROR line the client gets stay within 512 bytes.
QUITLEN = 255


class Handler:
    """A command handler, whether it may run before registration, and whether it answers
    from the replica (``reads``: the core puts a read barrier before it, see
    ``WorkerCore.handle_line``)."""

    __slots__ = ("before_registration", "fn", "min_params", "reads")

    def __init__(
        self, fn: HandlerFn, min_params: int, before_registration: bool, reads: bool
    ) -> None:
        self.fn = fn
        self.min_params = min_params
        self.before_registration = before_registration
        self.reads = reads

    def __call__(self, core: WorkerCore, client: Client, msg: Message) -> None:
        if len(msg.params) < self.min_params:
            raise N.IRCError(N.ERR_NEEDMOREPARAMS, msg.command, b"Not enough parameters")
        self.fn(core, client, msg)


COMMANDS: dict[bytes, Handler] = {}


def command(
    name: bytes, min_params: int = 0, before_registration: bool = False, reads: bool = False
) -> Callable[[HandlerFn], HandlerFn]:
    """Declare a command. ``reads``: its answer depends on the network state (who exists,
    who is where), so it must see everything acknowledged to anyone before it arrived."""

    def register(fn: HandlerFn) -> HandlerFn:
        COMMANDS[name] = Handler(fn, min_params, before_registration, reads)
        return fn

    return register


def _user(client: Client) -> User:
    assert client.user is not None  # the core only runs these handlers after registration
    return client.user


# -- connection registration (RFC 2812 §3.1, Modern IRC "Connection Registration") ------------------


@command(b"CAP", 1, before_registration=True)
def cap(core: WorkerCore, client: Client, msg: Message) -> None:
    """IRCv3 capability negotiation: we offer no capabilities yet, and say so honestly."""
    sub = msg.params[0].upper()
    s = core.config.server_name
    if sub == b"LS":
        if not client.registered:
            client.cap_negotiating = True
        core.send(client, b":%s CAP %s LS :\r\n" % (s, client.name))
    elif sub == b"LIST":
        core.send(client, b":%s CAP %s LIST :\r\n" % (s, client.name))
    elif sub == b"REQ":
        if not client.registered:
            client.cap_negotiating = True
        core.send(client, fit_line(b":%s CAP %s NAK :%s\r\n" % (s, client.name, msg.param(1))))
    elif sub == b"END":
        if client.cap_negotiating:
            client.cap_negotiating = False
            try_register(core, client)
    else:
        core.reply(client, N.ERR_INVALIDCAPCMD, sub, b"Invalid CAP command")


@command(b"PASS", 1, before_registration=True)
def pass_(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.1: "The optional password can and MUST be set before any attempt to
    register the connection is made." """
    if client.registered or client.registering:
        raise N.IRCError(N.ERR_ALREADYREGISTERED, b"You may not reregister")
    client.password = msg.params[0]


@command(b"NICK", before_registration=True, reads=True)
def nick(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.2 NICK: set or change the nickname."""
    if not msg.params or not msg.params[0]:
        raise N.IRCError(N.ERR_NONICKNAMEGIVEN, b"No nickname given")
    new = msg.params[0]
    if not is_valid_nick(new, core.config.nicklen):
        raise N.IRCError(N.ERR_ERRONEUSNICKNAME, new, b"Erroneous nickname")
    if client.user is None:
        if client.registering:
            return
        holder = core.state.nicks.get(fold(new))
        if holder is not None:
            raise N.IRCError(N.ERR_NICKNAMEINUSE, new, b"Nickname is already in use")
        client.nick = new
        try_register(core, client)
        return
    if new == client.user.nick:
        return
    holder = core.state.nicks.get(fold(new))
    if holder is not None and holder is not client.user:
        raise N.IRCError(N.ERR_NICKNAMEINUSE, new, b"Nickname is already in use")
    core.submit((R_NICK, client.uid, new))


@command(b"USER", 4, before_registration=True)
def user(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.3 USER <user> <mode> <unused> <realname>. Modern IRC: an empty username
    or realname is ERR_NEEDMOREPARAMS (so is a username with no character we keep)."""
    if client.registered or client.registering or client.username:
        raise N.IRCError(N.ERR_ALREADYREGISTERED, b"You may not reregister")
    raw = msg.params[0]
    username = bytes(c for c in raw if chr(c).isalnum() or c in b"-_.")[:18]
    if not username or not msg.params[3]:
        raise N.IRCError(N.ERR_NEEDMOREPARAMS, b"USER", b"Not enough parameters")
    client.username = b"~" + username[:17]
    client.realname = msg.params[3][:100]
    try_register(core, client)


def try_register(core: WorkerCore, client: Client) -> None:
    """Ask the sequencer to register ``client`` once it has given NICK and USER (and CAP END)."""
    if (
        client.registered
        or client.registering
        or client.cap_negotiating
        or not client.nick
        or not client.username
    ):
        return
    password = core.config.password
    if password is not None and client.password != password:
        core.reply(client, N.ERR_PASSWDMISMATCH, b"Password incorrect")
        core.disconnect(client, b"Bad password")
        return
    client.registering = True
    core.submit(
        (
            R_REGISTER,
            client.uid,
            client.nick,
            client.username,
            client.host,
            client.realname,
        )
    )


@command(b"PING", 1, before_registration=True, reads=True)
def ping(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.7.2; Modern IRC: "the server MUST reply with a PONG with the same token".

    Declared ``reads``: clients and test suites use PING as a barrier ("everything before my
    PONG has happened"), so at several workers it waits for the read barrier like a query:
    the PONG comes after every change acknowledged to anyone before the PING arrived."""
    s = core.config.server_name
    core.send(client, fit_line(b":%s PONG %s :%s\r\n" % (s, s, msg.params[-1])))


@command(b"PONG", before_registration=True)
def pong(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.7.3: the answer to our PING; receiving any line already reset the clock."""


@command(b"QUIT", before_registration=True)
def quit_(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.7: the server acknowledges with ERROR and closes; channels see QUIT."""
    reason = truncate_utf8(msg.param(0), QUITLEN)
    core.disconnect(
        client,
        b"Quit: " + reason if reason else b"Client quit",
        quit_message=b"Quit: " + reason if reason else b"Client Quit",
    )


# -- channels (RFC 2812 §3.2) -----------------------------------------------------------------------


@command(b"JOIN", 1)
def join(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.1 JOIN <channel>{,<channel>} [<key>{,<key>}], and ``JOIN 0``."""
    me = _user(client)
    if msg.params[0] == b"0":
        for chan in list(me.channels):
            core.submit((R_PART, client.uid, chan.name, b""))
        return
    keys = msg.param(1).split(b",")
    for i, name in enumerate(msg.params[0].split(b",")):
        if not name:
            continue
        if not is_valid_channel(name, core.config.channellen):
            core.reply(client, N.ERR_NOSUCHCHANNEL, name, b"No such channel")
            continue
        core.submit((R_JOIN, client.uid, name, keys[i] if i < len(keys) else b""))


@command(b"PART", 1)
def part(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.2 PART <channel>{,<channel>} [<reason>]."""
    reason = msg.param(1)[: core.config.kicklen]
    for name in msg.params[0].split(b","):
        if name:
            core.submit((R_PART, client.uid, name, reason))


@command(b"TOPIC", 1, reads=True)
def topic(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.4 TOPIC <channel> [<topic>]: query from the replica, change via sequencer."""
    name = msg.params[0]
    if len(msg.params) > 1:
        core.submit((R_TOPIC, client.uid, name, msg.params[1]))
        return
    chan = core.state.channel(name)
    if chan is None:
        raise N.IRCError(N.ERR_NOSUCHCHANNEL, name, b"No such channel")
    if b"s" in chan.modes and client.uid not in chan.members:
        raise N.IRCError(N.ERR_NOTONCHANNEL, chan.name, b"You're not on that channel")
    core.send_lines(client, replies.topic(core.config, client.name, chan))


def _visible(chan: Channel, uid: int) -> bool:
    return b"s" not in chan.modes or uid in chan.members


def _seen_by(me: User, them: User) -> bool:
    """May ``me`` find ``them`` in a WHO (RFC 2812 §3.1.5: "+i - marks a users as invisible";
    Modern IRC: an invisible user is listed only to those who share a channel with them)?"""
    return b"i" not in them.modes or them is me or any(them.uid in c.members for c in me.channels)


@command(b"NAMES", reads=True)
def names(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.5 NAMES [<channel>{,<channel>}]; with no argument, every visible channel.
    The 353s of each visible channel named, then one 366 for the whole parameter (as Solanum
    and InspIRCd answer ``NAMES #a,#b``, and irctest checks); a channel that does not exist,
    or is secret and we are not on it, adds no line (Modern IRC)."""
    cfg = core.config
    if not msg.params:
        chans, end = list(core.state.channels.values()), b"*"
    else:
        wanted = [name for name in msg.params[0].split(b",") if name]
        chans = [c for name in wanted if (c := core.state.channel(name)) is not None]
        end = b",".join(wanted) or b"*"
    for chan in chans:
        if _visible(chan, client.uid):
            outside = client.uid not in chan.members  # then invisible users are not listed
            core.send_lines(
                client, replies.name_replies(cfg, client.name, core.state, chan, outside)
            )
    core.send(client, replies.end_of_names(cfg, client.name, end))


@command(b"LIST", reads=True)
def list_(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.6 LIST [<channel>{,<channel>}]: 321, 322 per channel, 323."""
    s, n = core.config.server_name, client.name
    if msg.params and msg.params[0]:
        wanted = [core.state.channel(name) for name in msg.params[0].split(b",")]
        chans = [c for c in wanted if c is not None]
    else:
        chans = list(core.state.channels.values())
    out = [replies.numeric(s, n, N.RPL_LISTSTART, b"Channel", b"Users  Name")]
    for chan in chans:
        if _visible(chan, client.uid):
            out.append(
                replies.numeric(s, n, N.RPL_LIST, chan.name, b"%d" % len(chan.members), chan.topic)
            )
    out.append(replies.numeric(s, n, N.RPL_LISTEND, b"End of /LIST"))
    core.send_lines(client, out)


@command(b"KICK", 2)
def kick(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.8 KICK <channel> <user> [<comment>] (one channel, comma-separated users).
    Without a comment, the comment is "the nickname of the user issuing the KICK"."""
    comment = msg.param(2) or _user(client).nick
    for target in msg.params[1].split(b","):
        if target:
            core.submit((R_KICK, client.uid, msg.params[0], target, comment))


@command(b"INVITE", 2)
def invite(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.2.7 INVITE <nickname> <channel>."""
    core.submit((R_INVITE, client.uid, msg.params[0], msg.params[1]))


@command(b"MODE", 1, reads=True)
def mode(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.1.5 user modes and §3.2.3 channel modes."""
    target = msg.params[0]
    cfg = core.config
    if not is_channel(target):
        if fold(target) != fold(client.name):
            if core.state.user_by_nick(target) is None:
                raise N.IRCError(N.ERR_NOSUCHNICK, target, b"No such nick/channel")
            raise N.IRCError(N.ERR_USERSDONTMATCH, b"Can't change mode for other users")
        if len(msg.params) == 1:
            core.reply(client, N.RPL_UMODEIS, b"+" + _user(client).modes)
            return
        _user_mode(core, client, msg.params[1])
        return
    chan = core.state.channel(target)
    if chan is None:
        raise N.IRCError(N.ERR_NOSUCHCHANNEL, target, b"No such channel")
    if len(msg.params) == 1:
        s, n = cfg.server_name, client.name
        core.send(
            client,
            replies.numeric_tokens(s, n, N.RPL_CHANNELMODEIS, chan.name, *chan.mode_string()),
        )
        core.send(
            client,
            replies.numeric_tokens(s, n, N.RPL_CREATIONTIME, chan.name, b"%d" % chan.created),
        )
        return
    modestring = msg.params[1]
    if modestring.lstrip(b"+") == b"b" and len(msg.params) == 2:
        for mask in chan.bans:
            core.reply(client, N.RPL_BANLIST, chan.name, mask)
        core.reply(client, N.RPL_ENDOFBANLIST, chan.name, b"End of channel ban list")
        return
    core.submit((R_MODE, client.uid, target, modestring, tuple(msg.params[2:])))


def _user_mode(core: WorkerCore, client: Client, modestring: bytes) -> None:
    """RFC 2812 §3.1.5: ``+i``/``-i``, ``+w``/``-w`` on oneself. The change goes through the
    sequencer, since others' replies depend on it (WHO, NAMES and LUSERS hide or count
    invisible users); the echo comes with the event. Unknown letters get 501 at once."""
    adding = True
    modes = set(_user(client).modes)
    changed = bytearray()
    sign = b""
    unknown = False
    for letter in modestring:
        c = bytes((letter,))
        if c in b"+-":
            adding = c == b"+"
            continue
        if c not in replies.USER_MODES:
            unknown = True
            continue
        if (letter in modes) == adding:
            continue
        want = b"+" if adding else b"-"
        if want != sign:
            changed += want
            sign = want
        changed += c
        (modes.add if adding else modes.discard)(letter)
    if unknown:
        core.reply(client, N.ERR_UMODEUNKNOWNFLAG, b"Unknown MODE flag")
    if changed:
        core.submit((R_UMODE, client.uid, bytes(sorted(modes)), bytes(changed)))


# -- messages (RFC 2812 §3.3) ------------------------------------------------------------------------


def _message(core: WorkerCore, client: Client, msg: Message, is_notice: bool) -> None:
    me = _user(client)
    if not msg.params or not msg.params[0]:
        if is_notice:
            return
        raise N.IRCError(N.ERR_NORECIPIENT, b"No recipient given (%s)" % msg.command)
    if len(msg.params) < 2 or not msg.params[1]:
        if is_notice:
            return
        raise N.IRCError(N.ERR_NOTEXTTOSEND, b"No text to send")
    targets = [t for t in msg.params[0].split(b",") if t]
    if len(targets) > core.config.max_targets:
        if not is_notice:
            core.reply(
                client,
                N.ERR_TOOMANYTARGETS,
                msg.params[0],
                b"Too many targets (max %d)" % core.config.max_targets,
            )
        return
    text = msg.params[1]
    mask = me.mask
    for target in targets:
        line = fit_line(b":%s %s %s :%s\r\n" % (mask, msg.command, target, text))
        core.relay_message(client, target, line, is_notice)


@command(b"PRIVMSG")
def privmsg(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.3.1 PRIVMSG <msgtarget>{,<msgtarget>} <text>."""
    _message(core, client, msg, False)


@command(b"NOTICE")
def notice(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.3.2 NOTICE: like PRIVMSG, but never answered with an error."""
    _message(core, client, msg, True)


# -- queries (RFC 2812 §3.4, §3.6) answered from the local replica, which holds the whole network ---


@command(b"WHO", reads=True)
def who(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.6.1 WHO [<mask>]: a channel's members, a nick, or nicks matching a mask.
    Invisible users (+i) are left out for those who share no channel with them, except when
    asked for by their exact nick (Modern IRC; as Solanum and InspIRCd do)."""
    cfg = core.config
    me = _user(client)
    mask = msg.param(0, b"*") or b"*"
    out: list[bytes] = []
    if is_channel(mask):
        chan = core.state.channel(mask)
        if chan is not None and _visible(chan, client.uid):
            member = client.uid in chan.members
            for uid in chan.members:
                u = core.state.users.get(uid)
                if u is not None and (member or b"i" not in u.modes):
                    out.append(replies.who_line(cfg, client.name, u, chan))
    else:
        exact = core.state.user_by_nick(mask)
        if exact is not None:
            out.append(replies.who_line(cfg, client.name, exact, None))
        elif mask not in (b"0", b"*"):
            pattern = mask if b"!" in mask else mask + b"!*@*"
            for u in core.state.users.values():
                if mask_matches(pattern, u) and _seen_by(me, u):
                    out.append(replies.who_line(cfg, client.name, u, None))
        else:
            # "WHO 0"/"WHO *": users who share a channel with the asker (RFC 2812 §3.6.1)
            seen: set[int] = set()
            for chan in me.channels:
                seen.update(chan.members)
            for uid in seen:
                u = core.state.users.get(uid)
                if u is not None:
                    out.append(replies.who_line(cfg, client.name, u, None))
    out.append(
        replies.numeric(cfg.server_name, client.name, N.RPL_ENDOFWHO, mask, b"End of WHO list")
    )
    core.send_lines(client, out)


@command(b"WHOIS", 1, reads=True)
def whois(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.6.2 WHOIS [<server>] <nickmask>."""
    target = msg.params[-1]
    cfg = core.config
    for nick_ in target.split(b",")[:1]:
        u = core.state.user_by_nick(nick_)
        if u is None:
            core.reply(client, N.ERR_NOSUCHNICK, nick_, b"No such nick/channel")
            core.reply(client, N.RPL_ENDOFWHOIS, nick_, b"End of /WHOIS list.")
            continue
        core.send_lines(
            client, replies.whois(cfg, client.name, u, [c.key for c in _user(client).channels])
        )


@command(b"ISON", 1, reads=True)
def ison(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §4.9 ISON <nickname>{ <nickname>}."""
    found = []
    for word in b" ".join(msg.params).split():  # nicks in any number of parameters
        u = core.state.user_by_nick(word)
        if u is not None:
            found.append(u.nick)
    s = core.config.server_name
    core.send(client, next(replies.word_lines(s, client.name, N.RPL_ISON, found)))


@command(b"USERHOST", 1, reads=True)
def userhost(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §4.8 USERHOST <nickname>{ <nickname>} (up to 5)."""
    out = []
    for word in msg.params[:5]:
        u = core.state.user_by_nick(word)
        if u is not None:
            out.append(b"%s=%s%s@%s" % (u.nick, b"-" if u.away else b"+", u.username, u.host))
    s = core.config.server_name
    core.send(client, next(replies.word_lines(s, client.name, N.RPL_USERHOST, out)))


@command(b"AWAY")
def away(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §4.1 AWAY [<text>]: 306 when marked away, 305 when back (sent on the event)."""
    core.submit((R_AWAY, client.uid, msg.param(0)[: core.config.awaylen]))


@command(b"LUSERS", reads=True)
def lusers(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.2 LUSERS."""
    core.send_lines(client, replies.lusers(core.config, client.name, core.state, len(core.clients)))


@command(b"MOTD")
def motd(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.1 MOTD."""
    core.send_lines(client, replies.motd(core.config, client.name))


@command(b"VERSION")
def version(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.3 VERSION: 351, then ISUPPORT (Modern IRC)."""
    cfg = core.config
    core.reply(
        client, N.RPL_VERSION, replies.VERSION + b".", cfg.server_name, b"fastchat IRC server"
    )
    core.send_lines(client, replies.isupport_lines(cfg, client.name))


@command(b"TIME")
def time_(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §3.4.6 TIME: 391 with the server's local time."""
    stamp = datetime.fromtimestamp(core.now, UTC).strftime("%A %B %d %Y -- %H:%M:%S +00:00")
    core.reply(client, N.RPL_TIME, core.config.server_name, stamp.encode())


@command(b"USERS")
def users(core: WorkerCore, client: Client, msg: Message) -> None:
    """RFC 2812 §4.5: USERS is disabled on most servers (446)."""
    core.reply(client, b"446", b"USERS has been disabled")


@command(b"FAULT")
def fault(core: WorkerCore, client: Client, msg: Message) -> None:
    """Fault injection for the test suite (``--test-hooks`` only): a handler that crashes."""
    if not core.config.test_hooks:
        raise N.IRCError(N.ERR_UNKNOWNCOMMAND, b"FAULT", b"Unknown command")
    raise RuntimeError("injected fault")
