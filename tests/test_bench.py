"""What the benchmark suite relies on is right (its timings are its own business, not the tests')."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import bench.bare
import bench.main
import bench.measure
from bench.corpus import new_post, write_store
from bench.extraction import f1, page_score
from bench.main import copy_store, ingest_floor_cpu
from bench.measure import timed_run
from bench.upstream import write_feeds
from feedhub.aggregator.entries import identities, parse_feed
from feedhub.aggregator.stories import story_keys
from feedhub.config import load_config
from feedhub.index.model import SyncReport
from feedhub.index.write import open_writer
from feedhub.posts import write_atomically
from feedhub.site import open_site
from tests.helpers import SiteFolder, corpus_posts, open_index


@pytest.fixture(autouse=True)
def corpus() -> None:
    corpus_posts()  # skips, saying why, without ../shared


def test_generated_stores_are_valid_posts(site: SiteFolder) -> None:
    categories = write_store(site.root, 300)
    index = open_index(site.config(posts_dir="_posts"))
    report = index.sync_all()
    assert report.added == 300 and report.skipped == []
    assert categories == 200 and 10 < index.counts()["categories"] <= 200
    new_post(site.root, 1, "cat0001", "基准新文章")
    index.sync_all()
    assert index.entries("cat0001", 0, 1)[0].title == "基准新文章"


def test_generated_upstream_feeds_parse_with_distinct_entries(tmp_path: Path) -> None:
    write_feeds(tmp_path, feeds=3, entries=50)
    stories: set[str] = set()
    for path in sorted(tmp_path.glob("feed*.xml")):
        feed = parse_feed(path.read_bytes(), {}, path.as_uri(), ZoneInfo("Asia/Shanghai"))
        assert len(feed.entries) == 50 and len(set(identities(feed.entries))) == 50
        stories.update(key for entry in feed.entries for key in story_keys(entry))
    assert len(stories) == 3 * 50 * 2  # every entry a story of its own: its link and its text


def test_the_ingest_floor_does_its_every_step_for_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_feeds(tmp_path / "up", 3, 4)
    written: list[str] = []
    synced: list[bool] = []

    def counted(path: Path, data: str | bytes, fsync: bool = True) -> tuple[int, int]:
        written.append(str(data))
        synced.append(fsync)
        return write_atomically(path, data, fsync)

    monkeypatch.setattr(bench.main, "write_atomically", counted)
    cpu, entries = ingest_floor_cpu(sorted((tmp_path / "up").glob("feed*.xml")), tmp_path / "floor")
    assert entries == 12 and len(written) == 12 and cpu > 0
    assert all(text and "<script" not in text for text in written)  # sanitized bodies, not empty ones
    assert not (tmp_path / "floor").exists() and not any(synced)
    ingest_floor_cpu(sorted((tmp_path / "up").glob("feed*.xml")), tmp_path / "floor", fsync=True)
    assert synced[12:] == [True] * 12  # the durable floor: each file on disk before its rename


def test_the_ingest_store_copy_is_taken_as_indexed(site: SiteFolder, tmp_path: Path) -> None:
    # The ingest's timed cycle runs in a copy of a big store: a copy whose index did not match
    # would be read and indexed again inside the timing (20 s of the 100k cycle once).
    write_store(site.root, 300)
    original = open_writer(site.config(posts_dir="_posts"))
    assert original.sync_all().added == 300
    target = tmp_path / "copy"
    target.mkdir()
    copy_store(site.root, target)
    copied = open_writer(load_config(target / "feedhub.yaml"))
    assert copied.sync_all() == SyncReport()
    with copied.backend.reading() as conn, original.backend.reading() as first:
        instance = "SELECT value FROM meta WHERE key='instance'"
        assert conn.execute(instance).fetchone()["value"] == first.execute(instance).fetchone()["value"]


CHILD_LEFT_BEHIND = """
import os, sys, time
if os.fork() == 0:  # a child that outlives its parent, as a parsing pool's forkserver does
    block = bytearray(120 * 1024 * 1024)
    for index in range(0, len(block), 4096):
        block[index] = 1
    end = time.process_time() + 0.6
    while time.process_time() < end:
        pass
    os._exit(0)
sys.exit(0)
"""


def test_a_timed_run_counts_the_processes_its_command_leaves_behind(tmp_path: Path) -> None:
    result = timed_run([sys.executable, "-c", CHILD_LEFT_BEHIND], tmp_path / "run.log")
    assert result is not None
    _wall, cpu, megabytes = result
    assert cpu >= 0.5  # the orphan's CPU, which GNU time did not see
    assert megabytes >= 100  # its memory too


def test_a_timed_step_begins_once_earlier_writes_are_written_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = tmp_path / "ran"
    synced: list[bool] = []  # for each sync: whether it came before the step ran
    monkeypatch.setattr(bench.measure.os, "sync", lambda: synced.append(not ran.exists()))
    timed_run([sys.executable, "-c", f"open({str(ran)!r}, 'w')"], tmp_path / "run.log")
    assert synced == [True]
    ran.unlink()
    server = [sys.executable, "-c", SERVES_AND_MARKS, "{port}", str(ran)]
    process, _ = bench.measure.start(server, "/healthz", tmp_path / "start.log")
    process.stop()
    assert synced == [True, True]


SERVES_AND_MARKS = """
import http.server, sys
open(sys.argv[2], "w")
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
"""


def test_the_bare_app_serves_the_bytes_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = tmp_path / "feed.bin"
    body.write_bytes(b"<feed/>" * 100)
    monkeypatch.setitem(os.environ, "BENCH_BODY", str(body))
    app = importlib.reload(bench.bare).app.test_client()
    assert app.get("/feed").data == body.read_bytes()
    assert app.get("/small").status_code == 200


def test_the_extraction_score_counts_shingles_as_the_published_benchmark_does() -> None:
    true = "one two three four five six seven eight"  # 5 shingles of 4 words
    assert page_score(true, true) == (1.0, 0.0, 0.0)
    assert page_score(true, "nothing alike at all here") == (0.0, 2 / 7, 5 / 7)
    half = page_score(true, "one two three four five")  # 2 of the 5 shingles, nothing extra
    assert half == (2 / 5, 0.0, 3 / 5)
    score, precision, recall = f1([half, page_score(true, true)])
    assert (precision, recall) == (1.0, 0.7) and round(score, 4) == round(2 * 0.7 / 1.7, 4)


def test_the_export_is_timed_from_posts_whose_html_was_never_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jekyll renders every post; a store served before keeps rendered HTML in its index, which
    # would spare feedhub's timed build its Markdown.
    runner = bench.main.Bench(argparse.Namespace(workdir=tmp_path / "work"))
    store = runner.store(300)
    config = load_config(store / "feedhub.yaml")
    open_writer(config).sync_all()
    site = open_site(config)
    site.feed_page(None, 1)  # renders the newest posts' HTML, and keeps it
    rendered_then: list[int] = []
    real_run = bench.main.timed_run

    def timed(command: list[str], log: Path, *args: object, **kwargs: object) -> object:
        with site.index.backend.reading() as conn:
            rendered_then.append(conn.execute("SELECT count(*) AS n FROM rendered").fetchone()["n"])
        return real_run(command, log, *args, **kwargs)

    monkeypatch.setattr(bench.main, "timed_run", timed)
    out = runner.export(store, 300, jekyll_seconds=100.0)
    assert rendered_then[0] == 0 and rendered_then[1] > 0  # the second build, nothing changed, has it
    assert (out / "feed.atom").is_file()
    first, again = runner.rows
    assert first.target == "≤ 0.1× Jekyll" and first.met is (first.value is not None and first.value <= 10)
    assert again.baseline == first.value
