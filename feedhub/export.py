"""`feedhub build OUTDIR`: every feed, page of feed and HTML page as files, with .gz siblings.

nginx (with the snippet written beside them) or a CDN then serves the site at static
speed. The files are the very bytes the server sends. A second run rebuilds only what
changed: each file is recorded with a key of what it was built from (a feed's version
in the index, a post's content digest), and is written only when its bytes differ.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from feedhub import __version__
from feedhub.aggregator.status import StatusBoard
from feedhub.cache import Representation
from feedhub.config import Config, load_config
from feedhub.feeds import FEED_FORMATS
from feedhub.pages import HTML, Pages
from feedhub.posts import link_atomically, remove_temporaries, write_atomically
from feedhub.processes import process_pool
from feedhub.site import LISTING_PAGE_SIZE, Site, open_site

log = logging.getLogger(__name__)

STATE_FOLDER = ".feedhub"  # in OUTDIR; the nginx snippet denies hidden paths
MANIFEST = "manifest.json"
NGINX_SNIPPET = "nginx.conf"
# What the export makes is for nginx or a CDN to read: 0644, whatever a file it replaces had (as
# Jekyll's _site; asking each of a 100k export's 240,000 files for its mode was 3 % of the build).
EXPORTED_MODE = 0o644


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


# A document of the site, by what builds it: ("feed", slug, format, page), ("category", slug, page),
# ("post", permalink), ("home",), ("directory",), ("latest", page), ("opml", format), ("feed_stylesheet",),
# ("icon",), ("static", name), ("not_found",).
Document = tuple[str | int | None, ...]


@dataclass(frozen=True)
class _Planned:
    """A file to export: where, the key of what it is built from, and which document it is.
    `also`: more paths with the same bytes (jekyll-feed's feed.xml beside feed.atom)."""

    path: str
    key: str
    document: Document
    also: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.also)


# What a worker reports of one file it built: (path, digest, written); digest None: no such document.
_Built = tuple[_Planned, str | None, bool]

# Files sent to a process at a time: enough to outweigh the round trip, few enough to share evenly.
_CHUNK = 64
# Below this many files to build, starting processes costs more than it saves.
_POOL_FROM = 256


class Exporter:
    def __init__(self, site: Site, out: Path, processes: int = 0) -> None:
        self.site = site
        self.pages = Pages(site)
        self.out = out
        self.processes = processes
        self._root = os.path.abspath(out)
        self.state = out / STATE_FOLDER
        self.report = ExportReport()
        self._old: dict[str, dict[str, str]] = {}
        self._new: dict[str, dict[str, str]] = {}
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
        self.state.mkdir(parents=True, exist_ok=True)
        present = self._present()
        manifest = self.state / MANIFEST
        if manifest.exists():
            self._old = json.loads(manifest.read_text("utf-8"))
        todo: list[tuple[_Planned, str | None]] = []
        for planned in self._plan():
            if self._unchanged(planned, present):
                advance(len(planned.paths))
            else:
                old = self._old.get(planned.path)
                todo.append((planned, old["digest"] if old else None))
        for built in self._build(todo):
            for planned, digest, written in built:
                self._record(planned, digest, written)
                advance(len(planned.paths))
        self._remove_stale()
        write_atomically(manifest, json.dumps(self._new, ensure_ascii=False, sort_keys=True))
        write_atomically(self.state / NGINX_SNIPPET, nginx_snippet(self.site, self.out.resolve()))
        return self.report

    # ---- what there is to export ------------------------------------------------------

    def _plan(self) -> Iterator[_Planned]:
        instance = f"{self.build_key}:{self.site.instance()}"
        yield from self._site_files(f"{instance}:{self.site.version(None)}")
        for category in self.site.categories():
            yield from self._category_files(category.slug, f"{instance}:{self.site.version(category.slug)}")
        title_of = functools.cache(self.site.title_of)  # a query each, and posts share categories
        for post in self.site.published_posts():
            shown = "|".join(title_of(slug) for slug in post.categories)
            newer, older = post.neighbours
            key = f"{self.build_key}:{post.digest}:{shown}:{newer}:{older}"
            yield _Planned(permalink_file(post.permalink), key, ("post", post.permalink))

    def _site_files(self, key: str) -> Iterator[_Planned]:
        yield from self._feed_files(None, key)
        yield _Planned("index.html", key, ("home",))
        yield _Planned("categories.html", key, ("directory",))
        for page in range(1, self.site.page_count(None, LISTING_PAGE_SIZE) + 1):
            yield _Planned(paged_file("latest.html", page), key, ("latest", page))
        for fmt in FEED_FORMATS:
            yield _Planned(f"opml.{fmt}.opml", key, ("opml", fmt))
        yield _Planned("404.html", key, ("not_found",))
        yield _Planned("feed.xsl", key, ("feed_stylesheet",))
        for name, digest in self.pages.static_files():
            yield _Planned(f"static/{name}", f"{key}:{digest}", ("static", name))
        icon, served = self.site.config.icon.path, self.pages.icon()
        if icon and served:  # under the name pages link to, and where browsers look unasked
            icon_key = f"{key}:{served.etag}"
            yield _Planned(f"icon{icon.suffix.lower()}", icon_key, ("icon",))
            yield _Planned("favicon.ico", icon_key, ("icon",))

    def _category_files(self, slug: str, key: str) -> Iterator[_Planned]:
        yield from self._feed_files(slug, key)
        for page in range(1, self.site.page_count(slug, LISTING_PAGE_SIZE) + 1):
            yield _Planned(paged_file(f"category/{slug}.html", page), key, ("category", slug, page))

    def _feed_files(self, slug: str | None, key: str) -> Iterator[_Planned]:
        pages = self.site.page_count(slug, self.site.config.feed_entries)
        for page in range(1, pages + 1):  # a page in each format in turn: its posts are read once
            for fmt in FEED_FORMATS:
                path = paged_file(f"feed.{fmt}" if slug is None else f"feeds/{slug}.{fmt}", page)
                # jekyll-feed's URL for the site's Atom feed: the same bytes
                also = (paged_file("feed.xml", page),) if slug is None and fmt == "atom" else ()
                yield _Planned(path, key, ("feed", slug, fmt, page), also)

    def _present(self) -> set[str]:
        """The files OUTDIR holds (relative paths), found in the walk that also removes what an
        export killed part-way left: one listing of each folder, not a stat of every file."""
        present: set[str] = set()
        root = str(self.out)
        for folder, _, names in os.walk(root):  # strings, not Paths: a 100k export has 50,000 folders
            remove_temporaries(folder, names)
            relative = folder[len(root) :].strip("/")
            prefix = f"{relative}/" if relative else ""
            present.update(prefix + name for name in names)
        return present

    def _unchanged(self, planned: _Planned, present: set[str]) -> bool:
        """Whether the files (and their .gz) are there, built from what they would be built from now."""
        for path in planned.paths:
            old = self._old.get(path)
            if not old or old["key"] != planned.key or path not in present or f"{path}.gz" not in present:
                return False
        for path in planned.paths:
            self._new[path] = self._old[path]
        self.report.unchanged += len(planned.paths)
        return True

    # ---- building ---------------------------------------------------------------------

    def _build(self, todo: list[tuple[_Planned, str | None]]) -> Iterator[list[_Built]]:
        """Build and write the files, in processes of their own when there are cores and files
        enough: each builds from its own view of the site, as this one would."""
        inside = [each for each in todo if self._inside(each[0])]
        chunks = [inside[start : start + _CHUNK] for start in range(0, len(inside), _CHUNK)]
        folders: set[Path] = set()
        if self.processes < 2 or len(inside) < _POOL_FROM:
            for chunk in chunks:
                yield _export_chunk(self.pages, self.out, chunk, folders)
            return
        left = dict(enumerate(chunks))
        try:
            with process_pool(
                self.processes, __name__, initializer=_open_site, initargs=(self.site.config.path,)
            ) as pool:
                futures = {
                    pool.submit(_export_in_worker, self.out, chunk): number for number, chunk in left.items()
                }
                for future in as_completed(futures):
                    built = future.result()
                    del left[futures[future]]
                    yield built
        except BrokenProcessPool:  # killed, or unable to start here: this process builds the rest
            log.warning("%s: the exporting processes died; building the rest in this one", self.out)
            for chunk in left.values():
                yield _export_chunk(self.pages, self.out, chunk, folders)

    def _inside(self, planned: _Planned) -> bool:
        for path in planned.paths:
            if not os.path.normpath(os.path.join(self._root, path)).startswith(self._root + os.sep):
                log.warning("%s: not exported: the path leads out of %s", path, self.out)  # a slug with ".."
                return False
        return True

    def _record(self, planned: _Planned, digest: str | None, written: bool) -> None:
        if digest is None:
            return
        if written:
            self.report.written += len(planned.paths)
        else:  # rebuilt, but the same bytes: the files (and their mtimes) left alone
            self.report.unchanged += len(planned.paths)
        for path in planned.paths:
            self._new[path] = {"key": planned.key, "digest": digest}

    def _remove_stale(self) -> None:
        for path in set(self._old) - set(self._new):
            for stale in (self.out / path, self.out / f"{path}.gz"):
                stale.unlink(missing_ok=True)
            self.report.removed += 1


def _export_chunk(
    pages: Pages, out: Path, chunk: list[tuple[_Planned, str | None]], folders: set[Path]
) -> list[_Built]:
    """Build each file and write it (and its .gz) unless its bytes are the ones already there;
    `folders`: the ones this process made (or found) already."""
    built: list[_Built] = []
    for planned, old_digest in chunk:
        representation = _document(pages, planned.document)
        if representation is None:
            built.append((planned, None, False))
            continue
        digest = representation.etag.strip('"')
        targets = [out / path for path in planned.paths]
        if digest == old_digest and all(_with_gzip_exists(target) for target in targets):
            built.append((planned, digest, False))
            continue
        for target in targets:
            if target.parent not in folders:
                target.parent.mkdir(parents=True, exist_ok=True)
                folders.add(target.parent)
        first, *others = targets
        write_atomically(first, representation.body, fsync=False, mode=EXPORTED_MODE)
        write_atomically(_gzip_of(first), representation.gzipped(), fsync=False, mode=EXPORTED_MODE)
        for other in others:  # the same bytes under another name (feed.xml): a link, not a copy
            _link_or_write(first, other, representation.body)
            _link_or_write(_gzip_of(first), _gzip_of(other), representation.gzipped())
        built.append((planned, digest, True))
    return built


def _gzip_of(target: Path) -> Path:
    return target.with_name(target.name + ".gz")


def _link_or_write(source: Path, path: Path, data: bytes) -> None:
    try:
        link_atomically(source, path)
    except OSError:  # a file system without hard links (or across devices): a copy, then
        write_atomically(path, data, fsync=False, mode=EXPORTED_MODE)


def _with_gzip_exists(target: Path) -> bool:
    return target.exists() and _gzip_of(target).exists()


def _document(pages: Pages, document: Document) -> Representation | None:
    match document:
        case ("feed", slug, str(fmt), int(page)):
            return pages.feed(slug if isinstance(slug, str) else None, fmt, page)
        case ("category", str(slug), int(page)):
            return pages.category(slug, page)
        case ("post", str(permalink)):
            return pages.post(permalink)
        case ("home",):
            return pages.home()
        case ("directory",):
            return pages.directory()
        case ("latest", int(page)):
            return pages.latest(page)
        case ("opml", str(fmt)):
            return pages.opml(fmt)
        case ("feed_stylesheet",):
            return pages.feed_stylesheet()
        case ("icon",):
            return pages.icon()
        case ("static", str(name)):
            return pages.static_file(name)
        case ("not_found",):
            return Representation(pages.not_found().encode(), HTML, None)
    raise ValueError(f"no such document: {document!r}")


_worker_pages: Pages | None = None
_worker_folders: set[Path] = set()


def open_exported_site(config: Config) -> Site:
    """The site as `feedhub serve` shows it, the looks of aggregated categories included."""
    site = open_site(config)
    return Site(config, site.index, StatusBoard(config).category_look)


def _open_site(config_path: Path) -> None:
    global _worker_pages
    _worker_pages = Pages(open_exported_site(load_config(config_path)))


def _export_in_worker(out: Path, chunk: list[tuple[_Planned, str | None]]) -> list[_Built]:
    assert _worker_pages is not None, "the process was started without _open_site"
    return _export_chunk(_worker_pages, out, chunk, _worker_folders)


AS_XML = "/__feedhub_as_xml"  # the internal location that serves feeds to browsers as XML


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
    feed_headers = headers.replace("Vary Accept-Encoding", 'Vary "Accept-Encoding, Accept"')
    hubs = "".join(f'<{hub}>; rel="hub", ' for hub in site.info.hubs)
    base = site.urls.base_url
    # the path as the client sent it (still percent-encoded, unlike $uri) of a feed's first page
    feed_path = r"^(?<feedhub_path>/feed\.(?:atom|rss|json)|/feeds/[^?]+\.(?:atom|rss|json))(?:\?|$)"
    return f"""# Serve a `feedhub build` export; include this inside a server {{ }} block.
root {root};
index index.html;
gzip_static on;
charset utf-8;
charset_types application/atom+xml application/rss+xml text/xsl;  # and text/html, always
types {{
    text/html html;
    application/atom+xml atom xml;
    application/rss+xml rss;
    application/feed+json json;
    text/xsl xsl;
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
    # A browser opening a feed (its Accept names text/html) gets it as application/xml, which
    # Chromium shows by the feed's stylesheet (Atom and RSS types it shows as plain text).
    set $feedhub_page "";
    if ($arg_page ~ "^([2-9]|[1-9][0-9]+)$") {{
        set $feedhub_page ".page$arg_page";
    }}
    set $feedhub_shown "$http_accept|$uri";
    if ($feedhub_shown ~* "text/html[^|]*\\|(?<feedhub_stem>.+)\\.(?<feedhub_ext>atom|rss|xml)$") {{
        rewrite ^ {AS_XML}$feedhub_stem$feedhub_page.$feedhub_ext last;
    }}
    if ($arg_page ~ "^([2-9]|[1-9][0-9]+)$") {{
        rewrite "^(.+)\\.(atom|rss|json|xml|html)$" $1.page$arg_page.$2 break;
    }}
    add_header Link $feedhub_link always;
    {feed_headers}
}}
location ^~ {AS_XML}/ {{
    internal;
    alias {root}/;
    types {{ }}
    default_type application/xml;
    charset_types application/xml;
    {feed_headers}
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
