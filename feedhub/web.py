"""The Flask app: feeds, pages, OPML and health, with HTTP caching done properly.

Every cacheable response is built once per version of what it shows, kept with a
strong ETag computed from its bytes (never from the build time) and its gzip
bytes, and answered with 304 when the client already has it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from flask import Flask, Response, abort, redirect, request
from werkzeug.http import http_date, is_resource_modified

from feedhub import __version__
from feedhub.aggregator.status import StatusBoard
from feedhub.cache import Representation, ResponseCache
from feedhub.config import Config
from feedhub.feeds import FEED_FORMATS
from feedhub.index import open_index
from feedhub.pages import HTML, Pages
from feedhub.site import Site
from feedhub.watch import Watcher

# Post content is sanitized already; this is the second line of defence for the pages.
_PAGE_POLICY = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def create_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    initial_sync_wait: float = 10.0,
) -> Flask:
    """The WSGI app for one config.

    The posts folder is watched from a thread of each serving process. The app waits
    up to ``initial_sync_wait`` seconds for the first sync, so a normal start never
    serves a half-read folder, while a cold start over a huge folder cannot hold a
    worker's boot past its server's timeout.
    """
    index = open_index(config, clock)
    site = Site(config, index)
    watcher = Watcher(index, config.posts_dir)
    watcher.start()
    watcher.ready.wait(initial_sync_wait)

    app = Flask(__name__)
    app.extensions["feedhub"] = {"watcher": watcher}
    pages = Pages(site)
    cache = ResponseCache()
    status_board = StatusBoard(config)

    @app.before_request
    def keep_watching() -> None:
        # After a fork (gunicorn --preload) the watching thread is gone; start it again here.
        watcher.start()

    def send(key: tuple, version: int, build: Callable[[], Representation | None]) -> Response:
        representation = cache.get_or_build(key, version, build)
        if representation is None:
            abort(404)
        return _conditional(representation, config.cache_max_age)

    @app.get("/feed.<any(atom, rss, json, xml):fmt>")
    def site_feed(fmt: str) -> Response:
        return feed(None, "atom" if fmt == "xml" else fmt)

    @app.get("/feeds/<path:slug>.<any(atom, rss, json):fmt>")
    def category_feed(slug: str, fmt: str) -> Response:
        return feed(slug, fmt)

    def feed(slug: str | None, fmt: str) -> Response:
        page = _page_number()
        return send(("feed", slug, fmt, page), site.version(slug), lambda: pages.feed(slug, fmt, page))

    @app.get("/")
    def home() -> Response:
        return send(("home",), site.version(None), pages.home)

    @app.get("/category/<path:slug>.html")
    def category_page(slug: str) -> Response:
        page = _page_number()
        return send(("category", slug, page), site.version(slug), lambda: pages.category(slug, page))

    @app.get("/opml")
    def opml() -> Response:
        fmt = request.args.get("format", "atom")
        if fmt not in FEED_FORMATS:
            abort(400, f"format must be one of {', '.join(FEED_FORMATS)}")
        return send(("opml", fmt), site.version(None), lambda: pages.opml(fmt))

    @app.get("/healthz")
    def healthz() -> Response:
        skipped, warnings = site.index.problems()
        health = {
            "status": "degraded" if watcher.last_error else "ok",
            "error": watcher.last_error,
            "version": __version__,
            "index": "ready" if watcher.ready.is_set() else "syncing",
            **site.index.counts(),
            "skipped": [{"file": p.path, "reason": p.reason} for p in skipped],
            "warnings": [{"file": p.path, "warning": p.reason} for p in warnings],
        }
        return _uncached_json(health)

    @app.get("/status.json")
    def status_json() -> Response:
        return _uncached_json(status_board.report().as_json())

    @app.get("/status")
    def status_page() -> Response:
        page = pages.render("status.html", report=status_board.report())
        return Response(page, content_type=HTML, headers={"Cache-Control": "no-store"})

    @app.get("/<path:permalink>")
    def post(permalink: str) -> Response:
        path = "/" + permalink
        representation = cache.get_or_build(("post", path), site.version(None), lambda: pages.post(path))
        if representation is not None:
            return _conditional(representation, config.cache_max_age)
        # Links written for the Jekyll site (`../emnews/`) point at /<category>/.
        name = permalink.removesuffix("/")
        slug = site.find_category(name) if permalink.endswith("/") and "/" not in name else None
        if slug is None:
            abort(404)
        return redirect(site.urls.category_page(slug), 301)

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return pages.not_found(), 404

    return app


def _uncached_json(document: object) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=1)
    return Response(body, content_type="application/json", headers={"Cache-Control": "no-store"})


def _page_number() -> int:
    value = request.args.get("page", "1")
    if not value.isdigit():
        abort(400, "page must be a positive whole number")
    return int(value)


def _conditional(representation: Representation, max_age: int) -> Response:
    """200 with the (gzipped, when accepted) body, or 304 when the client's copy is current."""
    gzipped = request.accept_encodings["gzip"] > 0
    etag = representation.gzip_etag if gzipped else representation.etag
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if representation.content_type == HTML:
        headers["Content-Security-Policy"] = _PAGE_POLICY
    if representation.last_modified is not None:
        headers["Last-Modified"] = http_date(representation.last_modified)
    if not is_resource_modified(request.environ, etag=etag, last_modified=representation.last_modified):
        return Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = representation.gzipped() if gzipped else representation.body
    return Response(body, content_type=representation.content_type, headers=headers)
