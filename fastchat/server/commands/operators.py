"""Operators: OPER, KILL, WALLOPS, KLINE, UNKLINE and CHGHOST (RFC 2812 §3.1.4, §3.7.1, §4.7;
Modern IRC "Operators"; KLINE as InspIRCd and Solanum have it; CHGHOST as InspIRCd and
UnrealIRCd have it, with IRCv3 chghost).

Owns: becoming an operator from the config's ``[[oper]]`` blocks (name, scrypt password hash,
``user@host`` masks, privileges), slowing down failed attempts, and turning KILL, WALLOPS,
KLINE, UNKLINE and CHGHOST into requests for the sequencer, which decides them for the whole network
(and enforces K-lines: at registration, and on whoever a new one matches). What being an
operator changes elsewhere shows where it is used: the dispatcher checks a command row's
``privilege`` against ``client.privileges``; the sequencer lets ``override`` past channel
rules; WHO, WHOIS, NAMES and LIST show more to ``see``; WHO, WHOIS and LUSERS show +o.
Must never: check a password on the loop (``ctx.check_password`` is an effect: the shell runs
scrypt on a thread and hands the answer back), or change the state directly (+o and the
privileges are network state: the sequencer's E_OPER gives them, ``MODE nick -o`` takes them).

Every operator action is logged with who did it (``ctx.audit``): OPER, failed or not, and a
KLINE refused for its syntax, here; KILL, KLINE, UNKLINE, -o and overrides where the
sequencer's decision comes back (engine/replica.py, core.py).
"""

from __future__ import annotations

import re

from fastchat.irc import numerics as N
from fastchat.irc.message import Message, truncate_utf8
from fastchat.server.commands.context import Context
from fastchat.server.commands.registration import QUITLEN
from fastchat.server.commands.table import Command
from fastchat.server.config import OperBlock
from fastchat.server.connection import Client, user_of
from fastchat.server.network.access import mask_matches
from fastchat.server.network.records import (
    RChghost,
    RKill,
    RKline,
    ROper,
    RUnkline,
    RWallops,
    make,
)
from fastchat.server.network.sequencer import kline_mask_problem, kline_matches
from fastchat.server.render import lines

#: After the n-th failed OPER in a row, a connection's OPERs are answered 464 without a check
#: for 2**(n-1) seconds, at most this long: a typo costs a second, a guesser gets one try a
#: minute, and its attempts cost the worker no scrypt meanwhile. Counted per connection and
#: per address (on each worker), so reconnecting does not reset it.
RETRY_CAP = 60.0
#: The per-address table of failures (``Context.oper_backoff``) forgets expired entries when it
#: holds this many addresses.
BACKOFF_ADDRESSES = 4096


def oper(ctx: Context, client: Client, msg: Message) -> None:
    """Modern IRC OPER <name> <password>: 381 RPL_YOUREOPER and the MODE +o echo (both sent
    when the sequencer has decided it, see ``Replica._e_oper``); 464 ERR_PASSWDMISMATCH for a
    wrong password or an unknown name (the same answer, after the same work: an unknown name
    is checked against a configured hash, so the time taken does not tell which names
    exist); 491 ERR_NOOPERHOST for the right password from a ``user@host`` none of the
    block's masks match (checked after the password, so only who knows it learns that)."""
    name, password = msg.params[0], msg.params[1]
    failures, retry_at = _backoff(ctx, client)
    if ctx.now < retry_at:
        _refuse(
            ctx,
            client,
            f"OPER {_text(name)!r} refused unchecked: {failures} failure(s) in a row from this"
            f" connection or address, retry allowed in {retry_at - ctx.now:.1f} s",
        )
        return
    opers = ctx.config.opers
    block = next((b for b in opers if b.name == name), None)
    if not opers:
        _failed(ctx, client, name, "no operator is configured")
        return
    stored = block.password if block is not None else opers[0].password
    ctx.check_password(
        client, password, stored, lambda matched: _checked(ctx, client, name, block, matched)
    )


def _checked(
    ctx: Context, client: Client, name: bytes, block: OperBlock | None, matched: bool
) -> None:
    """The password check is back (on the loop): finish the OPER."""
    if block is None:
        _failed(ctx, client, name, "no such operator name")
    elif not matched:
        _failed(ctx, client, name, "wrong password")
    elif not any(mask_matches(b"*!" + mask, user_of(client)) for mask in block.hosts):
        # the password was right: nothing was guessed, so nothing to slow down (but logged)
        _refuse(
            ctx,
            client,
            f"OPER {_text(name)!r} failed: host not allowed",
            N.ERR_NOOPERHOST,
            b"No O-lines for your host",
        )
    else:
        client.oper_failures = 0
        ctx.oper_backoff.pop(client.ip, None)
        ctx.submit(make(ROper, client.uid, block.name, tuple(sorted(block.privileges))))


def _failed(
    ctx: Context,
    client: Client,
    name: bytes,
    why: str,
    numeric: bytes = N.ERR_PASSWDMISMATCH,
    text: bytes = b"Password incorrect",
) -> None:
    failures = _backoff(ctx, client)[0] + 1
    wait = min(2.0 ** (failures - 1), RETRY_CAP)
    client.oper_failures, client.oper_retry_at = failures, ctx.now + wait
    table = ctx.oper_backoff
    if len(table) >= BACKOFF_ADDRESSES:  # keep the table bounded: forget what has expired
        for ip in [ip for ip, (_, until) in table.items() if until <= ctx.now]:
            del table[ip]
    table[client.ip] = (failures, client.oper_retry_at)
    _refuse(
        ctx,
        client,
        f"OPER {_text(name)!r} failed: {why} ({client.oper_failures} in a row; next check in"
        f" {wait:.0f} s at the earliest)",
        numeric,
        text,
    )


def _backoff(ctx: Context, client: Client) -> tuple[int, float]:
    """Failures in a row and when the next check is allowed: the stricter of this
    connection's and its address's (a guesser who reconnects for each try is slowed too)."""
    failures, until = ctx.oper_backoff.get(client.ip, (0, 0.0))
    return max(failures, client.oper_failures), max(until, client.oper_retry_at)


def _refuse(
    ctx: Context,
    client: Client,
    log: str,
    numeric: bytes = N.ERR_PASSWDMISMATCH,
    text: bytes = b"Password incorrect",
) -> None:
    ctx.audit(client, log, failed=True)
    ctx.reply(client, numeric, text)


def kill(ctx: Context, client: Client, msg: Message) -> None:
    """Modern IRC KILL <nickname> <comment> (privilege ``kill``; the comment may be left out,
    as Ergo allows). The sequencer decides it, wherever the victim is: 401 ERR_NOSUCHNICK for
    nobody; else the victim's channels see ``QUIT :Killed (<oper> (<comment>))`` and the victim
    gets the KILL, then ERROR (``Replica._e_kill``)."""
    comment = msg.param(1) or b"No reason given"
    # The victim's QUIT reason, "Killed (<oper> (<comment>))", is held to QUITLEN like any
    # other, so its QUIT and ERROR lines stay within 512 bytes
    room = QUITLEN - len(b"Killed ( ())") - len(user_of(client).nick)
    ctx.submit(make(RKill, client.uid, msg.params[0], truncate_utf8(comment, max(room, 0))))


def wallops(ctx: Context, client: Client, msg: Message) -> None:
    """RFC 2812 §4.7 / Modern IRC WALLOPS <text> (privilege ``wallops``): every user with
    user mode +w, on every worker, receives ``:oper!user@host WALLOPS :text``; the sender too
    only if it has +w. The line is formatted once, here."""
    text = msg.params[0]
    if not text:  # Modern IRC: "The <text> SHOULD be non-empty"
        raise N.IRCError(N.ERR_NEEDMOREPARAMS, msg.command, b"Not enough parameters")
    ctx.audit(client, "WALLOPS " + _text(text))
    ctx.submit(make(RWallops, client.uid, lines.wallops(user_of(client).mask, text)))


#: The longest K-line reason kept: a K-lined user's channels see it quit with
#: ``K-Lined: <reason>``, held to QUITLEN like any quit reason.
KLINE_REASON_LEN = QUITLEN - len(b"K-Lined: ")
#: The longest K-line duration: ten years (``0`` is the way to say for ever).
MAX_KLINE_SECONDS = 3650 * 86400
_DURATION = re.compile(rb"(?:\d+[wdhms])+")
_UNIT_SECONDS = {b"w": 604800, b"d": 86400, b"h": 3600, b"m": 60, b"s": 1}


def parse_duration(text: bytes) -> int | None:
    """KLINE's <duration> in seconds: ``0`` (permanent), a number of seconds, or counts of
    weeks, days, hours, minutes and seconds (InspIRCd's form, any case); None for anything
    else, or beyond ten years.

    >>> parse_duration(b"0"), parse_duration(b"90"), parse_duration(b"1h30m"), parse_duration(b"2D")
    (0, 90, 5400, 172800)
    >>> parse_duration(b"soon"), parse_duration(b"-5"), parse_duration(b"1h30")
    (None, None, None)
    """
    text = text.lower()
    if text.isdigit():
        seconds = int(text)
    elif _DURATION.fullmatch(text):
        seconds = sum(
            int(count) * _UNIT_SECONDS[unit] for count, unit in re.findall(rb"(\d+)(\D)", text)
        )
    else:
        return None
    return seconds if seconds <= MAX_KLINE_SECONDS else None


def kline(ctx: Context, client: Client, msg: Message) -> None:
    """KLINE <user@host> [<duration> [:<reason>]] (privilege ``kline``; InspIRCd's syntax,
    with what Modern IRC's STATS k and ERR_YOUREBANNEDCREEP report): ban from the server
    every connection whose user@host the mask matches.

    The mask takes ``*`` and ``?``; ``<duration>`` is ``0`` (the default: for good), seconds,
    or ``30m``, ``2h``, ``1d``, ``1h30m`` and the like; ``<reason>`` defaults to "No reason
    given". ``KLINE <user@host> :<reason>`` (a second parameter that does not start with a digit,
    and no third) is a K-line for good with that reason, as most operators type it. The sequencer decides it: whoever it matches, on any worker, gets 465 and ERROR
    and is disconnected, and their channels see ``QUIT :K-Lined: <reason>``; a later
    registration it matches gets 465 and ERROR. The operator gets a NOTICE saying what was
    done; a mask that is malformed, or would match everyone or the operator, a NOTICE saying
    why not."""
    mask = msg.params[0]
    problem = kline_mask_problem(mask)
    if problem is None and kline_matches(mask, user_of(client)):
        problem = b"would match you"
    if problem is not None:
        _kline_refused(ctx, client, b"K-line mask %s %s" % (mask, problem))
        return
    written = msg.param(1) or b"0"
    seconds = parse_duration(written)
    reason_at = 2
    if seconds is None and len(msg.params) == 2 and not written[:1].isdigit():
        seconds, reason_at = 0, 1  # "KLINE mask :reason": for good, with that reason
    if seconds is None:
        _kline_refused(
            ctx,
            client,
            b"%s is no duration (0 for permanent, seconds, or e.g. 30m, 2h, 1d, 1h30m; ten"
            b" years at most)" % written,
        )
        return
    # kept as UTF-8 (the K-line file is text), at most what a QUIT reason may hold
    reason = msg.param(reason_at).decode(errors="replace").encode() or b"No reason given"
    reason = truncate_utf8(reason, KLINE_REASON_LEN)
    ctx.submit(make(RKline, client.uid, mask, seconds, reason))


def _kline_refused(ctx: Context, client: Client, why: bytes) -> None:
    ctx.audit(client, "KLINE refused: " + _text(why), failed=True)
    text = b"*** KLINE refused: %s. Usage: KLINE <user@host> [<duration> [:<reason>]]" % why
    ctx.send(client, lines.notice(ctx.config.server_name, client.name, text))


def unkline(ctx: Context, client: Client, msg: Message) -> None:
    """UNKLINE <user@host> (privilege ``kline``; as Solanum and ircd-hybrid have it, for
    what Modern IRC's STATS k lists): lift the K-line on that mask, written in any case.

    The sequencer answers with a NOTICE: the K-line removed, or none found."""
    ctx.submit(make(RUnkline, client.uid, msg.params[0]))


#: The longest host CHGHOST gives (InspIRCd's default ``maxhost``).
HOSTLEN = 64
#: The longest username, as ISUPPORT USERLEN announces it (USER keeps ``~`` and 17 more).
USERLEN = 18
#: What a host may be made of: a name's letters, digits, ``-`` and ``.``, an address's ``:``,
#: and ``/`` and ``_``, which cloaks and virtual hosts use (``users/ada``).
_HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:/")
#: What a username may be made of: what USER keeps, and the ``~`` of no ident first.
_USER_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


def host_problem(host: bytes) -> bytes | None:
    """Why ``host`` cannot be a user's host, or None. It must fit in a mask that others parse
    (``nick!user@host``, and CHGHOST's last parameter): no ``!``, ``@`` or space, and no
    ``:`` first (it would read as a trailing parameter).

    >>> host_problem(b"users/ada"), host_problem(b"::1"), host_problem(b"a b")
    (None, b'may not start with :', b'may hold only letters, digits and - . _ : /')
    """
    if not host or len(host) > HOSTLEN:
        return b"must be 1 to %d bytes long" % HOSTLEN
    if not _HOST_BYTES.issuperset(host):
        return b"may hold only letters, digits and - . _ : /"
    if host.startswith(b":"):
        return b"may not start with :"
    return None


def username_problem(username: bytes) -> bytes | None:
    """Why ``username`` cannot be a user's username, or None: what USER would have kept
    (letters, digits, ``-``, ``_``, ``.``), perhaps after a ``~``, at most USERLEN bytes.

    >>> username_problem(b"~ada"), username_problem(b"ada@x") is None
    (None, False)
    """
    name = username[1:] if username.startswith(b"~") else username
    if not name or len(username) > USERLEN:
        return b"must be 1 to %d bytes long" % USERLEN
    if not _USER_BYTES.issuperset(name):
        return b"may hold only letters, digits and - . _ (after a ~)"
    return None


def chghost(ctx: Context, client: Client, msg: Message) -> None:
    """CHGHOST <nick> [<username>] <host> (privilege ``chghost``; InspIRCd's and UnrealIRCd's
    ``CHGHOST <nick> <host>``, with the username as well if given): a user's new
    ``user@host``, decided by the sequencer wherever the user is.

    Its channels see it change (IRCv3 chghost: ``:nick!old@old CHGHOST user host`` to those
    that negotiated it, the user included; a QUIT and JOIN to the others, see
    ``Replica._e_chghost``), and the operator gets a NOTICE. A host or username that could not
    be one gets ``FAIL CHGHOST INVALID_HOST`` or ``INVALID_USERNAME``; nobody by that nick,
    401 ERR_NOSUCHNICK."""
    nick = msg.params[0]
    if len(msg.params) >= 3:
        username, host = msg.params[1], msg.params[2]
    else:
        username, host = b"", msg.params[1]
    problem = host_problem(host)
    if problem is not None:
        _chghost_refused(ctx, client, b"INVALID_HOST", host, b"Host %s" % problem)
        return
    problem = username_problem(username) if username else None
    if problem is not None:
        _chghost_refused(ctx, client, b"INVALID_USERNAME", username, b"Username %s" % problem)
        return
    ctx.submit(make(RChghost, client.uid, nick, username, host))


def _chghost_refused(ctx: Context, client: Client, code: bytes, value: bytes, why: bytes) -> None:
    ctx.audit(client, f"CHGHOST refused: {_text(why)}: {_text(value)}", failed=True)
    ctx.fail(client, b"CHGHOST", code, why, value)


def _text(data: bytes) -> str:
    return data.decode(errors="replace")


COMMANDS = (
    Command(b"OPER", oper, 2),
    Command(b"KILL", kill, 1, privilege="kill"),
    Command(b"WALLOPS", wallops, 1, privilege="wallops"),
    Command(b"KLINE", kline, 1, privilege="kline"),
    Command(b"UNKLINE", unkline, 1, privilege="kline"),
    Command(b"CHGHOST", chghost, 2, privilege="chghost"),
)
