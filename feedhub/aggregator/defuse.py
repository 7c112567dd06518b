"""Make upstream XML safe to hand to feedparser.

feedparser has no bound of its own on what a document may make it do:

- **Entity expansion.** When expat refuses a document for its amplification (the
  "billion laughs", or one big entity referenced many times), feedparser falls back to
  its loose parser and expands the entities itself, without limit: 110 KB became a
  1,000,000,000-character summary. Here the DOCTYPE's internal subset keeps only short
  entity declarations (``<!ENTITY nbsp "&#160;">``), so nothing expands much.
- **Character references beyond Unicode** (``&#x110000;``, a 20-digit ``&#…;``, a lone
  surrogate) raise ValueError, OverflowError or UnicodeEncodeError from inside
  feedparser. They become U+FFFD, as an HTML parser reads them.

UTF-16 and UTF-32 documents are transcoded to UTF-8 first, so both rules see them.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from feedhub.errors import FeedhubError
from feedhub.limits import MAX_ENTITY_CHARS

_WIDE_ENCODINGS = (  # (how the document starts, its encoding), longest first
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)
_DECLARED_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")
# Only references that may be out of range are looked at (4+ hex or 5+ decimal digits).
_RISKY_REFERENCE = re.compile(rb"&#(?:[xX]0*([0-9a-fA-F]{4,})|0*([0-9]{5,}));?")
_REPLACEMENT = b"&#xFFFD;"
_DOCTYPE = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)
_ELEMENT = re.compile(rb"<[A-Za-z_]")
_SHORT_VALUE = rb"(?:&#\w+;|[^&%<\"']{0,LIMIT})".replace(b"LIMIT", str(MAX_ENTITY_CHARS).encode())
_SHORT_ENTITY = re.compile(
    rb"<!ENTITY\s+[A-Za-z_][\w.-]*\s+(?:\"" + _SHORT_VALUE + rb"\"|'" + _SHORT_VALUE + rb"')\s*>"
)
# The pieces of a DOCTYPE: comments and quoted strings are skipped whole, whatever they hold.
_DOCTYPE_TOKEN = re.compile(rb"<!--.*?-->|\"[^\"]*\"|'[^']*'|[\[\]>]|[^\"'\[\]><]+|<", re.DOTALL)


class UnsafeDocument(FeedhubError):
    """A document feedhub will not parse (its DOCTYPE cannot be read safely)."""


@dataclass(frozen=True)
class Defused:
    body: bytes
    transcoded: bool  # now UTF-8 whatever the HTTP charset said: the charset no longer applies


def defuse(body: bytes) -> Defused:
    body, transcoded = _as_utf8(body)
    return Defused(_strip_long_entities(_RISKY_REFERENCE.sub(_valid_reference, body)), transcoded)


def _as_utf8(body: bytes) -> tuple[bytes, bool]:
    for start, encoding in _WIDE_ENCODINGS:
        if body.startswith(start):
            text = body.decode(encoding, errors="replace").lstrip("\ufeff").encode()
            return _DECLARED_ENCODING.sub(rb"\1\2utf-8\2", text, count=1), True
    return body, False


def _valid_reference(match: re.Match[bytes]) -> bytes:
    hexadecimal, decimal = match.groups()
    digits = hexadecimal or decimal
    if len(digits) > 8:
        return _REPLACEMENT
    code = int(digits, 16 if hexadecimal else 10)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return _REPLACEMENT
    return match.group(0)


def _strip_long_entities(body: bytes) -> bytes:
    """The DOCTYPE with only short entity declarations left in its internal subset."""
    doctype = _DOCTYPE.search(body)
    element = _ELEMENT.search(body)
    if doctype is None or (element is not None and element.start() < doctype.start()):
        return body
    head_end = _declaration_end(body, doctype.start())
    if head_end is None:
        raise UnsafeDocument("not a usable feed: its DOCTYPE is never closed")
    declaration = body[doctype.start() : head_end]
    subset_start = declaration.find(b"[")
    if subset_start < 0:
        return body  # <!DOCTYPE rss PUBLIC "..." "...">: no internal subset, nothing to expand
    kept = b"\n".join(match.group(0) for match in _SHORT_ENTITY.finditer(declaration, subset_start))
    external = declaration[:subset_start].rstrip()
    rebuilt = external + (b" [\n" + kept + b"\n]>" if kept else b">")
    return body[: doctype.start()] + rebuilt + body[head_end:]


def _declaration_end(body: bytes, start: int) -> int | None:
    """Where a DOCTYPE ends: after the '>' that closes it, outside quotes and its [ ] subset."""
    position, in_subset = start + 2, False
    while (token := _DOCTYPE_TOKEN.match(body, position)) is not None:
        position = token.end()
        piece = token.group(0)
        if piece == b"[":
            in_subset = True
        elif piece == b"]":
            in_subset = False
        elif piece == b">" and not in_subset:
            return position
    return None  # the end of the document, or a quote never closed
