"""Explicit parsing of post dates.

PyYAML turns ``2021-12-08 10:46:18`` into a naive ``datetime`` but leaves
``2021-12-08 10:20:24 +0800`` a string (an offset without a colon is not a YAML
timestamp), so both shapes arrive here and are read by one rule: an offset in
the value wins, otherwise the date is in the site's time zone, as in Jekyll.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

from feedhub.text import quoted

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
        return in_range(value if value.tzinfo else value.replace(tzinfo=tz), tz)
    if isinstance(value, date):
        return in_range(datetime(value.year, value.month, value.day, tzinfo=tz), tz)
    if not isinstance(value, str):
        raise ValueError(f"{quoted(value)} is not a date")
    match = _DATE.match(value)
    if not match:
        expected = "expected YYYY-MM-DD HH:MM:SS, optionally +ZZZZ"
        raise ValueError(f"{quoted(value.strip())} is not a date ({expected})")
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
        raise ValueError(f"{quoted(value.strip())} is not a valid date: {exc}") from None
    offset = parts["offset"]
    return in_range(naive.replace(tzinfo=_offset_zone(offset) if offset else tz), tz)


def in_range(moment: datetime, tz: tzinfo) -> datetime:
    """The moment, if it can be told in UTC and in the site's zone; ValueError otherwise.

    Year 1 at +08:00 is still year 0 in UTC, which a datetime cannot hold: every sort key,
    feed date and permalink of such a post would fail, so it is refused here, once.
    """
    try:
        moment.astimezone(UTC)
        moment.astimezone(tz)
    except (OverflowError, ValueError):
        raise ValueError(f"{moment.isoformat()} is out of range (years 1 to 9999, in UTC too)") from None
    return moment


def format_date(moment: datetime) -> str:
    """``2021-12-08 10:35:30 +0800``, as the seeds write dates; the parsers here read it back.

    strftime would write year 1 as "1", and a historical zone's offset with its seconds
    (Shanghai's local mean time before 1901 is +08:05:43): such a moment is written in UTC.
    """
    offset = moment.utcoffset() or timedelta(0)
    if offset % timedelta(minutes=1):
        moment, offset = moment.astimezone(UTC), timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    time = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    return f"{day} {time} {sign}{minutes // 60:02d}{minutes % 60:02d}"


def _offset_zone(offset: str) -> tzinfo:
    if offset in ("Z", "z"):
        return UTC
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{quoted(offset)} is not a valid UTC offset")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if offset[0] == "-" else delta)


def parse_feed_date(raw: str | None, tz: tzinfo) -> datetime | None:
    """An upstream entry's date, read from its own text; None when it cannot be read for sure.

    RFC 822 (RSS) and ISO 8601 (Atom) are read here, keeping their offset; a date without
    one is in ``tz``. feedparser's own reading is not used: for forms it does not know
    (``2020/1/10 14:33:00``) it fills the gaps from the current clock, and email.utils
    takes the year 0001 for 2001. A date not read for sure is no date at all: the entry
    gets the time it was first seen.
    """
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    else:
        year = _FOUR_DIGIT_YEAR.search(text)
        if year and int(year.group(1)) != moment.year:
            return None  # "0001" read as 2001
        if not moment.tzinfo:
            # RFC 2822's "-0000" is UTC with no local offset known; no zone at all is local.
            moment = moment.replace(tzinfo=UTC if text.endswith("-0000") else tz)
        try:
            return in_range(moment, tz)
        except ValueError:
            return None
    try:
        return parse_date(text, tz)
    except ValueError:
        return None


# The year of an RFC 822 date, when written with four digits (not a +0800 offset).
_FOUR_DIGIT_YEAR = re.compile(r"(?<![\d+-])(\d{4})(?![\d:])")
