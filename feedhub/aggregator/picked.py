"""Entries from values a source picked out of a document by its own rules (a JSON API's JMESPath
expressions, a web page's CSS selectors): one way to make them entries, whatever picked them.

Values arrive as the document had them: text, numbers, lists, nothing. An item without a title
is skipped and counted; the rest is checked, cut and sanitized as a feed's entries are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import Any

from feedhub.aggregator.entries import EntryFields, ParsedFeed, absolute_http, build_entry, parsed_feed
from feedhub.aggregator.sources import REQUIRED_FIELDS
from feedhub.dates import in_range, parse_feed_date
from feedhub.render import text_to_html
from feedhub.text import quoted

_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
# Epoch numbers above this are milliseconds: as seconds they would be past the year 5000.
_MILLISECONDS_FROM = 10**11


def picked_feed(
    items: Sequence[Mapping[str, Any]], base: str, tz: tzinfo, rules: Mapping[str, str]
) -> ParsedFeed:
    """The items' entries (links resolved against `base`); `rules` name what picked each field,
    for the warning about items without a title."""
    entries = []
    missing = 0
    for values in items:
        if any(not _text(values.get(name)) for name in REQUIRED_FIELDS):
            missing += 1
            continue
        entries.append(build_entry(_fields(values, base, tz), base))
    problem = None
    if missing:
        required = ", ".join(f"{name} ({quoted(rules[name])})" for name in REQUIRED_FIELDS)
        problem = f"{missing} of {len(items)} items skipped: no {required}"
    return parsed_feed("", entries, problem)


def _fields(values: Mapping[str, Any], url: str, tz: tzinfo) -> EntryFields:
    content = _text(values.get("content"))
    body = content if content else _html_or_text(_text(values.get("summary")))
    image = absolute_http(_text(values.get("image")), url)
    if image and image not in body:
        body = f'<p><img src="{escape(image)}" alt=""></p>{body}'
    category = values.get("category")
    return EntryFields(
        upstream_id=_text(values.get("id")) or None,
        link=_text(values.get("link")) or None,
        title=_text(values.get("title")),
        title_is_html=_has_markup(_text(values.get("title"))),  # APIs mark search hits with <em>
        content=body,
        published=api_date(values.get("date"), tz),
        author=", ".join(_texts(values.get("author"))) or None,
        categories=_texts(category),
    )


def api_date(value: object, tz: tzinfo) -> datetime | None:
    """An API's date: epoch seconds or milliseconds (a number, or digits), ISO 8601, RFC 822, or
    ``YYYY-MM-DD HH:MM:SS`` in the source's timezone; None when it cannot be read for sure."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 16:
        value = int(value.strip())
    if isinstance(value, datetime):  # read already, by a page's own date format
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        seconds = value / 1000 if value >= _MILLISECONDS_FROM else value
        try:
            return in_range(datetime.fromtimestamp(seconds, UTC), tz)
        except (ValueError, OverflowError, OSError):
            return None
    return parse_feed_date(value, tz) if isinstance(value, str) else None


def _text(value: object) -> str:
    """A scalar as text ("" for nothing, a list, a mapping or a boolean)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    return ""


def _texts(value: object) -> list[str]:
    """One name or a list of them (authors, categories): each as text, the empty ones dropped."""
    values = value if isinstance(value, list) else [value]
    return [text for text in map(_text, values) if text]


def _html_or_text(value: str) -> str:
    """A summary as HTML: markup where it has some, else plain text with its paragraphs kept."""
    return value if _has_markup(value) else text_to_html(value)


def _has_markup(value: str) -> bool:
    return _TAG.search(value) is not None
