"""The capability registry: every IRCv3 capability, declared once, held as a bit.

Owns: :class:`Capability` (name, value, the message tags it adds, what it requires), the
:class:`Registry` that CAP LS, REQ, ACK and LIST read, and the bit each capability gets, so a
client's negotiated set is one ``int`` (``Client.caps``) and a check in the fan-out is one
``&``.
Must never: know a particular capability. Each lives in its own module in this package (its
declaration, and the tags it adds, together), found by :func:`fastchat.server.caps.discover`;
adding one touches that one new file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Meta(NamedTuple):
    """What a message tag may be computed from: the sequencer's decision that produced the
    line (its time, in ms), who sent it (a uid; 0: the server), and for a PRIVMSG, NOTICE or
    TAGMSG what its sender's worker decided: the sender's message number ``seq`` (the msgid
    is made of time, sender and seq; -1: the line is not a message, it gets no msgid), the
    client-only tags the sender attached (wire form) and whether the sender is a bot
    (user mode +B)."""

    time: int
    sender: int
    seq: int = -1
    client_tags: bytes = b""
    bot: bool = False
    account: bytes | None = None  # the sender's services account (IRCv3 account-tag)


TagValue = Callable[[Meta], bytes | None]
TagList = Callable[[Meta], list[tuple[bytes, bytes]]]


@dataclass(frozen=True)
class Capability:
    """An IRCv3 capability (https://ircv3.net/specs/extensions/capability-negotiation).

    ``value``: what ``CAP LS 302`` shows after ``=`` (None: nothing); ``value_of``, if set,
    computes it from the server's configuration instead. ``listed_for``, if set, makes the
    capability depend on the configuration and on the connection asking (a function of
    both): listed with the value it gives, not listed at all where it gives None, nor to
    clients that did not ask ``CAP LS 302`` (they would not see the value).
    ``requestable`` False: a ``CAP REQ`` of it is refused (a capability that only informs,
    such as ``sts``). ``tags``: the message
    tags a client that negotiated it receives, each as (tag name, function of the message's
    :class:`Meta` giving its value, or None to leave it out). ``tag_list``: tags whose names
    come with the message (client-only tags), a function of the :class:`Meta` giving (name,
    value) pairs. ``requires``: capabilities that must be enabled with it (a REQ without them is refused, NAK). ``implicit_302``: enabled,
    without a REQ, for every client that asks ``CAP LS 302`` or later, which may then not
    disable it (what the spec says of ``cap-notify``).
    """

    name: bytes
    value: bytes | None = None
    tags: tuple[tuple[bytes, TagValue], ...] = ()
    tag_list: TagList | None = None
    value_of: Callable[[Any], bytes | None] | None = None
    listed_for: Callable[[Any, Any], bytes | None] | None = None
    requestable: bool = True
    requires: tuple[bytes, ...] = ()
    implicit_302: bool = False
    doc: str = field(default="", compare=False)


class Registry:
    """The capabilities this server offers, each with its bit (in name order: stable)."""

    def __init__(self, capabilities: Iterable[Capability] = ()) -> None:
        self._by_name: dict[bytes, Capability] = {}
        self._bits: dict[bytes, int] = {}
        self._by_bit: list[Capability] = []
        #: the bits of capabilities that add tags: a client with none of them gets the
        #: shared plain line (the fan-out tests ``client.caps & tag_mask`` once)
        self.tag_mask = 0
        #: the bits a client gets by asking ``CAP LS 302`` (and may then not disable)
        self.implicit_302 = 0
        self._tagging: dict[int, list[Capability]] = {}  # tag-adding bits -> capabilities
        for cap in sorted(capabilities, key=lambda c: c.name):
            self.add(cap)

    def add(self, cap: Capability) -> int:
        """Offer ``cap``; returns its bit."""
        if cap.name in self._by_name:
            raise ValueError(f"capability {cap.name!r} declared twice")
        bit = 1 << len(self._by_bit)
        self._by_name[cap.name] = cap
        self._bits[cap.name] = bit
        self._by_bit.append(cap)
        self._tagging.clear()
        if cap.tags or cap.tag_list is not None:
            self.tag_mask |= bit
        if cap.implicit_302:
            self.implicit_302 |= bit
        return bit

    def __iter__(self) -> Iterator[Capability]:
        return iter(self._by_bit)

    def __len__(self) -> int:
        return len(self._by_bit)

    def get(self, name: bytes) -> Capability | None:
        return self._by_name.get(name)

    def bit(self, name: bytes) -> int:
        """The bit of ``name`` (0 for a capability we do not offer)."""
        return self._bits.get(name, 0)

    def names(self, mask: int) -> list[bytes]:
        """The names of the capabilities in ``mask``, in registry order."""
        return [cap.name for i, cap in enumerate(self._by_bit) if mask >> i & 1]

    def ls_tokens(self, version: int, config: Any = None, client: Any = None) -> list[bytes]:
        """What ``CAP LS`` lists: names, with ``=value`` from CAP version 302 on (a value that
        depends on the configuration, ``value_of``, read from ``config``; one that depends on
        the connection too, ``listed_for``, from ``config`` and ``client``)."""
        out = []
        for cap in self._by_bit:
            value = cap.value
            if cap.value_of is not None and config is not None:
                value = cap.value_of(config)
            if cap.listed_for is not None:
                # (only from 302 on: what such a capability says is in its value)
                value = cap.listed_for(config, client) if config and version >= 302 else None
                if value is None:
                    continue
            out.append(cap.name + b"=" + value if version >= 302 and value else cap.name)
        return out

    def request(self, mask: int, tokens: list[bytes], locked: int = 0) -> int | None:
        """The capability set after a ``CAP REQ`` of ``tokens`` (``-name`` disables), or None
        if the request must be refused as a whole (an unknown name, a requirement left out,
        or a bit of ``locked`` disabled): IRCv3 says a REQ is all or nothing."""
        for token in tokens:
            disable = token.startswith(b"-")
            name = token[1:] if disable else token
            bit = self._bits.get(name)
            if not bit or not self._by_name[name].requestable:
                return None
            mask = mask & ~bit if disable else mask | bit
        if locked & ~mask:
            return None
        for name in self.names(mask):
            if any(not self._bits.get(r, 0) & mask for r in self._by_name[name].requires):
                return None
        return mask

    def tags(self, mask: int, meta: Meta) -> list[tuple[bytes, bytes]]:
        """The message tags for a client with capabilities ``mask``, for a line whose
        decision is ``meta`` (in registry order, each tag once)."""
        mask &= self.tag_mask
        caps = self._tagging.get(mask)
        if caps is None:
            caps = self._tagging[mask] = [self._by_name[n] for n in self.names(mask)]
        out: dict[bytes, bytes] = {}
        for cap in caps:
            for tag, value in cap.tags:
                if tag not in out:
                    v = value(meta)
                    if v is not None:
                        out[tag] = v
            if cap.tag_list is not None:
                for tag, v in cap.tag_list(meta):
                    out.setdefault(tag, v)
        return list(out.items())
