"""News APIs that answer JSON but no feed: items and their fields picked by JMESPath expressions.

A source of ``type: json`` names where the list of items is (``items``) and, per field, where
an item keeps it (``fields``); the values then go the way a feed's entries go (checked, cut,
sanitized, URLs made absolute against the API's URL), so everything after parsing is the same.
"""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from jmespath.exceptions import JMESPathError

from feedhub.aggregator.entries import ParsedFeed, ParseError
from feedhub.aggregator.picked import picked_feed
from feedhub.aggregator.sources import JsonApi, compiled
from feedhub.text import quoted


def parse_json_api(body: bytes, url: str, api: JsonApi, tz: tzinfo) -> ParsedFeed:
    """The API's answer as a feed: its items, each with the fields the source names."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"not usable JSON: {quoted(str(exc))}") from None
    except RecursionError:
        raise ParseError("not usable JSON: nested too deep") from None
    items = _search(api.items, document)
    if not isinstance(items, list):
        found = "nothing" if items is None else f"a {type(items).__name__}, not a list"
        raise ParseError(f"items: {quoted(api.items)} found {found} in the answer (did the API change?)")
    picked = [{name: _search(expression, item) for name, expression in api.fields.items()} for item in items]
    return picked_feed(picked, url, tz, api.fields)


def _search(expression: str, value: Any) -> Any:
    """What the expression finds; None where it finds nothing or fails on this item's types."""
    try:
        return compiled(expression).search(value)
    except (JMESPathError, RecursionError, TypeError, ValueError):
        return None
