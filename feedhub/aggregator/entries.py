"""Upstream feed bytes to normalized, sanitized entries.

RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 go through feedparser (given the bytes and the
HTTP headers, so the charset the server declared is used, and ``sanitize_html=False``
because feedhub sanitizes once, with its own policy). JSON Feed 1.x, which
feedparser 6.0 cannot read, is read here. Both end as the same UpstreamEntry.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urljoin

import feedparser

from feedhub.aggregator.defuse import UnsafeDocument, defuse
from feedhub.dates import parse_feed_date
from feedhub.errors import FeedhubError
from feedhub.limits import (
    MAX_CONTENT_BYTES,
    MAX_DESCRIPTION_CHARS,
    MAX_ENCLOSURES,
    MAX_HUBS,
    MAX_IDENTITY_CHARS,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
)
from feedhub.posts import Enclosure
from feedhub.render import html_to_text, sanitize, text_to_html
from feedhub.text import one_line, quoted, truncate
from feedhub.urls import is_http_url

TITLE_FROM_TEXT = 80  # characters of the text that name an entry without a title
_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_CUT_MARK = "<p>[…]</p>"  # ends content cut to MAX_CONTENT_BYTES
_TAG_START = re.compile(r"<[^>]*$")


class ParseError(FeedhubError):
    pass


@dataclass(frozen=True)
class UpstreamEntry:
    upstream_id: str | None
    link: str | None  # absolute http(s), or None
    title: str  # plain text, one line
    html: str  # sanitized; every URL absolute and http(s)
    published: datetime | None
    updated: datetime | None
    author: str | None
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    cut: bool = False  # its title or content was longer than the limits and was cut
    # The linked article's main content, where full_text found it saying more than `html`. Not
    # part of the digest: the entry changes when the feed's own content does.
    article: str | None = None

    @property
    def shown_html(self) -> str:
        """What the post shows: the article, else the feed's content."""
        return self.article or self.html

    def with_article(self, article: str) -> UpstreamEntry:
        return replace(self, article=article)

    @property
    def text(self) -> str:
        """Title and content as plain text: what include/exclude filters read."""
        return f"{self.title}\n{html_to_text(self.html)}"

    @property
    def digest(self) -> str:
        """Changes when anything a post shows of the entry changes."""
        parts = [self.title, self.html, self.link or "", *(e.url for e in self.enclosures)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: list[UpstreamEntry]  # as the feed lists them
    warning: str | None  # what was wrong with a feed whose entries were still usable
    hubs: tuple[str, ...] = ()  # WebSub hubs the document names (rel="hub", JSON Feed `hubs`)
    self_url: str | None = None  # the document's own URL (rel="self", JSON Feed `feed_url`)
    image: str | None = None  # its icon or logo (http(s) only), for the category it fills
    description: str = ""  # plain text


def parse_feed(body: bytes, headers: Mapping[str, str], url: str, tz: tzinfo) -> ParsedFeed:
    if _is_json(body, headers):
        return _parse_json_feed(body, url, tz)
    try:
        defused = defuse(body)
    except UnsafeDocument as exc:
        raise ParseError(str(exc)) from None
    body = defused.body
    if body[:1].isspace() and body.lstrip().startswith(b"<?xml"):
        body = body.lstrip()  # white space before the XML declaration is an error, and all it is
    # Content-Location makes feedparser resolve relative links against where the feed really is.
    response_headers = {**headers, "content-location": url}
    if defused.transcoded:
        response_headers.pop("content-type", None)  # its charset described the bytes before
    try:
        # Relative URLs in content are resolved by _body, against the right base (see _from_feedparser).
        parsed = feedparser.parse(
            body, response_headers=response_headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # a feedparser bug on hostile bytes fails this feed, nothing else
        raise ParseError(
            f"not a usable feed: feedparser failed: {type(exc).__name__}: {quoted(str(exc))}"
        ) from None
    problem = _bozo_reason(parsed)
    if not parsed.entries and (problem or not parsed.get("version")):
        raise ParseError(f"not a usable feed: {problem or 'no RSS, Atom or JSON Feed found'}")
    # An http(s) link only: feedparser takes an Atom feed's id (a urn:, say) for its link when none is given.
    feed_link = absolute_http(parsed.feed.get("link"), url) or url
    entries = [_from_feedparser(raw, feed_link, url, tz) for raw in parsed.entries]
    feed_links = [link for link in parsed.feed.get("links", []) if isinstance(link, dict)]
    return parsed_feed(
        _plain_text(parsed.feed.get("title", ""), _is_html(parsed.feed.get("title_detail"))),
        entries,
        problem,
        hubs=[link.get("href") for link in feed_links if link.get("rel") == "hub"],
        self_url=next((link.get("href") for link in feed_links if link.get("rel") == "self"), None),
        base=url,
        # a square icon first (the others are any shape)
        images=[
            parsed.feed.get("icon"),
            (parsed.feed.get("image") or {}).get("href"),
            parsed.feed.get("logo"),
        ],
        description=_plain_text(
            parsed.feed.get("subtitle", ""), _is_html(parsed.feed.get("subtitle_detail"))
        ),
    )


def parsed_feed(
    title: str,
    entries: list[UpstreamEntry | None],
    problem: str | None,
    hubs: list[object] | None = None,
    self_url: object = None,
    base: str = "",
    images: list[object] | None = None,
    description: str = "",
) -> ParsedFeed:
    """The feed with its usable entries; what was wrong with the others is in its warning."""
    usable = [entry for entry in entries if entry is not None]
    problems = [problem] if problem else []
    if len(usable) < len(entries):
        problems.append(f"{len(entries) - len(usable)} entries without a title or text skipped")
    cut = sum(entry.cut for entry in usable)
    if cut:
        problems.append(
            f"{cut} entries cut to the size limits (title {MAX_TITLE_CHARS:,} characters, "
            f"content {MAX_CONTENT_BYTES // 1024:,} KiB)"
        )
    found = [absolute_http(hub, base) for hub in (hubs or [])[:MAX_HUBS]]
    return ParsedFeed(
        truncate(title, MAX_TITLE_CHARS),
        usable,
        "; ".join(problems) or None,
        tuple(dict.fromkeys(hub for hub in found if hub)),
        absolute_http(self_url, base),
        next((image for image in (absolute_http(given, base) for given in images or []) if image), None),
        truncate(one_line(description), MAX_DESCRIPTION_CHARS),
    )


def identities(entries: list[UpstreamEntry]) -> list[str]:
    """Each entry's identity: its upstream id, else its link, else a hash of title and content.

    An id that several entries of this one poll share identifies nothing, so those
    entries fall back to their link (and a shared link to the hash).
    """
    ids = Counter(entry.upstream_id for entry in entries if entry.upstream_id)
    links = Counter(entry.link for entry in entries if entry.link)
    result = []
    for entry in entries:
        if entry.upstream_id and ids[entry.upstream_id] == 1:
            result.append(entry.upstream_id)
        elif entry.link and links[entry.link] == 1:
            result.append(entry.link)
        else:
            content = f"{entry.title}\x00{entry.html}".encode()
            result.append(f"sha256:{hashlib.sha256(content).hexdigest()[:32]}")
    return result


def _identity(value: object) -> str | None:
    """An upstream id as one line; a very long one is named by its hash (it is stored and shown)."""
    text = one_line(str(value or ""))
    if len(text) <= MAX_IDENTITY_CHARS:
        return text or None
    return f"id-sha256:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _is_json(body: bytes, headers: Mapping[str, str]) -> bool:
    content_type = headers.get("content-type", "").lower()
    return "json" in content_type or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _bozo_reason(parsed: Any) -> str | None:
    exception = parsed.get("bozo_exception")
    if not parsed.get("bozo") or isinstance(exception, feedparser.NonXMLContentType):
        return None  # a feed served as text/plain (or from a file) is still a feed
    return f"{type(exception).__name__}: {quoted(str(exception))}" if exception else "malformed feed"


@dataclass(frozen=True)
class EntryFields:
    """An entry as a source type reads it, before it is checked and cleaned: every value may be
    missing, of the wrong type, too long or hostile; URLs may be relative."""

    upstream_id: object = None
    link: object = None
    title: str = ""
    title_is_html: bool = False
    content: str = ""  # HTML
    published: datetime | None = None
    updated: datetime | None = None
    author: object = None
    categories: Iterable[object] = ()
    enclosures: Iterable[tuple[object, object, object]] = ()  # (url, media type, length)
    content_base: str | None = None  # an explicit base for the content's URLs (xml:base)


def build_entry(fields: EntryFields, base: str) -> UpstreamEntry | None:
    """The entry, normalized and sanitized; None when it has neither a title nor text.

    Links resolve against `base` (where the document is, or its channel's link); the content's
    URLs against its explicit base, else the entry's link, else `base`."""
    link = absolute_http(fields.link, base)
    body, content_cut = clean_body(fields.content, fields.content_base or link or base)
    title, title_cut = _title(fields.title, fields.title_is_html, body)
    if not title:
        return None
    return UpstreamEntry(
        upstream_id=_identity(fields.upstream_id),
        link=link,
        title=title,
        html=body,
        published=fields.published,
        updated=fields.updated,
        author=_name(fields.author),
        categories=_names(str(name) for name in fields.categories if isinstance(name, str | int)),
        enclosures=_enclosures(fields.enclosures, link or base),
        cut=content_cut or title_cut,
    )


def _from_feedparser(raw: Any, feed_link: str, feed_url: str, tz: tzinfo) -> UpstreamEntry | None:
    content, xml_base = _feedparser_content(raw)
    fields = EntryFields(
        upstream_id=raw.get("id"),
        link=raw.get("link"),
        title=raw.get("title", ""),
        title_is_html=_is_html(raw.get("title_detail")),
        content=content,
        # dict.get: feedparser's own get maps a missing `updated` to `published`, with a warning
        published=parse_feed_date(dict.get(raw, "published"), tz),
        updated=parse_feed_date(dict.get(raw, "updated"), tz),
        author=raw.get("author"),
        categories=[tag.get("label") or tag.get("term") for tag in raw.get("tags", [])],
        enclosures=[
            (enclosure.get("href"), enclosure.get("type"), enclosure.get("length"))
            for enclosure in raw.get("enclosures", [])
        ],
        # feedparser names the feed's own URL as the base where no xml:base is given; a feed served
        # from another host (a CDN, a feed service) would then break every relative image: the
        # entry's link and the channel's link come first.
        content_base=xml_base if xml_base and xml_base != feed_url else None,
    )
    return build_entry(fields, feed_link)


def clean_body(content: str, base: str) -> tuple[str, bool]:
    """Sanitized content (URLs absolute against `base`), at most MAX_CONTENT_BYTES; True when it
    had to be cut."""
    if not content:
        return "", False
    body = sanitize(content, base)
    if len(body) <= MAX_CONTENT_BYTES // 4 or len(body.encode()) <= MAX_CONTENT_BYTES:
        return body, False
    room = MAX_CONTENT_BYTES - len(_CUT_MARK.encode()) - 1024  # the closing tags the sanitizer adds
    cut = _TAG_START.sub("", body.encode()[:room].decode("utf-8", errors="ignore"))
    closed = sanitize(cut, base) + _CUT_MARK
    if len(closed.encode()) > MAX_CONTENT_BYTES:  # nested so deep that closing it overflows: text only
        closed = text_to_html(html_to_text(cut)[: room // 4]) + _CUT_MARK
    return closed, True


def _feedparser_content(raw: Any) -> tuple[str, str | None]:
    """The fullest body the entry has (content over summary), as HTML, with its base URL."""
    candidates = list(raw.get("content", []))
    if raw.get("summary_detail"):
        candidates.append(raw["summary_detail"])
    for candidate in candidates:
        value = candidate.get("value") or ""
        if value.strip():
            is_html = candidate.get("type", "text/html") in _HTML_TYPES
            return (value if is_html else text_to_html(value)), candidate.get("base")
    return "", None


def _parse_json_feed(body: bytes, url: str, tz: tzinfo) -> ParsedFeed:
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, 5,000-digit numbers
        raise ParseError(f"not a usable feed: invalid JSON ({quoted(str(exc))})") from None
    except RecursionError:
        raise ParseError("not a usable feed: JSON nested too deep") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError("not a usable feed: JSON without a JSON Feed version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("not a usable feed: a JSON Feed without an items list")
    feed_link = absolute_http(document.get("home_page_url"), url) or url
    entries = [_from_json_item(item, feed_link, tz) for item in items if isinstance(item, dict)]
    hubs = document.get("hubs")
    listed = [hub.get("url") for hub in hubs if isinstance(hub, dict)] if isinstance(hubs, list) else []
    return parsed_feed(
        _plain_text(str(document.get("title") or ""), False),
        entries,
        None,
        hubs=listed,
        self_url=document.get("feed_url"),
        base=url,
        images=[document.get("icon"), document.get("favicon")],
        description=_plain_text(str(document.get("description") or ""), False),
    )


def _from_json_item(item: dict[str, Any], feed_link: str, tz: tzinfo) -> UpstreamEntry | None:
    if item.get("content_html"):
        content = str(item["content_html"])
    else:
        content = text_to_html(str(item.get("content_text") or item.get("summary") or ""))
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
    names = [_name(a.get("name")) for a in authors if isinstance(a, dict)]
    attachments = item.get("attachments")
    tags = item.get("tags")
    fields = EntryFields(
        upstream_id=item.get("id"),
        link=item.get("url") if absolute_http(item.get("url"), feed_link) else item.get("external_url"),
        title=str(item.get("title") or ""),
        content=content,
        published=parse_feed_date(_string(item.get("date_published")), tz),
        updated=parse_feed_date(_string(item.get("date_modified")), tz),
        author=", ".join(name for name in names if name),
        categories=tags if isinstance(tags, list) else (),
        enclosures=[
            (a.get("url"), a.get("mime_type"), a.get("size_in_bytes"))
            for a in (attachments if isinstance(attachments, list) else [])
            if isinstance(a, dict)
        ],
    )
    return build_entry(fields, feed_link)


def _title(value: str, is_html: bool, body: str) -> tuple[str, bool]:
    """Plain text on one line, and whether it was cut to MAX_TITLE_CHARS; an entry without
    a title is named by the start of its text."""
    title = _plain_text(value, is_html)
    if title:
        return truncate(title, MAX_TITLE_CHARS), len(title) > MAX_TITLE_CHARS
    return truncate(html_to_text(body), TITLE_FROM_TEXT), False


def _plain_text(value: str, is_html: bool) -> str:
    """A title as plain text. Entities in a plain one are decoded too: feeds that escape
    twice ("Blog &amp;#8211; News") mean a dash, never the six characters."""
    return html_to_text(value) if is_html else one_line(html.unescape(value))


def _is_html(detail: Mapping[str, str] | None) -> bool:
    return detail is not None and detail.get("type", "text/plain") in _HTML_TYPES


def absolute_http(url: object, base: str) -> str | None:
    """An absolute http(s) URL, or None: javascript:, data:, hostless and over-long URLs are dropped."""
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL_CHARS:
        return None
    try:
        absolute = urljoin(base, url.strip())
    except ValueError:  # an invalid IPv6 host
        return None
    return absolute if len(absolute) <= MAX_URL_CHARS and is_http_url(absolute) else None


def _enclosures(items: Iterable[tuple[object, object, object]], base: str) -> tuple[Enclosure, ...]:
    found = []
    for url, media_type, length in items:
        absolute = absolute_http(url, base)
        if absolute is None:
            continue
        digits = str(length) if isinstance(length, int | str) else ""
        size = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None
        kind = _name(media_type) if isinstance(media_type, str) else None
        found.append(Enclosure(absolute, kind, size))
    return tuple({enclosure.url: enclosure for enclosure in found}.values())[:MAX_ENCLOSURES]


def _name(value: object) -> str | None:
    """A one-line name (an author, a category, a media type), cut to MAX_NAME_CHARS."""
    return truncate(one_line(value), MAX_NAME_CHARS) or None if isinstance(value, str) else None


def _names(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in map(_name, values) if name))


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def entry_date(entry: UpstreamEntry, first_seen: float, tz: tzinfo) -> datetime:
    """The date a post gets: the entry's own, unless it has none that can be believed."""
    return own_date(entry, first_seen) or datetime.fromtimestamp(first_seen, tz)


def own_date(entry: UpstreamEntry, first_seen: float) -> datetime | None:
    """The entry's own date, unless it is over a day ahead or before 1970 (no feed is older:
    such a date is a placeholder, like the year 0001 some generators write)."""
    own = entry.published or entry.updated
    return own if own is not None and 0 <= own.timestamp() <= first_seen + 86400 else None
