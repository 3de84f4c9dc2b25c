"""The renderer: every client-visible line that is not a numeric, the calendar dates replies
show, and the tagged variants of a line (``fastchat.server.render``).

Exact bytes for each form (RFC 2812 §3, Modern IRC, IRCv3), the 512-byte limit (RFC 1459
§2.3) with its cut at a UTF-8 boundary, the date formats checked against :mod:`datetime` (used
here only: the renderer must not import it), and the variant cache's sharing.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from fastchat.irc.message import MAX_LINE
from fastchat.server.render import dates, lines
from fastchat.server.render.variants import Variants, escape_tag_value, tag_prefix, with_tags

MASK = b"ada!~ada@10.0.0.1"
SRV = b"irc.example"

# --- exact bytes ---------------------------------------------------------------------------------

EXACT: list[tuple[str, Callable[..., bytes], tuple[object, ...], bytes]] = [
    # RFC 2812 §3.3.1 / §3.3.2
    ("privmsg", lines.message, (MASK, b"PRIVMSG", b"#c", b"hi there"),
     b":ada!~ada@10.0.0.1 PRIVMSG #c :hi there\r\n"),
    ("notice", lines.message, (MASK, b"NOTICE", b"bob", b":)"),
     b":ada!~ada@10.0.0.1 NOTICE bob ::)\r\n"),
    ("privmsg-fast", lines.message_fast, (b":" + MASK + b" ", b"PRIVMSG", b"#c", b":hi there"),
     b":ada!~ada@10.0.0.1 PRIVMSG #c :hi there\r\n"),
    # RFC 2812 §3.1.2
    ("nick", lines.nick, (MASK, b"grace"), b":ada!~ada@10.0.0.1 NICK :grace\r\n"),
    # RFC 2812 §3.2.1
    ("join", lines.join, (MASK, b"#c"), b":ada!~ada@10.0.0.1 JOIN #c\r\n"),
    # RFC 2812 §3.2.2: the reason is optional
    ("part", lines.part, (MASK, b"#c", b"see you"), b":ada!~ada@10.0.0.1 PART #c :see you\r\n"),
    ("part-bare", lines.part, (MASK, b"#c", b""), b":ada!~ada@10.0.0.1 PART #c\r\n"),
    # RFC 2812 §3.2.8
    ("kick", lines.kick, (MASK, b"#c", b"bob", b"out"), b":ada!~ada@10.0.0.1 KICK #c bob :out\r\n"),
    # RFC 2812 §3.1.7
    ("quit", lines.quit_, (MASK, b"Quit: bye"), b":ada!~ada@10.0.0.1 QUIT :Quit: bye\r\n"),
    # RFC 2812 §3.2.4
    ("topic", lines.topic, (MASK, b"#c", b"a b"), b":ada!~ada@10.0.0.1 TOPIC #c :a b\r\n"),
    ("topic-clear", lines.topic, (MASK, b"#c", b""), b":ada!~ada@10.0.0.1 TOPIC #c :\r\n"),
    # RFC 2812 §3.2.3: the last argument trailing
    ("mode-flags", lines.channel_mode, (MASK, b"#c", b"+mt", ()),
     b":ada!~ada@10.0.0.1 MODE #c +mt\r\n"),
    ("mode-one-arg", lines.channel_mode, (MASK, b"#c", b"+o", (b"bob",)),
     b":ada!~ada@10.0.0.1 MODE #c +o :bob\r\n"),
    ("mode-args", lines.channel_mode, (SRV, b"#c", b"+ov-k", (b"bob", b"eve", b"key")),
     b":irc.example MODE #c +ov-k bob eve :key\r\n"),
    # RFC 2812 §3.1.5
    ("umode", lines.user_mode, (b"ada", b"+i"), b":ada MODE ada :+i\r\n"),
    # Modern IRC KILL (what the victim receives), RFC 2812 §4.7 WALLOPS
    ("kill", lines.kill, (MASK, b"bob", b"flooding"),
     b":ada!~ada@10.0.0.1 KILL bob :flooding\r\n"),
    ("wallops", lines.wallops, (MASK, b"maintenance at 10:00"),
     b":ada!~ada@10.0.0.1 WALLOPS :maintenance at 10:00\r\n"),
    # RFC 2812 §3.2.7
    ("invite", lines.invite, (MASK, b"bob", b"#c"), b":ada!~ada@10.0.0.1 INVITE bob :#c\r\n"),
    # RFC 2812 §3.3.2, a notice from the server
    ("notice", lines.notice, (SRV, b"ada", b"REHASH failed"),
     b":irc.example NOTICE ada :REHASH failed\r\n"),
    # RFC 2812 §3.7.2 / §3.7.3, Modern IRC PONG
    ("ping", lines.ping, (SRV,), b"PING :irc.example\r\n"),
    ("pong", lines.pong, (SRV, b"tok en"), b":irc.example PONG irc.example :tok en\r\n"),
    # IRCv3 capability negotiation
    ("cap-ls", lines.cap, (SRV, b"*", b"LS", b"a b=1"), b":irc.example CAP * LS :a b=1\r\n"),
    ("cap-ls-more", lines.cap, (SRV, b"ada", b"LS", b"*", b"a"),
     b":irc.example CAP ada LS * :a\r\n"),
    ("cap-list-empty", lines.cap, (SRV, b"ada", b"LIST", b""), b":irc.example CAP ada LIST :\r\n"),
    # IRCv3 extended-join: the account (``*`` for none) and the realname
    ("join-extended", lines.join_extended, (MASK, b"#c", None, b"Ada L"),
     b":ada!~ada@10.0.0.1 JOIN #c * :Ada L\r\n"),
    ("join-extended-account", lines.join_extended, (MASK, b"#c", b"ada", b"Ada"),
     b":ada!~ada@10.0.0.1 JOIN #c ada :Ada\r\n"),
    # IRCv3 away-notify: with a message (gone), without (back)
    ("away", lines.away, (MASK, b"at lunch"), b":ada!~ada@10.0.0.1 AWAY :at lunch\r\n"),
    ("away-back", lines.away, (MASK, b""), b":ada!~ada@10.0.0.1 AWAY\r\n"),
    # IRCv3 account-notify
    ("account", lines.account, (MASK, b"ada"), b":ada!~ada@10.0.0.1 ACCOUNT ada\r\n"),
    ("account-out", lines.account, (MASK, None), b":ada!~ada@10.0.0.1 ACCOUNT *\r\n"),
    # IRCv3 setname, chghost
    ("setname", lines.setname, (MASK, b"Ada L"), b":ada!~ada@10.0.0.1 SETNAME :Ada L\r\n"),
    ("chghost", lines.chghost, (MASK, b"ada", b"users/ada"),
     b":ada!~ada@10.0.0.1 CHGHOST ada users/ada\r\n"),
    # IRCv3 standard replies, with and without context
    ("fail", lines.standard_reply,
     (SRV, b"FAIL", b"SETNAME", b"INVALID_REALNAME", b"Realname is not valid"),
     b":irc.example FAIL SETNAME INVALID_REALNAME :Realname is not valid\r\n"),
    ("fail-context", lines.standard_reply,
     (SRV, b"FAIL", b"CHGHOST", b"INVALID_HOST", b"Host is bad", (b"a b",)),
     b":irc.example FAIL CHGHOST INVALID_HOST a b :Host is bad\r\n"),
    ("note", lines.standard_reply, (SRV, b"NOTE", b"*", b"OPER_MESSAGE", b"hi all"),
     b":irc.example NOTE * OPER_MESSAGE :hi all\r\n"),
    # RFC 2812 §3.7.4
    ("closing-link", lines.closing_link, (b"~ada", b"10.0.0.1", b"Quit: bye"),
     b"ERROR :Closing link: (~ada@10.0.0.1) [Quit: bye]\r\n"),
    ("error", lines.error, (b"Server shutting down",), b"ERROR :Server shutting down\r\n"),
    # IRCv3 message-tags TAGMSG (its tags are added per recipient)
    ("tagmsg", lines.tagmsg, (MASK, b"#c"), b":ada!~ada@10.0.0.1 TAGMSG #c\r\n"),
    # IRCv3 message-redaction
    ("redact", lines.redact, (MASK, b"#c", b"a-1-0", b""),
     b":ada!~ada@10.0.0.1 REDACT #c a-1-0\r\n"),
    ("redact-reason", lines.redact, (MASK, b"bob", b"a-1-0", b"oops"),
     b":ada!~ada@10.0.0.1 REDACT bob a-1-0 :oops\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("render", "args", "expected"), [e[1:] for e in EXACT], ids=[e[0] for e in EXACT]
)
def test_exact_bytes(
    render: Callable[..., bytes], args: tuple[object, ...], expected: bytes
) -> None:
    """Each line function gives the RFC 2812 / Modern IRC / IRCv3 form, byte for byte, as one
    whole line ending in CR LF (RFC 1459 §2.3.1: ``crlf``)."""
    assert render(*args) == expected


def test_every_line_function_is_covered() -> None:
    """A new line function gets an exact-bytes case above."""
    public = {
        name
        for name, value in vars(lines).items()
        if callable(value) and not name.startswith("_") and value.__module__ == lines.__name__
    }
    assert public <= {render.__name__ for _, render, _, _ in EXACT}


# --- the 512-byte limit -------------------------------------------------------------------------

LONG_TEXTS = {
    "ascii": b"x" * 600,
    "utf8-2": "é".encode() * 400,
    "utf8-3": "€".encode() * 300,
    "utf8-4": "😀".encode() * 200,
    "utf8-3-offset": b"y" + "€".encode() * 300,
    "utf8-3-offset2": b"yy" + "€".encode() * 300,
    "not-utf8": b"\xff\xfe" * 300,
}

#: The functions that carry a client's free text, with how to call them with ``text``.
CUT: dict[str, Callable[[bytes], bytes]] = {
    "message": lambda t: lines.message(MASK, b"PRIVMSG", b"#chan", t),
    "message_fast": lambda t: lines.message_fast(b":" + MASK + b" ", b"NOTICE", b"bob", b":" + t),
    "part": lambda t: lines.part(MASK, b"#chan", t),
    "kick": lambda t: lines.kick(MASK, b"#chan", b"bob", t),
    "quit_": lambda t: lines.quit_(MASK, t),
    "topic": lambda t: lines.topic(MASK, b"#chan", t),
    "kill": lambda t: lines.kill(MASK, b"bob", t),
    "wallops": lambda t: lines.wallops(MASK, t),
    "pong": lambda t: lines.pong(SRV, t),
    "notice": lambda t: lines.notice(SRV, b"ada", t),
    "cap": lambda t: lines.cap(SRV, b"ada", b"NAK", t),
}


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("text", LONG_TEXTS.values(), ids=LONG_TEXTS.keys())
@pytest.mark.parametrize("name", CUT)
def test_long_client_text_is_cut_to_512_bytes(name: str, text: bytes) -> None:
    """RFC 1459 §2.3: "messages SHALL NOT exceed 512 characters in length, counting all
    characters including the trailing CR-LF". A line made too long by a client's text loses
    the end of that text, and never half a UTF-8 character (valid text stays valid); what is
    kept is as much as fits."""
    out = CUT[name](text)
    assert len(out) <= MAX_LINE
    assert out.endswith(b"\r\n") and out.count(b"\n") == 1
    body = out[:-2]
    assert text[: len(text) // 8] in body  # the start of the text is there
    whole = CUT[name](b"")[:-2]  # the line with no text: the cut line starts the same
    assert body.startswith(whole.rstrip(b":").rstrip())
    if _is_utf8(text):
        assert _is_utf8(body)
        assert len(out) > MAX_LINE - 4  # at most one 4-byte character less than the limit
    else:
        assert len(out) == MAX_LINE  # bytes that are not UTF-8 are cut where the size says


@pytest.mark.parametrize("name", CUT)
def test_text_that_fits_is_not_cut(name: str) -> None:
    """A line exactly 512 bytes long is sent whole; one byte more and the text loses a byte."""
    room = MAX_LINE - len(CUT[name](b"z")) + 1
    assert CUT[name](b"z" * room).endswith(b"z" * room + b"\r\n")
    assert len(CUT[name](b"z" * room)) == MAX_LINE
    assert CUT[name](b"z" * (room + 1)) == CUT[name](b"z" * room)


# The longest parts the server lets through: nick 30 (NICKLEN), "~" + 17 of a username, an
# IPv4-mapped IPv6 host, a 50-byte channel (CHANNELLEN), a 255-byte QUIT reason (QUITLEN).
_NICK = b"n" * 30
_LONG_MASK = _NICK + b"!~" + b"u" * 17 + b"@" + b"0000:0000:0000:0000:0000:ffff:255.255.255.255"
_CHAN = b"#" + b"c" * 49
NOT_CUT: dict[str, bytes] = {
    "nick": lines.nick(_LONG_MASK, _NICK),
    "join": lines.join(_LONG_MASK, _CHAN),
    "part": lines.part(_LONG_MASK, _CHAN, b""),
    "user_mode": lines.user_mode(_NICK, b"+iw"),
    "invite": lines.invite(_LONG_MASK, _NICK, _CHAN),
    "ping": lines.ping(b"s" * 63),
    "closing_link": lines.closing_link(b"~" + b"u" * 17, b"h" * 45, b"Quit: " + b"q" * 255),
    "channel_mode": lines.channel_mode(_LONG_MASK, _CHAN, b"+ovk", (_NICK, _NICK, b"k" * 23)),
}


@pytest.mark.parametrize("line", NOT_CUT.values(), ids=NOT_CUT.keys())
def test_lines_without_client_text_fit_at_the_longest_names(line: bytes) -> None:
    """The functions that do not cut carry only names the server bounds (NICKLEN, CHANNELLEN,
    USERLEN, QUITLEN): at their longest, the line still fits in 512 bytes."""
    assert len(line) <= MAX_LINE and line.endswith(b"\r\n")


MESSAGE_TEXTS = [
    b"",
    b"hello",
    b"with: colons :and spaces ",
    *LONG_TEXTS.values(),
    *(b"a" * n for n in range(460, 480)),  # around the limit for this sender and target
    *("€".encode() * n + b"z" * k for n in range(150, 160) for k in range(3)),
]


@pytest.mark.parametrize("text", MESSAGE_TEXTS, ids=range(len(MESSAGE_TEXTS)))
@pytest.mark.parametrize("command", [b"PRIVMSG", b"NOTICE"])
def test_message_fast_equals_message(command: bytes, text: bytes) -> None:
    """The hot path's ``message_fast`` (cached ``:mask `` and the text with its ':') gives
    exactly the bytes of ``message``, over-long text included."""
    fast = lines.message_fast(b":" + MASK + b" ", command, b"#chan", b":" + text)
    assert fast == lines.message(MASK, command, b"#chan", text)


def test_message_fast_equals_message_random() -> None:
    """The same, over random senders, targets and texts (fixed seed)."""
    rng = random.Random(1459)
    alphabet = [b"a", b" ", b":", "é".encode(), "€".encode(), "😀".encode(), b"\xff"]
    for _ in range(2000):
        mask = b"n" * rng.randint(1, 30) + b"!~u@" + b"h" * rng.randint(1, 45)
        target = b"#" + b"t" * rng.randint(1, 49)
        text = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 520)))
        fast = lines.message_fast(b":" + mask + b" ", b"PRIVMSG", target, b":" + text)
        slow = lines.message(mask, b"PRIVMSG", target, text)
        assert fast == slow
        assert len(fast) <= MAX_LINE


# --- dates --------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SPREAD = [
    datetime(1970, 1, 1),
    datetime(1970, 1, 1, 0, 0, 0, 1000),
    datetime(1970, 12, 31, 23, 59, 59, 999000),
    datetime(1972, 2, 29, 12),  # the first leap day after the epoch
    datetime(1999, 12, 31, 23, 59, 59, 999000),
    datetime(2000, 1, 1),
    datetime(2000, 2, 29, 23, 59, 59),  # divisible by 400: a leap year
    datetime(2000, 3, 1),
    datetime(2001, 2, 28, 23, 59, 59),
    datetime(2001, 3, 1),
    datetime(2024, 2, 29, 6, 30),
    datetime(2026, 11, 26, 1, 40, 29, 123000),
    datetime(2038, 1, 19, 3, 14, 7),  # the largest signed 32-bit time
    datetime(2038, 1, 19, 3, 14, 8),
    datetime(2100, 2, 28, 23, 59, 59),  # divisible by 100, not 400: no leap day
    datetime(2100, 3, 1),
    datetime(2106, 2, 7, 6, 28, 16),  # past the unsigned 32-bit time
    datetime(2400, 2, 29),
    datetime(9999, 12, 31, 23, 59, 59, 999000),
]
BEFORE_1970 = [
    datetime(1969, 12, 31, 23, 59, 59, 999000),
    datetime(1969, 12, 31),
    datetime(1900, 2, 28),
    datetime(1900, 3, 1),
    datetime(1600, 2, 29),
    datetime(1, 1, 1),
]


def _ms(dt: datetime) -> int:
    return (dt.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


def _random_ms(count: int, seed: int, low: int, high: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(count)]


_LOW, _HIGH = _ms(datetime(1, 1, 1)), _ms(datetime(9999, 12, 31, 23, 59, 59, 999000))
ALL_MS = [_ms(d) for d in SPREAD + BEFORE_1970] + _random_ms(3000, 2812, _LOW, _HIGH)
SINCE_1970_MS = [_ms(d) for d in SPREAD] + _random_ms(3000, 3339, 0, _HIGH)


def _expected(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def test_civil_agrees_with_datetime() -> None:
    """``civil`` is proleptic Gregorian UTC (Howard Hinnant's ``civil_from_days``): every
    field, the weekday and the milliseconds agree with :mod:`datetime` from year 1 to 9999,
    around leap days, year ends, 1970 and 2038."""
    for ms in ALL_MS:
        d = _expected(ms)
        assert dates.civil(ms) == dates.Civil(
            d.year, d.month, d.day, d.hour, d.minute, d.second, d.weekday(), d.microsecond // 1000
        ), ms


@pytest.mark.parametrize("dt", SPREAD + BEFORE_1970, ids=str)
def test_civil_named_dates(dt: datetime) -> None:
    """The named dates one by one (a failure names its date)."""
    c = dates.civil(_ms(dt))
    assert (c.year, c.month, c.day, c.hour, c.minute, c.second) == (
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
    )
    assert c.weekday == dt.weekday()


def test_iso8601_agrees_with_datetime() -> None:
    """IRCv3 server-time: ``YYYY-MM-DDThh:mm:ss.sssZ``, UTC, with milliseconds."""
    for ms in ALL_MS:
        d = _expected(ms)
        want = (
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
            f".{d.microsecond // 1000:03d}Z"
        )
        assert dates.iso8601(ms) == want.encode(), ms


def _seconds(ms: int, rng: random.Random) -> float:
    """A float Unix time in the second of ``ms`` (a fraction, as the clock gives)."""
    return ms // 1000 + rng.random() * 0.999


def test_created_agrees_with_datetime() -> None:
    """RPL_CREATED (003, RFC 2812 §5.1): ``YYYY-MM-DD hh:mm:ss UTC``; the
    fraction of a second is dropped, never rounded up."""
    rng = random.Random(3)
    for ms in SINCE_1970_MS:
        unix = _seconds(ms, rng)
        d = _expected(ms // 1000 * 1000)
        want = f"{d:%Y-%m-%d %H:%M:%S} UTC"
        assert dates.created(unix) == want.encode(), unix


def test_server_time_agrees_with_datetime() -> None:
    """RPL_TIME (RFC 2812 §3.4.6): ``Weekday Month DD YYYY -- hh:mm:ss +00:00``."""
    rng = random.Random(4)
    for ms in SINCE_1970_MS:
        unix = _seconds(ms, rng)
        d = _expected(ms // 1000 * 1000)
        want = f"{d:%A %B} {d.day:02d} {d.year:04d} -- {d:%H:%M:%S} +00:00"
        assert dates.server_time(unix) == want.encode(), unix


def test_date_examples() -> None:
    """The forms the docstrings promise, on one known instant."""
    ms = _ms(datetime(2026, 11, 26, 1, 40, 29, 123000))
    assert dates.created(ms / 1000) == b"2026-11-26 01:40:29 UTC"
    assert dates.server_time(ms / 1000) == b"Thursday November 26 2026 -- 01:40:29 +00:00"
    assert dates.iso8601(ms) == b"2026-11-26T01:40:29.123Z"


# --- tagged variants ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"plain", b"plain"),
        (b"", b""),
        (b";", b"\\:"),
        (b" ", b"\\s"),
        (b"\\", b"\\\\"),
        (b"\r", b"\\r"),
        (b"\n", b"\\n"),
        (b"a b;c\\d\r\ne", b"a\\sb\\:c\\\\d\\r\\ne"),
        (b"=,:@!", b"=,:@!"),  # not escaped: only ; SPACE \ CR LF are
        ("é €".encode(), "é\\s€".encode()),
    ],
)
def test_escape_tag_value(raw: bytes, escaped: bytes) -> None:
    """IRCv3 message-tags, "Escaping values": ``;`` → ``\\:``, SPACE → ``\\s``, ``\\`` →
    ``\\\\``, CR → ``\\r``, LF → ``\\n``; every other byte as it is."""
    assert escape_tag_value(raw) == escaped


def test_escape_tag_value_keeps_a_clean_value_as_is() -> None:
    """A value with nothing to escape is returned itself (no copy on the common path)."""
    value = b"1234567890"
    assert escape_tag_value(value) is value


@pytest.mark.parametrize(
    ("tags", "prefix"),
    [
        ([], b""),
        ([(b"a", b"1")], b"@a=1 "),
        ([(b"a", b"1"), (b"b", b"")], b"@a=1;b "),
        ([(b"time", b"2026-11-26T01:40:29.123Z")], b"@time=2026-11-26T01:40:29.123Z "),
        ([(b"+x/y", b"a b;c")], b"@+x/y=a\\sb\\:c "),
        ([(b"z", b"2"), (b"a", b"1")], b"@z=2;a=1 "),  # in the order given
    ],
)
def test_tag_prefix(tags: list[tuple[bytes, bytes]], prefix: bytes) -> None:
    """IRCv3 message-tags: ``@`` tag *( ``;`` tag ) SPACE, a tag being ``key[=value]`` with
    its value escaped; an empty value is the bare key (the spec makes them equivalent)."""
    assert tag_prefix(tags) == prefix


def test_with_tags_prefixes_every_line_of_a_run() -> None:
    """A run of several lines (consecutive messages relayed as one blob) gets the tags in
    front of each line, not only the first."""
    run = b":a PRIVMSG #c :1\r\n:a PRIVMSG #c :2\r\n:a PRIVMSG #c :3\r\n"
    assert with_tags(run, b"@t=1 ") == (
        b"@t=1 :a PRIVMSG #c :1\r\n@t=1 :a PRIVMSG #c :2\r\n@t=1 :a PRIVMSG #c :3\r\n"
    )
    assert with_tags(b":a JOIN #c\r\n", b"@t=1 ") == b"@t=1 :a JOIN #c\r\n"
    assert with_tags(run, b"") is run


def test_variants_plain_is_the_very_same_object() -> None:
    """Format once per variant, never per recipient: a recipient with no tag-adding
    capability gets the one shared ``plain`` object, and ``tags_for`` is not asked."""
    plain = b":a PRIVMSG #c :hi\r\n"
    asked: list[int] = []

    def tags_for(key: int) -> list[tuple[bytes, bytes]]:
        asked.append(key)
        return [(b"t", b"1")]

    variants = Variants(plain, tags_for)
    assert variants.get(0) is plain
    assert variants.plain is plain
    assert asked == []


def test_variants_tags_for_called_once_per_key() -> None:
    """However many recipients ask, each distinct capability set's form is built once (the
    first time) and the same object is handed to every later recipient with that set."""
    plain = b":a PRIVMSG #c :1\r\n:a PRIVMSG #c :2\r\n"
    asked: list[int] = []

    def tags_for(key: int) -> list[tuple[bytes, bytes]]:
        asked.append(key)
        return [(b"k", b"%d" % key)]

    variants = Variants(plain, tags_for)
    rng = random.Random(7)
    keys = [rng.choice([0, 1, 2, 3, 6]) for _ in range(500)]
    got = [variants.get(k) for k in keys]
    assert sorted(asked) == sorted({k for k in keys if k})
    for key, out in zip(keys, got, strict=True):
        assert out is variants.get(key)
        if key:
            assert out == with_tags(plain, b"@k=%d " % key)
        else:
            assert out is plain


def test_variants_with_no_tags_for_a_key_is_plain_bytes() -> None:
    """A capability set whose tags all came out empty gets the plain bytes (no ``@``)."""
    plain = b":a QUIT :bye\r\n"
    assert Variants(plain, lambda key: []).get(4) == plain


def test_numbered_variants_tag_each_line_of_a_run() -> None:
    """A run of messages (one record, several lines) gives each line its own value of the
    numbered tag (each message its own msgid: a stem and the line's number in hex), the other
    tags shared; a variant without that tag is the plain prefix on every line; a ``%`` in a
    tag is only a ``%``."""
    plain = b":a PRIVMSG #c :1\r\n:a PRIVMSG #c :2\r\n:a PRIVMSG #c :3\r\n"

    def tags_for(key: int) -> list[tuple[bytes, bytes]]:
        tags = [(b"time", b"t 1%s")]
        return [*tags, (b"msgid", b"m-e"), (b"z", b"")] if key & 1 else tags

    variants = Variants(plain, tags_for, b"msgid", b"m-", 14)
    assert variants.get(1) == (
        b"@time=t\\s1%s;msgid=m-e;z :a PRIVMSG #c :1\r\n"
        b"@time=t\\s1%s;msgid=m-f;z :a PRIVMSG #c :2\r\n"
        b"@time=t\\s1%s;msgid=m-10;z :a PRIVMSG #c :3\r\n"
    )
    assert variants.get(3) == variants.get(1)
    assert variants.get(2) == with_tags(plain, b"@time=t\\s1%s ")
    assert variants.get(0) is plain
    one = b":a PRIVMSG #c :1\r\n"
    assert (
        Variants(one, tags_for, b"msgid", b"m-", 14).get(1) == b"@time=t\\s1%s;msgid=m-e;z " + one
    )


def test_render_is_pure() -> None:
    """STYLE, "Growing without sprawl" 5: the renderer pulls in no clock, socket or date
    library (checked in a fresh interpreter, against what the interpreter itself loaded)."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import fastchat.server.render.lines, fastchat.server.render.dates\n"
        "import fastchat.server.render.variants\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(new & {'socket', 'selectors', 'ssl', 'sqlite3', 'time', 'datetime'}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
