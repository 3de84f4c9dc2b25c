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

from collections.abc import Callable

_ESCAPES = {ord(";"): b"\\:", ord(" "): b"\\s", ord("\\"): b"\\\\", ord("\r"): b"\\r", 10: b"\\n"}


def escape_tag_value(value: bytes) -> bytes:
    r"""IRCv3 message-tags value escaping (``;`` → ``\:``, space → ``\s``, ...).

    >>> escape_tag_value(b"a b;c")
    b'a\\sb\\:c'
    """
    if not any(c in _ESCAPES for c in value):
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

    ``tags_for(key, i)`` gives the tags of line ``i`` for a recipient whose tag-adding
    capabilities are the bit set ``key``; it is called once per distinct key (and, when
    ``numbered``, once per line of a run: each message of a run has its own msgid).
    """

    __slots__ = ("_cache", "_numbered", "_tags_for", "plain")

    def __init__(
        self,
        plain: bytes,
        tags_for: Callable[[int, int], list[tuple[bytes, bytes]]],
        numbered: bool = False,
    ) -> None:
        self.plain = plain
        self._tags_for = tags_for
        self._numbered = numbered
        self._cache: dict[int, bytes] = {}

    def get(self, key: int) -> bytes:
        """The form for a recipient with tag-adding capabilities ``key`` (0: ``plain``)."""
        if not key:
            return self.plain
        out = self._cache.get(key)
        if out is None:
            plain = self.plain
            if self._numbered and plain.count(b"\n") > 1:
                tags_for = self._tags_for
                out = b"".join(
                    tag_prefix(tags_for(key, i)) + line
                    for i, line in enumerate(plain.splitlines(keepends=True))
                )
            else:
                out = with_tags(plain, tag_prefix(self._tags_for(key, 0)))
            self._cache[key] = out
        return out


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
