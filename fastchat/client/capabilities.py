"""The client's side of IRCv3 capability negotiation, and reading the tags it asked for.

Owns: the CAP exchange as a small state machine (IRCv3 "Capability Negotiation": ``CAP LS 302``,
the ``REQ`` of the capabilities the client uses among those offered, ``CAP END``; ``NEW`` and
``DEL`` afterwards, which ``LS 302`` enables implicitly as ``cap-notify``), giving up cleanly on
a server without CAP (an ``ERR_UNKNOWNCOMMAND``, a welcome that comes without any CAP reply, or
no answer in :data:`CAP_TIMEOUT` seconds), and the ``time`` tag of ``server-time``.
Must never: import curses, socket, selectors, os or time, or know about windows: the
:class:`~fastchat.client.session.Session` feeds it CAP lines and sends what it returns.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from fastchat.irc.message import Message, line

#: What the client knows how to use, in the order requested. ``message-tags`` is safe to ask
#: for because every line's tags are parsed (unknown ones ignored) and ``TAGMSG`` is handled.
WANTED: tuple[bytes, ...] = (
    b"server-time",
    b"echo-message",
    b"multi-prefix",
    b"away-notify",
    b"message-tags",
)
#: A server that neither answers ``CAP LS`` nor welcomes us within this long: end it and go on.
CAP_TIMEOUT = 10.0


class CapPhase(enum.Enum):
    """Where the negotiation stands on this connection."""

    IDLE = "idle"  # not connected yet
    LISTING = "listing"  # CAP LS 302 sent; collecting the (maybe multi-line) list
    REQUESTING = "requesting"  # CAP REQ sent; waiting for ACK/NAK
    DONE = "done"  # CAP END sent, or the server does not do CAP


@dataclass
class CapResult:
    """What the session must do after a CAP line: lines to send, things to tell the person."""

    send: list[bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class CapNegotiation:
    """One connection's capability negotiation; :meth:`start` again on every reconnect."""

    def __init__(self, wanted: tuple[bytes, ...] = WANTED) -> None:
        self.wanted = wanted
        self.phase = CapPhase.IDLE
        #: name -> value (b"" without one), as the server offered them
        self.offered: dict[bytes, bytes] = {}
        #: what the server acknowledged (and did not delete since)
        self.enabled: set[bytes] = set()
        self._pending: set[bytes] = set()
        self._started = 0.0

    def has(self, name: bytes) -> bool:
        return name in self.enabled

    def start(self, now: float) -> list[bytes]:
        """A new connection: forget the last one's capabilities and ask for the list."""
        self.phase = CapPhase.LISTING
        self.offered.clear()
        self.enabled.clear()
        self._pending.clear()
        self._started = now
        return [line(b"LS", b"302", command=b"CAP")]

    @property
    def negotiating(self) -> bool:
        """Registration is held by the server until ``CAP END`` (LISTING or REQUESTING)."""
        return self.phase in (CapPhase.LISTING, CapPhase.REQUESTING)

    def unsupported(self) -> CapResult:
        """The server answered ``CAP`` with ERR_UNKNOWNCOMMAND (or ERR_NOTREGISTERED): it has
        no CAP, so it is not holding registration either; nothing to end."""
        result = CapResult()
        if self.negotiating:
            self.phase = CapPhase.DONE
            result.notes.append("The server does not support capabilities (CAP)")
        return result

    def welcomed(self) -> None:
        """RPL_WELCOME: registration is over, whatever CAP did (a server that ignores CAP
        registers us on NICK and USER alone)."""
        self.phase = CapPhase.DONE

    def tick(self, now: float) -> CapResult:
        """No answer to ``CAP LS``/``REQ`` for :data:`CAP_TIMEOUT` seconds: end and go on."""
        result = CapResult()
        if self.negotiating and now - self._started > CAP_TIMEOUT:
            self.phase = CapPhase.DONE
            self._pending.clear()
            result.send.append(line(b"END", command=b"CAP"))
            result.notes.append("No answer to CAP; registering without capabilities")
        return result

    def receive(self, msg: Message) -> CapResult:
        """One ``CAP`` line from the server: ``CAP <target> <subcommand> [*] :<list>``."""
        result = CapResult()
        sub = msg.param(1).upper()
        more = len(msg.params) >= 4 and msg.params[2] == b"*"  # a continuation follows
        names = msg.params[-1].split() if len(msg.params) >= 3 else []
        if sub == b"LS":
            self._offer(names)
            if more:  # wait for the rest of the list
                return result
            if self.phase is CapPhase.LISTING:
                wanted = self._missing(self.offered)
                if wanted:
                    self._request(wanted, result)
                else:
                    self._end(result)
            else:  # someone typed /quote CAP LS
                result.notes.append("Capabilities offered: " + _text(list(self.offered)))
        elif sub == b"ACK":
            self._on_ack(names, result)
        elif sub == b"NAK":
            # REQ is all or nothing: none of these were enabled. We only ask for what was
            # offered, so this is rare; go on without them rather than retry one by one.
            self._pending.difference_update(names)
            result.notes.append("Capabilities refused: " + _text(names))
        elif sub == b"NEW":
            self._request(self._missing(self._offer(names)), result)
        elif sub == b"DEL":
            gone = [n for n in names if n in self.enabled]
            for name in names:
                self.offered.pop(name, None)
                self.enabled.discard(name)
            if gone:
                result.notes.append("Capabilities withdrawn by the server: " + _text(gone))
        elif sub == b"LIST" and names:
            result.notes.append("Capabilities enabled: " + _text(names))
        if self.phase is CapPhase.REQUESTING and not self._pending:
            self._end(result)
        return result

    def _offer(self, items: list[bytes]) -> dict[bytes, bytes]:
        """Record ``name[=value]`` items as offered; return them as a dict."""
        new = dict(item.partition(b"=")[::2] for item in items)
        self.offered.update(new)
        return new

    def _missing(self, offered: dict[bytes, bytes]) -> list[bytes]:
        """The wanted capabilities in ``offered`` that are not on (or asked for) yet."""
        taken = self.enabled | self._pending
        return [c for c in self.wanted if c in offered and c not in taken]

    def _request(self, names: list[bytes], result: CapResult) -> None:
        if not names:
            return
        if self.phase is CapPhase.LISTING:
            self.phase = CapPhase.REQUESTING
        self._pending.update(names)
        result.send.append(line(b"REQ", b" ".join(names), command=b"CAP"))

    def _end(self, result: CapResult) -> None:
        """Registration waits for ``CAP END``: sent once the list is read and every request
        answered (after registration, NEW and its ACK need none)."""
        self.phase = CapPhase.DONE
        result.send.append(line(b"END", command=b"CAP"))

    def _on_ack(self, names: list[bytes], result: CapResult) -> None:
        now_on: list[bytes] = []
        for name in names:
            if name.startswith(b"-"):
                self.enabled.discard(name[1:])
                self._pending.discard(name[1:])
            else:
                self.enabled.add(name)
                self._pending.discard(name)
                now_on.append(name)
        if now_on:
            result.notes.append("Capabilities enabled: " + _text(now_on))


def _text(names: list[bytes]) -> str:
    return " ".join(n.decode("ascii", "replace") for n in names)


# IRCv3 server-time: "YYYY-MM-DDThh:mm:ss.sssZ" (ISO 8601, UTC, milliseconds). Parsed by hand:
# ``datetime`` imports the clock module, and this layer takes the time only as an argument.
_SERVER_TIME = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def maybe_server_time(value: bytes) -> float | None:
    """The Unix time of a ``time`` tag, or None when it is not one (then the caller uses its
    own clock). IRCv3 server-time: "the timestamp MUST be in UTC"; an explicit offset is
    honoured anyway.

    >>> maybe_server_time(b"2011-10-19T16:40:51.620Z")
    1319042451.62
    >>> maybe_server_time(b"1970-01-01T00:00:00Z"), maybe_server_time(b"yesterday")
    (0.0, None)
    """
    m = _SERVER_TIME.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    fraction = m.group(7)
    zone = m.group(8)
    if zone and zone != b"Z":
        sign = -1 if zone[:1] == b"-" else 1
        digits = zone[1:].replace(b":", b"")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    if fraction:
        return seconds + int(fraction) / float(10 ** len(fraction))
    return float(seconds)
