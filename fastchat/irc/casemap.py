"""IRC case mapping (RFC 1459 §2.2, Modern IRC "casemapping"): nick and channel comparison.

Owns: folding names so that equal names compare equal, and the syntax of nicks and channels.
Must never: know about users, channels or sockets.

fastchat announces ``CASEMAPPING=rfc1459``: A-Z fold to a-z and ``[]\\~`` fold to ``{}|^``.
"""

from __future__ import annotations

_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~"
_LOWER = b"abcdefghijklmnopqrstuvwxyz{}|^"
_FOLD = bytes.maketrans(_UPPER, _LOWER)

CASEMAPPING = b"rfc1459"
CHANTYPES = b"#&"

# RFC 2812 §2.3.1: nickname = ( letter / special ) *( letter / digit / special / "-" )
_NICK_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz[]\\`_^{|}")
_NICK_REST = _NICK_FIRST | frozenset(b"0123456789-")
# Modern IRC: channel names must not hold space, BEL (^G) or comma; we also refuse NUL/CR/LF
# and ':' (which some clients misparse).
_CHANNEL_FORBIDDEN = frozenset(b" \x07,\0\r\n:")


def fold(name: bytes) -> bytes:
    """Fold ``name`` under rfc1459 case mapping.

    >>> fold(b"Nick[Away]")
    b'nick{away}'
    """
    return name.translate(_FOLD)


def is_valid_nick(nick: bytes, max_len: int) -> bool:
    """RFC 2812 §2.3.1 nickname syntax, at most ``max_len`` bytes.

    >>> is_valid_nick(b"alice", 30), is_valid_nick(b"9lives", 30), is_valid_nick(b"a b", 30)
    (True, False, False)
    """
    if not nick or len(nick) > max_len or nick[0] not in _NICK_FIRST:
        return False
    return all(c in _NICK_REST for c in nick[1:])


def is_channel(name: bytes) -> bool:
    """Does ``name`` look like a channel (starts with a CHANTYPES character)?"""
    return name[:1] in (b"#", b"&")


def is_valid_channel(name: bytes, max_len: int) -> bool:
    """Modern IRC channel syntax: a CHANTYPES prefix and no forbidden bytes.

    >>> is_valid_channel(b"#lobby", 50), is_valid_channel(b"#a,b", 50), is_valid_channel(b"lobby", 50)
    (True, False, False)
    """
    if not (2 <= len(name) <= max_len) or not is_channel(name):
        return False
    return not any(c in _CHANNEL_FORBIDDEN for c in name)
