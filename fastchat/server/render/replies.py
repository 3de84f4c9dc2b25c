"""Formatting the server's replies: numerics, the welcome burst, NAMES, WHO, WHOIS, WHOWAS,
LUSERS.

Owns: the exact bytes of every reply the server composes (RFC 2812 §5, Modern IRC numerics).
Must never: decide anything about state; it only renders what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from fastchat import __version__
from fastchat.irc import numerics as N
from fastchat.irc.casemap import CASEMAPPING, CHANTYPES
from fastchat.irc.message import MAX_LINE, Message, fit_line, format_message, truncate_utf8
from fastchat.server.config import Config
from fastchat.server.network import access
from fastchat.server.network.access import LIST_MODES
from fastchat.server.network.records import OP
from fastchat.server.network.sequencer import (
    FLAG_MODES,
    MAX_MODE_CHANGES,
    PARAM_ALWAYS,
    PARAM_ON_SET,
)
from fastchat.server.network.state import (
    BOT_MODE,
    REALNAMELEN,
    Channel,
    KLine,
    State,
    StoreStatus,
    User,
    WhowasEntry,
    prefix_of,
    prefixes_of,
)
from fastchat.server.render import dates

VERSION = b"fastchat-" + __version__.encode()
USER_MODES = BOT_MODE + b"iow"
#: The standard WHOX fields, in the order RPL_WHOSPCRPL gives them (IRCv3 WHOX: token,
#: channel, user, IP, host, server, nick, flags, hop count, idle, account, op level, realname).
WHOX_FIELDS = b"tcuihsnfdlaor"
#: WHOX ``i`` for an asker who may not see the address (IRCv3 WHOX, as Ergo and Solanum).
HIDDEN_IP = b"255.255.255.255"


def numeric(server: bytes, nick: bytes, code: bytes, *params: bytes) -> bytes:
    """``:server CODE nick params... :last`` with CR LF. The last param is always trailing,
    which every client accepts and which keeps texts with spaces intact.

    Never longer than 512 bytes (RFC 1459 §2.3): a reply that quotes what a client sent (the
    targets of ERR_TOOMANYTARGETS, an unknown nick or command) is shortened by cutting its
    longest parameter, which is that quote (see :func:`fit_params`)."""
    if params:
        # (without a generator over the middle params: every reply of a registration, and
        # each 353 of a JOIN, comes through here)
        if len(params) == 1:
            line = b":%s %s %s :%s\r\n" % (server, code, nick, params[0])
        else:
            line = b":%s %s %s %s :%s\r\n" % (
                server,
                code,
                nick,
                b" ".join(params[:-1]),
                params[-1],
            )
        if len(line) > MAX_LINE:
            return fit_line(numeric(server, nick, code, *fit_params(params, len(line) - MAX_LINE)))
        return line
    return b":%s %s %s\r\n" % (server, code, nick)


def numeric_tokens(server: bytes, nick: bytes, code: bytes, *params: bytes) -> bytes:
    """Like :func:`numeric`, for replies made only of tokens (times, counts, modes): the last
    parameter gets a ':' only when the protocol needs one. Also never over 512 bytes."""
    line = format_message(Message(code, (nick, *params), server)) + b"\r\n"
    if len(line) > MAX_LINE:
        params = fit_params(params, len(line) - MAX_LINE)
        line = fit_line(format_message(Message(code, (nick, *params), server)) + b"\r\n")
    return line


def fit_params(params: tuple[bytes, ...], excess: int) -> tuple[bytes, ...]:
    """``params`` made ``excess`` bytes shorter in all, by cutting the end of the longest (what
    a client made long: the targets, nick, mask, key or topic it sent), then of the next
    longest if that was not enough. A middle parameter keeps at least one byte; no UTF-8
    character is cut.

    >>> fit_params((b"a,b,c,d,e,f,g,h,i", b"x", b"Too many targets"), 4)
    (b'a,b,c,d,e,f,g', b'x', b'Too many targets')
    """
    out = list(params)
    last = len(out) - 1
    for i in sorted(range(len(out)), key=lambda j: -len(out[j])):
        if excess <= 0:
            break
        param = out[i]
        cut = truncate_utf8(param, max(len(param) - excess, 0 if i == last else 1))
        if not cut and i != last:
            cut = param[:1]
        excess -= len(param) - len(cut)
        out[i] = cut
    return tuple(out)


def word_lines(
    server: bytes,
    nick: bytes,
    code: bytes,
    words: Iterable[bytes],
    *middle: bytes,
    sep: bytes = b" ",
) -> Iterator[bytes]:
    """Numerics whose last parameter is a list of ``words`` (nicks, channels) joined by
    ``sep`` (a comma for MONITOR's), as many words per line as fit in 512 bytes; at least one
    line, even for no words. A reply that must be one line (RPL_ISON, RPL_USERHOST) takes the
    first: what does not fit is left out, as established servers do.

    >>> [len(x) for x in word_lines(b"srv", b"me", b"303", [b"n%03d" % i for i in range(200)])]
    [509, 509, 24]
    """
    room = MAX_LINE - len(numeric(server, nick, code, *middle, b""))
    for body in word_bodies(words, room, sep):
        yield numeric(server, nick, code, *middle, body)


def word_bodies(words: Iterable[bytes], room: int, sep: bytes = b" ") -> Iterator[bytes]:
    """``words`` joined by ``sep`` into pieces of at most ``room`` bytes (a word longer than
    that alone), in order: the last parameters of :func:`word_lines`; at least one."""
    batch: list[bytes] = []
    used = -1
    for word in words:
        if batch and used + 1 + len(word) > room:
            yield sep.join(batch)
            batch, used = [], -1
        batch.append(word)
        used += 1 + len(word)
    yield sep.join(batch)


def isupport_tokens(config: Config) -> list[bytes]:
    """RPL_ISUPPORT tokens (Modern IRC "Feature Advertisement")."""
    chanmodes = b",".join((LIST_MODES, PARAM_ALWAYS, PARAM_ON_SET, FLAG_MODES))
    # IRCv3 message-tags: CLIENTTAGDENY lists the client-only tags not relayed (absent: none)
    deny = [b"CLIENTTAGDENY=" + b",".join(config.client_tag_deny)] if config.client_tag_deny else []
    return [
        # IRCv3 account-extban: the ``a:`` masks (network/access.py)
        b"ACCOUNTEXTBAN=" + access.ACCOUNT[:1],
        b"AWAYLEN=%d" % config.awaylen,
        b"BOT=" + BOT_MODE,
        b"CASEMAPPING=" + CASEMAPPING,
        b"CHANLIMIT=%s:%d" % (CHANTYPES, config.max_channels),
        b"CHANMODES=" + chanmodes,
        b"CHANNELLEN=%d" % config.channellen,
        b"CHANTYPES=" + CHANTYPES,
        b"CHATHISTORY=%d" % config.chathistory_max,  # IRCv3 chathistory: the most per request
        *deny,
        b"ELIST=CMNTU",  # LIST's searches (commands/elist.py, ELIST)
        b"EXCEPTS=e",
        b"EXTBAN=," + access.EXTBAN_TYPES,  # no prefix; mute and account (network/access.py)
        b"INVEX=I",
        b"KICKLEN=%d" % config.kicklen,
        b"MAXLIST=%s:%d" % (access.LIST_MODES, access.MAX_ENTRIES),
        b"MAXTARGETS=%d" % config.max_targets,
        b"MODES=%d" % MAX_MODE_CHANGES,
        b"MONITOR=%d" % config.max_monitor if config.max_monitor else b"MONITOR",
        b"MSGREFTYPES=msgid,timestamp",  # IRCv3 chathistory: the references it takes
        b"NAMELEN=%d" % REALNAMELEN,  # IRCv3 setname: "servers MUST provide a NAMELEN token"
        b"NETWORK=" + config.network,
        b"NICKLEN=%d" % config.nicklen,
        b"PREFIX=(ov)@+",
        b"STATUSMSG=@+",
        b"TARGMAX=PRIVMSG:%d,NOTICE:%d,TAGMSG:%d,JOIN:,PART:,NAMES:,WHOIS:1,KICK:%d"
        % (config.max_targets, config.max_targets, config.max_targets, config.max_targets),
        b"TOPICLEN=%d" % config.topiclen,
        b"USERLEN=18",
        *((b"UTF8ONLY",) if config.utf8_only else ()),
        b"WHOX",
    ]


#: The ISUPPORT tokens of the configuration last asked about (every registration asks; a
#: reload makes a new Config, so a stale list is never used)
_isupport_of: tuple[Config, list[bytes]] | None = None


def isupport_lines(config: Config, nick: bytes) -> Iterator[bytes]:
    global _isupport_of
    if _isupport_of is None or _isupport_of[0] is not config:
        _isupport_of = (config, isupport_tokens(config))
    tokens = _isupport_of[1]
    for i in range(0, len(tokens), 12):  # Modern IRC: at most 13 tokens per line
        yield numeric(
            config.server_name,
            nick,
            N.RPL_ISUPPORT,
            *tokens[i : i + 12],
            b"are supported by this server",
        )


def welcome(config: Config, user: User, created: bytes) -> Iterator[bytes]:
    """001-004 and 005 (RFC 2812 §5.1; Modern IRC "Connection Registration")."""
    s, n = config.server_name, user.nick
    yield numeric(
        s, n, N.RPL_WELCOME, b"Welcome to the %s IRC network %s" % (config.network, user.mask)
    )
    yield numeric(s, n, N.RPL_YOURHOST, b"Your host is %s, running version %s" % (s, VERSION))
    yield numeric(s, n, N.RPL_CREATED, b"This server was created " + created)
    yield b":%s %s %s %s %s %s %s\r\n" % (
        s,
        N.RPL_MYINFO,
        n,
        s,
        VERSION,
        USER_MODES,
        LIST_MODES + PARAM_ALWAYS + PARAM_ON_SET + FLAG_MODES + b"ov",
    )
    yield from isupport_lines(config, n)


def lusers(config: Config, nick: bytes, state: State, local: int) -> Iterator[bytes]:
    """RFC 2812 §3.4.2 LUSERS: the whole network, however many workers hold it. RPL_LUSERCLIENT
    counts visible and invisible (+i) users apart, as servers do."""
    s = config.server_name
    total = len(state.users)
    yield numeric(
        s,
        nick,
        N.RPL_LUSERCLIENT,
        b"There are %d users and %d invisible on 1 servers"
        % (total - state.invisible, state.invisible),
    )
    yield numeric(s, nick, N.RPL_LUSEROP, b"%d" % state.opers, b"operator(s) online")
    yield numeric(s, nick, N.RPL_LUSERCHANNELS, b"%d" % len(state.channels), b"channels formed")
    yield numeric(s, nick, N.RPL_LUSERME, b"I have %d clients and 0 servers" % total)
    yield numeric(
        s,
        nick,
        N.RPL_LOCALUSERS,
        b"%d" % total,
        b"%d" % state.max_users,
        b"Current local users %d, max %d" % (total, state.max_users),
    )
    yield numeric(
        s,
        nick,
        N.RPL_GLOBALUSERS,
        b"%d" % total,
        b"%d" % state.max_users,
        b"Current global users %d, max %d" % (total, state.max_users),
    )


def motd(config: Config, nick: bytes) -> Iterator[bytes]:
    """RFC 2812 §3.4.1 MOTD: 375, 372 per line, 376; or 422 when there is none."""
    s = config.server_name
    if not config.motd:
        yield numeric(s, nick, N.ERR_NOMOTD, b"MOTD File is missing")
        return
    yield numeric(s, nick, N.RPL_MOTDSTART, b"- %s Message of the day - " % s)
    for text in config.motd:
        yield numeric(s, nick, N.RPL_MOTD, b"- " + text)
    yield numeric(s, nick, N.RPL_ENDOFMOTD, b"End of /MOTD command.")


def info(config: Config, nick: bytes, created: bytes) -> Iterator[bytes]:
    """RFC 2812 §3.4.10 / Modern IRC INFO: "zero or more RPL_INFO replies, followed by one
    RPL_ENDOFINFO": the software, the server and how it is built, since when it runs."""
    s = config.server_name
    text = (
        b"%s, an IRC server in Python" % VERSION,
        b"%s: %s" % (s, config.server_info),
        b"One server, %d worker process%s: one sequencer decides everything in one order"
        % (config.workers, b"" if config.workers == 1 else b"es"),
        b"On-line since " + created,
    )
    for line in text:
        yield numeric(s, nick, N.RPL_INFO, line)
    yield numeric(s, nick, N.RPL_ENDOFINFO, b"End of /INFO list.")


def help_text(
    config: Config, nick: bytes, subject: bytes, title: str, text: Iterable[str]
) -> Iterator[bytes]:
    """Modern IRC HELP: RPL_HELPSTART with the ``title``, RPL_HELPTXT per line of ``text``,
    then RPL_ENDOFHELP, each with the ``subject``."""
    s = config.server_name
    yield numeric(s, nick, N.RPL_HELPSTART, subject, title.encode())
    for line in text:
        yield numeric(s, nick, N.RPL_HELPTXT, subject, line.encode())
    yield numeric(s, nick, N.RPL_ENDOFHELP, subject, b"End of /HELP")


def stats_uptime(config: Config, nick: bytes, seconds: int) -> bytes:
    """Modern IRC RPL_STATSUPTIME: ``Server Up <days> days <hours>:<minutes>:<seconds>``."""
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = b"Server Up %d days %d:%02d:%02d" % (days, hours, minutes, secs)
    return numeric(config.server_name, nick, N.RPL_STATSUPTIME, text)


def stats_commands(config: Config, nick: bytes, counts: dict[bytes, int]) -> Iterator[bytes]:
    """Modern IRC RPL_STATSCOMMANDS, ``<command> <count>``, for each command used, by name."""
    for name in sorted(counts):
        if counts[name]:
            yield numeric_tokens(
                config.server_name, nick, N.RPL_STATSCOMMANDS, name, b"%d" % counts[name]
            )


def stats_link(
    config: Config,
    nick: bytes,
    name: bytes,
    sendq: int,
    sent: tuple[int, int],
    received: tuple[int, int],
    seconds_open: int,
) -> bytes:
    """RFC 2812 RPL_STATSLINKINFO: ``<linkname> <sendq> <sent messages> <sent Kbytes>
    <received messages> <received Kbytes> <time open>``; ``sent`` and ``received`` are
    (messages, bytes)."""
    return numeric_tokens(
        config.server_name,
        nick,
        N.RPL_STATSLINKINFO,
        name,
        b"%d" % sendq,
        b"%d" % sent[0],
        b"%d" % (sent[1] // 1024),
        b"%d" % received[0],
        b"%d" % (received[1] // 1024),
        b"%d" % max(seconds_open, 0),
    )


def stats_kline(config: Config, nick: bytes, line: KLine) -> bytes:
    """RPL_STATSKLINE as InspIRCd sends it: ``<mask> <set time> <duration> <setter>
    :<reason>``, the times in seconds (duration 0: permanent)."""
    length = (line.expires - line.set_at) // 1000 if line.expires else 0
    set_at = b"%d" % (line.set_at // 1000)
    return numeric(
        config.server_name,
        nick,
        N.RPL_STATSKLINE,
        line.mask,
        set_at,
        b"%d" % length,
        line.setter,
        line.reason,
    )


def end_of_stats(config: Config, nick: bytes, letter: bytes) -> bytes:
    """Modern IRC RPL_ENDOFSTATS, which ends every STATS answer, a letter we know or not."""
    return numeric(config.server_name, nick, N.RPL_ENDOFSTATS, letter, b"End of /STATS report")


def admin(config: Config, nick: bytes) -> Iterator[bytes]:
    """RFC 2812 §3.4.9 / Modern IRC ADMIN: RPL_ADMINME, RPL_ADMINLOC1 (where the server
    is), RPL_ADMINLOC2 (who runs it) and RPL_ADMINEMAIL, from the configuration."""
    s = config.server_name
    yield numeric(s, nick, N.RPL_ADMINME, s, b"Administrative info")
    yield numeric(s, nick, N.RPL_ADMINLOC1, config.admin_location or b"Location not configured")
    yield numeric(s, nick, N.RPL_ADMINLOC2, config.admin_name or b"Administrator not configured")
    yield numeric(s, nick, N.RPL_ADMINEMAIL, config.admin_email or b"E-mail not configured")


def links(config: Config, nick: bytes, mask: bytes, listed: bool) -> Iterator[bytes]:
    """RFC 2812 §3.4.5 / Modern IRC LINKS: this server, alone (hop count 0), when ``listed``
    (the mask matches its name), then RPL_ENDOFLINKS with the mask."""
    s = config.server_name
    if listed:
        yield numeric(s, nick, N.RPL_LINKS, s, s, b"0 " + config.server_info)
    yield numeric(s, nick, N.RPL_ENDOFLINKS, mask, b"End of /LINKS list.")


def whowas(
    config: Config, nick: bytes, asked: bytes, entries: Iterable[WhowasEntry]
) -> Iterator[bytes]:
    """RFC 2812 §3.6.3 / Modern IRC WHOWAS: per entry, newest first, 314 and 312 (whose
    info is when the nick was given up, as InspIRCd and Solanum show it); 406 when there
    is none; 369 at the end, with the nick as asked."""
    s = config.server_name
    found = False
    for e in entries:
        found = True
        yield numeric(s, nick, N.RPL_WHOWASUSER, e.nick, e.username, e.host, b"*", e.realname)
        yield numeric(s, nick, N.RPL_WHOISSERVER, e.nick, s, dates.server_time(e.time / 1000))
    if not found:
        yield numeric(s, nick, N.ERR_WASNOSUCHNICK, asked, b"There was no such nickname")
    yield numeric(s, nick, N.RPL_ENDOFWHOWAS, asked, b"End of WHOWAS")


def channel_symbol(chan: Channel) -> bytes:
    return b"@" if b"s" in chan.modes else b"="


def names(
    config: Config,
    nick: bytes,
    state: State,
    chan: Channel,
    *,
    multi_prefix: bool = False,
    userhost: bool = False,
    asker: int = 0,
) -> Iterator[bytes]:
    """RFC 2812 §3.2.5 NAMES of one channel, for a member (on JOIN): 353 lines, then 366.
    ``multi_prefix``, ``userhost`` and ``asker``: as :func:`name_replies`."""
    yield from name_replies(
        config, nick, state, chan, multi_prefix=multi_prefix, userhost=userhost, asker=asker
    )
    yield end_of_names(config, nick, chan.name)


def name_replies(
    config: Config,
    nick: bytes,
    state: State,
    chan: Channel,
    hide_invisible: bool = False,
    *,
    multi_prefix: bool = False,
    userhost: bool = False,
    asker: int = 0,
    see: bool = False,
) -> Iterator[bytes]:
    """The 353 lines of a channel (each under 512 bytes), without the 366: the NAMES command
    ends a list of channels with one. ``hide_invisible`` for an asker who is not on the
    channel: then users with +i are not listed (Modern IRC). For an asker that negotiated
    them: ``multi_prefix``, every prefix of a member, highest first (IRCv3 multi-prefix:
    "all possible prefixes ... in order of rank"); ``userhost``, each member as
    ``nick!user@host`` (IRCv3 userhost-in-names).

    Delayed join (+D): the hidden members are left out but the ``asker`` (a uid) itself,
    unless it may ``see`` everyone (an IRC operator's ``see``); then the list costs the
    visible members only (``Channel.visible``), which is what keeps a big lobby's JOIN
    cheap."""
    users = state.users
    prefix = prefixes_of if multi_prefix else prefix_of
    members = chan.members

    def entries_of(listed: Iterable[int]) -> list[bytes]:
        return [
            prefix(members[uid]) + (user.mask if userhost else user.nick)
            for uid in listed
            if (user := users.get(uid)) is not None and not (hide_invisible and b"i" in user.modes)
        ]

    server, symbol = config.server_name, channel_symbol(chan)
    if chan.hidden and not see and not hide_invisible:
        # The visible members' 353 bodies, rendered once while they stay the same (a big +D
        # lobby's every hidden JOIN lists them), for each room a nick leaves on the line:
        # Channel.shown_version moves when they may have changed. (Not for an outsider's
        # list, which user modes change: +i moves no version.) The asker, if hidden, last.
        key = (chan.shown_version, multi_prefix, userhost)
        cached = chan.names_cache
        if cached is None or cached[0] != key:
            cached = chan.names_cache = (key, entries_of(chan.visible), {})
        room = MAX_LINE - len(numeric(server, nick, N.RPL_NAMREPLY, symbol, chan.name, b""))
        bodies: list[bytes] | None = cached[2].get(room)
        if bodies is None:
            bodies = cached[2][room] = list(word_bodies(cached[1], room)) if cached[1] else []
        if asker in chan.hidden:
            own = entries_of((asker,))
            if own and bodies and len(bodies[-1]) + 1 + len(own[0]) <= room:
                bodies = [*bodies[:-1], bodies[-1] + b" " + own[0]]
            else:
                bodies = [*bodies, *own]
        for body in bodies:
            yield numeric(server, nick, N.RPL_NAMREPLY, symbol, chan.name, body)
        return
    # delayed join: an outsider's list of the visible members is not cached
    entries = entries_of(chan.visible if chan.hidden and not see else members)
    if entries:
        yield from word_lines(server, nick, N.RPL_NAMREPLY, entries, symbol, chan.name)


def end_of_names(config: Config, nick: bytes, name: bytes) -> bytes:
    return numeric(config.server_name, nick, N.RPL_ENDOFNAMES, name, b"End of /NAMES list.")


def topic(config: Config, nick: bytes, chan: Channel) -> Iterator[bytes]:
    """RFC 2812 §3.2.4: 332 and 333, or 331 when no topic is set."""
    s = config.server_name
    if not chan.topic:
        yield numeric(s, nick, N.RPL_NOTOPIC, chan.name, b"No topic is set")
        return
    yield numeric(s, nick, N.RPL_TOPIC, chan.name, chan.topic)
    yield numeric_tokens(
        s, nick, N.RPL_TOPICWHOTIME, chan.name, chan.topic_setter, b"%d" % chan.topic_time
    )


class WhoxQuery(NamedTuple):
    """What a WHOX request asks for (IRCv3 WHOX ``%<fields>[,<token>]``)."""

    fields: bytes  # the standard fields asked for, each once, in WHOX_FIELDS order
    token: bytes  # 1 to 3 digits, what ``t`` returns ("0" when the client gave none)


def who_flags(user: User, chan: Channel | None, multi_prefix: bool) -> bytes:
    """A WHO reply's flags: ``H`` here or ``G`` gone (away), ``*`` for an IRC operator
    (Modern IRC), the member's prefix on ``chan`` (every prefix, highest first, with
    ``multi_prefix``: IRCv3 multi-prefix), ``B`` for a bot (IRCv3 bot-mode)."""
    flags = b"G" if user.away else b"H"
    modes = user.modes
    if b"o" in modes:
        flags += b"*"
    if chan is not None:
        flags += (prefixes_of if multi_prefix else prefix_of)(chan.members.get(user.uid, 0))
    if BOT_MODE in modes:
        flags += BOT_MODE
    return flags


def who_line(
    config: Config, nick: bytes, user: User, chan: Channel | None, multi_prefix: bool = False
) -> bytes:
    """One RFC 2812 §3.6.1 RPL_WHOREPLY: ``<channel> <user> <host> <server> <nick>
    <flags> :0 <realname>``, the flags as :func:`who_flags` gives them."""
    return numeric(
        config.server_name,
        nick,
        N.RPL_WHOREPLY,
        b"*" if chan is None else chan.name,
        user.username,
        user.host,
        config.server_name,
        user.nick,
        who_flags(user, chan, multi_prefix),
        b"0 " + user.realname,
    )


def whox_line(
    config: Config,
    nick: bytes,
    user: User,
    chan: Channel | None,
    query: WhoxQuery,
    multi_prefix: bool = False,
    show_ip: bool = False,
) -> bytes:
    """One IRCv3 WHOX RPL_WHOSPCRPL: exactly the fields ``query`` asks for, in the spec's
    order. ``i`` is the user's address only if ``show_ip`` (the asker is the user, or an
    IRC operator with the ``see`` privilege; "255.255.255.255 ... when the server refuses
    to disclose the IP address"); ``a`` is ``0`` when the user is logged in to no account;
    ``o`` is the channel op level as Solanum gives it (``999`` for a channel operator, else
    ``n/a``); ``d`` (hop count) is 0 on a network of one server.

    ``l`` (idle seconds) is 0: when a user last spoke is known only to the worker that
    holds it, not network state, and an answer must not depend on which worker the asker
    is on (servers give 0 for users on other servers too)."""
    params: list[bytes] = []
    for field in query.fields.decode("ascii"):
        if field == "t":
            params.append(query.token)
        elif field == "c":
            params.append(b"*" if chan is None else chan.name)
        elif field == "u":
            params.append(user.username)
        elif field == "i":
            params.append(user.ip if show_ip else HIDDEN_IP)
        elif field == "h":
            params.append(user.host)
        elif field == "s":
            params.append(config.server_name)
        elif field == "n":
            params.append(user.nick)
        elif field == "f":
            params.append(who_flags(user, chan, multi_prefix))
        elif field in "dl":
            params.append(b"0")
        elif field == "a":
            params.append(user.account or b"0")
        elif field == "o":
            chanop = chan is not None and chan.members.get(user.uid, 0) & OP
            params.append(b"999" if chanop else b"n/a")
        elif field == "r":  # the last field: trailing, as a realname may hold spaces
            return numeric(config.server_name, nick, N.RPL_WHOSPCRPL, *params, user.realname)
    return numeric_tokens(config.server_name, nick, N.RPL_WHOSPCRPL, *params)


def whois(
    config: Config,
    nick: bytes,
    user: User,
    asker_channels: Iterable[bytes],
    see_secret: bool = False,
    multi_prefix: bool = False,
    see_certfp: bool = False,
    metadata: Iterable[tuple[bytes, bytes]] = (),
) -> Iterator[bytes]:
    """RFC 2812 §3.6.2 WHOIS: 311, 319, 312, 313 (Modern IRC RPL_WHOISOPERATOR), 335 (IRCv3
    bot-mode RPL_WHOISBOT), 330, 276 (Modern IRC RPL_WHOISCERTFP, the TLS client
    certificate's fingerprint, if ``see_certfp``: the user itself or an operator asks, as
    in Ergo), 301, 760 (IRCv3 metadata-3 RPL_WHOISKEYVALUE, one per key of ``metadata``:
    for an asker that negotiated it), 318.
    Secret channels are hidden from outsiders, unless ``see_secret`` (an IRC operator with the
    ``see`` privilege). With ``multi_prefix``, 319 shows every prefix the user has on each
    channel, highest first (IRCv3 multi-prefix)."""
    s = config.server_name
    yield numeric(
        s, nick, N.RPL_WHOISUSER, user.nick, user.username, user.host, b"*", user.realname
    )
    shared = set(asker_channels)
    prefix = prefixes_of if multi_prefix else prefix_of
    chans = [
        prefix(c.members.get(user.uid, 0)) + c.name
        for c in user.channels
        if (b"s" not in c.modes or c.key in shared or see_secret)
        # delayed join (+D): a hidden member's channel only to itself and to ``see``
        and (user.uid not in c.hidden or see_secret or user.nick == nick)
    ]
    if chans:
        yield from word_lines(s, nick, N.RPL_WHOISCHANNELS, chans, user.nick)
    yield numeric(s, nick, N.RPL_WHOISSERVER, user.nick, s, config.server_info)
    if b"o" in user.modes:
        yield numeric(s, nick, N.RPL_WHOISOPERATOR, user.nick, b"is an IRC operator")
    if BOT_MODE in user.modes:
        yield numeric(s, nick, N.RPL_WHOISBOT, user.nick, b"is a bot")
    if user.account is not None:
        yield numeric(s, nick, N.RPL_WHOISACCOUNT, user.nick, user.account, b"is logged in as")
    if user.certfp and see_certfp:
        text = b"has client certificate fingerprint " + user.certfp
        yield numeric(s, nick, N.RPL_WHOISCERTFP, user.nick, text)
    if user.away:
        yield numeric(s, nick, N.RPL_AWAY, user.nick, user.away)
    for key, value in metadata:
        yield numeric(s, nick, N.RPL_WHOISKEYVALUE, user.nick, key, b"*", value)
    yield numeric(s, nick, N.RPL_ENDOFWHOIS, user.nick, b"End of /WHOIS list.")


def stats_store(config: Config, nick: bytes, store: StoreStatus | None) -> list[bytes]:
    """STATS S, the store's writer, as RPL_STATSDEBUG lines (``S :<text>``, as ircd-hybrid
    answers its free-form letters): whether writing works, how many write operations are
    queued, committed and dropped, and the last failure's reason."""
    s = config.server_name
    if store is None:
        return [numeric(s, nick, N.RPL_STATSDEBUG, b"S", b"store: none (nothing is kept)")]
    counts = b"%d writes queued, %d committed, %d dropped" % (
        store.queued,
        store.committed,
        store.dropped,
    )
    state = b"healthy" if store.healthy else b"failing"
    return [
        numeric(s, nick, N.RPL_STATSDEBUG, b"S", b"store: %s; %s" % (state, counts)),
        numeric(s, nick, N.RPL_STATSDEBUG, b"S", b"store: last error: " + (store.error or b"none")),
    ]
