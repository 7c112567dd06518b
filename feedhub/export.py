"""`feedhub build OUTDIR`: every feed, page of feed and HTML page as files, with .gz siblings.

nginx (with the snippet written beside them) or a CDN then serves the site at static
speed. The files are the very bytes the server sends. A second run rebuilds only what
changed: each file is recorded with a key of what it was built from (a feed's version
in the index, a post's content digest), and is written only when its bytes differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from feedhub import __version__
from feedhub.cache import Representation
from feedhub.feeds import FEED_FORMATS
from feedhub.pages import HTML, Pages
from feedhub.posts import remove_temporaries, write_atomically
from feedhub.site import LISTING_PAGE_SIZE, Site

log = logging.getLogger(__name__)

STATE_FOLDER = ".feedhub"  # in OUTDIR; the nginx snippet denies hidden paths
MANIFEST = "manifest.json"
NGINX_SNIPPET = "nginx.conf"


@dataclass
class ExportReport:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


def paged_file(path: str, page: int) -> str:
    """``feeds/emnews.atom`` is page 1; page 2 is ``feeds/emnews.page2.atom``."""
    if page == 1:
        return path
    stem, _, extension = path.rpartition(".")
    return f"{stem}.page{page}.{extension}"


def permalink_file(permalink: str) -> str:
    """Where a post's page lives: ``/a/b.html`` at a/b.html, ``/a/b/`` at a/b/index.html."""
    relative = permalink.lstrip("/")
    return f"{relative}index.html" if not relative or relative.endswith("/") else relative


class Exporter:
    def __init__(self, site: Site, out: Path) -> None:
        self.site = site
        self.pages = Pages(site)
        self.out = out
        self._root = os.path.abspath(out)
        self.state = out / STATE_FOLDER
        self.report = ExportReport()
        self._old: dict[str, dict[str, str]] = {}
        self._new: dict[str, dict[str, str]] = {}
        self._advance: Callable[[int], object] = lambda _done: None
        config = site.config
        settings: list[object] = [
            __version__,
            config.title,
            config.description,
            config.author,
            config.base_url,
        ]
        settings += [
            config.language,
            config.feed_entries,
            config.permalink,
            sorted(config.categories.items()),
        ]
        # Anything a page shows that the index versions do not cover: a new setting rebuilds all.
        self.build_key = hashlib.sha256(json.dumps(settings, ensure_ascii=False).encode()).hexdigest()[:16]

    def run(self, advance: Callable[[int], object] = lambda _done: None) -> ExportReport:
        """Write what changed; ``advance`` is told of each file looked at (for a progress bar)."""
        self._advance = advance
        self.state.mkdir(parents=True, exist_ok=True)
        for folder, _, _ in os.walk(self.out):  # what an export killed part-way left
            remove_temporaries(Path(folder))
        manifest = self.state / MANIFEST
        if manifest.exists():
            self._old = json.loads(manifest.read_text("utf-8"))
        instance = f"{self.build_key}:{self.site.instance()}"
        self._site_files(f"{instance}:{self.site.version(None)}")
        for category in self.site.categories():
            self._category_files(category.slug, f"{instance}:{self.site.version(category.slug)}")
        for post in self.site.published_posts():
            titles = "|".join(self.site.title_of(slug) for slug in post.categories)
            key = f"{self.build_key}:{post.digest}:{titles}"
            self._emit(permalink_file(post.permalink), key, partial(self.pages.post, post.permalink))
        self._remove_stale()
        write_atomically(manifest, json.dumps(self._new, ensure_ascii=False, sort_keys=True))
        write_atomically(self.state / NGINX_SNIPPET, nginx_snippet(self.site, self.out.resolve()))
        return self.report

    def _site_files(self, key: str) -> None:
        self._feed_files(None, key)
        self._emit("index.html", key, self.pages.home)
        for fmt in FEED_FORMATS:
            self._emit(f"opml.{fmt}.opml", key, partial(self.pages.opml, fmt))
        self._emit("404.html", key, lambda: Representation(self.pages.not_found().encode(), HTML, None))

    def _category_files(self, slug: str, key: str) -> None:
        self._feed_files(slug, key)
        for page in range(1, self.site.page_count(slug, LISTING_PAGE_SIZE) + 1):
            self._emit(
                paged_file(f"category/{slug}.html", page), key, partial(self.pages.category, slug, page)
            )

    def _feed_files(self, slug: str | None, key: str) -> None:
        pages = self.site.page_count(slug, self.site.config.feed_entries)
        for fmt in FEED_FORMATS:
            for page in range(1, pages + 1):
                build = partial(self.pages.feed, slug, fmt, page)
                self._emit(
                    paged_file(f"feed.{fmt}" if slug is None else f"feeds/{slug}.{fmt}", page), key, build
                )
                if slug is None and fmt == "atom":
                    self._emit(paged_file("feed.xml", page), key, build)  # jekyll-feed's URL for it

    def _emit(self, path: str, key: str, build: Callable[[], Representation | None]) -> None:
        """Write one file (and its .gz) unless what it is built from is unchanged."""
        self._advance(1)
        old = self._old.get(path)
        target = self.out / path
        if not os.path.normpath(os.path.join(self._root, path)).startswith(self._root + os.sep):
            log.warning("%s: not exported: the path leads out of %s", path, self.out)  # a slug with ".."
            return
        if old and old["key"] == key and target.exists():
            self._new[path] = old
            self.report.unchanged += 1
            return
        representation = build()
        if representation is None:
            return
        digest = representation.etag.strip('"')
        if old and old["digest"] == digest and target.exists():
            self.report.unchanged += 1  # rebuilt, but the same bytes: leave the file (and its mtime) alone
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, representation.body, fsync=False)
            write_atomically(target.with_name(target.name + ".gz"), representation.gzipped(), fsync=False)
            self.report.written += 1
        self._new[path] = {"key": key, "digest": digest}

    def _remove_stale(self) -> None:
        for path in set(self._old) - set(self._new):
            for stale in (self.out / path, self.out / f"{path}.gz"):
                stale.unlink(missing_ok=True)
            self.report.removed += 1


def nginx_snippet(site: Site, root: Path) -> str:
    """nginx directives (for a server block) that serve an export like feedhub serves the site."""
    slugs = sorted({category.slug for category in site.categories()})
    lowered = [slug.lower() for slug in slugs]
    redirects = ""
    for slug in slugs:
        if any(char in slug for char in '"\\/{};$'):
            continue  # cannot be written as an nginx location
        names = {slug} | ({slug.lower()} if lowered.count(slug.lower()) == 1 else set())
        for name in sorted(names):
            redirects += f'location = "/{name}/" {{ return 301 "{site.urls.category_page(slug)}"; }}\n'
    headers = f"""add_header Cache-Control "public, max-age={site.config.cache_max_age}" always;
    add_header Vary Accept-Encoding always;
    add_header X-Content-Type-Options nosniff always;"""
    hubs = "".join(f'<{hub}>; rel="hub", ' for hub in site.info.hubs)
    base = site.urls.base_url
    # the path as the client sent it (still percent-encoded, unlike $uri) of a feed's first page
    feed_path = r"^(?<feedhub_path>/feed\.(?:atom|rss|json)|/feeds/[^?]+\.(?:atom|rss|json))(?:\?|$)"
    return f"""# Serve a `feedhub build` export; include this inside a server {{ }} block.
root {root};
index index.html;
gzip_static on;
charset utf-8;
charset_types application/atom+xml application/rss+xml;  # and text/html, always
types {{
    text/html html;
    application/atom+xml atom xml;
    application/rss+xml rss;
    application/feed+json json;
}}
{headers.replace("    ", "")}
error_page 404 /404.html;

location ~ /\\. {{ deny all; }}

# Feeds say where their WebSub hubs are and what their own URL is (Link), as feedhub serve does;
# ?page=N is a file of its own: feeds/emnews.atom?page=2 is feeds/emnews.page2.atom
# (set, and rewrite...break, are what nginx's `if` does reliably)
location ~ \\.(atom|rss|json|xml|html)$ {{
    set $feedhub_self "";
    set $feedhub_link "";
    if ($request_uri ~ "{feed_path}") {{
        set $feedhub_self "{base}$feedhub_path";
    }}
    if ($request_uri ~ "^/feed\\.xml(?:\\?|$)") {{
        set $feedhub_self "{base}/feed.atom";
    }}
    if ($feedhub_self) {{
        set $feedhub_link '{hubs}<$feedhub_self>; rel="self"';
    }}
    set $feedhub_paged "$feedhub_self|$arg_page";
    if ($feedhub_paged ~ "^.+\\|([2-9]|[1-9][0-9]+)$") {{
        set $feedhub_link '<$feedhub_self?page=$arg_page>; rel="self"';
    }}
    if ($arg_page ~ "^([2-9]|[1-9][0-9]+)$") {{
        rewrite "^(.+)\\.(atom|rss|json|xml|html)$" $1.page$arg_page.$2 break;
    }}
    add_header Link $feedhub_link always;
    {headers}
}}

location = /opml {{
    default_type "text/x-opml; charset=utf-8";
    if ($arg_format ~ "^(rss|json)$") {{
        rewrite ^ /opml.$arg_format.opml break;
    }}
    rewrite ^ /opml.atom.opml break;
}}

# the old site's back-links (/<category>/) lead to the category pages
{redirects}"""
