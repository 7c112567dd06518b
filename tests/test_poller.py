"""Polling end to end in one process: a scripted upstream on 127.0.0.1, real post files, real SQLite."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from feedhub.aggregator.poller import MAX_BACKOFF, Poller, PollReport
from feedhub.aggregator.scheduler import poll_once
from feedhub.aggregator.sources import load_sources
from feedhub.aggregator.state import PollResult, StateStore
from feedhub.config import Config
from feedhub.errors import StorageError, StorageFault
from feedhub.index.model import SyncReport
from feedhub.posts import Post, PostFile, read_post_file
from feedhub.storage import STATE_FILE, open_storage
from tests.helpers import BASE_URL, BOTH_BACKENDS, SHARED, FrozenClock, SiteFolder, SiteIndex, open_index
from tests.upstream import Response, Upstream, item, rss

pytestmark = BOTH_BACKENDS
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI).timestamp()
POLL_SERIES = SHARED / "corpus" / "upstream" / "realworld" / "wechat-feeds" / "poll-series"


@dataclass
class Aggregation:
    """One site, its sources.yaml and a poller, like `feedhub poll` sets them up."""

    site: SiteFolder
    upstream: Upstream
    clock: FrozenClock

    def configure(self, *sources: dict, **site_settings: object) -> Config:
        document = {"sources": [{"category": "news", "interval": "30m", **source} for source in sources]}
        (self.site.root / "sources.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
        self.config = self.site.config(language="zh-CN", **site_settings)
        self.sources = {source.id: source for source in load_sources(self.config)}
        self.restart()
        return self.config

    def restart(self) -> None:
        """New objects over the same files: what a restarted process has."""
        self.index: SiteIndex = open_index(self.config, self.clock)
        self.index.sync_all()
        self.state = StateStore(open_storage(self.config).state)
        self.poller = Poller(self.config, self.index.writer, self.state, self.clock)

    def forget_state(self) -> None:
        """Lose the aggregator's state, as an operator deleting it would."""
        if self.config.database is None:
            (self.config.data_dir / STATE_FILE).unlink()
        else:
            with self.state.backend.transaction() as conn:
                conn.execute("DELETE FROM sources")
                conn.execute("DELETE FROM seen")

    def poll(self, source_id: str = "up") -> PollReport:
        return self.poller.poll(self.sources[source_id])

    def posts(self) -> dict[str, Post]:
        found = {}
        for path in sorted(self.config.posts_dir.glob("*.md")):
            file = read_post_file(self.config.posts_dir, path.name, SHANGHAI)
            assert file is not None and file.post is not None, (path, file and file.problem)
            found[path.name] = file.post
        return found

    def titles(self) -> list[str]:
        return sorted(post.title for post in self.posts().values())


@pytest.fixture
def agg(site: SiteFolder, upstream: Upstream) -> Iterator[Aggregation]:
    yield Aggregation(site, upstream, FrozenClock(NOW))


def test_new_entries_become_posts_in_the_seed_format(agg: Aggregation) -> None:
    agg.upstream.feed(
        "/feed",
        rss(
            item(
                "央行：保持流动性合理充裕",
                guid="g1",
                link="https://up.example/1",
                description="<p>正文一</p>",
            ),
            title="新华社",
        ),
    )
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "category_title": "央行新闻"})
    report = agg.poll()
    assert report.result is PollResult.NEW and report.counts.new == 1
    ((name, post),) = agg.posts().items()
    assert re.fullmatch(r"2021-12-08-[0-9a-f]{10}\.md", name)
    assert (agg.config.posts_dir / name).stat().st_mode & 0o777 == 0o644  # for Jekyll and others to read
    text = (agg.config.posts_dir / name).read_text("utf-8")
    assert text == (
        "---\n"
        "layout: post\n"
        'title: "央行：保持流动性合理充裕"\n'
        "date: 2021-12-08 10:35:30 +0800\n"
        "categories: news\n"
        "tags: 央行新闻\n"
        "source: up\n"
        "source_url: https://up.example/1\n"
        "source_id: g1\n"
        "---\n"
        "<div><p>正文一</p></div><p>（文章来源：新华社）</p>\n"
        "\n"
        "<https://up.example/1>\n"
        "\n"
        f"[返回央行新闻]({BASE_URL}/category/news.html)｜[返回首页]({BASE_URL}/)\n"
    )
    assert (post.title, post.categories, post.tags, post.source_id) == (
        "央行：保持流动性合理充裕",
        ("news",),
        ("央行新闻",),
        "g1",
    )
    published = agg.index.entries("news", 0, 10)[0]
    assert published.via == "https://up.example/1" and published.summary == "正文一"


def test_new_and_updated_posts_are_indexed_from_what_was_written_not_read_back(
    agg: Aggregation, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feedhub.index.write as write

    reads: list[str] = []
    real = write.read_post_file

    def counted(root: Path, path: str, tz: tzinfo) -> PostFile | None:
        reads.append(path)
        return real(root, path, tz)

    monkeypatch.setattr(write, "read_post_file", counted)
    agg.upstream.feed("/feed", rss(item("one", guid="1"), item("two", guid="2", description="<p>b</p>")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    assert agg.poll().counts.new == 2
    agg.upstream.feed("/feed", rss(item("one", guid="1"), item("two", guid="2", description="<p>c</p>")))
    assert agg.poll().counts.updated == 1
    assert reads == []
    assert sorted(entry.summary for entry in agg.index.entries("news", 0, 10)) == ["Body.", "c"]
    assert agg.index.sync_all() == SyncReport()  # what the index holds is what the files say


def test_unchanged_feeds_cost_no_parsing(agg: Aggregation) -> None:
    agg.upstream.feed("/feed", rss(item("one", guid="1")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    assert agg.poll().result is PollResult.NEW
    second = agg.poll()
    assert second.result is PollResult.NOT_MODIFIED and second.counts is None
    assert (
        agg.upstream.hits("/feed")[1].headers["if-none-match"]
        == agg.state.all_sources()["up"].validators.etag
    )
    assert second.state.next_poll == pytest.approx(NOW + 1800, abs=61)


def test_a_new_source_backfills_only_its_newest_entries(agg: Aggregation) -> None:
    items = [
        item(f"item {n:02d}", guid=str(n), date=f"Wed, {n:02d} Dec 2021 10:00:00 +0800") for n in range(1, 16)
    ]
    agg.upstream.feed("/feed", rss(*items))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 4})
    report = agg.poll()
    assert (report.counts.new, report.counts.held_back) == (4, 11)
    assert agg.titles() == ["item 12", "item 13", "item 14", "item 15"]
    agg.upstream.feed(
        "/feed", rss(item("item 16", guid="16", date="Thu, 16 Dec 2021 10:00:00 +0800"), *items)
    )
    report = agg.poll()
    assert (report.counts.new, report.counts.held_back) == (1, 0)
    assert len(agg.posts()) == 5


def test_max_entries_and_filters(agg: Aggregation) -> None:
    agg.upstream.feed(
        "/feed",
        rss(
            item("央行降准", guid="1", date="Wed, 08 Dec 2021 10:00:00 +0800"),
            item("央行广告", guid="2", date="Wed, 08 Dec 2021 09:00:00 +0800"),
            item("天气预报", guid="3", date="Wed, 08 Dec 2021 08:00:00 +0800", description="<p>关于利率</p>"),
            item("旧闻 央行", guid="4", date="Tue, 07 Dec 2021 08:00:00 +0800"),
        ),
    )
    agg.configure(
        {
            "id": "up",
            "url": agg.upstream.url("/feed"),
            "max_entries": 3,
            "include": ["央行", "/利率/"],
            "exclude": "广告",
        }
    )
    report = agg.poll()
    assert agg.titles() == ["天气预报", "央行降准"]
    assert (report.counts.new, report.counts.filtered) == (2, 1)


def test_re_guided_entries_are_not_merged_again(agg: Aggregation) -> None:
    agg.upstream.feed("/feed", rss(item("Same story", guid="old-guid", link="https://up.example/s")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    agg.poll()
    agg.upstream.feed("/feed", rss(item("Same story", guid="new-guid", link="https://up.example/s")))
    report = agg.poll()
    assert report.result is PollResult.UNCHANGED and len(agg.posts()) == 1
    agg.restart()  # and not after a restart, nor once the state is gone
    agg.forget_state()
    agg.restart()
    assert agg.poll().counts.new == 0 and len(agg.posts()) == 1


def test_an_item_listed_twice_is_one_post(agg: Aggregation) -> None:
    agg.upstream.feed(
        "/feed", rss(item("twice", description="<p>same</p>"), item("twice", description="<p>same</p>"))
    )
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    assert agg.poll().counts.new == 1 and agg.titles() == ["twice"]


def test_a_changed_entry_updates_its_post_in_place(agg: Aggregation) -> None:
    agg.upstream.feed("/feed", rss(item("Title", guid="g", description="<p>first version</p>")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    agg.poll()
    ((name, before),) = agg.posts().items()
    entry_id = agg.index.entries(None, 0, 1)[0].entry_id
    agg.clock.now += 3600
    agg.upstream.feed("/feed", rss(item("Title, corrected", guid="g", description="<p>second version</p>")))
    report = agg.poll()
    assert report.result is PollResult.UPDATED and report.counts.updated == 1
    ((same_name, after),) = agg.posts().items()
    assert same_name == name and after.title == "Title, corrected" and "second version" in after.body
    assert after.date == before.date and after.updated == datetime.fromtimestamp(agg.clock.now, SHANGHAI)
    published = agg.index.entries(None, 0, 1)[0]
    assert published.entry_id == entry_id and published.title == "Title, corrected"
    assert agg.poll().result is PollResult.NOT_MODIFIED


def test_a_post_the_operator_deleted_stays_deleted(agg: Aggregation) -> None:
    agg.upstream.feed("/feed", rss(item("Unwanted", guid="g")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    agg.poll()
    for path in agg.config.posts_dir.glob("*.md"):
        path.unlink()
    agg.upstream.feed("/feed", rss(item("Unwanted", guid="g", description="<p>edited upstream</p>")))
    assert agg.poll().counts.new == 0 and agg.posts() == {}


def test_a_crash_between_writes_leaves_no_partial_file_and_no_duplicate(
    agg: Aggregation, monkeypatch
) -> None:
    agg.upstream.feed(
        "/feed", rss(item("A", guid="a"), item("B", guid="b", date="Thu, 09 Dec 2021 10:00:00 +0800"))
    )
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})

    def die(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("killed")

    # 1. the process dies after the files are written, before the entries are recorded
    monkeypatch.setattr(StateStore, "remember", die)
    with pytest.raises(SystemExit):
        agg.poll()
    monkeypatch.undo()
    assert agg.titles() == ["A", "B"]  # written whole
    agg.restart()
    assert agg.poll().counts.new == 0  # found again through the posts' front matter
    assert agg.titles() == ["A", "B"]

    # 2. the process dies in the middle of writing a file
    agg.upstream.feed(
        "/feed", rss(item("C", guid="c", date="Fri, 10 Dec 2021 10:00:00 +0800"), item("A", guid="a"))
    )
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(SystemExit):
        agg.poll()
    monkeypatch.setattr(os, "replace", real_replace)
    assert agg.titles() == ["A", "B"]
    assert list(agg.config.posts_dir.glob(".*")) == []  # no temporary file left behind
    agg.restart()
    assert agg.poll().counts.new == 1
    assert agg.titles() == ["A", "B", "C"]


@pytest.mark.parametrize("series", ["news-xinhua", "gov-cn-china-government-portal"])
def test_consecutive_snapshots_merge_without_duplicates(agg: Aggregation, series: str) -> None:
    folder = POLL_SERIES / series
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (../shared/corpus is not beside the checkout)")
    snapshots = sorted(folder.glob("poll*.xml"))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 100})
    links: set[str] = set()
    for snapshot in snapshots:
        agg.upstream.feed("/feed", snapshot.read_bytes())
        agg.clock.now += 7200
        assert agg.poll().result in (PollResult.NEW, PollResult.UNCHANGED)
        links |= set(re.findall(rb"<link>([^<]+)</link>", snapshot.read_bytes().split(b"<item>", 1)[1]))
    posts = agg.posts()
    assert len(posts) == len(links)  # one post per distinct item, none twice
    assert len({post.source_url for post in posts.values()}) == len(posts)
    if series == "news-xinhua":
        briefings = [post for post in posts.values() if "早知天下事" in post.title]
        assert len(briefings) >= 2  # same title, new link and date: a new post each day


def test_entries_removed_upstream_stay_published(agg: Aggregation) -> None:
    folder = SHARED / "corpus" / "upstream" / "realworld" / "Feeder"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    agg.upstream.feed("/feed", (folder / "cowboyprogrammer_atom.xml").read_bytes(), "application/atom+xml")
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 100})
    agg.poll()
    before = set(agg.posts())
    agg.upstream.feed(
        "/feed", (folder / "cowboyprogrammer_deleted_middle_atom.xml").read_bytes(), "application/atom+xml"
    )
    assert agg.poll().counts.new == 0
    assert set(agg.posts()) == before


def test_hostile_entries_are_sanitized(agg: Aggregation) -> None:
    agg.upstream.feed(
        "/feed",
        rss(
            item(
                '<script>alert("t")</script>Title',
                guid="h",
                link="javascript:alert(1)",
                description=(
                    '<p onmouseover="steal()" style="position:fixed">text</p><script>steal()</script>'
                    '<a href="javascript:steal()">link</a>'
                    '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="x">'
                    "<iframe src=https://evil.example/></iframe><svg><a xlink:href=javascript:x>s</a></svg>"
                ),
                extra='<enclosure url="javascript:alert(1)" type="audio/mpeg" length="1"/>',
            )
        ),
    )
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    agg.poll()
    ((name, post),) = agg.posts().items()
    text = (agg.config.posts_dir / name).read_text("utf-8").lower()
    for hostile in ("<script", "onmouseover", "javascript:", "data:", "<iframe", "<svg", "position:fixed"):
        assert hostile not in text, hostile
    assert post.title == "Title" and post.source_url is None and post.enclosures == ()
    html = agg.index.entries(None, 0, 1)[0].html
    assert "<p>text</p>" in html and ">link</a>" in html


def test_backoff_and_recovery(agg: Aggregation) -> None:
    agg.upstream.script("/feed", Response(500), Response(500), Response(200, rss(item("back", guid="1"))))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "interval": "10m"})
    first = agg.poll()
    assert first.result is PollResult.ERROR and first.reason == "500 Internal Server Error"
    assert (first.state.errors, first.state.next_poll) == (1, NOW + 1200)
    second = agg.poll()
    assert (second.state.errors, second.state.next_poll) == (2, NOW + 2400)
    third = agg.poll()
    assert third.result is PollResult.NEW and third.state.errors == 0
    assert NOW + 600 <= third.state.next_poll <= NOW + 660


def test_backoff_is_capped_at_a_day(agg: Aggregation) -> None:
    agg.upstream.script("/feed", Response(502))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "interval": "6h"})
    for _ in range(4):
        report = agg.poll()
    assert report.state.errors == 4 and report.state.next_poll == NOW + MAX_BACKOFF


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(agg: Aggregation, status: int) -> None:
    agg.upstream.script("/feed", Response(status, headers={"Retry-After": "7200"}))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "interval": "5m"})
    report = agg.poll()
    assert report.result is PollResult.ERROR and report.state.next_poll == NOW + 7200


def test_gone_disables_until_enabled(agg: Aggregation) -> None:
    agg.upstream.script("/feed", Response(410), Response(200, rss(item("alive", guid="1"))))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    assert agg.poll().result is PollResult.GONE
    assert agg.poll().result is PollResult.GONE and len(agg.upstream.hits("/feed")) == 1  # not asked again
    agg.state.enable("up", NOW)
    assert agg.poll().result is PollResult.NEW


def test_permanent_redirects_are_followed_from_then_on(agg: Aggregation) -> None:
    agg.upstream.script("/old", Response(301, headers={"Location": "/new"}))
    agg.upstream.feed("/new", rss(item("moved", guid="1")))
    agg.upstream.script("/temp", Response(302, headers={"Location": "/new"}))
    agg.configure(
        {"id": "up", "url": agg.upstream.url("/old")}, {"id": "t", "url": agg.upstream.url("/temp")}
    )
    sources_yaml = (agg.site.root / "sources.yaml").read_text("utf-8")
    report = agg.poll()
    assert report.state.current_url == agg.upstream.url("/new")
    agg.poll()
    assert len(agg.upstream.hits("/old")) == 1 and len(agg.upstream.hits("/new")) == 2
    assert (agg.site.root / "sources.yaml").read_text("utf-8") == sources_yaml  # never rewritten
    assert agg.poll("t").state.current_url is None
    # a new url in sources.yaml starts over
    agg.configure({"id": "up", "url": agg.upstream.url("/temp")})
    assert agg.state.source("up", agg.upstream.url("/temp"), lambda: None).current_url is None


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (Response(200, b"x" * 5000), "5,000 bytes"),
        (
            Response(200, b"<html><body>maintenance</body></html>", {"Content-Type": "text/html"}),
            "not a usable feed",
        ),
        (Response(200, rss(item("late", guid="1")), delay=3), "no answer within 1 s"),
    ],
)
def test_failures_have_clear_reasons(agg: Aggregation, response: Response, reason: str) -> None:
    agg.upstream.script("/feed", response)
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "max_bytes": 4096, "timeout": 1})
    report = agg.poll()
    assert report.result is PollResult.ERROR and reason in report.reason
    assert report.failed and agg.posts() == {}


def test_one_bad_source_does_not_stop_the_others(agg: Aggregation) -> None:
    agg.upstream.script("/bad", Response(500))
    agg.upstream.feed("/good", rss(item("fine", guid="1")))
    agg.configure(
        {"id": "bad", "url": agg.upstream.url("/bad")}, {"id": "good", "url": agg.upstream.url("/good")}
    )
    assert agg.poll("bad").failed
    assert agg.poll("good").result is PollResult.NEW


def test_gb2312_upstream(agg: Aggregation) -> None:
    path = SHARED / "corpus" / "upstream" / "realworld" / "NetNewsWire" / "kc0011.rss"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    agg.upstream.feed("/feed", path.read_bytes(), "application/rss+xml")
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 20})
    assert agg.poll().counts.new == 20
    titles = agg.titles()
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in title) for title in titles)


def test_file_sources(agg: Aggregation, tmp_path: Path) -> None:
    feed = tmp_path / "local.xml"
    feed.write_bytes(rss(item("local news", guid="1")))
    agg.configure({"id": "up", "url": feed.as_uri()})
    assert agg.poll().result is PollResult.NEW
    assert agg.poll().result is PollResult.NOT_MODIFIED


def test_jekyll_reads_the_posts(agg: Aggregation, tmp_path: Path) -> None:
    """A real Jekyll build of the folder, where Jekyll is installed (Debian's `jekyll`)."""
    from shutil import which

    if which("jekyll") is None:
        pytest.skip("jekyll is not installed (apt-get install jekyll)")
    import subprocess

    agg.upstream.feed(
        "/feed", rss(item('Jekyll: "quoted" & [bracketed]', guid="1"), item("第二篇", guid="2"))
    )
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "category": "two words"})
    agg.poll()
    site = tmp_path / "jekyll"
    (site / "_posts").mkdir(parents=True)
    for post in agg.config.posts_dir.glob("*.md"):
        (site / "_posts" / post.name).write_bytes(post.read_bytes())
    (site / "_config.yml").write_text("timezone: Asia/Shanghai\n", "utf-8")
    (site / "_layouts").mkdir()
    (site / "_layouts" / "post.html").write_text(
        "{{ page.title }}|{{ page.date | date: '%Y-%m-%d %H:%M:%S %z' }}|{{ page.categories | join: ',' }}",
        "utf-8",
    )
    result = subprocess.run(
        ["jekyll", "build", "--source", str(site), "--destination", str(site / "_site")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    pages = sorted(page.read_text("utf-8") for page in (site / "_site").rglob("*.html"))
    assert pages == [
        'Jekyll: "quoted" & [bracketed]|2021-12-08 10:35:30 +0800|two words',
        "第二篇|2021-12-08 10:35:30 +0800|two words",
    ]


def fail_writes_after(monkeypatch: pytest.MonkeyPatch, written: int, error: OSError) -> list[str]:
    """The disk fills up after ``written`` more post files."""
    import feedhub.posts as posts

    real = posts.write_temporary
    done: list[str] = []

    def write(path: Path, data: str | bytes, fsync: bool) -> tuple[str, tuple[int, int]]:
        if len(done) >= written:
            raise error
        stamp = real(path, data, fsync)
        done.append(path.name)
        return stamp

    monkeypatch.setattr(posts, "write_temporary", write)
    return done


def full_disk() -> OSError:
    return OSError(28, "No space left on device")


def test_an_interrupted_first_poll_completes_the_same_backfill(
    agg: Aggregation, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [item(f"undated {n}", guid=f"u{n}", date=None) for n in range(3)]
    items += [item(f"same {n}", guid=f"s{n}", date="Wed, 08 Dec 2021 10:35:30 +0800") for n in range(3)]
    items += [
        item(f"dated {n}", guid=f"d{n}", date=f"Wed, 0{n + 1} Dec 2021 10:00:00 +0800") for n in range(6)
    ]
    agg.upstream.feed("/feed", rss(*items))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 8})
    fail_writes_after(monkeypatch, 3, full_disk())
    failed = agg.poll()
    assert (failed.result, failed.reason) == (
        PollResult.ERROR,
        f"cannot write posts to {agg.config.posts_dir}: No space left on device",
    )
    monkeypatch.undo()
    assert len(agg.posts()) == 3  # what was written is kept, recorded and indexed
    agg.restart()  # a new process, as after kill -9
    retried = agg.poll()
    assert retried.result is PollResult.NEW and retried.counts.new == 5
    titles = agg.titles()
    # the 8 newest of all, whichever attempt wrote them: the undated (first seen now), the same-dated
    # ones, and the two newest dated
    assert len(titles) == 8 and {"undated 0", "undated 1", "undated 2", "same 0", "same 1", "same 2"} <= set(
        titles
    )
    assert agg.poll().result is PollResult.NOT_MODIFIED


def test_a_lost_state_keeps_its_cutoff_across_retries(
    agg: Aggregation, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [item(f"old {n}", guid=f"o{n}", date=f"Wed, 0{n + 1} Dec 2021 10:00:00 +0800") for n in range(3)]
    agg.upstream.feed("/feed", rss(*first))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed"), "backfill": 100})
    assert agg.poll().counts.new == 3
    agg.forget_state()  # the state is lost
    later = [item(f"new {n}", guid=f"n{n}", date="Fri, 10 Dec 2021 10:00:00 +0800") for n in range(4)]
    never = item("never seen before, undated", guid="x", date=None)  # may be years old: held back
    agg.upstream.feed("/feed", rss(*later, never, *first))
    agg.restart()
    fail_writes_after(monkeypatch, 2, full_disk())
    assert agg.poll().result is PollResult.ERROR
    monkeypatch.undo()
    agg.restart()
    # The newest post is now dated like the entries still to come: they must still come.
    report = agg.poll()
    assert report.counts.new == 2
    assert "never seen before, undated" not in agg.titles()
    assert sorted(title for title in agg.titles() if title.startswith("new")) == [
        f"new {n}" for n in range(4)
    ]


@pytest.mark.parametrize(
    ("where", "error", "reason"),
    [
        (
            "feedhub.aggregator.merge.Merger.merge",
            OSError(30, "Read-only file system"),
            "cannot write posts to",
        ),
        (
            "feedhub.aggregator.merge.Merger.merge",
            StorageError("index.sqlite3", "disk I/O error"),
            "the index failed",
        ),
        ("feedhub.aggregator.parsing.parse_feed", ValueError("chr() arg not in range"), "unexpected error"),
        ("feedhub.aggregator.parsing.parse_feed", OverflowError("too large"), "unexpected error"),
    ],
)
def test_every_failure_of_a_source_is_its_error(
    agg: Aggregation, monkeypatch: pytest.MonkeyPatch, where: str, error: Exception, reason: str
) -> None:
    agg.upstream.feed("/feed", rss(item("A", guid="a")))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")}, parse_processes=0)  # patched here

    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(where, fail)
    report = agg.poll()
    assert report.result is PollResult.ERROR and report.reason.startswith(reason), report.reason
    assert report.state is not None and report.state.errors == 1 and report.state.next_poll > NOW


def test_a_state_store_that_fails_still_gives_a_report(
    agg: Aggregation, monkeypatch: pytest.MonkeyPatch
) -> None:
    agg.upstream.feed("/feed", rss(item("A", guid="a")))
    agg.upstream.feed("/two", rss(item("B", guid="b")))
    agg.configure(
        {"id": "up", "url": agg.upstream.url("/feed")}, {"id": "two", "url": agg.upstream.url("/two")}
    )

    def fail(*_args: object, **_kwargs: object) -> None:
        raise StorageError("aggregator.sqlite3", "the disk is full", StorageFault.FULL)

    monkeypatch.setattr(StateStore, "record", fail)
    reports = poll_once(agg.poller, list(agg.sources.values()), 2)
    assert [(report.source, report.result) for report in reports] == [
        ("up", PollResult.ERROR),
        ("two", PollResult.ERROR),
    ]
    assert reports[0].reason == "cannot record the poll: StorageError: 'aggregator.sqlite3: the disk is full'"


@pytest.mark.parametrize(
    "date",
    ["Seg, 24 Set 2018 19:42:40 -0300", "0001-01-01T00:00:00Z", "Mon, 01 Jan 0001 00:00:00 +0800", "soon"],
)
def test_dates_not_read_for_sure_are_the_first_seen_time(agg: Aggregation, date: str) -> None:
    agg.upstream.feed("/feed", rss(item("A", guid="a", date=date)))
    agg.configure({"id": "up", "url": agg.upstream.url("/feed")})
    agg.poll()
    (post,) = agg.posts().values()
    assert post.date.timestamp() == NOW  # not today's date with the time filled in, not 2001
