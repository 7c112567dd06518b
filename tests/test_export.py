"""`feedhub build`: the export is what the server sends, byte for byte, and rebuilds only what changed."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from feedhub.export import MANIFEST, NGINX_SNIPPET, STATE_FOLDER, Exporter, paged_file, permalink_file
from tests.helpers import BASE_URL, SiteFolder, open_index, post_text, request, wait_for
from tests.postgres import free_port

SLUGS = ["news", "21shijijingjibaodao 21caijingAPP", "国内"]


@pytest.fixture
def news(site: SiteFolder) -> SiteFolder:
    for number in range(7):
        slug = SLUGS[number % len(SLUGS)]
        site.add(
            f"2021-12-0{number + 1}-post{number}.md",
            title=f"标题 {number}",
            date=f"2021-12-0{number + 1} 10:00:00",
            categories=slug,
            tags=f"{slug} 新闻",
        )
    site.write_config(feed_entries=2, language="zh-CN")
    return site


def export(site: SiteFolder, out: Path):
    config = site.config(feed_entries=2, language="zh-CN")
    index = open_index(config)
    index.sync_all()
    return Exporter(index.site, out).run()


def manifest(out: Path) -> dict:
    return json.loads((out / STATE_FOLDER / MANIFEST).read_text("utf-8"))


def url_of(path: str) -> str:
    """The URL the server publishes a file of the export at."""
    if path == "index.html":
        return "/"
    if match := re.fullmatch(r"opml\.(\w+)\.opml", path):
        return f"/opml?format={match.group(1)}"
    if path.endswith("/index.html"):
        return "/" + quote(path.removesuffix("index.html"))
    if match := re.fullmatch(r"(.+)\.page(\d+)\.(\w+)", path):
        return f"/{quote(match.group(1))}.{match.group(3)}?page={match.group(2)}"
    return "/" + quote(path)


def test_paths() -> None:
    assert paged_file("feeds/a b.atom", 1) == "feeds/a b.atom"
    assert paged_file("feeds/a b.atom", 3) == "feeds/a b.page3.atom"
    assert permalink_file("/news/2021/12/08/x.html") == "news/2021/12/08/x.html"
    assert permalink_file("/news/2021/12/08/x/") == "news/2021/12/08/x/index.html"


def test_the_export_is_what_the_server_sends(news: SiteFolder, serve, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = export(news, out)
    files = manifest(out)
    assert report.written == len(files) and report.unchanged == report.removed == 0
    assert {"feed.atom", "feed.xml", "feed.page4.json", "index.html", "opml.rss.opml"} <= set(files)
    assert "feeds/news.page2.rss" in files and "feeds/21shijijingjibaodao 21caijingAPP.rss" in files
    assert "category/国内.html" in files and "news/2021/12/01/post0.html" in files
    server = serve(news.config(feed_entries=2, language="zh-CN"))
    for path in files:
        if path == "404.html":
            continue
        reply = server.get(url_of(path))
        body = (out / path).read_bytes()
        assert reply.status == 200, path
        assert reply.body == body, path
        assert gzip.decompress((out / f"{path}.gz").read_bytes()) == body
        assert files[path]["digest"] == reply.headers["etag"].strip('"')


def test_a_new_post_rewrites_the_page_of_the_one_it_follows(news: SiteFolder, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(news, out)
    newest, before = out / "news/2021/12/07/post6.html", out / "news/2021/12/04/post3.html"
    assert 'rel="prev"' not in newest.read_text("utf-8")  # the newest of its category
    unchanged = before.stat().st_mtime_ns
    news.add("2021-12-09-post9.md", title="更新", date="2021-12-09 10:00:00", categories="news")
    export(news, out)
    assert f'<a rel="prev" href="{BASE_URL}/news/2021/12/09/post9.html"' in newest.read_text("utf-8")
    assert before.stat().st_mtime_ns == unchanged  # two posts away from the new one: the same page


def test_a_second_build_rewrites_only_what_changed(news: SiteFolder, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = export(news, out)
    again = export(news, out)
    assert (again.written, again.removed, again.unchanged) == (0, 0, first.written)

    other = (out / "feeds/国内.atom").stat().st_mtime_ns
    mine = (out / "feeds/news.atom").stat().st_mtime_ns
    news.add(
        "2021-12-01-post0.md",
        post_text(title="改过", date="2021-12-01 10:00:00", categories="news", tags="news 新闻"),
    )
    changed = export(news, out)
    assert 0 < changed.written < first.written and changed.removed == 0
    assert "改过" in (out / "news/2021/12/01/post0.html").read_text("utf-8")
    assert "改过" in (out / "feeds/news.page2.atom").read_text("utf-8")
    assert (out / "feeds/news.atom").stat().st_mtime_ns == mine  # rebuilt, but its bytes did not change
    assert (out / "feeds/国内.atom").stat().st_mtime_ns == other  # another category: not even rebuilt

    (news.posts / "2021-12-02-post1.md").unlink()
    removed = export(news, out)
    assert removed.removed >= 1
    assert not (out / "21shijijingjibaodao 21caijingapp/2021/12/02/post1.html").exists()


def test_exported_files_are_for_anyone_to_read(news: SiteFolder, tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = os.umask(0o077)
    try:
        export(news, out)
        page = out / "news/2021/12/01/post0.html"
        for made in (page, Path(f"{page}.gz"), out / "feed.atom", out / "feed.xml"):
            assert stat.S_IMODE(made.stat().st_mode) == 0o644, made
        page.chmod(0o600)
        news.add(
            "2021-12-01-post0.md",
            post_text(title="改过", date="2021-12-01 10:00:00", categories="news", tags="news 新闻"),
        )
        export(news, out)
        assert "改过" in page.read_text("utf-8") and stat.S_IMODE(page.stat().st_mode) == 0o644
    finally:
        os.umask(previous)


def test_feed_xml_is_a_link_to_feed_atom(
    news: SiteFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # jekyll-feed's URL and the Atom feed are the same bytes: one file under two names, not a copy.
    out = tmp_path / "out"
    export(news, out)
    for page in ("feed", "feed.page2"):
        for suffix in ("", ".gz"):
            atom, xml = out / f"{page}.atom{suffix}", out / f"{page}.xml{suffix}"
            assert xml.stat().st_ino == atom.stat().st_ino and xml.stat().st_nlink == 2
    news.add("2021-12-30-new.md", post_text(title="新的", date="2021-12-30 10:00:00", categories="news"))
    export(news, out)
    assert "新的" in (out / "feed.xml").read_text("utf-8")
    assert (out / "feed.xml").stat().st_ino == (out / "feed.atom").stat().st_ino
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]

    # A file system without hard links: the bytes are copied.
    def refused(source: object, target: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    copied = tmp_path / "copied"
    export(news, copied)
    assert (copied / "feed.xml").read_bytes() == (copied / "feed.atom").read_bytes()
    assert (copied / "feed.xml.gz").read_bytes() == (copied / "feed.atom.gz").read_bytes()
    assert (copied / "feed.xml").stat().st_nlink == 1


def test_build_command(news: SiteFolder, tmp_path: Path) -> None:
    out = tmp_path / "site"
    command = [sys.executable, "-m", "feedhub", "build", str(out), "--config", str(news.config_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert re.search(r"(\d+) files written, 0 unchanged, 0 removed", first.stdout)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "0 files written" in second.stdout
    assert (out / STATE_FOLDER / NGINX_SNIPPET).is_file()


@pytest.fixture
def nginx(news: SiteFolder, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    out = tmp_path / "out"
    export(news, out)
    port = free_port()
    runtime = tmp_path / "nginx"
    runtime.mkdir()
    (runtime / "nginx.conf").write_text(
        f"""daemon off;
{"user root;" if os.geteuid() == 0 else ""}
pid {runtime}/nginx.pid;
error_log {runtime}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {runtime}/body;
    proxy_temp_path {runtime}/proxy;
    fastcgi_temp_path {runtime}/fastcgi;
    uwsgi_temp_path {runtime}/uwsgi;
    scgi_temp_path {runtime}/scgi;
    server {{
        listen 127.0.0.1:{port};
        include {out / STATE_FOLDER / NGINX_SNIPPET};
    }}
}}
""",
        "utf-8",
    )
    process = subprocess.Popen(
        [binary, "-c", str(runtime / "nginx.conf"), "-p", str(runtime)], stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return request(url + "/").status == 200
        except OSError:
            return False

    try:
        assert wait_for(up, timeout=15), process.stderr
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_nginx_serves_the_export_as_feedhub_does(nginx: str, news: SiteFolder, serve) -> None:
    server = serve(news.config(feed_entries=2, language="zh-CN"))
    paths = ["/feed.atom", "/feed.xml", "/feed.rss?page=2", "/feed.json?page=4", "/opml", "/opml?format=json"]
    paths += [
        "/category/%E5%9B%BD%E5%86%85.html",
        "/feeds/news.atom?page=2",
        "/news/2021/12/01/post0.html",
        "/",
    ]
    paths += ["/feeds/21shijijingjibaodao%2021caijingAPP.json"]
    for path in paths:
        ours, theirs = server.get(path), request(nginx + path)
        assert theirs.status == 200, path
        assert theirs.body == ours.body, path
        assert theirs.headers["content-type"].replace(" ", "") == ours.headers["content-type"].replace(
            " ", ""
        ), path
        assert theirs.headers["cache-control"] == ours.headers["cache-control"]
        assert theirs.headers.get("link") == ours.headers.get("link"), path  # WebSub hubs and self
    zipped = request(nginx + "/feed.atom", {"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == server.get("/feed.atom").body
    assert 'rel="hub"' in request(nginx + "/feeds/news.rss").headers["link"]
    assert request(nginx + "/feed.atom?page=9").status == 404
    assert request(nginx + "/.feedhub/manifest.json").status == 403
    # a browser gets a feed as XML, as feedhub serve sends it, for its stylesheet to show it
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/feed.atom", "/feed.xml", "/feeds/news.rss?page=2", "/feeds/news.atom"):
        ours, theirs = server.get(path, browser), request(nginx + path, browser)
        assert theirs.status == 200 and theirs.body == ours.body, path
        assert theirs.headers["content-type"].replace(" ", "") == "application/xml;charset=utf-8", path
        assert "Accept" in theirs.headers["vary"] and "Accept" in ours.headers["vary"]
    assert request(nginx + "/feed.json", browser).headers["content-type"] == "application/feed+json"
    assert request(nginx + "/__feedhub_as_xml/feed.atom").status == 404  # internal only
    moved = request(nginx + "/news/")
    assert moved.status == 301 and moved.headers["location"] == f"{BASE_URL}/category/news.html"


def test_slugs_cannot_write_outside_the_export(site: SiteFolder, tmp_path: Path) -> None:
    site.add("2021-12-01-x.md", title="x", categories="../../escaped")
    out = tmp_path / "deep" / "out"
    export(site, out)
    assert not (tmp_path / "escaped.atom").exists() and not (tmp_path / "deep" / "escaped.atom").exists()
    assert all(path.resolve().is_relative_to(out.resolve()) for path in out.rglob("*"))


def test_temporaries_of_a_killed_export_are_removed(news: SiteFolder, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(news, out)
    leftovers = [out / ".feed.atom.abcd1234.tmp", out / "feeds" / ".news.rss.zz_9z_9z.tmp"]
    kept = out / ".operator-notes.tmp"  # not a name write_atomically makes
    for path in [*leftovers, kept]:
        path.write_text("half")
    export(news, out)
    assert not any(path.exists() for path in leftovers) and kept.exists()


def test_an_export_in_processes_of_its_own_is_the_same_files(site: SiteFolder, tmp_path: Path) -> None:
    for number in range(160):
        site.add(
            f"2021-12-{1 + number % 28:02d}-post{number}.md",
            title=f"标题 {number}",
            date=f"2021-12-{1 + number % 28:02d} 10:{number % 60:02d}:00",
            categories=SLUGS[number % len(SLUGS)],
        )
    config = site.config(feed_entries=2, language="zh-CN")
    index = open_index(config)
    index.sync_all()
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    serial = Exporter(index.site, alone).run()
    parallel = Exporter(index.site, shared, processes=2).run()
    assert serial == parallel and serial.written > 500  # enough for the processes to be used
    files = {path.relative_to(alone) for path in alone.rglob("*") if path.is_file()}
    assert files == {path.relative_to(shared) for path in shared.rglob("*") if path.is_file()}
    for path in files:
        if path.parts[0] != STATE_FOLDER:
            assert (alone / path).read_bytes() == (shared / path).read_bytes(), path
    assert manifest(alone) == manifest(shared)
    again = Exporter(index.site, shared, processes=2).run()
    assert again.written == 0 and again.unchanged == serial.written
    (shared / "feed.page3.rss.gz").unlink()  # a file half gone is built again, alone
    assert Exporter(index.site, shared, processes=2).run().written == 1
    assert (shared / "feed.page3.rss.gz").read_bytes() == (alone / "feed.page3.rss.gz").read_bytes()


def test_an_export_whose_processes_die_builds_the_rest_itself(
    site: SiteFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import feedhub.export as exporting
    from tests.test_index import dying_pool

    for number in range(160):
        site.add(f"2021-12-{1 + number % 28:02d}-post{number}.md", title=f"标题 {number}", categories="news")
    config = site.config(feed_entries=2)
    index = open_index(config)
    index.sync_all()
    alone = Exporter(index.site, tmp_path / "alone").run()
    monkeypatch.setattr(exporting, "process_pool", dying_pool)
    rescued = Exporter(index.site, tmp_path / "rescued", processes=2).run()
    assert rescued == alone and "the exporting processes died" in caplog.text
