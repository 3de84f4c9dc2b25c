"""Calendar dates and durations for replies (RPL_CREATED, RPL_TIME, server-time, K-lines),
without a clock.

Owns: turning a Unix time into UTC calendar fields and the formats replies show, and a number
of seconds into the compact form operators write (``1h30m``).
Must never: read the clock (the time is an argument) or import ``time``/``datetime`` (they
would pull a clock into the pure core; the algorithm is Howard Hinnant's ``civil_from_days``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Civil(NamedTuple):
    year: int
    month: int  # 1..12
    day: int  # 1..31
    hour: int
    minute: int
    second: int
    weekday: int  # 0 = Monday
    millisecond: int


def civil(unix_ms: int) -> Civil:
    """UTC calendar fields of ``unix_ms`` milliseconds since 1970-01-01 (proleptic Gregorian).

    >>> civil(0)
    Civil(year=1970, month=1, day=1, hour=0, minute=0, second=0, weekday=3, millisecond=0)
    """
    seconds, ms = divmod(unix_ms, 1000)
    days, rem = divmod(seconds, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return Civil(year, month, day, hour, minute, second, (days + 3) % 7, ms)


def created(unix: float) -> bytes:
    """RPL_CREATED's form: ``2026-11-26 01:40:29 UTC``."""
    c = civil(int(unix * 1000))
    return b"%04d-%02d-%02d %02d:%02d:%02d UTC" % c[:6]


def server_time(unix: float) -> bytes:
    """RPL_TIME's form: ``Thursday November 26 2026 -- 01:40:29 +00:00``."""
    c = civil(int(unix * 1000))
    return b"%s %s %02d %04d -- %02d:%02d:%02d +00:00" % (
        _DAYS[c.weekday].encode(),
        _MONTHS[c.month - 1].encode(),
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second,
    )


def iso8601(unix_ms: int) -> bytes:
    """IRCv3 server-time's form: ``2026-11-26T01:40:29.123Z``."""
    c = civil(unix_ms)
    return b"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (*c[:6], c.millisecond)


_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")


def maybe_parse_iso8601(text: bytes) -> int | None:
    """The Unix milliseconds of a server-time stamp (``2026-11-26T01:40:29.123Z``), or None
    if ``text`` is not one (Howard Hinnant's ``days_from_civil``).

    >>> maybe_parse_iso8601(iso8601(1_764_120_000_123))
    1764120000123
    >>> maybe_parse_iso8601(b"yesterday") is None
    True
    """
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    fraction = m.group(7) or b"0"
    ms = int((fraction + b"00")[:3])
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return ((days * 86400 + hour * 3600 + minute * 60 + second) * 1000) + ms


_UNITS = ((b"w", 604800), (b"d", 86400), (b"h", 3600), (b"m", 60), (b"s", 1))


def duration(seconds: int) -> bytes:
    """``seconds`` as KLINE's <duration> writes it, largest unit first.

    >>> duration(5400), duration(90061), duration(0)
    (b'1h30m', b'1d1h1m1s', b'0s')
    """
    out = b""
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            out += b"%d%s" % (count, unit)
    return out or b"0s"
