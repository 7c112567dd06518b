"""Every document the site publishes, built as bytes with its content type.

One builder serves both the web app (which caches and answers conditional GETs) and
the static export (which writes files), so the two can never differ by a byte.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from feedhub.cache import Representation
from feedhub.feeds import FEED_FORMATS, hubs_of, paging_links, render_feed
from feedhub.i18n import labels
from feedhub.opml import opml_document
from feedhub.site import Site
from feedhub.websub.topics import link_header

HTML = "text/html; charset=utf-8"
OPML = "text/x-opml; charset=utf-8"
_FEED_TITLES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
_LINKS_KEPT = 4096  # (slug, title) pairs; a site has a few thousand categories


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.templates = Environment(
            loader=PackageLoader("feedhub"), autoescape=select_autoescape(default=True), auto_reload=False
        )
        # Every page links to the site's feeds and its categories': made once per (slug, title), not
        # by a template per page (a third of an export's time on its 100,000 post pages).
        self.alternate_links = functools.lru_cache(maxsize=_LINKS_KEPT)(self._alternate_links)
        self.feed_anchors = functools.lru_cache(maxsize=_LINKS_KEPT)(self._feed_anchors)
        self.format_anchors = functools.lru_cache(maxsize=_LINKS_KEPT)(self._format_anchors)
        self.templates.globals.update(
            site=site,
            urls=site.urls,
            t=labels(site.config.language),
            alternate_links=self.alternate_links,
            feed_anchors=self.feed_anchors,
            format_anchors=self.format_anchors,
        )

    def _feed_links(self, slug: str | None, title: str) -> Iterator[tuple[str, str, str]]:
        """(content type, title, URL) of each feed of a category, or of the site."""
        for fmt, content_type in FEED_FORMATS.items():
            yield content_type.split(";")[0], f"{title} ({_FEED_TITLES[fmt]})", self.site.urls.feed(slug, fmt)

    def _alternate_links(self, slug: str | None, title: str) -> Markup:
        """The <link>s by which readers discover a category's feeds (or the site's)."""
        return Markup("\n").join(
            Markup('<link rel="alternate" type="{}" title="{}" href="{}">').format(*link)
            for link in self._feed_links(slug, title)
        )

    def _feed_anchors(self, slug: str | None, title: str) -> Markup:
        return Markup("").join(
            Markup('<a href="{}">{}</a>').format(url, name) for _, name, url in self._feed_links(slug, title)
        )

    def _format_anchors(self, slug: str | None) -> Markup:
        """A category's feeds named by format alone: the directory's rows already name the category."""
        return Markup(" ").join(
            Markup('<a href="{}">{}</a>').format(self.site.urls.feed(slug, fmt), _FEED_TITLES[fmt])
            for fmt in FEED_FORMATS
        )

    def feed(self, slug: str | None, fmt: str, page: int) -> Representation | None:
        feed_page = self.site.feed_page(slug, page)
        if feed_page is None:
            return None
        info = self.site.info
        own_url = paging_links(fmt, info, feed_page)["self"]
        return Representation(
            render_feed(fmt, info, feed_page),
            FEED_FORMATS[fmt],
            feed_page.updated,
            links=link_header(hubs_of(info, feed_page), own_url),
        )

    def home(self) -> Representation:
        return self._html("home.html", self.site.updated(), home=self.site.home())

    def category(self, slug: str, page: int) -> Representation | None:
        listing = self.site.listing(slug, page)
        if listing is None or listing.category is None:
            return None
        return self._html("category.html", listing.category.newest, listing=listing)

    def latest(self, page: int) -> Representation | None:
        listing = self.site.listing(None, page)
        if listing is None:
            return None
        return self._html("latest.html", self.site.updated(), listing=listing)

    def directory(self) -> Representation:
        return self._html("categories.html", self.site.updated(), groups=self.site.directory())

    def post(self, permalink: str) -> Representation | None:
        found = self.site.post(permalink)
        if found is None:
            return None
        entry, categories, neighbours = found
        return self._html(
            "post.html", entry.updated, entry=entry, categories=categories, neighbours=neighbours
        )

    def opml(self, fmt: str) -> Representation:
        updated = self.site.updated()
        return Representation(opml_document(self.site, self.site.categories(), fmt, updated), OPML, updated)

    def not_found(self) -> str:
        return self.render("not_found.html")

    def render(self, template: str, **context: object) -> str:
        return self.templates.get_template(template).render(**context)

    def _html(self, template: str, last_modified: datetime | None, **context: object) -> Representation:
        return Representation(self.render(template, **context).encode(), HTML, last_modified)
