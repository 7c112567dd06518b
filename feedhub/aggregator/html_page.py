"""Web pages that list articles but offer no feed: blocks and fields picked by CSS selectors.

A source of ``type: html`` names the selector of each article block (``items``) and, per field,
a selector relative to the block (``selector@attribute`` for an attribute). Layouts change
without notice, so a page where ``items`` matches nothing, or where no block has a title, is
that source's error naming the selector, never an empty poll.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector

from feedhub.aggregator.entries import ParsedFeed, ParseError
from feedhub.aggregator.picked import picked_feed
from feedhub.aggregator.sources import REQUIRED_FIELDS, HtmlPage, split_selector
from feedhub.dates import in_range
from feedhub.text import one_line, quoted

MAX_BLOCKS = 1_000  # article blocks read from one page
_CHARSET = re.compile(r"charset=([\w.:-]+)", re.IGNORECASE)


def parse_html_page(
    body: bytes, headers: Mapping[str, str], url: str, page: HtmlPage, tz: tzinfo
) -> ParsedFeed:
    """The page's article blocks as a feed's entries."""
    document = _document(body, headers)
    blocks = _select(page.items, document)
    if not blocks:
        raise ParseError(f"items: {quoted(page.items)} matched nothing on the page (did its layout change?)")
    picked = [
        {name: _pick(rule, block, name, page.date_format, tz) for name, rule in page.fields.items()}
        for block in blocks[:MAX_BLOCKS]
    ]
    if not any(values.get(name) for values in picked for name in REQUIRED_FIELDS):
        rules = ", ".join(f"fields.{name}: {quoted(page.fields[name])}" for name in REQUIRED_FIELDS)
        raise ParseError(f"{rules} matched nothing in any of {len(blocks)} blocks (did the layout change?)")
    return picked_feed(picked, url, tz, page.fields)


def _document(body: bytes, headers: Mapping[str, str]) -> etree._Element:
    declared = _CHARSET.search(headers.get("content-type", ""))
    try:
        parser = lxml.html.HTMLParser(encoding=declared.group(1) if declared else None, no_network=True)
    except LookupError:  # a charset lxml does not know: let it find one in the page
        parser = lxml.html.HTMLParser(no_network=True)
    try:
        document = lxml.html.document_fromstring(body, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not a usable web page: {quoted(str(exc))}") from None
    return document


def _select(rule: str, element: etree._Element) -> list[etree._Element]:
    selector, _ = split_selector(rule)
    return list(CSSSelector(selector)(element)) if selector else [element]


def _pick(rule: str, block: etree._Element, name: str, date_format: str | None, tz: tzinfo) -> Any:
    """What the rule finds in the block: an attribute, a summary's markup, else the text."""
    _, attribute = split_selector(rule)
    found = _select(rule, block)
    if not found:
        return None
    element = found[0]
    if attribute:
        value: str = element.get(attribute) or ""
    elif name == "summary":  # its markup, inside the element (sanitized later as any content)
        children = (lxml.html.tostring(child, encoding="unicode") for child in element)
        value = html.escape(element.text or "") + "".join(children)
    else:
        value = one_line(element.text_content())
    value = value.strip()
    if name == "date" and date_format and value:
        return _dated(value, date_format, tz)
    return value or None


def _dated(value: str, date_format: str, tz: tzinfo) -> datetime | str | None:
    """A date in the page's own words, read by its strptime format (in the source's timezone
    unless it names an offset); otherwise left to the usual date forms."""
    try:
        moment = datetime.strptime(value, date_format)
    except ValueError:
        return value
    try:
        return in_range(moment if moment.tzinfo else moment.replace(tzinfo=tz), tz)
    except ValueError:
        return None
