"""Hostile input and bad luck, through real processes, real files and real HTTP (issue 7).

Each test is the regression test of one reproduced defect: the input an attacker (or a
broken upstream, or a crash) produces, and what feedhub must do with it: refuse or
neutralize it with a reason naming the file or source, and go on with everything else.
"""

from __future__ import annotations

import fcntl
import html.parser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

import feedparser
import pytest

from feedhub.index.write import SCAN_LOCK
from feedhub.limits import MAX_CONTENT_BYTES, MAX_TITLE_CHARS, MIB, REQUEST_HEAD_TIMEOUT
from feedhub.posts import read_post_file
from feedhub.storage import INDEX_FILE
from feedhub.storage.sqlite import SqliteBackend
from tests.helpers import ServeProcess, Server, SiteFolder, feedhub, open_index, post_text, request, wait_for
from tests.upstream import Response, Upstream, item, rss

GIB = 1024 * MIB
SHANGHAI = "Asia/Shanghai"
Serve = Callable[..., Server]


def posts_by_source_id(site: SiteFolder) -> dict[str, list[str]]:
    """Every post file read back, by the upstream identity it records."""
    from zoneinfo import ZoneInfo

    found: dict[str, list[str]] = {}
    for path in sorted(site.posts.glob("*.md")):
        file = read_post_file(site.posts, path.name, ZoneInfo(SHANGHAI))
        assert file is not None and file.post is not None, (path.name, file and file.problem)
        found.setdefault(file.post.source_id or "", []).append(path.name)
    return found


def poll_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`feedhub poll --once`'s lines by source, and its summary under ''."""
    lines = result.stdout.splitlines()
    assert lines and " polled: " in lines[-1], result.stdout + result.stderr[-3000:]
    return {line.split()[0]: line for line in lines[:-1]} | {"": lines[-1]}


class Tags(html.parser.HTMLParser):
    """What an HTML fragment makes a browser build: its elements and attributes."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.feed(fragment)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


ACTIVE_ELEMENTS = {
    "script",
    "svg",
    "math",
    "iframe",
    "object",
    "embed",
    "style",
    "form",
    "base",
    "meta",
    "link",
}


def assert_inert(fragment: str) -> None:
    """Nothing in the fragment runs: no active element, no event handler, no script URL."""
    parsed = Tags(fragment)
    assert not ACTIVE_ELEMENTS & set(parsed.tags), fragment[:2000]
    assert not [name for name, _ in parsed.attributes if name.startswith("on") or name == "style"], fragment[
        :2000
    ]
    urls = [value.strip().lower() for name, value in parsed.attributes if name in ("href", "src")]
    assert all(url.startswith(("http://", "https://", "mailto:")) for url in urls), urls


# ---- 1. entity amplification, and the size caps ------------------------------------------------


def quadratic_blowup(entity_chars: int = 100_000, references: int = 10_000) -> bytes:
    """~130 KB of RSS whose one entity, referenced 10,000 times, expands to 1,000,000,000 characters."""
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        f'<!ENTITY a "{"A" * entity_chars}">\n]>\n'
        '<rss version="2.0"><channel><title>Bomb</title><link>https://bomb.example/</link>'
        "<description>d</description><item><title>boom</title><guid>b1</guid>"
        f"<description>{'&a;' * references}</description></item></channel></rss>"
    ).encode()


def test_entity_amplification_is_defused(site: SiteFolder, upstream: Upstream) -> None:
    upstream.feed("/bomb", quadratic_blowup())
    upstream.feed("/fine", rss(item("fine", guid="f1")))
    site.write_sources(
        {"id": "bomb", "url": upstream.url("/bomb")}, {"id": "fine", "url": upstream.url("/fine")}
    )
    config = str(site.write_config())
    # The poller used to reach 8.9 GB here; 1 GiB of address space is plenty for it now.
    result = feedhub("poll", "--once", "--config", config, memory=GIB)
    lines = poll_lines(result)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert lines["bomb"].split()[1] == "new" and lines["fine"].split()[1] == "new"
    sizes = [path.stat().st_size for path in site.posts.glob("*.md")]
    assert len(sizes) == 2 and max(sizes) < 100_000
    check = feedhub("check", "--config", config, memory=GIB)
    assert check.returncode == 0, check.stdout + check.stderr[-2000:]


def test_oversized_entries_are_cut_and_oversized_posts_skipped(site: SiteFolder, upstream: Upstream) -> None:
    big = "<p>" + "正文" * (3 * MIB // 6) + "</p>"  # 3 MiB of UTF-8
    upstream.feed("/big", rss(item("标题" * 2000, guid="g1", description=big)))
    site.write_sources({"id": "big", "url": upstream.url("/big")})
    site.add("huge.md", post_text(title="huge", body="x" * (9 * MIB)))
    site.add("small.md", post_text(title="small"))
    config = str(site.write_config())
    result = feedhub("poll", "--once", "--config", config, memory=GIB)
    assert "big" in poll_lines(result) and "entries cut to the size limits" in poll_lines(result)["big"]
    (written,) = [path for path in site.posts.glob("*.md") if path.name not in ("huge.md", "small.md")]
    assert written.stat().st_size < MAX_CONTENT_BYTES + 20_000
    check = feedhub("check", "--config", config, memory=GIB)
    assert check.returncode == 1
    assert re.search(r"huge\.md: skipped: larger than the 8 MiB limit for a post", check.stdout), check.stdout
    assert "2 posts in" in check.stdout  # the written one and small.md
    from zoneinfo import ZoneInfo

    post = read_post_file(site.posts, written.name, ZoneInfo(SHANGHAI))
    assert post is not None and post.post is not None
    assert len(post.post.title) <= MAX_TITLE_CHARS and post.post.title.endswith("…")
    assert post.post.body.count("[…]") == 1


# ---- 2. a crash during a first poll ------------------------------------------------------------


def many_items(count: int, filler: int = 0) -> bytes:
    """Items without dates, items sharing one date, items with dates of their own."""
    items = []
    for number in range(count):
        if number % 3 == 0:
            date = None
        elif number % 3 == 1:
            date = "Wed, 08 Dec 2021 10:35:30 +0800"
        else:
            date = f"Wed, 08 Dec 2021 {number % 24:02d}:{number % 60:02d}:00 +0800"
        items.append(
            item(
                f"entry {number}",
                guid=f"id-{number}",
                date=date,
                description=f"<p>{number} {'x' * filler}</p>",
            )
        )
    return rss(*items)


def test_a_first_poll_killed_part_way_loses_nothing(site: SiteFolder, upstream: Upstream) -> None:
    count = 1500
    upstream.feed("/many", many_items(count))
    site.write_sources(
        {"id": "many", "url": upstream.url("/many"), "backfill": 10_000, "max_entries": 10_000}
    )
    config = str(site.write_config())
    command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", config]
    for kill_at in (50, 400, 900):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        reached = wait_for(
            lambda at=kill_at: len(list(site.posts.glob("*.md"))) >= at, timeout=60, interval=0.005
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert reached, f"the poll never wrote {kill_at} posts"
    left_behind = list(site.posts.glob(".*.tmp"))
    final = feedhub("poll", "--once", "--config", config)
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]
    merged = posts_by_source_id(site)
    assert sorted(merged) == sorted(f"id-{number}" for number in range(count))  # every one, once
    assert all(len(paths) == 1 for paths in merged.values())
    assert not any(path.exists() for path in left_behind)  # the kill's temporaries are cleaned at start
    again = feedhub("poll", "--once", "--config", config)
    assert "0 new posts" in poll_lines(again)[""]


def namespaces_can_mount() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || exit 1"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_a_full_then_read_only_disk_is_an_error_of_the_source_and_loses_nothing(
    site: SiteFolder, upstream: Upstream, tmp_path: Path
) -> None:
    """A real ENOSPC and EROFS: the posts folder is a small tmpfs in a mount namespace of the test's own."""
    if not namespaces_can_mount():
        pytest.skip("this machine allows no mount namespace (unshare -rm), so no real full disk")
    count = 300
    upstream.feed("/many", many_items(count, filler=3000))  # about 1 MB of posts for a 400 KB disk
    upstream.feed("/other", rss(item("other", guid="o1")))
    site.write_sources(
        {"id": "many", "url": upstream.url("/many"), "backfill": 10_000, "max_entries": 10_000},
        {"id": "other", "url": upstream.url("/other"), "category": "other"},
    )
    config = site.write_config()
    kept = tmp_path / "kept"
    kept.mkdir()
    poll = f"{sys.executable} -m feedhub poll --once --config {config}"
    script = f"""
        set -u
        mount -t tmpfs -o size=400k tmpfs {site.posts}
        {poll} > {tmp_path}/full.out 2>&1; echo $? > {tmp_path}/full.status
        mount -o remount,ro {site.posts}
        {poll} > {tmp_path}/readonly.out 2>&1; echo $? > {tmp_path}/readonly.status
        mount -o remount,rw,size=64m {site.posts}
        {poll} > {tmp_path}/roomy.out 2>&1; echo $? > {tmp_path}/roomy.status
        cp -a {site.posts}/. {kept}/
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True, timeout=300)
    full = (tmp_path / "full.out").read_text()
    assert (tmp_path / "full.status").read_text().strip() == "1", full
    assert re.search(
        rf"^many\s+error\s+cannot write posts to {site.posts}: No space left on device", full, re.M
    ), full
    assert re.search(r"^\d+ sources? polled: ", full, re.M)  # the summary, and every source's line
    # a folder read-only from the start is refused before anything is polled: one line, exit 2
    readonly = (tmp_path / "readonly.out").read_text()
    assert (tmp_path / "readonly.status").read_text().strip() == "2", readonly
    assert readonly.strip() == (
        f"feedhub: {config}: posts_dir: cannot write to folder {site.posts}: Read-only file system"
    )
    assert (tmp_path / "roomy.status").read_text().strip() == "0", (tmp_path / "roomy.out").read_text()
    shutil.rmtree(site.posts)
    shutil.copytree(kept, site.posts)
    merged = posts_by_source_id(site)
    assert {f"id-{number}" for number in range(count)} <= set(merged)
    assert all(len(paths) == 1 for paths in merged.values())


# ---- 3. dates out of range ---------------------------------------------------------------------


def test_out_of_range_dates_are_skipped_and_never_stop_indexing(site: SiteFolder, serve: Serve) -> None:
    site.add("good.md", title="good", date="2022-01-01 10:00:00")
    config = site.config()
    server = serve(config)
    # Written together: the watcher syncs them as one batch, which one bad date used to abort.
    site.add("year-one.md", title="year one", date="0001-01-01 00:00:00 +0800")
    site.add("year-9999.md", title="year 9999", date="9999-12-31 23:00:00 -0500")
    site.add("also-good.md", title="also good", date="2022-01-02 10:00:00")
    site.add("utc-year-one.md", title="utc year one", date="0001-01-01 00:00:00 +0000", categories="old")

    def titles() -> list[str]:
        return [entry.title for entry in feedparser.parse(server.get("/feeds/news.atom").body).entries]

    assert wait_for(lambda: titles() == ["also good", "good"]), titles()
    health = json.loads(server.get("/healthz").body)
    skipped = {problem["file"]: problem["reason"] for problem in health["skipped"]}
    assert set(skipped) == {"year-one.md", "year-9999.md"}
    assert all("out of range" in reason for reason in skipped.values()), skipped
    assert server.get("/old/0001/01/01/utc-year-one.html").status == 200  # in range: a post like others
    for path in ("/feed.atom", "/feed.rss", "/feed.json", "/", "/feeds/old.rss"):
        assert server.get(path).status == 200, path
    check = feedhub("check", "--config", str(config.path))
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert re.search(r"year-one\.md: skipped: date .* is out of range", check.stdout), check.stdout


# ---- 4. live markup in RSS descriptions --------------------------------------------------------


def test_no_html_field_of_any_format_carries_live_markup(
    site: SiteFolder, upstream: Upstream, serve: Serve
) -> None:
    attack = "&lt;svg onload=alert(1)&gt; &lt;img src=x onerror=alert(2)&gt;"
    site.add("post.md", title="a post", body=f"Text: {attack} end.", description=None)
    upstream.feed("/feed", rss(item("upstream", guid="u1", description=f"<p>Upstream {attack}</p>")))
    site.write_sources({"id": "up", "url": upstream.url("/feed")})
    config = site.config(description="Site <svg onload=alert(3)>")
    assert feedhub("poll", "--once", "--config", str(config.path)).returncode == 0
    server = serve(config)
    rss_feed = ElementTree.fromstring(server.get("/feed.rss").body)
    descriptions = [element.text or "" for element in rss_feed.iter("description")]
    assert len(descriptions) == 3  # the channel's and two items'
    assert any("svg onload" in text for text in descriptions)  # the text is there, as text
    for text in descriptions:
        assert_inert(text)
    atom = ElementTree.fromstring(server.get("/feed.atom").body)
    namespace = "{http://www.w3.org/2005/Atom}"
    for element in atom.iter(f"{namespace}content"):
        assert element.get("type") == "html"
        assert_inert(element.text or "")
    for element in (*atom.iter(f"{namespace}summary"), *atom.iter(f"{namespace}subtitle")):
        assert element.get("type", "text") == "text"  # Atom says what text is: no guessing
    for entry in json.loads(server.get("/feed.json").body)["items"]:
        assert_inert(entry["content_html"])


# ---- 5. a YAML alias bomb in front matter ------------------------------------------------------


ALIAS_BOMB = """---
title: bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
date: *h
---
body
"""


def test_a_yaml_alias_bomb_is_refused_in_a_few_bytes(site: SiteFolder, serve: Serve) -> None:
    site.add("bomb.md", ALIAS_BOMB)
    site.add("deep.md", "---\ntitle: deep\nx: " + "[" * 100_000 + "]" * 100_000 + "\n---\nbody\n")
    site.add("fine.md", title="fine")
    config = site.config()
    check = feedhub("check", "--config", str(config.path), memory=GIB, timeout=60)
    assert check.returncode == 1, check.stdout + check.stderr[-2000:]
    assert len(check.stdout) < 2_000, check.stdout[:2_000]
    assert re.search(r"bomb\.md: skipped: front matter is not valid YAML: expands to more than", check.stdout)
    assert re.search(
        r"deep\.md: skipped: front matter is not valid YAML: nests 100000 levels deep", check.stdout
    )
    server = serve(config)
    health = server.get("/healthz")
    assert health.status == 200 and len(health.body) < 3_000
    assert [entry.title for entry in feedparser.parse(server.get("/feed.atom").body).entries] == ["fine"]


# ---- 6. slow and idle clients ------------------------------------------------------------------


@pytest.fixture
def served(site: SiteFolder, tmp_path: Path) -> Iterator[ServeProcess]:
    site.add("post.md", title="a post")
    server = ServeProcess(site.write_config(), tmp_path / "serve.log", "--no-scheduler")
    yield server
    server.stop()


def test_hundreds_of_slow_and_idle_clients_do_not_stop_the_server(served: ServeProcess) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    slow: list[socket.socket] = []
    try:
        for number in range(300):  # slowloris: half a request each, then silence
            client = socket.create_connection((host, int(port)), timeout=10)
            client.sendall(b"GET /feed.atom HTTP/1.1\r\nHost: x\r\nX-Part: " + str(number).encode())
            slow.append(client)
        slow += [socket.create_connection((host, int(port)), timeout=10) for _ in range(100)]  # idle
        for _ in range(20):
            reply = request(served.url + "/feed.atom")  # each waits 30 s at most
            assert reply.status == 200
        # Whoever does not finish a request in time is answered 408 and let go.
        time.sleep(REQUEST_HEAD_TIMEOUT + 2.5)
        answer = slow[0].recv(200)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    finally:
        for client in slow:
            client.close()


def test_a_kept_alive_connection_sending_half_a_request_holds_no_thread(served: ServeProcess) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    stalled = []
    try:
        for _ in range(16):  # more than the 2 workers × 4 threads
            client = socket.create_connection((host, int(port)), timeout=10)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next one, never finished
            stalled.append(client)
        assert all(request(served.url + "/").status == 200 for _ in range(10))
        big = socket.create_connection((host, int(port)), timeout=10)
        big.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        assert big.recv(200).startswith(b"HTTP/1.1 413")
        big.close()
    finally:
        for client in stalled:
            client.close()


# ---- 7. server-side request forgery through redirects ------------------------------------------


def test_redirects_to_internal_addresses_are_refused_unless_allowed(
    site: SiteFolder, upstream: Upstream
) -> None:
    internal = Upstream()  # another service on the machine, which nobody configured
    try:
        internal.feed("/secret", rss(item("internal secret", guid="s1")))
        target = internal.url("/secret")
        upstream.script("/moved", Response(301, headers={"Location": target}))
        upstream.script(
            "/by-name", Response(302, headers={"Location": target.replace("127.0.0.1", "localhost")})
        )
        upstream.feed("/same-server", rss(item("same server", guid="m1")))
        upstream.script("/inside", Response(302, headers={"Location": "/same-server"}))
        site.write_sources(
            {"id": "moved", "url": upstream.url("/moved")},
            {"id": "byname", "url": upstream.url("/by-name")},
            {"id": "inside", "url": upstream.url("/inside")},
        )
        config = str(site.write_config())
        result = feedhub("poll", "--once", "--config", config)
        lines = poll_lines(result)
        assert re.search(
            rf"moved\s+error\s+redirected to {re.escape(target)}: refused: 127\.0\.0\.1 is a loopback",
            lines["moved"],
        )
        assert "allow_private_addresses" in lines["moved"]
        assert re.search(
            r"byname\s+error\s+redirected to http://localhost:\d+/secret: refused: localhost is .*, a loop",
            lines["byname"],
        )
        assert lines["inside"].split()[1] == "new"  # the operator's own server may redirect within itself
        assert internal.hits("/secret") == []  # never even asked
        status = feedhub("poll", "--once", "--source", "moved", "--config", config)
        assert "error" in poll_lines(status)["moved"]  # the 301 was not recorded: the same URL again
        assert len(upstream.hits("/moved")) == 2

        site.write_sources(
            {"id": "moved", "url": upstream.url("/moved"), "allow_private_addresses": True},
            # Another category: in moved's, byname's entry (the same story) would be a duplicate.
            {"id": "byname", "url": upstream.url("/by-name"), "category": "elsewhere"},
        )
        allowed = poll_lines(feedhub("poll", "--once", "--config", config))
        assert allowed["moved"].split()[1] == "new" and allowed["byname"].split()[1] == "error"
        site.write_config(allow_private_addresses=True)  # the same key, for every source
        assert poll_lines(feedhub("poll", "--once", "--config", config))["byname"].split()[1] == "new"
    finally:
        internal.stop()


# ---- 8. exceptions that escaped a poll ---------------------------------------------------------


def test_character_references_beyond_unicode_fail_nothing(site: SiteFolder, upstream: Upstream) -> None:
    references = "&#x110000; &#99999999999999999999; &#xD800; &#1114112;"
    upstream.feed("/refs", rss(item(f"refs {references}", guid="r1", description=f"<p>{references}</p>")))
    upstream.feed(
        "/refs-cdata",
        rss(
            item("cdata", guid="r2", description=f"<p>{references}</p>"),
            extra=f"<copyright>{references}</copyright>",
        ),
    )
    upstream.feed("/fine", rss(item("fine", guid="f1")))
    site.write_sources(
        {"id": "refs", "url": upstream.url("/refs")},
        {"id": "cdata", "url": upstream.url("/refs-cdata")},
        {"id": "fine", "url": upstream.url("/fine")},
    )
    result = feedhub("poll", "--once", "--config", str(site.write_config()))
    lines = poll_lines(result)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert {source: line.split()[1] for source, line in lines.items() if source} == {
        "refs": "new",
        "cdata": "new",
        "fine": "new",
    }
    assert "Traceback" not in result.stderr
    titles = sorted(post for post in os.listdir(site.posts))
    assert len(titles) == 3


# ---- 9. special files in the posts folder ------------------------------------------------------


def test_only_regular_files_inside_the_folder_are_read(
    site: SiteFolder, tmp_path: Path, serve: Serve
) -> None:
    os.mkfifo(site.posts / "fifo.md")
    (site.posts / "zero.md").symlink_to("/dev/zero")
    secret = tmp_path / "secret.md"
    secret.write_text(post_text(title="not for publishing"), "utf-8")
    (site.posts / "outside.md").symlink_to(secret)
    site.add("_parts/real.md", title="linked from inside")
    (site.posts / "inside.md").symlink_to(site.posts / "_parts" / "real.md")
    site.add("fine.md", title="fine")
    config = site.config()
    check = feedhub("check", "--config", str(config.path), memory=GIB, timeout=60)  # a FIFO used to hang it
    assert check.returncode == 1
    assert "fifo.md: skipped: not a regular file (a FIFO)" in check.stdout
    assert re.search(
        r"zero\.md: skipped: a symbolic link to '/dev/zero', outside the posts folder", check.stdout
    )
    assert re.search(r"outside\.md: skipped: a symbolic link to .*secret\.md', outside", check.stdout)
    assert "2 posts in" in check.stdout
    server = serve(config)
    titles = sorted(entry.title for entry in feedparser.parse(server.get("/feed.atom").body).entries)
    assert titles == ["fine", "linked from inside"]
    os.mkfifo(site.posts / "later.md")  # while serving: the watcher must not hang on it either
    site.add("after.md", title="after")
    assert wait_for(lambda: b"after" in server.get("/feed.atom").body)
    skipped = {problem["file"] for problem in json.loads(server.get("/healthz").body)["skipped"]}
    assert {"fifo.md", "zero.md", "outside.md", "later.md"} <= skipped


# ---- 10. what the aggregator writes, it reads back ---------------------------------------------


def test_hostile_titles_and_old_dates_become_readable_posts(site: SiteFolder, upstream: Upstream) -> None:
    upstream.feed(
        "/feed",
        rss(
            item(
                "bidi \u202eevil\u202c and zero\u200bwidth", guid="c2", date="Sun, 31 Dec 1899 23:00:00 -1000"
            ),
            item("year one", guid="c3", date="0001-01-01T00:00:00Z"),
            item("year 9999", guid="c4", date="Fri, 31 Dec 9999 23:59:59 -1200"),
        ),
    )
    # feedparser reads C1 controls in XML as the Windows-1252 characters they were meant to be;
    # a JSON Feed hands them over as they are.
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {"id": "j1", "title": "C1 \x85controls\x80\x9f here", "content_text": "t"},
            {"id": "j2", "title": "old", "content_text": "t", "date_published": "1890-05-01T10:00:00+08:05"},
        ],
    }
    upstream.feed("/json", json.dumps(document).encode(), "application/feed+json")
    site.write_sources({"id": "up", "url": upstream.url("/feed")}, {"id": "js", "url": upstream.url("/json")})
    config = str(site.write_config(timezone=SHANGHAI))
    assert feedhub("poll", "--once", "--config", config).returncode == 0
    check = feedhub("check", "--config", config)
    assert check.returncode == 0, check.stdout  # every post it wrote reads back
    assert "5 posts in" in check.stdout
    texts = "".join(path.read_text("utf-8") for path in site.posts.glob("*.md"))
    assert not re.search("[\x80-\x9f\u202a-\u202e\u200b]", texts)
    assert "C1 controls here" in texts and "bidi evil and zerowidth" in texts


# ---- 11. a restart must not serve what the folder no longer holds ------------------------------


def test_a_restart_never_serves_deleted_posts_as_fresh(site: SiteFolder, serve: Serve) -> None:
    site.add("kept.md", title="kept")
    deleted = site.add("deleted.md", title="deleted")
    config = site.config()
    first = serve(config)
    assert b"deleted" in first.get("/feed.atom").body
    first.stop()
    deleted.unlink()  # while no server runs: no watcher sees it
    second = serve(config)
    reply = second.get("/feed.atom")
    assert b"deleted" not in reply.body and b"kept" in reply.body
    assert json.loads(second.get("/healthz").body)["index"] == "ready"


def test_an_index_still_syncing_answers_no_cache_and_says_so(site: SiteFolder, serve: Serve) -> None:
    site.add("post.md", title="post")
    config = site.config()
    open_index(config)  # an index from an earlier run, its settings current
    with open(SqliteBackend(config.data_dir / INDEX_FILE).lock_path(SCAN_LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process syncs: this worker's first sync must wait
        server = serve(config, initial_sync_wait=0.2)
        early = server.get("/feed.atom")
        assert early.headers["cache-control"] == "no-cache"
        assert json.loads(server.get("/healthz").body)["index"] == "syncing"
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert wait_for(lambda: json.loads(server.get("/healthz").body)["index"] == "ready")
    assert server.get("/feed.atom").headers["cache-control"] == "public, max-age=300"


# ---- 12. and the rest ---------------------------------------------------------------------------


def test_page_numbers_that_are_not_ascii_digits_are_a_400(site: SiteFolder, serve: Serve) -> None:
    site.add("post.md", title="post")
    server = serve(site.config())
    for page in ("²", "٣", "9" * 5000, "-1", "1.0"):
        assert server.get(f"/feed.atom?page={quote(page)}").status == 400, page
        assert server.get(f"/category/news.html?page={quote(page)}").status == 400, page
    assert server.get("/feed.atom?page=1").status == 200
