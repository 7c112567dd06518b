"""The Flask app: feeds, pages, OPML and health, with HTTP caching done properly.

Every cacheable response is built once per version of what it shows, kept with a
strong ETag computed from its bytes (never from the build time) and its gzip
bytes, and answered with 304 when the client already has it.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Hashable, Iterator
from enum import Enum

from flask import Flask, Response, abort, redirect, request
from prometheus_client.core import GaugeMetricFamily, Metric
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response as BaseResponse

from feedhub import __version__
from feedhub.aggregator.status import StatusBoard, StatusReport
from feedhub.cache import Representation, ResponseCache
from feedhub.config import Config, StatusAccess
from feedhub.errors import StorageError
from feedhub.feeds import FEED_FORMATS
from feedhub.index.read import IndexReader
from feedhub.index.schema import IndexSettings
from feedhub.index.search import SearchOrder
from feedhub.index.write import IndexWriter
from feedhub.limits import MAX_PUSH_BYTES
from feedhub.metrics import CONTENT_TYPE as METRICS_TYPE
from feedhub.metrics import Scrape, feed_build, gauge
from feedhub.pages import HTML, Pages
from feedhub.redact import public_text
from feedhub.responses import ROUTE_KEY, UNROUTED, FastPath, respond
from feedhub.site import Site
from feedhub.storage import open_storage
from feedhub.urls import page_number
from feedhub.watch import Watcher
from feedhub.websub.callback import CALLBACK_PREFIX, verify
from feedhub.websub.callback import receive as receive_push
from feedhub.websub.intake import Answer, receive
from feedhub.websub.push_store import PushStore
from feedhub.websub.store import HubStore
from feedhub.websub.topics import HUB_PATH

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    initial_sync_wait: float = 10.0,
    parent_sync: str | None = None,
) -> Flask:
    """The WSGI app for one config.

    The posts folder is watched from a thread of each serving process. The app waits
    up to ``initial_sync_wait`` seconds for the first sync, so a normal start never
    serves a half-read folder, while a cold start over a huge folder cannot hold a
    worker's boot past its server's timeout: until that sync ends, answers carry
    ``Cache-Control: no-cache`` (the index may be behind the folder) and /healthz says
    "syncing". ``parent_sync`` is the full sync `feedhub serve` made before it started
    this worker, which saves the worker its own.
    """
    backend = open_storage(config).index
    writer = IndexWriter(backend, IndexSettings.from_config(config), clock)
    status_board = StatusBoard(config, clock)
    site = Site(config, IndexReader(backend, config.timezone), status_board.category_look)
    watcher = Watcher(writer, config.posts_dir, parent_sync=parent_sync)
    watcher.start()
    watcher.ready.wait(initial_sync_wait)

    def max_age() -> int | None:
        """How long answers may be cached: not at all while the index may be behind the folder."""
        return config.cache_max_age if watcher.ready.is_set() else None

    app = Flask(__name__, static_folder=None)  # /static/ is the theme's (static_dir)
    # Under another server than feedhub's own worker too: no request body (pushed content is the
    # largest) is read past this.
    app.config["MAX_CONTENT_LENGTH"] = MAX_PUSH_BYTES
    app.extensions["feedhub"] = {"watcher": watcher}
    pages = Pages(site)
    cache = ResponseCache()
    config_folder = config.path.resolve().parent
    fast = FastPath(app.wsgi_app, cache, site.version, max_age)
    app.wsgi_app = fast  # type: ignore[method-assign]

    @app.before_request
    def keep_watching() -> None:
        # After a fork (gunicorn --preload) the watching thread is gone; start it again here.
        watcher.start()
        request.environ[ROUTE_KEY] = request.endpoint or UNROUTED

    def cached(
        key: Hashable, slug: str | None, build: Callable[[], Representation | None]
    ) -> Response | None:
        """The document built for this version of `slug`'s posts (None: the site's), conditionally."""
        representation = cache.get_or_build(key, site.version(slug), build)
        if representation is None:
            return None
        fast.remember(request.environ, key, slug)  # next time, FastPath answers this URL
        return _conditional(representation, max_age())

    def send(key: Hashable, slug: str | None, build: Callable[[], Representation | None]) -> Response:
        return cached(key, slug, build) or abort(404)

    @app.get("/feed.<any(atom, rss, json, xml):fmt>")
    def site_feed(fmt: str) -> Response:
        return feed(None, "atom" if fmt == "xml" else fmt)

    @app.get("/feeds/<path:slug>.<any(atom, rss, json):fmt>")
    def category_feed(slug: str, fmt: str) -> Response:
        return feed(slug, fmt)

    def feed(slug: str | None, fmt: str) -> Response:
        page = _page_number()

        def build() -> Representation | None:
            with feed_build(fmt):
                return pages.feed(slug, fmt, page)

        return send(("feed", slug, fmt, page), slug, build)

    @app.get("/")
    def home() -> Response:
        return send(("home",), None, pages.home)

    def icon() -> Response:
        return send(("icon",), None, pages.icon)

    @app.get("/favicon.ico")
    def favicon() -> BaseResponse:
        return redirect(config.icon.url) if config.icon.url else icon()

    if config.icon.path:  # served under its own name too, the one pages and feeds link to
        app.add_url_rule(f"/icon{config.icon.path.suffix.lower()}", "icon", icon)

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Response:
        return send(("static", name), None, lambda: pages.static_file(name))

    @app.get("/feed.xsl")
    def feed_stylesheet() -> Response:
        return send(("feed_stylesheet",), None, pages.feed_stylesheet)

    @app.get("/latest.html")
    def latest() -> Response:
        page = _page_number()
        return send(("latest", page), None, lambda: pages.latest(page))

    @app.get("/search")
    def search() -> Response:
        # Not kept in the response cache: queries are as many as readers make up.
        if not config.search:
            abort(404)
        text = request.args.get("q", "")
        try:
            order = SearchOrder(request.args.get("sort", SearchOrder.NEWEST.value))
        except ValueError:
            abort(400, f"sort must be one of {', '.join(order.value for order in SearchOrder)}")
        representation = pages.search(text, order, _page_number())
        return _conditional(representation, max_age()) if representation else abort(404)

    @app.get("/categories.html")
    def directory() -> Response:
        return send(("directory",), None, pages.directory)

    @app.get("/category/<path:slug>.html")
    def category_page(slug: str) -> Response:
        page = _page_number()
        return send(("category", slug, page), slug, lambda: pages.category(slug, page))

    @app.get("/opml")
    def opml() -> Response:
        fmt = request.args.get("format", "atom")
        if fmt not in FEED_FORMATS:
            abort(400, f"format must be one of {', '.join(FEED_FORMATS)}")
        return send(("opml", fmt), None, lambda: pages.opml(fmt))

    @app.get("/healthz")
    def healthz() -> Response:
        try:
            skipped, warnings = site.problems()
            counts = site.counts()
            aggregation = status_board.health()
        except StorageError as exc:
            # What is cached is still served; everything else waits for the database.
            problem = public_text(str(exc), config_folder)
            return _uncached_json(
                {"status": HealthState.UNHEALTHY.value, "database": problem, "version": __version__}, 503
            )
        state = HealthState.OK
        error = watcher.last_error or site.changes_problem()
        if error:
            state = HealthState.DEGRADED
        if aggregation.problem:
            state = HealthState.UNHEALTHY
        health = {
            "status": state.value,
            "error": public_text(error, config_folder) if error else None,
            "version": __version__,
            "index": "ready" if watcher.ready.is_set() else "syncing",
            **counts,
            "scheduler": aggregation.as_json(),
            "skipped": [{"file": p.path, "reason": p.reason} for p in skipped],
            "warnings": [{"file": p.path, "warning": p.reason} for p in warnings],
        }
        return _uncached_json(health, 503 if state is HealthState.UNHEALTHY else 200)

    def status_detail() -> bool:
        """Whether this request may see full detail (else the redacted form); 404 or 401 when none."""
        if config.status is StatusAccess.OFF:
            abort(404)
        if config.status is StatusAccess.PUBLIC:
            return False
        if not _bearer_matches(request.headers.get("Authorization", ""), config.status_token or ""):
            abort(
                Response(
                    "a bearer token is needed (Authorization: Bearer <token>)\n",
                    401,
                    {"WWW-Authenticate": 'Bearer realm="feedhub status"', "Cache-Control": "no-store"},
                )
            )
        return True

    def status_report() -> tuple[StatusReport, bool]:
        """The report this request may see, and whether in full detail."""
        detail = status_detail()
        report = status_board.report()
        return (report if detail else report.public(config_folder)), detail

    @app.get("/status.json")
    def status_json() -> Response:
        report, detail = status_report()
        return _uncached_json(report.as_json(detail))

    @app.get("/status")
    def status_page() -> Response:
        report, detail = status_report()
        by_source = request.args.get("sort") == "source"
        sources = sorted(report.sources, key=lambda s: s.id) if by_source else report.by_health()
        page = pages.render("status.html", report=report, sources=sources, by_source=by_source, detail=detail)
        return Response(page, content_type=HTML, headers={"Cache-Control": "no-store"})

    def now() -> Iterator[Metric]:
        """What is true at the moment of a scrape."""
        counts = site.counts()
        yield gauge("feedhub_posts", "Published posts", counts["posts"])
        yield gauge("feedhub_categories", "Categories with published posts", counts["categories"])
        yield gauge(
            "feedhub_scheduled_posts", "Posts dated in the future, not yet published", counts["scheduled"]
        )
        yield gauge("feedhub_skipped_posts", "Post files that cannot be published", len(site.problems()[0]))
        report = status_board.report()
        running = report.scheduler_pid is not None
        yield gauge("feedhub_scheduler_up", "1 when a scheduler holds the data folder", running)
        errors = GaugeMetricFamily(
            "feedhub_source_consecutive_errors", "Polls failed in a row, by source", labels=["source"]
        )
        for source in report.sources:
            errors.add_metric([source.id], source.consecutive_errors)
        yield errors

    scrape = Scrape(config.data_dir, now)

    @app.get("/metrics")
    def metrics() -> Response:
        status_detail()  # the same access as /status: public, token or off
        return Response(scrape.document(), content_type=METRICS_TYPE, headers={"Cache-Control": "no-store"})

    @app.get("/<path:permalink>")
    def post(permalink: str) -> BaseResponse:
        path = "/" + permalink
        response = cached(("post", path), None, lambda: pages.post(path))
        if response is not None:
            return response
        # Links written for the Jekyll site (`../emnews/`) point at /<category>/.
        name = permalink.removesuffix("/")
        slug = site.find_category(name) if permalink.endswith("/") and "/" not in name else None
        if slug is None:
            abort(404)
        return redirect(site.urls.category_page(slug), 301)

    hub_store = HubStore(open_storage(config).state) if config.websub.builtin_hub else None

    @app.post(HUB_PATH)
    def websub_hub() -> Response:
        """Subscription requests (the Recommendation's 5.1): checked, stored, verified later."""
        if hub_store is None:
            abort(404)
        if request.mimetype != "application/x-www-form-urlencoded":
            answer = Answer(415, "send the hub.* parameters as application/x-www-form-urlencoded")
        else:
            answer = receive(request.form.to_dict(flat=True), site, hub_store, clock())
        return _plain(Answer(answer.status, answer.text + "\n"))

    pushes = PushStore(open_storage(config).state)

    @app.get(CALLBACK_PREFIX + "<callback_id>")
    def websub_verification(callback_id: str) -> Response:
        """An upstream hub verifies a subscription feedhub asked for (the challenge is echoed)."""
        return _plain(verify(callback_id, request.args.to_dict(flat=True), pushes, clock()))

    @app.post(CALLBACK_PREFIX + "<callback_id>")
    def websub_content(callback_id: str) -> Response:
        """An upstream hub pushes new content: kept when signed with the subscription's secret."""
        if (request.content_length or 0) > MAX_PUSH_BYTES:
            return _plain(Answer(413, f"larger than the {MAX_PUSH_BYTES:,}-byte limit"))
        body = request.get_data(cache=False)
        signature = request.headers.get("X-Hub-Signature")
        return _plain(receive_push(callback_id, signature, request.content_type, body, pushes, clock()))

    @app.errorhandler(StorageError)
    def database_away(exc: StorageError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return Response(
            "the database is not available; try again shortly\n",
            503,
            {"Retry-After": "5", "Cache-Control": "no-store", "Content-Type": "text/plain; charset=utf-8"},
        )

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return pages.not_found(), 404

    return app


def _plain(answer: Answer) -> Response:
    """A short text answer, exactly as given (a challenge must come back byte for byte)."""
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(answer.text, answer.status, headers)


def _uncached_json(document: object, status: int = 200) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=1)
    return Response(body, status, content_type="application/json", headers={"Cache-Control": "no-store"})


class HealthState(Enum):
    OK = "ok"
    DEGRADED = "degraded"  # serving, but the posts folder cannot be read: what is published stays
    UNHEALTHY = "unhealthy"  # 503: aggregation has stopped


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _page_number() -> int:
    number = page_number(request.args.get("page", "1"))
    if number is None:
        abort(400, "page must be a positive whole number")
    return number


def _conditional(representation: Representation, max_age: int | None) -> Response:
    """200 with the (gzipped, when accepted) body, or 304 when the client's copy is current."""
    return _Exact(*respond(representation, request.environ, max_age))


class _Exact(Response):
    """Sent as ``respond`` built it, byte for byte what FastPath sends for the same request.

    werkzeug would otherwise set Content-Length from the empty body of a HEAD and drop
    Last-Modified from a 304, and Flask would give a 304 a Content-Type.
    """

    default_mimetype = None

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__([body], status=status, headers=headers)  # an iterable: no length is computed

    def get_wsgi_headers(self, environ: dict[str, object]) -> Headers:
        return self.headers
