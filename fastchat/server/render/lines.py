"""Every client-visible line that is not a numeric reply: what users see each other do.

Owns: the exact bytes of relayed messages, JOIN, PART, KICK, QUIT, NICK, TOPIC, MODE, INVITE,
KILL, WALLOPS, PING/PONG, CAP and ERROR lines (RFC 2812 §3, Modern IRC), the IRCv3
notifications (extended JOIN, AWAY, ACCOUNT, SETNAME, CHGHOST) and standard replies
(FAIL/WARN/NOTE), each formatted in one function.
Numeric replies are :mod:`.replies`; tagged variants of a line are :mod:`.variants`.
Must never: decide anything, or know who receives a line.

Every function returns one whole line with its CR LF, at most 512 bytes (RFC 1459 §2.3): a
line that carries a client's free text (a message, a reason, a topic, a token) is cut at a
UTF-8 boundary (:func:`fit_line`); the others are made only of names the server bounds
(nicks, channels, masks, mode arguments), which keep them under the limit.
"""

from __future__ import annotations

from fastchat.irc.message import MAX_LINE, fit_line


def message(mask: bytes, command: bytes, target: bytes, text: bytes) -> bytes:
    """``:nick!user@host PRIVMSG target :text`` (RFC 2812 §3.3.1; also NOTICE)."""
    return fit_line(b":%s %s %s :%s\r\n" % (mask, command, target, text))


def message_fast(source: bytes, command: bytes, target: bytes, colon_text: bytes) -> bytes:
    """The same line as :func:`message`, for the hot path: ``source`` is the sender's cached
    ``:mask `` and ``colon_text`` the text with its ':' as the client sent it. One ``%``."""
    out = b"%s%s %s %s\r\n" % (source, command, target, colon_text)
    if len(out) > MAX_LINE:  # our prefix made it longer than a line may be: cut the text
        out = fit_line(out)
    return out


def nick(mask: bytes, new: bytes) -> bytes:
    """RFC 2812 §3.1.2: ``:old!user@host NICK :new``."""
    return b":%s NICK :%s\r\n" % (mask, new)


def join(mask: bytes, channel: bytes) -> bytes:
    """RFC 2812 §3.2.1: ``:nick!user@host JOIN #channel``."""
    return b":%s JOIN %s\r\n" % (mask, channel)


def join_extended(mask: bytes, channel: bytes, account: bytes | None, realname: bytes) -> bytes:
    """IRCv3 extended-join: ``:nick!user@host JOIN #channel <account> :<realname>``, with
    ``*`` for a user logged in to no account."""
    return fit_line(b":%s JOIN %s %s :%s\r\n" % (mask, channel, account or b"*", realname))


def part(mask: bytes, channel: bytes, reason: bytes) -> bytes:
    """RFC 2812 §3.2.2: ``PART #channel [:reason]``."""
    if reason:
        return fit_line(b":%s PART %s :%s\r\n" % (mask, channel, reason))
    return b":%s PART %s\r\n" % (mask, channel)


def kick(mask: bytes, channel: bytes, target: bytes, reason: bytes) -> bytes:
    """RFC 2812 §3.2.8: ``KICK #channel nick :reason``."""
    return fit_line(b":%s KICK %s %s :%s\r\n" % (mask, channel, target, reason))


def quit_(mask: bytes, reason: bytes) -> bytes:
    """RFC 2812 §3.1.7: ``:nick!user@host QUIT :reason``."""
    return fit_line(b":%s QUIT :%s\r\n" % (mask, reason))


def kill(mask: bytes, target: bytes, comment: bytes) -> bytes:
    """Modern IRC KILL, what its victim receives: ``:oper!user@host KILL victim :comment``."""
    return fit_line(b":%s KILL %s :%s\r\n" % (mask, target, comment))


def wallops(mask: bytes, text: bytes) -> bytes:
    """RFC 2812 §4.7 / Modern IRC WALLOPS: ``:oper!user@host WALLOPS :text``."""
    return fit_line(b":%s WALLOPS :%s\r\n" % (mask, text))


def topic(source: bytes, channel: bytes, text: bytes) -> bytes:
    """RFC 2812 §3.2.4: ``TOPIC #channel :text``."""
    return fit_line(b":%s TOPIC %s :%s\r\n" % (source, channel, text))


def channel_mode(source: bytes, channel: bytes, modes: bytes, args: tuple[bytes, ...]) -> bytes:
    """RFC 2812 §3.2.3: ``MODE #channel +o-v nick :nick`` (the last argument trailing)."""
    tail = b"".join(b" " + a for a in args[:-1]) + (b" :" + args[-1] if args else b"")
    return b":%s MODE %s %s%s\r\n" % (source, channel, modes, tail)


def user_mode(nick_: bytes, changes: bytes) -> bytes:
    """RFC 2812 §3.1.5, the echo of one's own user mode change: ``:nick MODE nick :+i``."""
    return b":%s MODE %s :%s\r\n" % (nick_, nick_, changes)


def invite(mask: bytes, target: bytes, channel: bytes) -> bytes:
    """RFC 2812 §3.2.7: what the invited user receives."""
    return b":%s INVITE %s :%s\r\n" % (mask, target, channel)


def away(mask: bytes, message: bytes) -> bytes:
    """IRCv3 away-notify: ``:nick!user@host AWAY :message`` (gone), ``... AWAY`` (back)."""
    if message:
        return fit_line(b":%s AWAY :%s\r\n" % (mask, message))
    return b":%s AWAY\r\n" % mask


def account(mask: bytes, name: bytes | None) -> bytes:
    """IRCv3 account-notify: ``:nick!user@host ACCOUNT <account>`` (logged in), ``...
    ACCOUNT *`` (logged out)."""
    return b":%s ACCOUNT %s\r\n" % (mask, name or b"*")


def setname(mask: bytes, realname: bytes) -> bytes:
    """IRCv3 setname: ``:nick!user@host SETNAME :realname``."""
    return fit_line(b":%s SETNAME :%s\r\n" % (mask, realname))


def redact(mask: bytes, channel: bytes, msgid: bytes, reason: bytes) -> bytes:
    """IRCv3 message-redaction: ``:nick!user@host REDACT <channel> <msgid> [:reason]``."""
    if reason:
        return fit_line(b":%s REDACT %s %s :%s\r\n" % (mask, channel, msgid, reason))
    return b":%s REDACT %s %s\r\n" % (mask, channel, msgid)


def chghost(old_mask: bytes, username: bytes, host: bytes) -> bytes:
    """IRCv3 chghost: ``:nick!old_user@old_host CHGHOST new_user new_host``."""
    return b":%s CHGHOST %s %s\r\n" % (old_mask, username, host)


def standard_reply(
    server: bytes,
    kind: bytes,
    command: bytes,
    code: bytes,
    description: bytes,
    context: tuple[bytes, ...] = (),
) -> bytes:
    """IRCv3 standard replies: ``:server FAIL <command> <code> [<context>...] :<description>``.

    ``kind`` is ``FAIL``, ``WARN`` or ``NOTE``; ``command`` is ``*`` for what no command
    caused; ``code`` is one of the IRCv3 reply code registry's.

    >>> standard_reply(b"srv", b"FAIL", b"SETNAME", b"INVALID_REALNAME", b"Realname is not valid")
    b':srv FAIL SETNAME INVALID_REALNAME :Realname is not valid\\r\\n'
    """
    middle = b"".join(b" " + c for c in context)
    return fit_line(b":%s %s %s %s%s :%s\r\n" % (server, kind, command, code, middle, description))


def notice(server: bytes, nick_: bytes, text: bytes) -> bytes:
    """A NOTICE from the server to one client (RFC 2812 §3.3.2), e.g. why a REHASH failed."""
    return fit_line(b":%s NOTICE %s :%s\r\n" % (server, nick_, text))


def ping(server: bytes) -> bytes:
    """RFC 2812 §3.7.2: the server checks an idle client is alive."""
    return b"PING :%s\r\n" % server


def pong(server: bytes, token: bytes) -> bytes:
    """Modern IRC: "the server MUST reply with a PONG with the same token"."""
    return fit_line(b":%s PONG %s :%s\r\n" % (server, server, token))


def cap(server: bytes, nick_: bytes, sub: bytes, *params: bytes) -> bytes:
    """IRCv3 ``CAP`` replies: ``:server CAP nick LS [*] :tokens`` (last parameter trailing)."""
    *middle, last = params
    return fit_line(
        b":%s CAP %s %s%s :%s\r\n" % (server, nick_, sub, b"".join(b" " + m for m in middle), last)
    )


def closing_link(username: bytes, host: bytes, reason: bytes) -> bytes:
    """The ERROR a client gets as its connection closes (what InspIRCd and Solanum send)."""
    return b"ERROR :Closing link: (%s@%s) [%s]\r\n" % (username, host, reason)


def error(reason: bytes) -> bytes:
    """RFC 2812 §3.7.4: ``ERROR :reason``."""
    return b"ERROR :%s\r\n" % reason


def tagmsg(mask: bytes, target: bytes) -> bytes:
    """IRCv3 message-tags ``TAGMSG``: a message made only of its tags (added per recipient)."""
    return b":%s TAGMSG %s\r\n" % (mask, target)
