"""GET /metrics under `feedhub serve`: every worker and the scheduler added up."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from feedhub.aggregator.lock import holder_pid
from tests.helpers import ServeProcess, SiteFolder, wait_for
from tests.upstream import Upstream, item, rss


def scrape(server: ServeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = server.get("/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def test_metrics_add_up_every_process(site: SiteFolder, upstream: Upstream, tmp_path: Path) -> None:
    upstream.feed("/feed", rss(item("News", guid="u1", link="https://up.example/1")))
    site.write_sources({"id": "up", "url": upstream.url("/feed"), "category": "wire"})
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 09:00:00", categories="news")
    server = ServeProcess(site.write_config(), tmp_path / "serve.log", "--workers", "2")
    try:
        assert wait_for(lambda: server.get("/feeds/wire.atom").body.count(b"<entry") == 1, timeout=30)
        for _ in range(40):  # new connections each: both workers answer, Flask first, then the fast path
            assert server.get("/feeds/news.atom").status == 200
        assert server.get("/no/such/page").status == 404
        metrics = scrape(server)

        def value(name: str, **labels: str) -> float:
            return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

        assert value("feedhub_http_requests_total", route="category_feed", status="200") >= 41
        assert value("feedhub_http_requests_total", route="post", status="404") == 1  # a route, not a URL
        assert value("feedhub_http_request_duration_seconds_count", route="category_feed") >= 41
        assert value("feedhub_feed_build_duration_seconds_count", format="atom") >= 2  # news, wire
        assert value("feedhub_polls_total", source="up", result="new") == 1
        assert value("feedhub_entries_merged_total", source="up") == 1
        assert value("feedhub_posts") == 2 and value("feedhub_categories") == 2
        assert value("feedhub_skipped_posts") == 0
        assert value("feedhub_scheduler_up") == 1
        assert value("feedhub_source_consecutive_errors", source="up") == 0

        # the scheduler's counters outlive it: a restarted scheduler adds to them
        scheduler = holder_pid(site.root / "data")
        assert scheduler
        os.kill(scheduler, signal.SIGKILL)
        assert wait_for(lambda: holder_pid(site.root / "data") not in (None, scheduler), timeout=30)
        assert scrape(server)[("feedhub_polls_total", (("result", "new"), ("source", "up")))] == 1
    finally:
        assert server.stop() == 0
    runs = list((site.root / "data" / "metrics").iterdir())
    second = ServeProcess(site.write_config(), tmp_path / "serve2.log", "--workers", "1")
    try:
        # a new run starts from zero; the folder of the one before is gone
        assert not any(run.exists() for run in runs)
        counts = scrape(second)
        assert (
            counts.get(("feedhub_http_requests_total", (("route", "category_feed"), ("status", "200"))))
            is None
        )
    finally:
        assert second.stop() == 0
