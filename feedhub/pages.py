"""Every document the site publishes, built as bytes with its content type.

One builder serves both the web app (which caches and answers conditional GETs) and
the static export (which writes files), so the two can never differ by a byte.
"""

from __future__ import annotations

import functools
import mimetypes
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    select_autoescape,
)
from markupsafe import Markup
from werkzeug.security import safe_join

from feedhub.cache import Representation
from feedhub.config import Config
from feedhub.feeds import FEED_FORMATS, hubs_of, paging_links, render_feed
from feedhub.i18n import labels
from feedhub.index.search import SearchOrder
from feedhub.opml import opml_document
from feedhub.site import Site
from feedhub.websub.topics import link_header

HTML = "text/html; charset=utf-8"
XSL = "text/xsl; charset=utf-8"
OPML = "text/x-opml; charset=utf-8"
_FEED_TITLES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
_LINKS_KEPT = 4096  # (slug, title) pairs; a site has a few thousand categories


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.templates = Environment(
            loader=_loader(site.config), autoescape=select_autoescape(default=True), auto_reload=False
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
            theme=site.config.theme,
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
            browser_type=None if fmt == "json" else "application/xml; charset=utf-8",
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

    def search(self, text: str, order: SearchOrder, page: int) -> Representation | None:
        results = self.site.search(text, order, page)
        if results is None:
            return None
        return self._html("search.html", self.site.updated(), results=results, orders=list(SearchOrder))

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

    def icon(self) -> Representation | None:
        """The site's icon, when it is a file feedhub serves (not an image elsewhere)."""
        icon = self.site.config.icon
        if icon.path is None:
            return None
        return Representation(icon.path.read_bytes(), icon.media_type, None)

    def static_file(self, name: str) -> Representation | None:
        """A file of the theme's static folder (never one outside it, nor a hidden one)."""
        folder = self.site.config.static_dir
        if folder is None or any(part.startswith(".") for part in PurePosixPath(name).parts):
            return None
        path = safe_join(str(folder), name)
        if path is None or not os.path.isfile(path):
            return None
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Representation(Path(path).read_bytes(), media_type, None)

    def static_files(self) -> Iterator[tuple[str, str]]:
        """The theme's static files, as static_file names them, with the digest of each."""
        folder = self.site.config.static_dir
        for path in sorted(folder.rglob("*")) if folder else []:
            name = path.relative_to(folder).as_posix() if folder else ""
            found = self.static_file(name) if path.is_file() else None
            if found is not None:
                yield name, found.etag

    def feed_stylesheet(self) -> Representation:
        return Representation(self.render("feed.xsl").encode(), XSL, None)

    def not_found(self) -> str:
        return self.render("not_found.html")

    def render(self, template: str, **context: object) -> str:
        return self.templates.get_template(template).render(**context)

    def _html(self, template: str, last_modified: datetime | None, **context: object) -> Representation:
        body = self.render(template, **context).encode()
        return Representation(body, HTML, last_modified, policy=self.site.config.content_security_policy)


def _loader(config: Config) -> BaseLoader:
    """The bundled templates, each replaced by the theme's of the same name; the bundled ones also
    under feedhub/, for a theme's template to extend (`{% extends "feedhub/base.html" %}`)."""
    bundled = PackageLoader("feedhub")
    loaders: list[BaseLoader] = [PrefixLoader({"feedhub": bundled})]
    if config.templates_dir:
        loaders.insert(0, FileSystemLoader(config.templates_dir))
    return ChoiceLoader([*loaders, bundled])
