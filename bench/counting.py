"""Pure delivery counting and latency maths for the load generator.

Owns: recognising benchmark messages in the raw byte stream a client receives (count them,
read their embedded send timestamps), the end of a ``chathistory`` batch in it (and how many
lines the batch held), and the percentile arithmetic on latency samples.
Must never: touch sockets, clocks or processes; the caller passes the receive time in.

A benchmark message's text starts with :data:`MARKER`. Most carry no timestamp
(``=b. xxxx``) and cost only a ``bytes.count``; every Nth carries one (``=bt<ns> xxxx``),
found with ``bytes.find``, so latency is sampled without parsing every line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.wsframes import complete_frames

#: What every benchmark message's text starts with, as seen on the wire after the
#: ``PRIVMSG #room`` of a relayed line. ``=`` is no nick character and no NAMES prefix,
#: so no server-generated line contains it.
MARKER = b" :=b"
#: The timestamped kind: ``MARKER`` + ``t`` + decimal nanoseconds + space.
TS_MARKER = b" :=bt"
_TS_SKIP = len(TS_MARKER)


def plain_text(pad: int) -> bytes:
    """The text of an untimed benchmark message, ``pad`` filler bytes long."""
    return b"=b. " + b"x" * pad


def timed_text(sent_ns: int, pad: int) -> bytes:
    """The text of a timed benchmark message, sent at monotonic ``sent_ns``."""
    return b"=bt%d " % sent_ns + b"x" * pad


class DeliveryCounter:
    """Counts benchmark messages in one connection's received stream, chunk by chunk.

    Only complete lines are examined: the bytes after the last newline of a chunk are kept
    and examined with the next chunk, so a marker or timestamp split across two ``recv``
    calls is neither lost nor counted twice. The big middle of each chunk is scanned in
    place (``count``/``find`` with bounds), never copied: this runs for every byte a
    benchmark client receives, and copying 256 KiB chunks would cost more than counting.
    """

    __slots__ = ("_carry", "count")

    def __init__(self) -> None:
        self.count = 0
        self._carry = b""

    def feed(self, data: bytes, now_ns: int, latencies: list[int] | None) -> int:
        """Account for ``data``; append ``now_ns - sent`` of each timed message to
        ``latencies`` (if given). Returns how many benchmark messages completed."""
        first = data.find(b"\n")
        if first < 0:
            self._carry += data
            return 0
        last = data.rfind(b"\n")
        head = self._carry + data[: first + 1] if self._carry else data[: first + 1]
        n = head.count(MARKER) + data.count(MARKER, first + 1, last + 1)
        if latencies is not None:
            _timestamps(head, 0, len(head), now_ns, latencies)
            _timestamps(data, first + 1, last + 1, now_ns, latencies)
        self._carry = data[last + 1 :]
        self.count += n
        return n


class WsDeliveryCounter(DeliveryCounter):
    """:class:`DeliveryCounter` for a WebSocket stream: one IRC line per frame and no line
    ends, so what is examined is every whole frame (a frame header never holds a marker: its
    first byte is not ASCII), and the frame still arriving waits for the next chunk."""

    __slots__ = ()

    def prime(self, rest: bytes) -> None:
        """Start from ``rest``: the start of a frame the setup phase had not finished."""
        self._carry = rest

    def feed(self, data: bytes, now_ns: int, latencies: list[int] | None) -> int:
        buf = self._carry + data if self._carry else data
        end = complete_frames(buf)
        n = buf.count(MARKER, 0, end)
        if latencies is not None:
            _timestamps(buf, 0, end, now_ns, latencies)
        self._carry = buf[end:]
        self.count += n
        return n


def _timestamps(buf: bytes, start: int, end: int, now_ns: int, out: list[int]) -> None:
    """Append ``now_ns - t`` for each ``=bt<t>`` in complete lines ``buf[start:end]``."""
    find = buf.find
    i = find(TS_MARKER, start, end)
    while i >= 0:
        j = i + _TS_SKIP
        k = find(b" ", j, end)
        digits = buf[j:k]
        if k > j and digits.isdigit():  # else not ours after all: no sample
            out.append(now_ns - int(digits))
        i = find(TS_MARKER, j, end)


class BatchCounter:
    """Finds the ``chathistory`` batches (IRCv3 ``batch``, ``draft/chathistory``) in one
    connection's received stream, chunk by chunk, and how many lines each held.

    A batch opens with ``BATCH +<ref> chathistory <target>``, its lines carry the tag
    ``batch=<ref>``, and ``BATCH -<ref>`` ends it. As with :class:`DeliveryCounter`, only
    complete lines are examined (the rest waits for the next chunk). The probe that uses it
    sits in a busy room, so a chunk with no batch open and no ``BATCH +`` or ``PING`` in it
    is skipped with two ``find`` calls, not split into lines.
    """

    __slots__ = ("_open", "_tail", "pings", "pongs")

    def __init__(self) -> None:
        self._tail = b""
        self._open: dict[bytes, int] = {}  # reference -> lines so far
        #: the parameter of each ``PING`` seen, for the caller to answer (and clear)
        self.pings: list[bytes] = []
        #: how many ``PONG`` were seen (the answers to the caller's own PINGs)
        self.pongs = 0

    def feed(self, data: bytes) -> list[int]:
        """Account for ``data``; the line count of each ``chathistory`` batch it ended."""
        buf = self._tail + data if self._tail else data
        last = buf.rfind(b"\n")
        if last < 0:
            self._tail = buf
            return []
        self._tail = buf[last + 1 :]
        if (
            not self._open
            and buf.find(b"BATCH +", 0, last) < 0
            and buf.find(b"PING", 0, last) < 0
            and buf.find(b"PONG", 0, last) < 0
        ):
            return []
        ended: list[int] = []
        for line in buf[:last].split(b"\n"):
            self._line(line.rstrip(b"\r"), ended)
        return ended

    def _line(self, line: bytes, ended: list[int]) -> None:
        tags = b""
        if line[:1] == b"@":
            tags, _, line = line.partition(b" ")
        if line[:1] == b":":
            line = line.partition(b" ")[2]
        words = line.split(b" ", 3)
        if words[0] == b"PING":
            self.pings.append(words[1] if len(words) > 1 else b"")
        elif words[0] == b"PONG":
            self.pongs += 1
        elif words[0] == b"BATCH" and len(words) > 1:
            sign, ref = words[1][:1], words[1][1:]
            if sign == b"+" and len(words) > 2 and words[2] == b"chathistory":
                self._open[ref] = 0
            elif sign == b"-" and ref in self._open:
                ended.append(self._open.pop(ref))
        elif tags and self._open:
            for tag in tags[1:].split(b";"):
                if tag[:6] == b"batch=" and tag[6:] in self._open:
                    self._open[tag[6:]] += 1


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of already sorted values."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize_ns(samples: Sequence[int]) -> dict[str, float]:
    """p50/p95/p99/max (milliseconds, three decimals) and the count of latency samples."""
    if not samples:
        return {"samples": 0}
    s = sorted(samples)
    ms = 1e-6
    return {
        "samples": len(s),
        "p50_ms": round(percentile(s, 50) * ms, 3),
        "p95_ms": round(percentile(s, 95) * ms, 3),
        "p99_ms": round(percentile(s, 99) * ms, 3),
        "max_ms": round(s[-1] * ms, 3),
    }
