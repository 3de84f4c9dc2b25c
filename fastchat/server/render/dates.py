"""Calendar dates and durations for replies (RPL_CREATED, RPL_TIME, server-time, K-lines),
without a clock.

Owns: turning a Unix time into UTC calendar fields and the formats replies show, and a number
of seconds into the compact form operators write (``1h30m``).
Must never: read the clock (the time is an argument) or import ``time``/``datetime`` (they
would pull a clock into the pure core; the algorithm is Howard Hinnant's ``civil_from_days``).
"""

from __future__ import annotations

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
