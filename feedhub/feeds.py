"""One page of a feed as Atom 1.0 and RSS 2.0 (feedgen) or JSON Feed 1.1.

The output is a pure function of its input: no build time, no clock. That keeps
the body, and so the ETag computed from it, identical until a post changes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feedhub import __version__
from feedhub.index.model import Entry
from feedhub.urls import SiteUrls

FEED_FORMATS = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json",
}
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
# Atom requires an `updated` even for a feed with no entries; this keeps it deterministic.
_EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SiteInfo:
    title: str
    description: str
    author: str
    language: str
    urls: SiteUrls
    ttl_minutes: int
    hubs: tuple[str, ...] = ()  # WebSub hubs, advertised on the first page of every feed


@dataclass(frozen=True)
class FeedPage:
    slug: str | None  # None: the site-wide feed
    title: str
    home_url: str  # the HTML page this feed mirrors
    page: int
    last_page: int
    updated: datetime | None  # the newest `updated` of the whole feed
    entries: list[Entry]
    labels: Mapping[str, str]  # category slug -> display title, for the entries' categories
    description: str  # the category's (from the config or its upstream feed), else the site's
    icon: str  # the URL of its image: likewise

    @property
    def newest(self) -> datetime:
        return self.updated or _EMPTY_FEED_UPDATED


def render_feed(fmt: str, site: SiteInfo, page: FeedPage) -> bytes:
    if fmt == "json":
        return json_feed(site, page)
    generator = _feedgen(fmt, site, page)
    document: bytes = generator.atom_str(pretty=True) if fmt == "atom" else generator.rss_str(pretty=True)
    return _with_stylesheet(document, site.urls.feed_stylesheet())


def _with_stylesheet(document: bytes, url: str) -> bytes:
    """The feed with the stylesheet a browser shows it by, right after its XML declaration."""
    declaration, _, rest = document.partition(b"\n")
    instruction = f'<?xml-stylesheet type="text/xsl" href="{html.escape(url)}"?>'.encode()
    return b"\n".join((declaration, instruction, rest))


def hubs_of(site: SiteInfo, page: FeedPage) -> tuple[str, ...]:
    """The hubs a page advertises: a WebSub topic is a feed's first page, so only that one."""
    return site.hubs if page.page == 1 else ()


def paging_links(fmt: str, site: SiteInfo, page: FeedPage) -> dict[str, str]:
    """RFC 5005 links of one page: self, first, last, and previous/next where they exist."""
    url = site.urls.feed
    links = {
        "self": url(page.slug, fmt, page.page),
        "first": url(page.slug, fmt),
        "last": url(page.slug, fmt, page.last_page),
    }
    if page.page > 1:
        links["previous"] = url(page.slug, fmt, page.page - 1)
    if page.page < page.last_page:
        links["next"] = url(page.slug, fmt, page.page + 1)
    return links


class _RssAtomLinks(BaseExtension):
    """feedgen writes only rel=self as atom:link in RSS; the paging and hub links are added here."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []  # (rel, href)

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        for rel, href in self.links:
            etree.SubElement(channel, _ATOM_LINK, rel=rel, href=href)
        return feed


class _AtomEntryLinks(BaseEntryExtension):
    """feedgen 1.0.0 drops rel and type of entry links (lkiesow/python-feedgen#135): written here."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for written in entry.findall("link"):  # feedgen's Atom elements carry no namespace in lxml
            entry.remove(written)
        for link in self.links:
            etree.SubElement(entry, "link", link)
        return entry


def _feedgen(fmt: str, site: SiteInfo, page: FeedPage) -> FeedGenerator:
    links = paging_links(fmt, site, page)
    generator = FeedGenerator()
    generator.id(site.urls.feed(page.slug, "atom"))
    generator.title(page.title)
    generator.subtitle(_plain_text(fmt, page.description))
    generator.icon(page.icon)
    generator.logo(page.icon)  # and RSS's <image>, which must also name the feed and its page:
    generator.image(page.icon, page.title, page.home_url)
    generator.author({"name": site.author})
    generator.language(site.language)
    generator.generator("feedhub", __version__)
    generator.updated(page.newest)
    generator.lastBuildDate(page.newest)
    generator.ttl(site.ttl_minutes)
    for rel, href in links.items():
        generator.link(href=href, rel=rel, type=FEED_FORMATS[fmt].split(";")[0])
    hubs = hubs_of(site, page)
    for hub in hubs:
        generator.link(href=hub, rel="hub")
    # feedgen takes the last link as the RSS channel's <link>: the HTML page.
    generator.link(href=page.home_url, rel="alternate", type="text/html")
    if fmt == "rss":
        generator.load_extension("dc", atom=False)  # dc:creator: an item's author by name
        generator.register_extension("atom_links", _RssAtomLinks, None, atom=False)
        generator.atom_links.links = [(rel, href) for rel, href in links.items() if rel != "self"]
        generator.atom_links.links += [("hub", hub) for hub in hubs]
    else:
        generator.register_extension("entry_links", BaseExtension, _AtomEntryLinks, rss=False)
    for entry in page.entries:
        _add_entry(generator, fmt, site, page, entry)
    return generator


def _plain_text(fmt: str, text: str) -> str:
    """Plain text for a summary or a description. RSS readers take <description> as HTML (the
    spec says nothing else), so there it is escaped as HTML: `&lt;svg onload=…&gt;` stays text."""
    return html.escape(text, quote=False) if fmt == "rss" else text


def _add_entry(generator: FeedGenerator, fmt: str, site: SiteInfo, page: FeedPage, entry: Entry) -> None:
    item = generator.add_entry(order="append")
    item.id(entry.entry_id)
    item.guid(entry.entry_id, permalink=False)
    item.title(entry.title)
    links = [{"href": site.urls.post(entry.permalink), "rel": "alternate", "type": "text/html"}]
    if entry.via:
        links.append({"href": entry.via, "rel": "via", "type": "text/html"})
    for enclosure in entry.enclosures:
        links.append(
            {
                "href": enclosure.url,
                "rel": "enclosure",
                "type": enclosure.type or UNKNOWN_MEDIA_TYPE,
                "length": str(enclosure.length or 0),  # RSS requires one; 0 means unknown
            }
        )
    item.link(links)
    if hasattr(item, "entry_links"):
        item.entry_links.links = links
    item.published(entry.published)
    item.updated(entry.updated)
    if entry.author:
        item.author({"name": entry.author})  # RSS's <author> takes an e-mail address: none there
        if fmt == "rss":
            item.dc.dc_creator(entry.author)
    # Blank elements only draw validator warnings; an entry with its alternate link needs neither.
    if entry.html:
        item.content(entry.html, type="html")
    if entry.summary:
        item.summary(_plain_text(fmt, entry.summary), type="text")
    item.category(_categories(site, page, entry))


def _categories(site: SiteInfo, page: FeedPage, entry: Entry) -> list[dict[str, str]]:
    scheme = f"{site.urls.base_url}/category/"
    categories = [
        {"term": slug, "label": page.labels.get(slug, slug), "scheme": scheme} for slug in entry.categories
    ]
    labels = {category["label"] for category in categories}
    return categories + [{"term": tag} for tag in entry.tags if tag not in labels]


def json_feed(site: SiteInfo, page: FeedPage) -> bytes:
    links = paging_links("json", site, page)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": page.title,
        "home_page_url": page.home_url,
        "feed_url": links["first"],
        "description": page.description,
        "icon": page.icon,
        "favicon": page.icon,
        "language": site.language,
        "authors": [{"name": site.author}],
        "items": [_json_item(site, page, entry) for entry in page.entries],
    }
    if "next" in links:
        document["next_url"] = links["next"]
    hubs = hubs_of(site, page)
    if hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in hubs]
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def _json_item(site: SiteInfo, page: FeedPage, entry: Entry) -> dict[str, object]:
    item: dict[str, object] = {
        "id": entry.entry_id,
        "url": site.urls.post(entry.permalink),
        "title": entry.title,
        "content_html": entry.html,
        "summary": entry.summary,
        "date_published": entry.published.isoformat(),
        "date_modified": entry.updated.isoformat(),
    }
    if entry.via:
        item["external_url"] = entry.via
    if entry.author:
        item["authors"] = [{"name": entry.author}]
    if entry.enclosures:
        item["attachments"] = [
            {"url": e.url, "mime_type": e.type or UNKNOWN_MEDIA_TYPE}
            | ({"size_in_bytes": e.length} if e.length else {})
            for e in entry.enclosures
        ]
    tags = [page.labels.get(slug, slug) for slug in entry.categories] + list(entry.tags)
    if tags:
        item["tags"] = list(dict.fromkeys(tags))
    return item
