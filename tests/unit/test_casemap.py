"""Unit tests for IRC case mapping and name syntax (``fastchat.irc.casemap``).

Spec areas: RFC 1459 §2.2 and RFC 2812 §2.2 (case folding), RFC 2812 §2.3.1 (nickname
grammar), RFC 2812 §1.3 and Modern IRC "Channels" (channel names). Each test's docstring
quotes the sentence it checks.
"""

from __future__ import annotations

import doctest
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastchat.irc import casemap
from fastchat.irc.casemap import (
    CASEMAPPING,
    CHANTYPES,
    fold,
    is_channel,
    is_valid_channel,
    is_valid_nick,
)

_LOWER_TO_UPPER = bytes.maketrans(
    b"abcdefghijklmnopqrstuvwxyz{}|^", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~"
)

# --- folding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        (b"NICK", b"nick"),
        (b"nick", b"nick"),
        (b"Alice", b"alice"),
        (b"[]\\~", b"{}|^"),
        (b"{}|^", b"{}|^"),
        (b"Nick[Away]", b"nick{away}"),
        (b"#Chan\\Room~", b"#chan|room^"),
        (b"`_-0123456789", b"`_-0123456789"),
        (b"", b""),
        # rfc1459 is ASCII-only: bytes of other encodings are left alone
        (b"\xc3\x89T\xc3\xa9", b"\xc3\x89t\xc3\xa9"),
        (b"\xc0\xdb\xdd", b"\xc0\xdb\xdd"),
    ],
)
def test_fold(name: bytes, folded: bytes) -> None:
    """RFC 2812 §2.2: "the characters {}|^ are considered to be the lower case equivalents of
    the characters []\\~ respectively" (the ``rfc1459`` CASEMAPPING we announce).
    """
    assert fold(name) == folded


def test_announced_casemapping_and_chantypes() -> None:
    """Modern IRC, RPL_ISUPPORT: "CASEMAPPING=rfc1459" and "CHANTYPES=#&" are what the
    server advertises; the functions below must implement exactly those.
    """
    assert CASEMAPPING == b"rfc1459"
    assert CHANTYPES == b"#&"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_fold_is_a_case_mapping(name: bytes) -> None:
    """RFC 1459 §2.2: names that differ only in case are the same name: folding is
    idempotent, keeps the length and maps a name and its upper-case twin to one key.
    """
    folded = fold(name)
    assert fold(folded) == folded
    assert len(folded) == len(name)
    assert fold(name.translate(_LOWER_TO_UPPER)) == folded
    assert not re.search(rb"[A-Z\[\]\\~]", folded)


# --- nicknames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nick",
    [
        b"a",
        b"alice",
        b"Alice",
        b"[bot]",
        b"`tick",
        b"_under",
        b"^caret",
        b"{brace}",
        b"|pipe",
        b"\\back",
        b"a1",
        b"a-b",
        b"a9-",
        b"x" * 30,
    ],
)
def test_valid_nicks(nick: bytes) -> None:
    """RFC 2812 §2.3.1: ``nickname = ( letter / special ) *8( letter / digit / special /
    "-" )`` with ``special = %x5B-60 / %x7B-7D ; "[", "]", "\\", "`", "_", "^", "{", "|", "}"``.
    """
    assert is_valid_nick(nick, 30)


@pytest.mark.parametrize(
    "nick",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"9lives", id="digit-first"),
        pytest.param(b"-dash", id="dash-first"),
        pytest.param(b"a b", id="space"),
        pytest.param(b"a,b", id="comma"),
        pytest.param(b"a:b", id="colon"),
        pytest.param(b":a", id="colon-first"),
        pytest.param(b"a!b", id="bang"),
        pytest.param(b"a@b", id="at"),
        pytest.param(b"a.b", id="dot"),
        pytest.param(b"a*", id="star"),
        pytest.param(b"#chan", id="channel"),
        pytest.param(b"&chan", id="local-channel"),
        pytest.param(b"a\0", id="nul"),
        pytest.param(b"a\x07", id="bel"),
        pytest.param(b"\xc3\xa9", id="non-ascii"),
        pytest.param(b"x" * 31, id="too-long"),
    ],
)
def test_invalid_nicks(nick: bytes) -> None:
    """RFC 2812 §2.3.1: a nickname starts with a letter or special and then holds only
    letters, digits, specials and "-"; anything else is ERR_ERRONEUSNICKNAME.
    """
    assert not is_valid_nick(nick, 30)


@pytest.mark.parametrize(("nick", "valid"), [(b"abcdefghi", True), (b"abcdefghij", False)])
def test_nick_length_limit(nick: bytes, valid: bool) -> None:
    """RFC 2812 §1.2.1: "Each user is distinguished from other users by a unique nickname
    having a maximum length of nine (9) characters." (``max_len`` = NICKLEN.)
    """
    assert is_valid_nick(nick, 9) is valid


_NICK_RE = re.compile(rb"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
_nickish = st.lists(st.sampled_from(list(b"aZ09-_[]\\`^{|}~ ,:!@#\0\xe9")), max_size=12).map(bytes)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_nickish, st.binary(max_size=12)), st.integers(min_value=1, max_value=12))
def test_nick_validity_matches_the_grammar(nick: bytes, max_len: int) -> None:
    """RFC 2812 §2.3.1 grammar as a regular expression is the oracle for any bytes."""
    expected = bool(_NICK_RE.fullmatch(nick)) and len(nick) <= max_len
    assert is_valid_nick(nick, max_len) is expected


# --- channels --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"#x", True),
        (b"&x", True),
        (b"#", True),
        (b"", False),
        (b"x", False),
        (b"+x", False),  # RFC 2812 modeless channels: not in our CHANTYPES
        (b"!12345x", False),  # RFC 2812 safe channels: not in our CHANTYPES
        (b" #x", False),
    ],
)
def test_is_channel(name: bytes, expected: bool) -> None:
    """Modern IRC, "CHANTYPES": "The CHANTYPES parameter indicates the channel prefix
    characters that are available on the current server"; ours are "#&".
    """
    assert is_channel(name) is expected


@pytest.mark.parametrize(
    "name",
    [
        b"#lobby",
        b"&local",
        b"#a",
        b"##",
        b"#a.b-c_d",
        b"#[x]",
        b"#caf\xc3\xa9",
        b"#\xff",
        b"#a\tb",
        b"#" + b"x" * 49,
    ],
)
def test_valid_channels(name: bytes) -> None:
    """RFC 2812 §1.3: "Apart from the requirement that the first character is either '&',
    '#', '+' or '!', the only restriction on a channel name is that it SHALL NOT contain any
    spaces (' '), a control G (^G or ASCII 7), a comma (',')."
    """
    assert is_valid_channel(name, 50)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"#", id="prefix-only"),
        pytest.param(b"&", id="amp-only"),
        pytest.param(b"lobby", id="no-prefix"),
        pytest.param(b"+lobby", id="plus-prefix"),
        pytest.param(b"#a b", id="space"),
        pytest.param(b"#a,b", id="comma"),
        pytest.param(b"#a\x07b", id="bel"),
        pytest.param(b"#a\0b", id="nul"),
        pytest.param(b"#a\rb", id="cr"),
        pytest.param(b"#a\nb", id="lf"),
        pytest.param(b"#a:b", id="colon"),
        pytest.param(b"#" + b"x" * 50, id="51-bytes"),
    ],
)
def test_invalid_channels(name: bytes) -> None:
    """RFC 2812 §1.3: a channel name SHALL NOT contain spaces, ^G or commas, "A colon (':')
    can also be used as a delimiter for the channel mask", and names are "of length up to
    fifty (50) characters"; we also refuse NUL, CR and LF, which cannot travel in a line.
    """
    assert not is_valid_channel(name, 50)


@pytest.mark.parametrize(("length", "valid"), [(1, False), (2, True), (32, True), (33, False)])
def test_channel_length_limit(length: int, valid: bool) -> None:
    """Modern IRC, "CHANNELLEN": "the maximum length of a channel name that a client may
    join"; the prefix counts towards it.
    """
    assert is_valid_channel(b"#" + b"c" * (length - 1), 32) is valid


_FORBIDDEN_IN_CHANNEL = set(b" \x07,\0\r\n:")
_channelish = st.lists(st.sampled_from(list(b"#&+ac9 \x07,\0\r\n:\xe9")), max_size=12).map(bytes)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_channelish, st.binary(max_size=12)), st.integers(min_value=1, max_value=12))
def test_channel_validity_matches_the_rule(name: bytes, max_len: int) -> None:
    """RFC 2812 §1.3 as a predicate is the oracle for any bytes: a CHANTYPES prefix, at least
    one more byte, at most ``max_len`` bytes, none of them forbidden.
    """
    expected = (
        name[:1] in (b"#", b"&")
        and 2 <= len(name) <= max_len
        and not _FORBIDDEN_IN_CHANNEL & set(name)
    )
    assert is_valid_channel(name, max_len) is expected


def test_doctests() -> None:
    """The examples in the docstrings are part of the contract; run them with the suite."""
    result = doctest.testmod(casemap, verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0
