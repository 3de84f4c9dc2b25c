"""One line, one variant per capability set: formatted once per variant, never per recipient.

Owns: the tagged forms of a line (IRCv3 message-tags: ``@name=value;... ``, values escaped)
and :class:`Variants`, the per-line cache the fan-out asks for each recipient's form.
Must never: know which capability adds which tag (the registry says) or who receives what.

A recipient that negotiated no capability that adds tags gets ``plain``, the one shared
``bytes`` object; the others get one object per distinct set of such capabilities, built the
first time a recipient with that set is met (Ergo's ``MessageCache``, InspIRCd's
``GetSerialized``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ESCAPES = {ord(";"): b"\\:", ord(" "): b"\\s", ord("\\"): b"\\\\", ord("\r"): b"\\r", 10: b"\\n"}
_NEEDS_ESCAPE = re.compile(rb"[; \\\r\n]")


def escape_tag_value(value: bytes) -> bytes:
    r"""IRCv3 message-tags value escaping (``;`` → ``\:``, space → ``\s``, ...).

    >>> escape_tag_value(b"a b;c")
    b'a\\sb\\:c'
    """
    if _NEEDS_ESCAPE.search(value) is None:  # nearly always: one C scan
        return value
    return b"".join(_ESCAPES.get(c, bytes((c,))) for c in value)


def tag_prefix(tags: list[tuple[bytes, bytes]]) -> bytes:
    """``@a=1;b `` for ``[(b"a", b"1"), (b"b", b"")]``; empty for no tags."""
    if not tags:
        return b""
    return (
        b"@"
        + b";".join(name + b"=" + escape_tag_value(v) if v else name for name, v in tags)
        + b" "
    )


def with_tags(blob: bytes, prefix: bytes) -> bytes:
    """``blob`` (one or several whole lines) with ``prefix`` before each line."""
    if not prefix:
        return blob
    if blob.count(b"\n") == 1:
        return prefix + blob
    return b"".join(prefix + line for line in blob.splitlines(keepends=True))


class Variants:
    """The forms of one line (or run of lines) for its recipients.

    ``tags_for(key)`` gives the tags for a recipient whose tag-adding capabilities are the
    bit set ``key``; it is called once per distinct key. A run of messages (several lines in
    one ``plain``) shares every tag but one, ``numbered`` (its msgid), whose value for line
    ``i`` is ``stem`` followed by ``first + i`` in hex (what ``tags_for`` gives is line 0's):
    each variant's prefix is built once, around that number, and each line formatted once.
    """

    __slots__ = ("_cache", "_first", "_numbered", "_stem", "_tags_for", "plain")

    def __init__(
        self,
        plain: bytes,
        tags_for: Callable[[int], list[tuple[bytes, bytes]]],
        numbered: bytes = b"",
        stem: bytes = b"",
        first: int = 0,
    ) -> None:
        self.plain = plain
        self._tags_for = tags_for
        self._numbered = numbered
        self._stem = stem
        self._first = first
        self._cache: dict[int, bytes] = {}

    def get(self, key: int) -> bytes:
        """The form for a recipient with tag-adding capabilities ``key`` (0: ``plain``)."""
        if not key:
            return self.plain
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = self._build(key)
        return out

    def _build(self, key: int) -> bytes:
        plain = self.plain
        tags = self._tags_for(key)
        numbered = self._numbered
        if not numbered or plain.count(b"\n") < 2:
            return with_tags(plain, tag_prefix(tags))
        names = [name for name, _ in tags]
        if numbered not in names:
            return with_tags(plain, tag_prefix(tags))
        # One format for every line: the prefix with a hole for the line's number, the line
        at = names.index(numbered)
        head, _, tail = tag_prefix([*tags[:at], (numbered, b"\0"), *tags[at + 1 :]]).partition(
            b"\0"
        )
        form = (head + self._stem).replace(b"%", b"%%") + b"%x" + tail.replace(b"%", b"%%") + b"%s"
        first = self._first
        return b"".join(
            [form % (first + i, line) for i, line in enumerate(plain.splitlines(keepends=True))]
        )


def add_tag(line: bytes, tag: bytes) -> bytes:
    """``line`` (one whole line) with ``tag`` (``name=escaped value``) first among its tags.

    >>> add_tag(b":s PONG s :x\\r\\n", b"label=1")
    b'@label=1 :s PONG s :x\\r\\n'
    >>> add_tag(b"@time=t :s PONG s :x\\r\\n", b"label=1")
    b'@label=1;time=t :s PONG s :x\\r\\n'
    """
    if line[:1] == b"@":
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line
