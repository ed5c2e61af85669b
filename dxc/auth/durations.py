"""Timespans in the vercel/ms grammar, as ``expires_in`` and ``not_before`` arrive.

``"2h"``, ``"1.5 days"``, ``"90s"``, ``"-1m"``; a bare number string is
milliseconds (that is what ``ms("100")`` gives). A JSON number is read as
seconds, like jsonwebtoken's ``expiresIn``.
"""

from __future__ import annotations

import re

_UNITS = {
    "ms": 1, "msec": 1, "msecs": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
    "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
    "w": 604_800_000, "week": 604_800_000, "weeks": 604_800_000,
    "y": 31_557_600_000, "yr": 31_557_600_000, "yrs": 31_557_600_000,
    "year": 31_557_600_000, "years": 31_557_600_000,
}
_PATTERN = re.compile(r"^(-?(?:\d+)?\.?\d+) *([a-z]+)?$", re.IGNORECASE)
MAX_LENGTH = 100
MAX_SECONDS = 100 * 31_557_600


class BadDuration(ValueError):
    """Not a timespan in the ms grammar."""


def to_seconds(value: object) -> float:
    """``value`` (an ms-grammar string or a number of seconds) in seconds."""
    if isinstance(value, bool):
        raise BadDuration("a timespan must be a string like '1h' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= MAX_LENGTH:
        match = _PATTERN.match(value.strip())
        unit = (match.group(2) or "ms").lower() if match else None
        if match is None or unit not in _UNITS:
            raise BadDuration(f"{value!r} is not a timespan like '90s', '15m', '2h' or '7d'")
        seconds = float(match.group(1)) * _UNITS[unit] / 1000
    else:
        raise BadDuration("a timespan must be a string like '1h' or a number of seconds")
    if not abs(seconds) <= MAX_SECONDS:  # also refuses NaN and infinities
        raise BadDuration("a timespan must be at most 100 years")
    return seconds
