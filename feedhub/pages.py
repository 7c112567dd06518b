"""Every document the site publishes, built as bytes with its content type.

One builder serves both the web app (which caches and answers conditional GETs) and
the static export (which writes files), so the two can never differ by a byte.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from feedhub.cache import Representation
from feedhub.feeds import FEED_FORMATS, hubs_of, paging_links, render_feed
from feedhub.i18n import labels
from feedhub.opml import opml_document
from feedhub.site import Site
from feedhub.websub.topics import link_header

HTML = "text/html; charset=utf-8"
OPML = "text/x-opml; charset=utf-8"
_FEED_TITLES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.templates = Environment(
            loader=PackageLoader("feedhub"), autoescape=select_autoescape(default=True), auto_reload=False
        )
        self.templates.globals.update(
            site=site, urls=site.urls, t=labels(site.config.language), feed_links=self.feed_links
        )

    def feed_links(self, slug: str | None, title: str) -> list[dict[str, str]]:
        """The feeds of a category (or of the site), for autodiscovery links."""
        return [
            {
                "type": content_type.split(";")[0],
                "title": f"{title} ({_FEED_TITLES[fmt]})",
                "url": self.site.urls.feed(slug, fmt),
            }
            for fmt, content_type in FEED_FORMATS.items()
        ]

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
        sections = self.site.home()
        newest = max((category.newest for category, _ in sections if category.newest), default=None)
        return self._html("home.html", newest, sections=sections)

    def category(self, slug: str, page: int) -> Representation | None:
        listing = self.site.listing(slug, page)
        if listing is None:
            return None
        return self._html("category.html", listing.category.newest, listing=listing)

    def post(self, permalink: str) -> Representation | None:
        found = self.site.post(permalink)
        if found is None:
            return None
        entry, categories = found
        return self._html("post.html", entry.updated, entry=entry, categories=categories)

    def opml(self, fmt: str) -> Representation:
        updated = self.site.updated()
        return Representation(opml_document(self.site, self.site.categories(), fmt, updated), OPML, updated)

    def not_found(self) -> str:
        return self.render("not_found.html")

    def render(self, template: str, **context: object) -> str:
        return self.templates.get_template(template).render(**context)

    def _html(self, template: str, last_modified: datetime | None, **context: object) -> Representation:
        return Representation(self.render(template, **context).encode(), HTML, last_modified)
