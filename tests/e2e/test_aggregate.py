"""The aggregator as users run it: `feedhub serve` polling, `feedhub poll --once` over real feeds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
import yaml

from tests.helpers import REPO, SHARED, ServeProcess, SiteFolder, wait_for
from tests.upstream import Upstream, item, rss

REALWORLD = SHARED / "corpus" / "upstream" / "realworld"


def test_serve_polls_and_publishes(site: SiteFolder, upstream: Upstream, tmp_path: Path) -> None:
    upstream.feed("/feed", rss(item("上游新闻", guid="u1", link="https://up.example/1"), title="上游"))
    sources = {"sources": [{"id": "up", "url": upstream.url("/feed"), "category": "wire", "interval": "1m"}]}
    (site.root / "sources.yaml").write_text(yaml.safe_dump(sources), "utf-8")
    server = ServeProcess(site.write_config(language="zh-CN"), tmp_path / "serve.log", "--workers", "2")
    try:

        def titles() -> list[str]:
            return [entry.title for entry in feedparser.parse(server.get("/feeds/wire.atom").body).entries]

        assert wait_for(lambda: titles() == ["上游新闻"], timeout=30), server.log()
        entry = feedparser.parse(server.get("/feeds/wire.atom").body).entries[0]
        assert {link.rel: link.href for link in entry.links}["via"] == "https://up.example/1"
        status = json.loads(server.get("/status.json").body)
        assert status["scheduler"]["running"]
        (source,) = status["sources"]
        assert (source["id"], source["result"], source["merged_total"]) == ("up", "new", 1)
        assert "up" in server.get("/status").text
        assert len(upstream.hits("/feed")) == 1  # one scheduler, whatever the number of workers
        assert re.search(r"source up: 1 new, 0 updated", server.log())
    finally:
        assert server.stop() == 0


def test_default_config_ingests_its_bundled_offline_source(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config", config_dir, ignore=shutil.ignore_patterns("data"))
    for post in (config_dir / "demo" / "_posts").glob("2026-*.md"):
        post.unlink()  # posts a local run of the demo may have left
    server = ServeProcess(config_dir / "feedhub.yaml", tmp_path / "serve.log")
    try:

        def titles() -> list[str]:
            return [entry.title for entry in feedparser.parse(server.get("/feeds/feedhub.atom").body).entries]

        assert wait_for(lambda: len(titles()) == 3, timeout=30), server.log()
        assert "聚合器上线：上游条目自动成为站内文章" in titles()
        html = server.get("/feeds/feedhub.atom").text
        # the demo feed's script, event handler and javascript: link are gone
        assert "alert(" not in html and "onclick=" not in html and 'href="javascript' not in html
        assert "开启“直播+消费帮扶”模式" in server.get("/").text  # the seed posts are still there
    finally:
        assert server.stop() == 0


def realworld_feeds() -> list[Path]:
    if not REALWORLD.is_dir():
        pytest.skip(f"{REALWORLD} is absent (../shared/corpus is not beside the checkout)")
    return sorted(
        p for p in REALWORLD.rglob("*") if p.is_file() and p.suffix != ".md" and "LICENSE" not in p.name
    )


def test_poll_once_over_every_real_world_feed(site: SiteFolder, upstream: Upstream) -> None:
    feeds = realworld_feeds()
    sources = []
    for number, path in enumerate(feeds):
        route = f"/{path.relative_to(REALWORLD).as_posix()}"
        upstream.file(route, path, "application/json" if path.suffix == ".json" else "application/xml")
        sources.append({"id": f"feed{number:03d}", "url": upstream.url(route), "category": path.parent.name})
    (site.root / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
    config = site.write_config(language="zh-CN")
    command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", str(config)]

    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    rows = first.stdout.splitlines()[:-1]
    assert len(rows) == len(feeds)
    # Every one ingested; but a feed the corpus has twice in one folder (one podcast in two
    # formats) is one story per entry: whichever is polled second merges none of them. So may
    # a snapshot of a poll series, whose entries the other snapshots (polled at once, in any
    # order) may hold every one of.
    others = [row for row in rows if row.split()[1] != "new"]
    assert all(
        row.split()[1] == "unchanged" and "duplicates of other sources' posts" in row for row in others
    )
    in_series = {f"feed{number:03d}" for number, path in enumerate(feeds) if "poll-series" in path.parts}
    assert len([row for row in others if row.split()[0] not in in_series]) <= 1, others
    merged = int(re.search(r"(\d+) new posts", first.stdout).group(1))
    posts = list(site.posts.glob("*.md"))
    assert merged == len(posts) > 500

    check = subprocess.run(
        [sys.executable, "-m", "feedhub", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-2000:]  # every post it wrote is publishable

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0
    assert second.stdout.splitlines()[-1] == f"{len(feeds)} sources polled: 0 new posts, 0 failed"
    assert len(list(site.posts.glob("*.md"))) == len(posts)


def test_a_json_api_is_polled_like_a_feed(site: SiteFolder, upstream: Upstream) -> None:
    answer = {
        "data": {
            "list": [
                {
                    "id": 7,
                    "headline": "接口新闻",
                    "body": "<p>正文<script>x()</script></p>",
                    "ts": 1638972436,
                },
                {"id": 8, "body": "an item with no headline"},
            ]
        }
    }
    upstream.feed("/api/list", json.dumps(answer).encode(), "application/json")
    source = {
        "id": "api",
        "type": "json",
        "url": upstream.url("/api/list?page=1"),
        "category": "wire",
        "items": "data.list",
        "fields": {"id": "id", "title": "headline", "content": "body", "date": "ts"},
    }
    (site.root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), "utf-8")
    config = site.write_config(language="zh-CN")
    command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", str(config)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 of 2 items skipped: no title ('headline')" in first.stdout
    (post,) = site.posts.glob("*.md")
    text = post.read_text("utf-8")
    assert 'title: "接口新闻"' in text and "正文" in text and "script" not in text
    assert post.name.startswith("2021-12-08-")
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (
        second.returncode == 0 and second.stdout.splitlines()[-1] == "1 source polled: 0 new posts, 0 failed"
    )
    assert upstream.hits("/api/list?page=1")[-1].headers.get("if-none-match")  # a conditional GET
    assert second.stdout.splitlines()[0].split()[:2] == ["api", "not-modified"], second.stdout
