from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from feedhub.index.search import SearchOrder, excerpt, marked, parse_query, tokens
from feedhub.limits import MAX_QUERY_TERMS, MAX_SEARCH_PAGES
from feedhub.site import SEARCH_PAGE_SIZE
from tests.helpers import BOTH_BACKENDS, FrozenClock, Server, SiteFolder, SiteIndex, open_index

SHANGHAI = ZoneInfo("Asia/Shanghai")


def titles(
    index: SiteIndex, query: str, order: SearchOrder = SearchOrder.NEWEST, offset: int = 0
) -> list[str]:
    return [found.headline.title for found in index.reader.search(parse_query(query), order, offset, 100)]


def test_tokens_fold_case_and_accents_and_split_cjk_characters() -> None:
    assert tokens("Café CRÈME brûlée, naïve!") == ["cafe", "creme", "brulee", "naive"]
    assert tokens("国务院发布Covid-19新规") == ["国", "务", "院", "发", "布", "covid", "19", "新", "规"]
    assert tokens("ひらがなカタカナ 한국어") == [*"ひらがなカタカナ", *"한국어"]
    assert tokens("snake_case <b>&amp;</b>") == ["snake", "case", "b", "amp", "b"]  # text, never parsed


def test_a_query_is_terms_all_of_which_must_match() -> None:
    assert parse_query('国务院 "Central Bank" bank').terms == (
        ("国", "务", "院"),
        ("central", "bank"),
        ("bank",),
    )
    assert parse_query("").terms == () and parse_query("  !!! ** ").terms == ()
    assert parse_query('"unclosed phrase').terms == (("unclosed", "phrase"),)
    # the query syntax of the backends is not the readers': a term is the phrase of its words
    # (COVID-19 is covid then 19), whatever marks it holds
    assert parse_query('NEAR(a b) OR c* ^d title:e - "').terms == (
        ("near", "a"),
        ("b",),
        ("or",),
        ("c",),
        ("d",),
        ("title", "e"),
    )
    many = parse_query(" ".join(f"w{n}" for n in range(50)))
    assert len(many.terms) == MAX_QUERY_TERMS
    assert parse_query("x" * 10_000).text == "x" * 200


def test_matches_are_marked_in_the_title_and_the_excerpt() -> None:
    query = parse_query("国务院 bank")
    assert marked(query, "国务院: Central Bank") == [("国务院", True), (": Central ", False), ("Bank", True)]
    text = "开头" + "很长的文字。" * 40 + "国务院再次强调，" + "结尾" * 100
    pieces = excerpt(query, text, 60)
    assert pieces[0] == ("…", False) and pieces[-1] == ("…", False)
    assert ("国务院", True) in pieces
    assert sum(len(piece) for piece, _ in pieces[1:-1]) <= 60
    # nothing matched in the text (the title did): its start
    assert excerpt(parse_query("absent"), "Short text.", 60) == [("Short text.", False)]
    # a Latin word is not cut where the excerpt starts
    latin = excerpt(parse_query("needle"), "word " * 40 + "needle here", 30)
    assert latin[1][0].startswith("word ")


@BOTH_BACKENDS
def test_search_finds_posts_by_title_and_text(site: SiteFolder) -> None:
    site.add(
        "2022-01-01-a.md",
        title="国务院发布新规",
        date="2022-01-01 10:00:00",
        categories="one",
        body="北京消息。<b>Café</b> au lait, [a link](https://example.com/hidden-target).",
    )
    site.add(
        "2022-01-02-b.md",
        title="Central bank news",
        date="2022-01-02 10:00:00",
        categories="two",
        body="The bank said <script>secretword()</script> nothing about 务国.",
    )
    index = open_index(site.config())
    index.sync_all()
    assert titles(index, "国务院") == ["国务院发布新规"]
    assert titles(index, "北京") == ["国务院发布新规"]  # two characters
    assert titles(index, "京") == ["国务院发布新规"]  # one
    assert titles(index, "国务") == ["国务院发布新规"]  # in a row: 务国 is not 国务
    assert titles(index, "务国") == ["Central bank news"]
    assert titles(index, "cafe") == titles(index, "CAFÉ") == ["国务院发布新规"]
    assert titles(index, '"au lait"') == ["国务院发布新规"] and titles(index, '"lait au"') == []
    assert titles(index, "bank news") == ["Central bank news"]
    assert titles(index, "bank 国务院") == []  # every term must match
    # what is not text is not searched: link targets, tags, what scripts hold
    assert titles(index, "hidden") == titles(index, "secretword") == titles(index, "script") == []
    assert titles(index, "") == titles(index, "!!!") == []


@BOTH_BACKENDS
def test_results_come_newest_first_or_best_match_first(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="Markets", date="2022-01-01 10:00:00", body="Oil oil oil prices.")
    site.add(
        "2022-01-03-b.md", title="Weather", date="2022-01-03 10:00:00", body="Rain, and oil spilled once."
    )
    site.add("2022-01-02-c.md", title="Oil", date="2022-01-02 10:00:00", body="Prices of oil.")
    index = open_index(site.config())
    index.sync_all()
    assert titles(index, "oil") == ["Weather", "Oil", "Markets"]
    assert titles(index, "oil", SearchOrder.RELEVANCE)[0] == "Oil"  # in the title
    assert titles(index, "oil", offset=1) == ["Oil", "Markets"]


@BOTH_BACKENDS
def test_posts_of_the_same_second_are_all_found_in_order(site: SiteFolder) -> None:
    for n in range(30):
        site.add(f"2022-01-01-p{n:02}.md", title=f"同一秒 {n}", date="2022-01-01 10:00:00", body="正文")
    site.add("2022-01-01-later.md", title="同一秒 later", date="2022-01-01 10:00:01", body="正文")
    index = open_index(site.config())
    index.sync_all()
    found = titles(index, "同一秒")
    assert len(found) == 31 and found[0] == "同一秒 later"


@BOTH_BACKENDS
def test_search_follows_edits_deletions_and_schedules(site: SiteFolder) -> None:
    now = datetime(2022, 1, 5, 12, 0, tzinfo=SHANGHAI)
    clock = FrozenClock(now.timestamp())
    site.add("2022-01-01-a.md", title="Old title", date="2022-01-01 10:00:00", body="first text")
    site.add("2022-01-02-b.md", title="Doomed", date="2022-01-02 10:00:00", body="first text")
    site.add("2022-01-06-c.md", title="Tomorrow", date="2022-01-06 10:00:00", body="first text")
    index = open_index(site.config(), clock)
    index.sync_all()
    assert titles(index, "first") == ["Doomed", "Old title"]  # not the scheduled one yet

    site.add("2022-01-01-a.md", title="New title", date="2022-01-01 10:00:00", body="second text")
    (site.posts / "2022-01-02-b.md").unlink()
    index.sync_all()
    assert titles(index, "first") == [] and titles(index, "old") == []
    assert titles(index, "second") == ["New title"]

    clock.now += timedelta(days=1).total_seconds()
    index.publish_due()
    assert titles(index, "first") == ["Tomorrow"]


@BOTH_BACKENDS
def test_hostile_posts_are_indexed_and_found(site: SiteFolder) -> None:
    huge_word = "x" * 5_000
    site.add("2022-01-01-a.md", title="Repeats", date="2022-01-01 10:00:00", body="的" * 20_000 + " tail")
    site.add("2022-01-01-b.md", title="Long word", date="2022-01-01 10:00:00", body=f"{huge_word} needle")
    site.add("2022-01-01-c.md", title="Quotes", date="2022-01-01 10:00:00", body="it's a \\' \"test\" \x00")
    index = open_index(site.config())
    report = index.sync_all()
    assert report.added == 3 and not report.skipped
    assert titles(index, "的") == ["Repeats"]
    assert titles(index, "tail") == []  # past the words a post is searched by
    assert titles(index, "needle") == ["Long word"] and titles(index, huge_word) == []
    assert titles(index, "it's") == ["Quotes"] and titles(index, '"test"') == ["Quotes"]


@BOTH_BACKENDS
def test_hostile_queries_find_nothing_and_fail_nowhere(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="Plain", date="2022-01-01 10:00:00", body="text")
    index = open_index(site.config())
    index.sync_all()
    for query in [
        '"',
        "'",
        "\\",
        "*",
        "(",
        ")",
        "NOT",
        "a:b",
        "'); DROP TABLE posts; --",
        "\x00",
        "🙂" * 300,
        "&|!<->",
        "plain'",
        "plain\\'",
    ]:
        assert titles(index, query) in ([], ["Plain"]), query
    assert titles(index, "plain'") == ["Plain"]


@BOTH_BACKENDS
def test_the_search_page(site: SiteFolder, serve: Callable[..., Server]) -> None:
    for n in range(SEARCH_PAGE_SIZE + 5):
        site.add(
            f"2022-01-{1 + n % 28:02}-p{n:02}.md",
            title=f"经济新闻 {n}",
            date=f"2022-01-{1 + n % 28:02} 10:{n:02}:00",
            categories="economy",
            body="国务院强调<i>稳增长</i>。",
        )
    server = serve(site.config(language="zh-CN"))
    reply = server.get("/search?q=%E7%BB%8F%E6%B5%8E")  # 经济
    page = reply.body.decode()
    assert reply.status == 200 and reply.headers["content-type"] == "text/html; charset=utf-8"
    assert "form-action 'self'" in reply.headers["content-security-policy"]
    assert '<meta name="robots" content="noindex">' in page
    assert page.count("<mark>经济</mark>新闻") == SEARCH_PAGE_SIZE
    assert 'rel="next"' in page and 'rel="prev"' not in page
    second = server.get("/search?q=%E7%BB%8F%E6%B5%8E&page=2").body.decode()
    assert second.count("<mark>经济</mark>新闻") == 5 and 'rel="next"' not in second
    assert '<ol class="results" start="21">' in second
    text_match = server.get("/search?q=%E7%A8%B3%E5%A2%9E%E9%95%BF&sort=relevance").body.decode()  # 稳增长
    assert "<mark>稳增长</mark>" in text_match and "<i>" not in text_match
    assert 'value="relevance" selected' in text_match
    # the box on every page
    assert '<form class="search" action="https://news.example.org/search"' in server.get("/").body.decode()


def test_what_a_reader_types_is_shown_as_text(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-01-01-a.md", title="Plain", date="2022-01-01 10:00:00", body="text")
    server = serve(site.config())
    typed = '"><script>alert(1)</script>'
    page = server.get(
        "/search?q=" + re.sub(r"[^A-Za-z0-9]", lambda m: f"%{ord(m.group()):02X}", typed)
    ).body.decode()
    assert "<script>" not in page and html.escape(typed).replace("&#x27;", "&#39;") in page.replace(
        "&#34;", "&quot;"
    )
    empty = server.get("/search")
    assert empty.status == 200 and '<ol class="results"' not in empty.body.decode()
    assert server.get("/search?q=x&sort=oldest").status == 400
    assert server.get("/search?q=x&page=x").status == 400
    assert server.get("/search?q=x&page=0").status == 404
    assert server.get(f"/search?q=plain&page={MAX_SEARCH_PAGES}").status == 200
    assert server.get(f"/search?q=plain&page={MAX_SEARCH_PAGES + 1}").status == 404


def test_search_can_be_turned_off(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-01-01-a.md", title="Plain", date="2022-01-01 10:00:00", body="text")
    server = serve(site.config(search=False))
    assert server.get("/search?q=plain").status == 404
    assert 'role="search"' not in server.get("/").body.decode()
