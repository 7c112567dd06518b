"""Explicit parsing of post dates.

PyYAML turns ``2021-12-08 10:46:18`` into a naive ``datetime`` but leaves
``2021-12-08 10:20:24 +0800`` a string (an offset without a colon is not a YAML
timestamp), so both shapes arrive here and are read by one rule: an offset in
the value wins, otherwise the date is in the site's time zone, as in Jekyll.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

_DATE = re.compile(
    r"""^\s*
    (?P<year>\d{4})(?P<separator>[-/])(?P<month>\d{1,2})(?P=separator)(?P<day>\d{1,2})
    (?:[Tt\s]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?)?
    \s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?
    \s*$""",
    re.VERBOSE,
)


def parse_date(value: object, tz: tzinfo) -> datetime:
    """A timezone-aware datetime from a front-matter value; ValueError says why not."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date")
    match = _DATE.match(value)
    if not match:
        raise ValueError(f"{value.strip()!r} is not a date (expected YYYY-MM-DD HH:MM:SS, optionally +ZZZZ)")
    parts = match.groupdict()
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    try:
        naive = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
        )
    except ValueError as exc:
        raise ValueError(f"{value.strip()!r} is not a valid date: {exc}") from None
    offset = parts["offset"]
    return naive.replace(tzinfo=_offset_zone(offset) if offset else tz)


def _offset_zone(offset: str) -> tzinfo:
    if offset in ("Z", "z"):
        return UTC
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{offset!r} is not a valid UTC offset")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if offset[0] == "-" else delta)


def parse_feed_date(raw: str | None, parsed: time.struct_time | None, tz: tzinfo) -> datetime | None:
    """An upstream entry's date, read from its own text first.

    RFC 822 (RSS) and ISO 8601 (Atom) are read here, keeping their offset; a date without
    one is in ``tz``. feedparser's parsed value is only the last resort: for forms it does
    not know (``2020/1/10 14:33:00``) it fills the gaps from the current clock.
    """
    if raw and raw.strip():
        try:
            moment = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            pass
        else:
            if moment.tzinfo:
                return moment
            # RFC 2822's "-0000" is UTC with no local offset known; no zone at all is local.
            return moment.replace(tzinfo=UTC if raw.strip().endswith("-0000") else tz)
        try:
            return parse_date(raw, tz)
        except ValueError:
            pass
    if parsed is not None:
        return datetime(*parsed[:6], tzinfo=UTC)
    return None
