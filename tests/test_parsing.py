"""Parsing in processes of their own: the same results as in the poller's threads, and a parsing
process that dies costs only the document that killed it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import feedhub.aggregator.parsing as parsing_module
from feedhub.aggregator.entries import ParsedFeed, ParseError
from feedhub.aggregator.parsing import Parsing, _shared_pool, parse_answer
from feedhub.aggregator.sources import Source, load_sources
from tests.helpers import REPO, SiteFolder, kill_all, pool_processes
from tests.test_full_text import ARTICLE
from tests.test_html_page import LISTING, PAGE, PAGE_URL
from tests.test_json_api import ANSWER, API, FIELDS
from tests.upstream import item, rss

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")


def sources(site: SiteFolder) -> dict[str, Source]:
    listed = [
        {"id": "feed", "url": "https://up.example/feed.xml"},
        {"id": "api", "type": "json", "url": API, "items": "data.fastNewsList", "fields": FIELDS},
        {"id": "page", "type": "html", "url": PAGE_URL, "items": PAGE.items, "fields": dict(PAGE.fields)},
    ]
    document = {"sources": [{"category": "news", **source} for source in listed]}
    (site.root / "sources.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    return {source.id: source for source in load_sources(site.config())}


def answers() -> dict[str, tuple[bytes, dict[str, str], str]]:
    feed = rss(
        *(item(f"entry {n}", guid=str(n), description=f"<p>body {n}<script>x</script></p>") for n in range(5))
    )
    return {
        "feed": (feed, {"content-type": "application/rss+xml"}, "https://up.example/feed.xml"),
        "api": (json.dumps(ANSWER, ensure_ascii=False).encode(), {}, API),
        "page": (LISTING.encode("gbk"), {"content-type": "text/html"}, PAGE_URL),
    }


def big_feed(entries: int = 6000) -> bytes:
    """A document a parser takes seconds over (a few MB)."""
    text = "<p>" + "市场平稳，成交活跃。" * 40 + "</p>"
    return rss(*(item(f"entry {n}", guid=str(n), description=text) for n in range(entries)))


def test_answers_read_in_parsing_processes_as_in_the_pollers_threads(site: SiteFolder) -> None:
    configured = sources(site)
    inline, pooled = Parsing(0), Parsing(2)
    for name, (body, headers, url) in answers().items():
        expected = parse_answer(configured[name], body, headers, url)
        assert expected.entries, name
        assert inline.parse(configured[name], body, headers, url) == expected
        assert pooled.parse(configured[name], body, headers, url) == expected
    assert len(pool_processes()) >= 1  # not in this process
    with pytest.raises(ParseError, match="not a usable feed: SAXParseException"):
        pooled.parse(configured["feed"], b"\x00\x01 not xml", {}, "https://up.example/feed.xml")


def test_a_parsing_process_killed_mid_parse_costs_nothing(site: SiteFolder) -> None:
    source = sources(site)["feed"]
    parsing = Parsing(2)
    parsing.parse(source, rss(item("warm", guid="w")), {}, "https://up.example/feed.xml")  # the pool runs
    result: list[ParsedFeed] = []
    body = big_feed()
    parse = threading.Thread(
        target=lambda: result.append(parsing.parse(source, body, {}, "https://x.example/"))
    )
    parse.start()
    time.sleep(0.5)
    assert parse.is_alive()
    assert kill_all(pool_processes()) >= 1  # the pool breaks under the document: parsed again alone
    parse.join(120)
    assert [len(feed.entries) for feed in result] == [
        len(parse_answer(source, body, {}, "https://x.example/").entries)
    ]
    small = parsing.parse(source, rss(item("after", guid="a")), {}, "https://up.example/feed.xml")
    assert [entry.title for entry in small.entries] == ["after"]  # a new pool took over


def test_an_answer_whose_parsing_process_dies_twice_is_its_sources_error(site: SiteFolder) -> None:
    source = sources(site)["feed"]
    parsing = Parsing(2)
    errors: list[str] = []

    def parse() -> None:
        try:
            parsing.parse(source, big_feed(), {}, "https://x.example/")
        except ParseError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=parse)
    thread.start()
    while thread.is_alive():  # as a document that crashes every parser that reads it would
        time.sleep(0.3)
        kill_all(pool_processes())
    assert len(errors) == 1 and errors[0].startswith("the parsing process died on this answer"), errors
    small = parsing.parse(source, rss(item("after", guid="a")), {}, "https://up.example/feed.xml")
    assert [entry.title for entry in small.entries] == ["after"]


def test_a_pool_another_thread_shut_down_is_replaced(site: SiteFolder) -> None:
    source = sources(site)["feed"]
    parsing = Parsing(2)
    parsing.parse(source, rss(item("warm", guid="w")), {}, "https://up.example/feed.xml")
    _shared_pool(2).shutdown()  # as a thread that found it broken does, between another's get and submit
    parsed = parsing.parse(source, rss(item("after", guid="a")), {}, "https://up.example/feed.xml")
    assert [entry.title for entry in parsed.entries] == ["after"]
    assert parsing.parse(source, rss(item("again", guid="b")), {}, "https://up.example/feed.xml").entries


OWNER = """
import os, sys, time
from pathlib import Path
from feedhub.aggregator.parsing import Parsing
from feedhub.aggregator.sources import load_sources
from feedhub.config import load_config
from tests.upstream import item, rss
from tests.helpers import pool_processes

source = {s.id: s for s in load_sources(load_config(Path(sys.argv[1])))}["feed"]
Parsing(2).parse(source, rss(item("a", guid="a")), {}, "https://up.example/feed.xml")
print(" ".join(map(str, pool_processes())), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_parsing_processes_end_with_a_poller_killed_with_9(site: SiteFolder) -> None:
    sources(site)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(site.config_path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert owner.stdout is not None
        parsers = [int(pid) for pid in owner.stdout.readline().split()]
        assert parsers
        server = {int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in parsers}
        owner.kill()  # -9: it tells nobody
        owner.wait()
        deadline = time.monotonic() + 15
        while any(map(running, [*parsers, *server])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in [*parsers, *server] if running(pid)]
    finally:
        owner.kill()


def test_article_pages_are_extracted_in_the_pool_processes() -> None:
    page, url = ARTICLE.format(title="Rates stay stable").encode(), "https://news.example/2021/rates.html"
    inline = Parsing(0).extract(page, url)
    assert inline and "https://news.example/2021/img/chart.png" in inline
    assert Parsing(2).extract(page, url) == inline
    assert len(pool_processes()) >= 1  # not in this process


def test_without_processes_extractions_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    # trafilatura crashes the process when two threads extract at once (adbar/trafilatura#840).
    at_once, most = [0], [0]
    lock = threading.Lock()

    def extract(page: bytes, url: str) -> str:
        with lock:
            at_once[0] += 1
            most[0] = max(most[0], at_once[0])
        time.sleep(0.02)
        with lock:
            at_once[0] -= 1
        return "<p>article</p>"

    monkeypatch.setattr(parsing_module, "extract_article", extract)
    inline = Parsing(0)
    threads = [
        threading.Thread(target=inline.extract, args=(b"<p>x</p>", "https://a.example/")) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


def test_a_page_whose_parsing_process_dies_twice_is_that_articles_failure() -> None:
    parsing = Parsing(2)
    errors: list[str] = []
    # A page trafilatura takes seconds over, as a page that crashes every parser would be killed.
    page = (
        "<html><body><article>"
        + "<p>市场平稳，成交活跃，交易清淡。</p>" * 60_000
        + "</article></body></html>"
    ).encode()

    def extract() -> None:
        try:
            parsing.extract(page, "https://x.example/a.html")
        except ParseError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=extract)
    thread.start()
    while thread.is_alive():
        time.sleep(0.3)
        kill_all(pool_processes())
    assert len(errors) == 1 and errors[0].startswith("the parsing process died on this page"), errors
    after = parsing.extract(ARTICLE.format(title="After").encode(), "https://news.example/after.html")
    assert after and "central bank" in after  # a new pool took over
