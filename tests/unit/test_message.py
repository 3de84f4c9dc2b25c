"""Unit tests for IRC message parsing and formatting (``fastchat.irc.message``).

Spec areas: RFC 1459 §2.3, RFC 2812 §2.3.1 and Modern IRC "Messages". Each test's docstring
quotes the sentence it checks. Also holds the small checks of ``fastchat.irc.numerics``, whose
:class:`IRCError` is the reply a rejected message turns into.
"""

from __future__ import annotations

import doctest
import re
from types import ModuleType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastchat.irc import message, numerics
from fastchat.irc.message import (
    MAX_CLIENT_TAGS,
    MAX_INPUT_LINE,
    MAX_LINE,
    BlankLine,
    Message,
    ProtocolError,
    fit_line,
    format_message,
    input_too_long,
    line,
    parse,
    parse_tags,
    truncate_utf8,
)
from fastchat.irc.numerics import ERR_NEEDMOREPARAMS, ERR_NOSUCHNICK, IRCError

# --- parsing well-formed lines ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Modern IRC "Message examples" (source, command, params, tags)
        (
            b":irc.example.com CAP LS * :multi-prefix extended-join sasl",
            Message(b"CAP", (b"LS", b"*", b"multi-prefix extended-join sasl"), b"irc.example.com"),
        ),
        (
            b"@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!",
            Message(b"PRIVMSG", (b"#chan", b"Hey what's up!"), b"dan!d@localhost", b"id=234AB"),
        ),
        (b"CAP REQ :sasl", Message(b"CAP", (b"REQ", b"sasl"))),
        (
            b":irc.example.com CAP * LIST :",
            Message(b"CAP", (b"*", b"LIST", b""), b"irc.example.com"),
        ),
        (b"CAP * LS :multi-prefix sasl", Message(b"CAP", (b"*", b"LS", b"multi-prefix sasl"))),
        (
            b"CAP REQ :sasl message-tags foo",
            Message(b"CAP", (b"REQ", b"sasl message-tags foo")),
        ),
        (
            b":dan!d@localhost PRIVMSG #chan :Hey!",
            Message(b"PRIVMSG", (b"#chan", b"Hey!"), b"dan!d@localhost"),
        ),
        (
            b":dan!d@localhost PRIVMSG #chan Hey!",
            Message(b"PRIVMSG", (b"#chan", b"Hey!"), b"dan!d@localhost"),
        ),
        (
            b":dan!d@localhost PRIVMSG #chan ::-)",
            Message(b"PRIVMSG", (b"#chan", b":-)"), b"dan!d@localhost"),
        ),
        # no params at all, and a lone trailing
        (b"QUIT", Message(b"QUIT")),
        (b"PING :irc.example.com", Message(b"PING", (b"irc.example.com",))),
        # a trailing holding " :" and several spaces keeps them all
        (
            b"PRIVMSG #a :x :y  z ",
            Message(b"PRIVMSG", (b"#a", b"x :y  z ")),
        ),
        # tags with several keys and escaped values stay raw
        (
            b"@a=1;b=x\\sy;+c :n!u@h TAGMSG #x",
            Message(b"TAGMSG", (b"#x",), b"n!u@h", b"a=1;b=x\\sy;+c"),
        ),
        # bytes that are not UTF-8 are relayed untouched
        (b"PRIVMSG #a :\xff\xfe caf\xe9", Message(b"PRIVMSG", (b"#a", b"\xff\xfe caf\xe9"))),
    ],
)
def test_parse_modern_irc_examples(raw: bytes, expected: Message) -> None:
    """Modern IRC, "Messages": "The source (formerly known as prefix) is optional and starts
    with a (':', 0x3A) character (which is stripped from the value)"; "the final parameter can
    be prepended with a (':', 0x3A) character, in which case that character is stripped and the
    rest of the message is treated as the final parameter, including any spaces it contains."
    """
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        (b"MODE #chan +k a:b", (b"#chan", b"+k", b"a:b")),
        (b"USER guest 0 * :Ronnie Reagan", (b"guest", b"0", b"*", b"Ronnie Reagan")),
        (b"JOIN #a:b", (b"#a:b",)),
        (b"X a: b:: :c:", (b"a:", b"b::", b"c:")),
        (b"X a:", (b"a:",)),
    ],
)
def test_colon_inside_middle_is_data(raw: bytes, params: tuple[bytes, ...]) -> None:
    """RFC 2812 §2.3.1: ``middle = nospcrlfcl *( ":" / nospcrlfcl )``: only a *leading*
    colon starts the trailing parameter; a colon later in a middle is ordinary data.
    """
    assert parse(raw).params == params


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        (b"X a  b", (b"a", b"b")),
        (b"X    a     b   :c  d", (b"a", b"b", b"c  d")),
        (b"X a ", (b"a",)),
        (b"X a     ", (b"a",)),
        (b"X  :", (b"",)),
        (b"@t=1    :src    X    a", (b"a",)),
    ],
)
def test_multiple_spaces_between_params(raw: bytes, params: tuple[bytes, ...]) -> None:
    """Modern IRC, "Parameters": "Parameters are a series of values separated by one or more
    ASCII SPACE characters (' ', 0x20)."
    """
    assert parse(raw).params == params


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        (b"X a\tb", (b"a\tb",)),
        (b"X \ta b\t", (b"\ta", b"b\t")),
        (b"X a\x0bb\x0cc :t", (b"a\x0bb\x0cc", b"t")),
        (b"X a\t:b c", (b"a\t:b", b"c")),
    ],
)
def test_only_space_separates_params(raw: bytes, params: tuple[bytes, ...]) -> None:
    """RFC 2812 §2.3.1: ``nospcrlfcl = %x01-09 / %x0B-0C / %x0E-1F / %x21-39 / %x3B-FF ; any
    octet except NUL, CR, LF, " " and ":"``: TAB, VT and FF belong to a middle parameter; they
    are not separators.
    """
    assert parse(raw).params == params


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        (b"privmsg #a :x", b"PRIVMSG"),
        (b"Join #a", b"JOIN"),
        (b"nIcK bob", b"NICK"),
        (b":src ping :x", b"PING"),
    ],
)
def test_command_is_upper_cased(raw: bytes, command: bytes) -> None:
    """RFC 2812 §2.3.1: ``command = 1*letter / 3digit``; servers match commands without
    regard to case, so the parser hands the command table one spelling (upper case).
    """
    assert parse(raw).command == command


@pytest.mark.parametrize(
    ("raw", "command", "params"),
    [
        (b":srv 001 alice :Welcome to the network", b"001", (b"alice", b"Welcome to the network")),
        (b":srv 433 * bob :Nickname is already in use", b"433", (b"*", b"bob", b"Nickname is already in use")),
        (b":srv 005 a CASEMAPPING=rfc1459 CHANTYPES=#& :are supported", b"005", (b"a", b"CASEMAPPING=rfc1459", b"CHANTYPES=#&", b"are supported")),
        (b"999", b"999", ()),
        (b"000 x", b"000", (b"x",)),
    ],
)  # fmt: skip
def test_numeric_commands(raw: bytes, command: bytes, params: tuple[bytes, ...]) -> None:
    """Modern IRC, "Command": "The command must either be a valid IRC command or a numeric
    (a three-digit number represented as text)."
    """
    msg = parse(raw)
    assert (msg.command, msg.params) == (command, params)


@pytest.mark.parametrize("count", [15, 16, 20, 100])
def test_more_than_fifteen_params_are_accepted(count: int) -> None:
    """Modern IRC, "Parameters": "Servers SHOULD accept more than 15 parameters" (RFC 1459
    §2.3 stopped at fifteen): clients send ``ISON`` with twenty nicks and no ':'. We keep every
    parameter, with or without a trailing; each command takes what it needs.
    """
    middles = tuple(b"p%d" % i for i in range(count))
    assert parse(b"X " + b" ".join(middles)).params == middles
    with_trailing = (*middles[:-1], b"last one")
    assert parse(b"X " + b" ".join(middles[:-1]) + b" :last one").params == with_trailing


def test_param_accessor() -> None:
    """``Message.param`` returns the default when the client sent too few parameters
    (the handler then answers ERR_NEEDMOREPARAMS rather than crashing on an index).
    """
    msg = parse(b"JOIN #a")
    assert msg.param(0) == b"#a"
    assert msg.param(1) == b""
    assert msg.param(5, b"x") == b"x"


# --- rejecting malformed lines -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        pytest.param(b"12", b"12", id="two-digit-command"),
        pytest.param(b"1234 x", b"1234", id="four-digit-command"),
        pytest.param(b"1a x", b"1A", id="mixed-command"),
        pytest.param(b"PRIV-MSG x", b"PRIV-MSG", id="dash-in-command"),
        pytest.param(b"nonexistent_command x", b"NONEXISTENT_COMMAND", id="underscore"),
    ],
)
def test_a_word_that_is_no_command_we_know_still_parses(raw: bytes, command: bytes) -> None:
    """Modern IRC: a command is letters or three digits; a word of ASCII letters, digits,
    ``_`` and ``-`` is parsed as one too, so the server answers it ``421 ERR_UNKNOWNCOMMAND``
    (as Ergo and InspIRCd do, and labeled-response's tests expect) rather than ``400``."""
    assert parse(raw).command == command


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"PRIVMSG #a :x\0y", id="nul-in-trailing"),
        pytest.param(b"\0", id="nul-alone"),
        pytest.param(b"PRIV\0MSG", id="nul-in-command"),
        pytest.param(b"PRIVMSG #a :x\ry", id="cr"),
        pytest.param(b"PRIVMSG #a :x\ny", id="lf"),
        pytest.param(b"PING x\r", id="trailing-cr"),
        pytest.param(b"\xc3\x89T\xc3\x89 x", id="non-ascii-command"),
        pytest.param(b"\tPING x", id="tab-before-command"),
        pytest.param(b":src", id="source-only"),
        pytest.param(b":src ", id="source-and-space"),
        pytest.param(b":src    ", id="source-and-spaces"),
        pytest.param(b":src :trailing", id="source-then-trailing"),
        pytest.param(b": PING", id="empty-source"),
        pytest.param(b"@tags", id="tags-only"),
        pytest.param(b"@a=b :src", id="tags-and-source-only"),
        pytest.param(b"@ PING", id="empty-tags"),
        pytest.param(b" :x", id="space-colon"),
        pytest.param(b"@a=1 ", id="tags-and-space"),
        pytest.param(b"@a=1    ", id="tags-and-spaces"),
    ],
)
def test_rejects_malformed(raw: bytes) -> None:
    """RFC 1459 §2.3.1: "NUL is not allowed within messages"; Modern IRC: "The command must
    either be a valid IRC command or a numeric (a three-digit number represented as text)".
    Anything else is the peer's error (and not a blank line, which gets no answer at all).
    """
    with pytest.raises(ProtocolError) as info:
        parse(raw)
    assert not isinstance(info.value, BlankLine)


@pytest.mark.parametrize("raw", [b"", b" ", b"     "], ids=["empty", "one-space", "only-spaces"])
def test_blank_lines_are_not_messages(raw: bytes) -> None:
    """Modern IRC, "Messages": "Servers SHOULD gracefully ignore empty lines": a line of
    nothing but spaces is no message; :class:`BlankLine` (a :class:`ProtocolError`) tells the
    caller to ignore it without a reply.
    """
    with pytest.raises(BlankLine):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"PRIV MSG", Message(b"PRIV", (b"MSG",))),
        (b"A", Message(b"A")),
        (b"  PING x", Message(b"PING", (b"x",))),
    ],
)
def test_lenient_but_well_defined(raw: bytes, expected: Message) -> None:
    """RFC 2812 §2.3.1: ``command = 1*letter / 3digit``: ``PRIV MSG`` is the command ``PRIV``
    with one parameter (the server will answer ERR_UNKNOWNCOMMAND), not a malformed line.
    """
    assert parse(raw) == expected


def test_protocol_error_is_a_value_error() -> None:
    """A *remote* error: callers may catch it as ``ValueError`` and it is never confused with
    our own ``IRCError`` replies.
    """
    assert issubclass(ProtocolError, ValueError)
    assert not issubclass(ProtocolError, IRCError)


# --- formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "wire"),
    [
        (Message(b"PING"), b"PING"),
        (Message(b"JOIN", (b"#a",)), b"JOIN #a"),
        (Message(b"PRIVMSG", (b"#a", b"hi there")), b"PRIVMSG #a :hi there"),
        (Message(b"PRIVMSG", (b"#a", b"")), b"PRIVMSG #a :"),
        (Message(b"PRIVMSG", (b"#a", b":-)")), b"PRIVMSG #a ::-)"),
        (Message(b"PRIVMSG", (b"#a", b"a:b")), b"PRIVMSG #a a:b"),
        (Message(b"001", (b"alice", b"Welcome"), b"srv"), b":srv 001 alice Welcome"),
        (
            Message(b"PRIVMSG", (b"#a", b"x y"), b"n!u@h", b"id=1"),
            b"@id=1 :n!u@h PRIVMSG #a :x y",
        ),
    ],
)
def test_format_message(msg: Message, wire: bytes) -> None:
    """Modern IRC, "Parameters": "Parameters that contain spaces, are empty, or begin with a
    ':' character MUST be sent with a preceding ':'; in other cases the use of a preceding ':'
    on the final parameter is OPTIONAL."
    """
    assert format_message(msg) == wire
    assert parse(wire) == msg


@pytest.mark.parametrize(
    "params",
    [
        pytest.param((b"", b"x"), id="empty-middle"),
        pytest.param((b"a b", b"x"), id="space-in-middle"),
        pytest.param((b":a", b"x"), id="colon-first-middle"),
        pytest.param((b"a\0", b"x"), id="nul-in-middle"),
        pytest.param((b"x", b"a\rb"), id="cr-in-trailing"),
        pytest.param((b"x", b"a\nb"), id="lf-in-trailing"),
        pytest.param((b"x", b"a\0b"), id="nul-in-trailing"),
    ],
)
def test_format_refuses_unsendable_params(params: tuple[bytes, ...]) -> None:
    """RFC 2812 §2.3.1: only the last parameter may be a ``trailing``; none may hold NUL, CR
    or LF. Building such a message is *our* bug, so it is a plain ``ValueError``, not a
    ``ProtocolError``.
    """
    with pytest.raises(ValueError) as info:
        format_message(Message(b"PRIVMSG", params))
    assert not isinstance(info.value, ProtocolError)


def test_line_appends_crlf() -> None:
    """RFC 1459 §2.3: "IRC messages are always lines of characters terminated with a CR-LF
    (Carriage Return - Line Feed) pair".
    """
    assert line(b"alice", b"Welcome home", source=b"srv", command=b"001") == (
        b":srv 001 alice :Welcome home\r\n"
    )
    assert line(command=b"PING") == b"PING\r\n"
    with pytest.raises(ValueError):
        line(b"a b", b"x", command=b"PRIVMSG")


# --- properties ----------------------------------------------------------------------------

_NOT_IN_PARAM = frozenset(b"\0\r\n")
_NOT_IN_MIDDLE = _NOT_IN_PARAM | {ord(" ")}

#: Bytes IRC lines are made of, weighted so that random lines often get past the command.
_irc_bytes = st.sampled_from(list(b"@:; =!#&\t\0\r\naZ019~[]\xff"))


def _bytes_without(forbidden: frozenset[int], min_size: int = 0) -> st.SearchStrategy[bytes]:
    allowed = [b for b in range(256) if b not in forbidden]
    return st.lists(st.sampled_from(allowed), min_size=min_size, max_size=12).map(bytes)


_middle_first = st.sampled_from([b for b in range(256) if b not in _NOT_IN_MIDDLE | {ord(":")}])
_middle = st.builds(
    lambda first, rest: bytes([first]) + rest, _middle_first, _bytes_without(_NOT_IN_MIDDLE)
)
_trailing = _bytes_without(_NOT_IN_PARAM)
_command = st.one_of(
    st.from_regex(re.compile(rb"[A-Z]{1,10}"), fullmatch=True),
    st.from_regex(re.compile(rb"[0-9]{3}"), fullmatch=True),
)
_word = _bytes_without(_NOT_IN_MIDDLE, min_size=1)  # a source or a tag section


@st.composite
def _messages(draw: st.DrawFn) -> Message:
    middles = draw(st.lists(_middle, max_size=17))  # more than RFC 2812's 15
    params = list(middles)
    if draw(st.booleans()):
        params.append(draw(_trailing))
    return Message(
        draw(_command),
        tuple(params),
        draw(st.none() | _word),
        draw(st.none() | _word),
    )


_ircish_lines = st.one_of(
    st.binary(max_size=64),
    st.lists(_irc_bytes, max_size=64).map(bytes),
    st.lists(
        st.sampled_from([b"@a=1", b":n!u@h", b"PRIVMSG", b"ping", b"001", b"#c", b":", b" ", b"  ", b"x:y", b"\t", b":hi there"]),
        max_size=20,
    ).map(b"".join),
    st.lists(st.sampled_from([b"@a=1", b":n!u@h", b"PRIVMSG", b"001", b"#c", b":x y", b"x\tz"]), max_size=20).map(b" ".join),
)  # fmt: skip


def _check_invariants(msg: Message) -> None:
    assert re.fullmatch(rb"[A-Z0-9_-]+", msg.command)
    for part in (*msg.params, msg.source or b"", msg.tags or b""):
        assert not _NOT_IN_PARAM & set(part)
    for middle in msg.params[:-1]:
        assert middle and b" " not in middle and not middle.startswith(b":")


@settings(max_examples=400, deadline=None)
@given(_ircish_lines)
def test_parse_returns_message_or_raises_protocol_error(raw: bytes) -> None:
    """The parser is total over bytes: a peer can make it return a message or raise
    :class:`ProtocolError`, never anything else (any other exception would be our bug).
    """
    try:
        msg = parse(raw)
    except ProtocolError:
        return
    assert isinstance(msg, Message)
    _check_invariants(msg)


@settings(max_examples=200, deadline=None)
@given(_messages())
def test_round_trip_from_valid_parts(msg: Message) -> None:
    """RFC 2812 §2.3.1 grammar, both ways: any message made of sendable parts (``middle =
    nospcrlfcl *( ":" / nospcrlfcl )``, ``trailing = *( ":" / " " / nospcrlfcl )``) formats
    to a line that parses back to the same message.
    """
    wire = format_message(msg)
    assert b"\r" not in wire and b"\n" not in wire
    assert parse(wire) == msg


@settings(max_examples=400, deadline=None)
@given(_ircish_lines)
@example(b"X a\t:b c")  # once parsed as middles (a, :b, c), which cannot be formatted
def test_reformatting_a_parsed_line_is_stable(raw: bytes) -> None:
    """What the server parsed it can relay: formatting a parsed message never fails and
    parses back to the same message (so relaying cannot change meaning).
    """
    try:
        msg = parse(raw)
    except ProtocolError:
        return
    assert parse(format_message(msg)) == msg


# --- IRCv3 message tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        # IRCv3 message-tags, "Examples"
        (b"aaa=bbb;ccc;example.com/ddd=eee", {b"aaa": b"bbb", b"ccc": b"", b"example.com/ddd": b"eee"}),
        (b"+example-client-tag=example-value", {b"+example-client-tag": b"example-value"}),
        (b"+example.com/foo=bar", {b"+example.com/foo": b"bar"}),
        (b"+example=raw+:=,escaped\\:\\s\\\\", {b"+example": b"raw+:=,escaped; \\"}),
        # every escape, an unknown one, and a lone backslash at the end
        (b"k=a\\:b\\sc\\\\d\\re\\nf", {b"k": b"a;b c\\d\re\nf"}),
        (b"k=\\x\\", {b"k": b"x"}),
        (b"k=test\\", {b"k": b"test"}),
        # a value may hold '=' and be empty; a key given twice keeps its last value
        (b"k=a=b;e=;f", {b"k": b"a=b", b"e": b"", b"f": b""}),
        (b"k=1;k=2", {b"k": b"2"}),
        # empty tags and invalid keys are skipped, not fatal
        (b"a=1;;b=2;", {b"a": b"1", b"b": b"2"}),
        (b"=x;+=y;a b=1;a_b=2;/c=3;ok=4", {b"ok": b"4"}),
        # bytes that are not UTF-8 are kept as they are
        (b"k=\xff\xfe", {b"k": b"\xff\xfe"}),
    ],
)  # fmt: skip
def test_parse_tags(raw: bytes, tags: dict[bytes, bytes]) -> None:
    """IRCv3 message-tags, "Format": ``<tag> ::= <key> ['=' <escaped value>]``, ``<key> ::=
    [ '+' ] [ <vendor> '/' ] <sequence of letters, digits, hyphens>``; "Escaping values":
    ``\\:`` is ';', ``\\s`` SPACE, ``\\\\`` backslash, ``\\r`` CR, ``\\n`` LF; "If a lone ``\\``
    exists at the end of an escaped value [...] there SHOULD be no output character".
    """
    assert parse_tags(raw) == tags


def test_tags_stay_raw_until_asked_for() -> None:
    """The parser keeps the tag section as it came; :func:`parse_tags` reads it on demand
    (nothing relays tags yet, so nothing pays for reading them)."""
    msg = parse(b"@+draft/reply=abc;time=x\\sy PRIVMSG #a :hi")
    assert msg.tags == b"+draft/reply=abc;time=x\\sy"
    assert parse_tags(msg.tags) == {b"+draft/reply": b"abc", b"time": b"x y"}


_tag_keys = st.sampled_from([b"a", b"b-2", b"+c", b"example.com/d", b"+x.y/Z-9"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_tag_keys, _bytes_without(frozenset(b"\0"))))
def test_tag_escaping_round_trips(tags: dict[bytes, bytes]) -> None:
    """IRCv3 message-tags, "Escaping values": any value (NUL cannot be sent), escaped by the
    table, reads back as itself."""
    table = {b";": b"\\:", b" ": b"\\s", b"\\": b"\\\\", b"\r": b"\\r", b"\n": b"\\n"}

    def escape(value: bytes) -> bytes:
        return b"".join(table.get(bytes((c,)), bytes((c,))) for c in value)

    raw = b";".join(key + b"=" + escape(value) for key, value in tags.items())
    assert parse_tags(raw) == tags
    assert not set(raw) & set(b"\0\r\n ")


# --- line lengths ------------------------------------------------------------------------------


def _tagged(tag_data: int, rest: int) -> bytes:
    """A line with ``tag_data`` bytes of tags and ``rest`` bytes after the tag section."""
    command = b"PRIVMSG #a :"
    return b"@k=" + b"v" * (tag_data - 2) + b" " + command + b"x" * (rest - len(command))


@pytest.mark.parametrize(
    ("raw", "too_long"),
    [
        (b"PRIVMSG #a :" + b"x" * 498, False),  # 510 bytes + CR LF = 512
        (b"PRIVMSG #a :" + b"x" * 499, True),
        (_tagged(10, 510), False),
        (_tagged(10, 511), True),  # the rest of a tagged line obeys the 512 too
        (_tagged(10, 3000), True),
        (_tagged(4094, 510), False),  # '@', 4094 bytes of tag data, ' ': the client's maximum
        (_tagged(4095, 20), True),
        (_tagged(8000, 20), True),
        (b"@" + b"k" * 4094, False),  # tags only: not too long (but malformed)
        (b"@" + b"k" * 4095, True),
    ],
)
def test_input_too_long(raw: bytes, too_long: bool) -> None:
    """Modern IRC, "Messages": "messages SHALL NOT exceed 512 bytes in length, including the
    trailing CR-LF characters"; IRCv3 message-tags, "Size limit": "Clients MUST NOT send
    messages with tag data exceeding 4094 bytes", "The size limit for the rest of the message
    remains unchanged at 512 bytes", and servers MUST answer ERR_INPUTTOOLONG to either.
    """
    assert input_too_long(raw) is too_long
    assert len(raw) <= MAX_INPUT_LINE or too_long


def test_input_line_bound_is_both_limits() -> None:
    """The line buffer's bound is the longest acceptable line: a full client tag section and
    510 bytes (``input_too_long`` decides anything shorter)."""
    assert MAX_INPUT_LINE == MAX_CLIENT_TAGS + MAX_LINE - 2
    assert not input_too_long(_tagged(4094, 510)) and len(_tagged(4094, 510)) == MAX_INPUT_LINE


@pytest.mark.parametrize(
    ("text", "size", "expected"),
    [
        ("abc", 5, "abc"),
        ("abc", 2, "ab"),
        ("abc", 0, ""),
        ("aé", 2, "a"),  # é is two bytes: cutting inside it keeps neither
        ("aé", 3, "aé"),
        ("a€b", 2, "a"),
        ("a€b", 3, "a"),
        ("a€b", 4, "a€"),
        ("a😀", 4, "a"),
        ("a😀", 5, "a😀"),
    ],
)
def test_truncate_utf8_keeps_characters_whole(text: str, size: int, expected: str) -> None:
    """Cutting a line to size must not leave half a UTF-8 character at its end."""
    assert truncate_utf8(text.encode(), size) == expected.encode()


def test_truncate_other_bytes_by_size() -> None:
    """Text that is not UTF-8 (IRC mandates no encoding) is cut exactly at the size."""
    assert truncate_utf8(b"caf\xe9 au lait", 4) == b"caf\xe9"
    assert truncate_utf8(b"\xa9\xa9\xa9\xa9\xa9", 3) == b"\xa9\xa9\xa9"
    assert truncate_utf8(b"a\xe2\x82x", 2) == b"a\xe2"  # not a whole character: cut by size


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=0, max_value=250))
def test_truncate_utf8_property(text: str, size: int) -> None:
    """For UTF-8 text, the result is the longest prefix of whole characters within ``size``."""
    data = text.encode()
    cut = truncate_utf8(data, size)
    assert data.startswith(cut) and len(cut) <= size
    decoded = cut.decode()  # never half a character
    assert len(cut) == len(data) or len(cut) + len(text[len(decoded)].encode()) > size


def test_fit_line_cuts_the_text_at_the_end() -> None:
    """A line the server sends never exceeds 512 bytes with its CR LF; what goes is the end of
    the line, the end of its text."""
    head = b":nick!~user@host PRIVMSG #chan :"
    relayed = head + "é".encode() * 300 + b"\r\n"
    fitted = fit_line(relayed)
    assert len(fitted) <= MAX_LINE and fitted.endswith(b"\r\n")
    assert relayed.startswith(fitted[:-2])
    assert parse(fitted[:-2]).params[1].decode() == "é" * ((MAX_LINE - 2 - len(head)) // 2)
    short = b":n PRIVMSG #a :hi\r\n"
    assert fit_line(short) is short


# --- numerics ----------------------------------------------------------------------------------


def test_irc_error_is_its_reply() -> None:
    """jaraco/irc style: an exception that *is* a numeric reply carries the numeric and the
    params after the client's nick (RFC 2812 §5: "ERR_NEEDMOREPARAMS "<command> :Not enough
    parameters"").
    """
    err = IRCError(ERR_NEEDMOREPARAMS, b"JOIN", b"Not enough parameters")
    assert err.numeric == b"461"
    assert err.params == (b"JOIN", b"Not enough parameters")
    assert err.args == (b"461", b"JOIN", b"Not enough parameters")
    with pytest.raises(IRCError) as info:
        raise IRCError(ERR_NOSUCHNICK, b"bob")
    assert info.value.numeric == ERR_NOSUCHNICK


def test_numerics_are_distinct_three_digit_codes() -> None:
    """Modern IRC, "Numerics": replies are three-digit numbers; each name maps to its own."""
    codes = {
        name: value for name, value in vars(numerics).items() if name.startswith(("RPL_", "ERR_"))
    }
    assert codes
    for name, value in codes.items():
        assert isinstance(value, bytes) and re.fullmatch(rb"[0-9]{3}", value), name
    assert len(set(codes.values())) == len(codes)


# --- doctests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [message, numerics], ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    """The examples in the docstrings are part of the contract; run them with the suite."""
    result = doctest.testmod(module, verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0
