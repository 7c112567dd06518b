from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedhub.config import Config
from feedhub.errors import FeedhubError, StorageError
from feedhub.index.model import SyncReport
from feedhub.index.schema import INDEX_SCHEMA, SITE
from feedhub.index.write import IndexWriter
from feedhub.posts import Post, PostFile, read_post_file
from feedhub.storage import INDEX_FILE, open_storage
from feedhub.storage.base import Connection
from feedhub.storage.sqlite import SqliteBackend
from tests.helpers import (
    BOTH_BACKENDS,
    FrozenClock,
    SiteFolder,
    SiteIndex,
    corpus_posts,
    kill_all,
    open_index,
    pool_processes,
    post_text,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = BOTH_BACKENDS


def forget_index(config: Config) -> None:
    """Delete the index as an operator would: its file, or its tables in the shared database."""
    backend = open_storage(config).index
    if isinstance(backend, SqliteBackend):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config.data_dir / INDEX_FILE}{suffix}").unlink(missing_ok=True)
        return
    with backend.transaction() as conn:
        for table in INDEX_SCHEMA.derived_tables:
            conn.execute(f"DROP TABLE {table} CASCADE")
        conn.execute("DELETE FROM schema_versions WHERE part='index'")


def entry_titles(index: SiteIndex, slug: str | None = None) -> list[str]:
    return [entry.title for entry in index.entries(slug, 0, 1000)]


def test_sync_adds_edits_and_removes(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 10:00:00", categories="one")
    site.add("2022-01-02-b.md", title="B", date="2022-01-02 10:00:00", categories="two")
    index = open_index(site.config())
    report = index.sync_all()
    assert (report.added, report.updated, report.removed) == (2, 0, 0)
    assert entry_titles(index) == ["B", "A"]
    versions = {key: index.version(key) for key in (SITE, "one", "two")}

    site.add("2022-01-01-a.md", title="A, edited", date="2022-01-01 10:00:00", categories="one")
    report = index.sync_all()
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    assert entry_titles(index, "one") == ["A, edited"]
    assert index.version("one") > versions["one"] and index.version(SITE) > versions[SITE]
    assert index.version("two") == versions["two"]  # untouched category keeps its cached feeds

    (site.posts / "2022-01-02-b.md").unlink()
    report = index.sync_all()
    assert report.removed == 1
    assert entry_titles(index) == ["A, edited"]
    assert index.feed_size("two") == (0, None)


def test_order_is_by_date_not_file_name(site: SiteFolder) -> None:
    site.add("2021-12-08-202112082206672930.md", title="later", date="2021-12-08 10:46:18")
    site.add("2021-12-08-202112082206703990.md", title="earlier", date="2021-12-08 10:18:31")
    site.add("2021-12-08-202112082206738071.md", title="with offset", date="2021-12-08 03:50:00 +0100")
    index = open_index(site.config())
    index.sync_all()
    assert entry_titles(index) == ["with offset", "later", "earlier"]


def test_restart_over_unchanged_posts_reads_none(site: SiteFolder) -> None:
    paths = [
        site.add(f"2022-01-{day:02d}-p.md", title=f"post {day}", date=f"2022-01-{day:02d}")
        for day in (1, 2, 3)
    ]
    config = site.config()
    open_index(config).sync_all()
    for path in paths:
        # Same size and mtime, different bytes: only a re-read could notice.
        stat = path.stat()
        path.write_bytes(b"x" * stat.st_size)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    restarted = open_index(config)
    report = restarted.sync_all()
    assert report == SyncReport()
    assert entry_titles(restarted) == ["post 3", "post 2", "post 1"]


def test_deleting_the_index_loses_nothing(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="A", categories="one", tags="第一")
    site.add("2022-01-02-b.md", title="B", date="2022-01-02", categories=["one", "two"])
    config = site.config()
    index = open_index(config)
    index.sync_all()
    before = index.entries(None, 0, 10)
    forget_index(config)
    rebuilt = open_index(config)
    rebuilt.sync_all()
    assert rebuilt.entries(None, 0, 10) == before


def test_a_corrupt_index_is_rebuilt(site: SiteFolder, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("only a SQLite index is a file that can be damaged and deleted by feedhub")
    site.add("2022-01-01-a.md", title="A")
    config = site.config()
    (config.data_dir / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    index = open_index(config)
    index.sync_all()
    assert entry_titles(index) == ["A"]


def test_changed_settings_rebuild_the_index(site: SiteFolder) -> None:
    site.add("a.md", title="A", date="2022-01-01 10:00:00")
    index = open_index(site.config())
    index.sync_all()
    assert index.entries(None, 0, 1)[0].published.isoformat() == "2022-01-01T10:00:00+08:00"
    index = open_index(site.config(timezone="UTC"))
    index.sync_all()
    assert index.entries(None, 0, 1)[0].published.isoformat() == "2022-01-01T10:00:00+00:00"


def test_entry_id_survives_edits_of_title_category_and_date(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="A", categories="one")
    index = open_index(site.config())
    index.sync_all()
    (first,) = index.entries(None, 0, 10)
    site.add("2022-01-01-a.md", title="Renamed", date="2022-02-02 12:00:00", categories="two")
    index.sync_all()
    (edited,) = index.entries(None, 0, 10)
    assert edited.entry_id == first.entry_id
    assert edited.permalink != first.permalink
    assert first.entry_id.startswith("urn:uuid:")


def test_explicit_ids_and_collisions(site: SiteFolder) -> None:
    site.add("a.md", title="A", id="tag:example.org,2022:a")
    site.add("b.md", title="B", id="tag:example.org,2022:a", date="2022-04-15 11:35:25 +0800")
    site.add("sub/a.markdown", title="A too")  # same stem as a.md elsewhere
    index = open_index(site.config())
    index.sync_all()
    ids = {entry.title: entry.entry_id for entry in index.entries(None, 0, 10)}
    assert ids["A"] == "tag:example.org,2022:a"
    assert len(set(ids.values())) == 3
    _, warnings = index.problems()
    assert any("entry id tag:example.org,2022:a is taken by a.md" in w.reason for w in warnings)


def test_permalinks_follow_jekyll_and_stay_unique(site: SiteFolder) -> None:
    site.add("2021-12-08-x.md", title="one", date="2021-12-08 10:00:00", categories="TechWeb")
    site.add("sub/2021-12-08-x.md", title="two", date="2021-12-08 11:00:00", categories="techweb")
    site.add("custom.md", title="three", permalink="/about/custom.html")
    index = open_index(site.config())
    index.sync_all()
    links = {entry.title: entry.permalink for entry in index.entries(None, 0, 10)}
    assert links["one"] == "/techweb/2021/12/08/x.html"
    assert links["two"].startswith("/techweb/2021/12/08/x-") and links["two"].endswith(".html")
    assert links["three"] == "/about/custom.html"
    assert index.entry_at("/about/custom.html").title == "three"


def test_skipped_posts_are_reported_and_recover(site: SiteFolder) -> None:
    site.add("2022-01-01-ok.md", title="ok")
    broken = site.add("-202205262391921712.md", title="", date="'  +0800'")
    index = open_index(site.config())
    report = index.sync_all()
    assert [problem.path for problem in report.skipped] == ["-202205262391921712.md"]
    skipped, _ = index.problems()
    assert "empty title" in skipped[0].reason
    broken.write_text(post_text(title="fixed", date="2022-05-26 12:00:00"), encoding="utf-8")
    index.sync_all()
    assert index.problems() == ([], [])
    assert entry_titles(index) == ["fixed", "ok"]


def test_a_vanished_posts_folder_removes_nothing(site: SiteFolder) -> None:
    site.add("a.md", title="A")
    index = open_index(site.config())
    index.sync_all()
    site.posts.rename(site.root / "unmounted")
    with pytest.raises(FeedhubError, match="the posts folder is missing"):
        index.sync_all()
    assert entry_titles(index) == ["A"]


def test_drafts_hidden_and_ignored_files(site: SiteFolder) -> None:
    site.add("draft.md", title="draft", published=False)
    site.add("_underscore.md", title="special")
    site.add(".hidden.md", title="hidden")
    site.add("backup.md~", title="backup")
    site.add("notes.rst", title="other format")
    site.add("_drafts/inside.md", title="in a special folder")
    site.add("2022/deep/post.html", title="nested", body="<p>html body</p>")
    index = open_index(site.config())
    index.sync_all()
    assert entry_titles(index) == ["nested"]
    assert index.counts() == {"posts": 1, "scheduled": 0, "drafts": 1, "categories": 1}


def test_uncategorized_posts_get_their_own_feed(site: SiteFolder) -> None:
    site.add("a.md", title="A", categories=None)
    index = open_index(site.config())
    index.sync_all()
    assert entry_titles(index, "uncategorized") == ["A"]
    assert index.entries(None, 0, 1)[0].categories == ()


def test_category_title_comes_from_the_newest_tagged_post(site: SiteFolder) -> None:
    site.add("a.md", title="A", date="2022-01-01", categories="guojiafazhangaigewei", tags="焦联资讯新闻")
    site.add(
        "b.md", title="B", date="2022-02-01", categories="guojiafazhangaigewei", tags="国家发展改革委新闻"
    )
    site.add("c.md", title="C", date="2022-03-01", categories=["x", "y"], tags=["X title", "Y title"])
    index = open_index(site.config())
    index.sync_all()
    assert index.category_tag("guojiafazhangaigewei") == "国家发展改革委新闻"
    assert index.category_tag("y") == "Y title"
    stats = {category.slug: category for category in index.categories()}
    assert stats["guojiafazhangaigewei"].count == 2
    assert stats["guojiafazhangaigewei"].tag == "国家发展改革委新闻"

    # The site's title of it follows a newer tag (a post page asks for it, kept for the version).
    assert index.site.title_of("guojiafazhangaigewei") == "国家发展改革委新闻"
    site.add("d.md", title="D", date="2022-04-01", categories="guojiafazhangaigewei", tags="发改委")
    index.sync_all()
    index.version("guojiafazhangaigewei")
    assert index.site.title_of("guojiafazhangaigewei") == "发改委"


def test_watched_paths_with_unchanged_content_bump_nothing(site: SiteFolder) -> None:
    post = site.add("a.md", title="A", categories="one")
    index = open_index(site.config())
    index.sync_all()
    version = index.version("one")
    post.touch()
    assert index.sync_paths(["a.md"]) == SyncReport()
    assert index.version("one") == version
    post.write_text(post_text(title="A2", categories="one"), encoding="utf-8")
    assert index.sync_paths(["a.md"]).updated == 1
    assert index.version("one") > version
    post.unlink()
    assert index.sync_paths(["a.md", "never-existed.md"]).removed == 1


def test_a_row_the_database_refuses_in_a_batch_skips_that_post_only(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch's statements are pipelined with PostgreSQL: the database's refusal arrives at a later
    # read or at the end, still as a StorageError, and the batch is stored again one post at a time.
    for name in ("a.md", "b.md", "c.md"):
        site.add(name, title=name)
    index = open_index(site.config())
    real = IndexWriter._identities

    def clashing(self: IndexWriter, conn: Connection, posts: list[Post], *args: object) -> object:
        chosen = real(self, conn, posts, *args)  # type: ignore[arg-type]
        for path in {"a.md", "b.md"} & set(chosen):  # one permalink and id for two posts: UNIQUE refuses
            chosen[path] = ("/same.html", "same-id")
        return chosen

    monkeypatch.setattr(IndexWriter, "_identities", clashing)
    report = index.sync_all()
    assert [problem.path for problem in report.skipped] == ["b.md"]
    assert "cannot be indexed" in report.skipped[0].reason
    assert sorted(entry_titles(index)) == ["a.md", "c.md"]


def test_a_file_changed_while_its_sync_waited_for_its_turn_is_read_again(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sync_paths reads the files before it takes the writers' turn; another writer may store a
    # newer version of one meanwhile, which this sync must not put back to the older bytes.
    post = site.add("a.md", title="first", categories="one")
    index = open_index(site.config())
    index.sync_all()
    post.write_text(post_text(title="second", categories="one"), encoding="utf-8")
    backend = index.writer.backend
    real = backend.serialize

    def edited_while_waiting(conn: Connection, name: str) -> None:
        post.write_text(post_text(title="third, a longer title", categories="one"), encoding="utf-8")
        real(conn, name)

    monkeypatch.setattr(backend, "serialize", edited_while_waiting)
    assert index.sync_paths(["a.md"]).updated == 1
    assert entry_titles(index) == ["third, a longer title"]


def test_a_file_back_before_the_turn_that_would_forget_it_is_kept(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The full sync finds the file gone; it is written again (and another writer may store it)
    # before this sync's turn to forget it comes: the post stays.
    post = site.add("a.md", title="back", categories="one")
    text = post.read_text(encoding="utf-8")
    index = open_index(site.config())
    index.sync_all()
    post.unlink()
    backend = index.writer.backend
    real = backend.serialize

    def written_again_while_waiting(conn: Connection, name: str) -> None:
        post.write_text(text, encoding="utf-8")
        real(conn, name)

    monkeypatch.setattr(backend, "serialize", written_again_while_waiting)
    assert index.sync_all().removed == 0
    assert entry_titles(index) == ["back"]


def test_files_written_by_threads_at_once_are_indexed_in_fewer_turns(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poller's merges finishing together hand their files to one writer: each caller returns once
    # its own files are indexed, and a failure reaches every caller whose files it held.
    index = open_index(site.config())
    writer = index.writer
    turns: list[int] = []
    real = writer.store_files
    first_turn = threading.Event()

    def counted(files: Sequence[PostFile]) -> SyncReport:
        turns.append(len(files))
        first_turn.set()
        time.sleep(0.3)  # a slow turn: the other threads' files queue meanwhile
        return real(files)

    monkeypatch.setattr(writer, "store_files", counted)
    names = [f"p{number}.md" for number in range(8)]
    for name in names:
        site.add(name, title=name)
    done: list[str] = []

    def written(name: str) -> PostFile:
        file = read_post_file(site.posts, name, UTC)
        assert file is not None
        return file

    def merge(name: str) -> None:
        writer.index_written([written(name)])
        assert name in entry_titles(index)  # indexed when the call returns
        done.append(name)

    threads = [threading.Thread(target=merge, args=(names[0],))]
    threads[0].start()
    first_turn.wait(5)
    threads += [threading.Thread(target=merge, args=(name,)) for name in names[1:]]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(done) == sorted(names)
    assert turns[0] == 1 and sum(turns) == 8 and len(turns) <= 3, turns

    def failing(files: Sequence[PostFile]) -> SyncReport:
        time.sleep(0.2)
        raise StorageError("index.sqlite3", "the disk is full")

    monkeypatch.setattr(writer, "store_files", failing)
    errors: list[str] = []

    def failed_merge(name: str) -> None:
        try:
            writer.index_written([written(name)])
        except StorageError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=failed_merge, args=(name,)) for name in names[:4]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and all("the disk is full" in error for error in errors)


def test_scheduled_posts_appear_when_their_date_comes(site: SiteFolder) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI).timestamp()
    clock = FrozenClock(now)
    site.add("past.md", title="past", date="2026-11-22 11:00:00")
    site.add("future.md", title="future", date="2026-11-22 13:00:00", categories="later")
    index = open_index(site.config(), clock)
    index.sync_all()
    assert entry_titles(index) == ["past"]
    assert index.counts()["scheduled"] == 1
    assert index.next_due() == datetime(2026, 11, 22, 13, 0, tzinfo=SHANGHAI).timestamp()
    version = index.version("later")
    assert index.publish_due() == 0
    clock.now += 3600
    assert index.publish_due() == 1
    assert entry_titles(index) == ["future", "past"]
    assert index.version("later") > version
    assert index.next_due() is None


def test_future_setting_publishes_at_once(site: SiteFolder) -> None:
    site.add("future.md", title="future", date="2999-01-01 00:00:00")
    index = open_index(site.config(future=True))
    index.sync_all()
    assert entry_titles(index) == ["future"]


def test_corpus_index(tmp_path: Path, database: str | None) -> None:
    folder = SiteFolder(tmp_path, database)
    index = open_index(folder.config(posts_dir=str(corpus_posts(tmp_path)), language="zh-CN"))
    report = index.sync_all()
    assert report.added == 112 and len(report.skipped) == 1
    assert index.counts() == {"posts": 111, "scheduled": 0, "drafts": 0, "categories": 2}
    assert index.feed_size("emnews")[0] == 110
    assert index.category_tag("emnews") == "东财滚动新闻"
    newest = index.entries("emnews", 0, 1)[0]
    assert newest.permalink == "/emnews/2021/12/08/202112082207168450.html"
    empty_link = index.entry_at("/emnews/2021/12/08/202112082206870651.html")
    assert empty_link.via is None and "&lt;&gt;" not in empty_link.html


def test_paging_slices(site: SiteFolder) -> None:
    for day in range(1, 8):
        site.add(f"2022-01-0{day}-p.md", title=f"p{day}", date=f"2022-01-0{day}")
    index = open_index(site.config())
    index.sync_all()
    assert [e.title for e in index.entries(None, 3, 3)] == ["p4", "p3", "p2"]
    assert [e.title for e in index.entries(None, 6, 3)] == ["p1"]


def test_a_post_the_index_cannot_take_is_skipped_and_the_batch_goes_on(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.md", "b.md", "c.md"):
        site.add(name, title=name)
    index = open_index(site.config())
    real = IndexWriter._insert_posts

    def unforeseen(self: IndexWriter, conn: object, files: list[PostFile], *args: object) -> set[str]:
        if any(file.path == "b.md" for file in files):
            raise OverflowError("date value out of range")  # what no reading rule foresaw
        return real(self, conn, files, *args)

    monkeypatch.setattr(IndexWriter, "_insert_posts", unforeseen)
    report = index.sync_all()
    assert (report.added, [problem.path for problem in report.skipped]) == (3, ["b.md"])
    assert report.skipped[0].reason == "cannot be indexed: OverflowError: 'date value out of range'"
    assert sorted(entry_titles(index)) == ["a.md", "c.md"]


def test_special_files_are_skipped_with_their_reason(site: SiteFolder, tmp_path: Path) -> None:
    os.mkfifo(site.posts / "fifo.md")
    (site.posts / "folder.md").mkdir()  # a folder named like a post is a folder
    (site.posts / "link.md").symlink_to(tmp_path / "elsewhere.md")
    (tmp_path / "elsewhere.md").write_text(post_text(title="elsewhere"), "utf-8")
    site.add("fine.md", title="fine")
    index = open_index(site.config())
    index.sync_all()
    reasons = {problem.path: problem.reason for problem in index.problems()[0]}
    assert reasons["fifo.md"] == "not a regular file (a FIFO)"
    assert reasons["link.md"].endswith("elsewhere.md', outside the posts folder")
    assert "folder.md" not in reasons
    # the watcher names paths one by one: the same rules
    report = index.sync_paths(["fifo.md", "folder.md", "link.md"])
    assert report.removed == 0 and entry_titles(index) == ["fine"]


_HOLD_A_SYNC = """
import sys, time
from pathlib import Path
from feedhub.config import load_config
from feedhub.index.write import SCAN_LOCK, open_writer
writer = open_writer(load_config(Path(sys.argv[1])))
with writer.backend.exclusive(SCAN_LOCK), writer.backend.transaction() as conn:
    conn.execute("UPDATE files SET size = size")  # a write transaction, open, as a long sync holds one
    print("holding", flush=True)
    time.sleep(120)
"""


def test_opening_and_reading_the_index_never_wait_behind_a_sync(site: SiteFolder) -> None:
    site.add("a.md", title="a")
    config = site.config()
    open_index(config).sync_all()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_SYNC, str(config.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        read: list[list[str]] = []
        reader = threading.Thread(
            target=lambda: read.append([e.title for e in SiteIndex(config).entries(None, 0, 9)])
        )
        reader.start()
        reader.join(timeout=20)  # the sync holds on for 120 s: a reader that waited for it would still wait
        assert read == [["a"]]
    finally:
        holder.kill()
        holder.wait()


def reader_calls(monkeypatch: pytest.MonkeyPatch, index: SiteIndex, method: str) -> list[str | None]:
    """The feed (slug) of each call of the index reader's `method` from now on."""
    slugs: list[str | None] = []
    reader_type = type(index.reader)
    real = getattr(reader_type, method)

    def recorded(reader: object, slug: str | None, *args: object) -> object:
        slugs.append(slug)
        return real(reader, slug, *args)

    monkeypatch.setattr(reader_type, method, recorded)
    return slugs


def test_every_page_of_a_feed_is_read_from_where_it_starts(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 23 posts, three a day at the same minute (ties go by path), in two categories, 5 a page.
    for number in range(23):
        day = 1 + number // 3
        site.add(
            f"2021-12-{day:02d}-p{number:02d}.md",
            title=f"p{number:02d}",
            date=f"2021-12-{day:02d} 10:00:00 +0800",
            categories="big" if number % 4 else "small",
        )
    index = open_index(site.config(feed_entries=5))
    index.sync_all()
    statements: list[tuple[str, Sequence[object]]] = []
    real = Connection.execute

    def recorded(self: Connection, sql: str, params: Sequence[object] = ()) -> object:
        statements.append((sql, params))
        return real(self, sql, params)

    monkeypatch.setattr(Connection, "execute", recorded)
    in_order_big = ["newest", *(entry.title for entry in index.entries("big", 0, 100))]
    for slug in (None, "big", "small"):
        in_order = [entry.title for entry in index.entries(slug, 0, 100)]
        pages = index.site.page_count(slug, 5)
        assert pages == -(-len(in_order) // 5)
        paged = []
        for number in range(1, pages + 1):
            page = index.site.feed_page(slug, number)
            assert page is not None and page.last_page == pages
            paged += [entry.title for entry in page.entries]
        assert paged == in_order  # nothing twice, nothing left out, across the ties
        assert index.site.feed_page(slug, pages + 1) is None
    assert not [sql for sql, _ in statements if "OFFSET" in sql.upper()]
    if site.database is None:  # a page far down is found by a search of the date index from its start
        sql, params = next(each for each in reversed(statements) if "c.published_ts <= ?" in each[0])
        with index.reader.backend.reading() as conn:
            plan = " ".join(str(row["detail"]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert (
            "SEARCH c USING COVERING INDEX post_categories_by_date (slug=? AND visible=? AND published_ts<?)"
            in plan
        )
    listing = index.site.listing("big", 1)
    assert listing is not None and len(listing.headlines) == 17 and index.site.listing("big", 2) is None

    # A post added: the pages are found again (the feed's version changed), not served stale; the
    # first page, which readers poll after every change, without a pass over the whole feed.
    passes = reader_calls(monkeypatch, index, "page_starts")
    site.add("2021-12-30-newest.md", title="newest", date="2021-12-30 10:00:00 +0800", categories="big")
    index.sync_all()
    index.version("big")  # caught up (with PostgreSQL a notice may come a moment later)
    first = index.site.feed_page("big", 1)
    assert first is not None and first.entries[0].title == "newest" and first.last_page == 4
    assert passes == []
    second = index.site.feed_page("big", 2)
    assert second is not None and second.entries[0].title == in_order_big[5]
    assert index.site.feed_page("big", 3) is not None and passes == ["big"]  # once for the version


def test_a_feed_is_counted_once_for_its_version(site: SiteFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    # An export asks for every page of every feed: each must not count the whole feed again (the site
    # feed of 100,000 posts has 5,000 pages a format).
    for number in range(12):
        site.add(
            f"2021-12-{1 + number:02d}-p{number:02d}.md",
            title=f"p{number:02d}",
            date=f"2021-12-{1 + number:02d} 10:00:00 +0800",
            categories="big",
        )
    index = open_index(site.config(feed_entries=5))
    index.sync_all()
    index.version("big")  # caught up (with PostgreSQL a notice may come a moment later)
    counted = reader_calls(monkeypatch, index, "feed_size")
    for slug in (None, "big"):
        for number in (1, 2, 3):
            page = index.site.feed_page(slug, number)
            assert page is not None and page.last_page == 3
        assert index.site.page_count(slug, 5) == 3
    category = index.site.category("big")
    assert category is not None and category.count == 12
    assert counted == [None, "big"]

    # A post added: counted again, once, and the pages say so.
    site.add("2021-12-30-newest.md", title="newest", date="2021-12-30 10:00:00 +0800", categories="big")
    index.sync_all()
    index.version("big")  # caught up with the change
    first = index.site.feed_page("big", 1)
    assert first is not None and first.entries[0].title == "newest" and first.last_page == 3
    category = index.site.category("big")
    assert category is not None and category.count == 13
    assert counted == [None, "big", "big"]


def test_a_feed_page_asked_for_again_is_read_once_for_its_version(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An export builds each page in Atom, RSS and JSON Feed in turn: the posts are read once.
    for number in range(8):
        day = f"2021-12-0{1 + number}"
        site.add(f"{day}-p{number}.md", title=f"p{number}", date=f"{day} 10:00:00 +0800", categories="big")
    index = open_index(site.config(feed_entries=5))
    index.sync_all()
    index.version("big")  # caught up (with PostgreSQL a notice may come a moment later)
    read = reader_calls(monkeypatch, index, "posts")
    pages = [index.site.feed_page("big", 2) for _ in range(3)]
    assert pages[0] is not None and [entry.title for entry in pages[0].entries] == ["p2", "p1", "p0"]
    assert read == ["big"]
    index.site.feed_page("big", 1)
    index.site.feed_page("big", 2)  # only the last page is kept
    assert read == ["big"] * 3

    site.add("2021-12-09-p8.md", title="p8", date="2021-12-09 10:00:00 +0800", categories="big")
    index.sync_all()
    index.version("big")
    again = index.site.feed_page("big", 2)
    assert again is not None and [entry.title for entry in again.entries] == ["p3", "p2", "p1", "p0"]
    assert read == ["big"] * 4


def test_a_cold_sync_reads_in_processes_what_one_process_reads(
    site: SiteFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feedhub.index.write as write

    for number in range(1200):
        site.add(
            f"2021-12-{1 + number % 28:02d}-p{number}.md", title=f"p{number}", categories=f"c{number % 7}"
        )
    site.add("2021-12-01-p0.markdown", title="p0 again", categories="c0")  # wants p0's permalink
    site.add("broken.md", "---\ntitle: [unclosed\n---\nbody")
    site.add("undated.md", "---\ntitle: no date\n---\nbody")
    # The first and the last batch want one permalink and one id: the first in path order has them.
    for name in ("0-first.md", "~last.md"):
        site.add(name, title=name, categories="c1", permalink="/wanted/", id="urn:wanted")
    monkeypatch.setattr(write, "_MANY_BATCHES", 2)  # a bulk write, stored by the pool's processes
    monkeypatch.setattr(write, "_BULK_BATCH", 300)  # in 5 batches, in turns
    monkeypatch.setattr(write, "processes_per_core", lambda: 2)
    pooled = open_index(site.config())
    report = pooled.sync_all()
    assert report.added == 1205 and sorted(problem.path for problem in report.skipped) == [
        "broken.md",
        "undated.md",
    ]
    held = {entry.title: (entry.permalink, entry.entry_id) for entry in pooled.entries("c1", 0, 2000)}
    assert held["0-first.md"] == ("/wanted/", "urn:wanted")
    assert held["~last.md"][0] != "/wanted/" and held["~last.md"][1] != "urn:wanted"
    monkeypatch.setattr(write, "processes_per_core", lambda: 0)
    alone = open_index(site.config(data_dir=str(tmp_path / "alone"), database=None))
    assert alone.sync_all() == report

    def shown(index: SiteIndex, slug: str | None) -> list[tuple[str, str, str]]:
        return [(entry.title, entry.entry_id, entry.permalink) for entry in index.entries(slug, 0, 2000)]

    for slug in (None, "c0", "c6"):  # the same posts, ids and permalinks (found in the processes)
        assert shown(pooled, slug) == shown(alone, slug)


def test_a_sync_whose_reading_processes_die_reads_the_rest_itself(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import feedhub.index.write as write

    for number in range(1200):
        site.add(f"2021-12-{1 + number % 28:02d}-p{number}.md", title=f"p{number}")
    monkeypatch.setattr(write, "_MANY_BATCHES", 2)
    monkeypatch.setattr(write, "processes_per_core", lambda: 2)
    monkeypatch.setattr(write, "process_pool", dying_pool)
    index = open_index(site.config())
    assert index.sync_all().added == 1200
    assert len(index.entries(None, 0, 2000)) == 1200
    assert "the processes storing posts died; this one does the rest" in caplog.text


def test_a_sync_whose_storing_processes_are_killed_midway_ends_complete(
    site: SiteFolder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import feedhub.index.write as write

    for number in range(3000):
        site.add(
            f"2021-12-{1 + number % 28:02d}-p{number}.md", title=f"p{number}", categories=f"c{number % 7}"
        )
    monkeypatch.setattr(write, "_MANY_BATCHES", 2)
    monkeypatch.setattr(write, "_BULK_BATCH", 100)  # 30 turns
    monkeypatch.setattr(write, "processes_per_core", lambda: 2)
    config = site.config()
    index = open_index(config)
    reports: list[SyncReport] = []
    sync = threading.Thread(target=lambda: reports.append(index.sync_all()))
    sync.start()
    deadline = time.monotonic() + 60
    while stored_posts(config) == 0 and time.monotonic() < deadline:  # a turn or more is committed
        time.sleep(0.005)
    stored_before = stored_posts(config)
    assert 0 < stored_before < 3000 and kill_all(pool_processes()) >= 1  # -9, in or between turns
    sync.join(120)
    assert reports and not reports[0].skipped  # the sync ended, without an error
    assert stored_posts(config) == 3000 and len(index.entries(None, 0, 5000)) == 3000
    assert "the processes storing posts died; this one does the rest" in caplog.text
    again = index.sync_all()
    assert (again.added, again.updated, again.removed) == (0, 0, 0)


def stored_posts(config: Config) -> int:
    with open_storage(config).index.reading() as conn:
        return int(conn.execute("SELECT count(*) AS n FROM posts").fetchone()["n"])


def dying_pool(processes: int, _preload: str, **_options: object) -> ProcessPoolExecutor:
    """A pool whose processes die as they start (as a worker killed, or one that cannot start)."""
    return ProcessPoolExecutor(
        processes, mp_context=get_context("forkserver"), initializer=os._exit, initargs=(1,)
    )
