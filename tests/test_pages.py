"""The HTML pages at the size feedhub is meant for: 20,000 posts in 1,988 categories, served over
real HTTP. The home page stays small, the directory and the latest listing hold everything."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from feedhub.config import load_config
from feedhub.site import HOME_CATEGORIES, HOME_LATEST, LISTING_PAGE_SIZE
from feedhub.urls import SiteUrls
from feedhub.web import create_app
from tests.helpers import BASE_URL, Server, SiteFolder
from tests.many_posts import CATEGORIES, category_of, date_of, slug_of, tag_of, write_posts

POSTS = 20_000
URLS = SiteUrls(BASE_URL)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = SiteFolder(tmp_path_factory.mktemp("big") / "site")
    write_posts(folder, POSTS)
    folder.write_config(language="zh-CN")
    server = Server(create_app(load_config(folder.config_path), initial_sync_wait=120))
    yield server
    server.stop()


class Links(HTMLParser):
    """The anchors of a page: (href, text), and the ids of its elements."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a":
            self._href, self._text = found.get("href"), ""

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text.strip()))
            self._href = None


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def post_links(links: list[tuple[str, str]]) -> list[str]:
    return [href for href, _ in links if re.search(r"/\d{4}/\d\d/\d\d/\d+\.html$", href)]


def post_url(number: int) -> str:
    path = f"/{slug_of(category_of(number))}/{date_of(number):%Y/%m/%d}/{number:05d}.html"
    return BASE_URL + quote(path)


def test_the_home_page_stays_small_at_2000_categories(big: Server) -> None:
    reply = big.get("/")
    assert reply.status == 200
    assert len(reply.body) <= 100_000, f"{len(reply.body):,} bytes"
    page = links_of(reply.text)
    posts = post_links(page.links)
    newest = [post_url(number) for number in range(POSTS - 1, POSTS - 1 - HOME_LATEST, -1)]
    assert [href for href in posts if href in newest] == newest  # the site's newest, newest first
    categories = [href for href, _ in page.links if "/category/" in href]
    # the most active categories, each once in the directory part (and beside its newest posts)
    active = [URLS.category_page(slug_of(category_of(n))) for n in range(POSTS - 1, 0, -1)]
    assert set(active[:HOME_CATEGORIES]) <= set(categories)
    assert (f"{BASE_URL}/categories.html", f"全部 {CATEGORIES} 个分类 →") in page.links
    assert (f"{BASE_URL}/latest.html", "更多新闻 →") in page.links
    assert URLS.feed(slug_of(category_of(POSTS - 1)), "rss") in {href for href, _ in page.links}


def test_the_directory_lists_every_category_once_under_its_initial(big: Server) -> None:
    reply = big.get("/categories.html")
    assert reply.status == 200
    page = links_of(reply.text)
    listed = [href for href, _ in page.links if "/category/" in href]
    assert len(listed) == len(set(listed)) == CATEGORIES
    jumps = [href.removeprefix("#") for href, _ in page.links if href.startswith("#initial-")]
    assert jumps == [f"initial-{c}" for c in string.ascii_uppercase] + ["initial-#"]
    assert set(jumps) <= page.ids
    html = reply.text
    # each category under its initial: its title when that is Latin, else its slug's first letter
    for category in (1, 3, 50, 97, 1987):
        title = tag_of(category)
        initial = "O" if not category % 3 else slug_of(category)[0].upper()
        initial = initial if initial.isalpha() and initial.isascii() else "#"
        section = html.split(f'id="initial-{initial}"')[1].split("<h2")[0]
        assert f">{title}</a>" in section, (category, initial)
    # a row: posts, the last post's time, the feeds
    row = re.search(r"<tr><td><a [^>]*>栏目1</a></td>.*?</tr>", html)
    assert row is not None
    assert '<td class="n" data-label="文章数">' in row.group() and "<time datetime=" in row.group()
    assert ">Atom</a>" in row.group() and ">JSON Feed</a>" in row.group()


def test_the_latest_listing_pages_through_every_post(big: Server) -> None:
    last = POSTS // LISTING_PAGE_SIZE
    seen: dict[int, list[str]] = {}
    for page in (1, 2, 3, last - 1, last):  # the first pages, then the last ones
        reply = big.get(f"/latest.html?page={page}" if page > 1 else "/latest.html")
        assert reply.status == 200
        links = links_of(reply.text).links
        seen[page] = post_links(links)
        assert f"第 {page} 页，共 {last} 页" in reply.text
        nexts = [href for href, text in links if text == "较早 →"]
        assert nexts == ([] if page == last else [f"{BASE_URL}/latest.html?page={page + 1}"])
    first = [href for page in (1, 2, 3) for href in seen[page]]
    assert first == [post_url(n) for n in range(POSTS - 1, POSTS - 1 - 3 * LISTING_PAGE_SIZE, -1)]
    assert seen[last] == [post_url(n) for n in range(LISTING_PAGE_SIZE - 1, -1, -1)]
    assert big.get(f"/latest.html?page={last + 1}").status == 404
    assert big.get("/latest.html?page=0").status == 404
    assert big.get("/latest.html?page=two").status == 400


def test_post_pages_link_to_their_neighbours_in_their_category(big: Server) -> None:
    number = 5 * CATEGORIES + 7  # neither the first nor the last post of its category
    html = big.get(post_url(number).removeprefix(BASE_URL)).text
    links = dict((text, href) for href, text in links_of(html).links)
    assert links[f"← 新闻标题 {number + CATEGORIES}"] == post_url(number + CATEGORIES)
    assert links[f"新闻标题 {number - CATEGORIES} →"] == post_url(number - CATEGORIES)
    assert 'rel="prev"' in html and 'rel="next"' in html
    newest = POSTS - 1
    html = big.get(post_url(newest).removeprefix(BASE_URL)).text
    assert 'rel="prev"' not in html and f"新闻标题 {newest - CATEGORIES} →" in html
    oldest = big.get(post_url(0).removeprefix(BASE_URL)).text
    assert 'rel="next"' not in oldest and 'rel="prev"' in oldest


def test_post_pages_describe_themselves(big: Server) -> None:
    html = big.get(post_url(42).removeprefix(BASE_URL)).text
    assert '<meta name="description" content="正文 42。">' in html
    assert '<meta property="og:title" content="新闻标题 42">' in html
    assert f'<meta property="og:url" content="{post_url(42)}">' in html
    assert '<meta property="og:type" content="article">' in html
    assert '<meta property="article:published_time" content="2021-12-08T09:42:00+08:00">' in html
    assert f'<link rel="canonical" href="{post_url(42)}">' in html


def test_pages_follow_the_readers_colour_scheme(big: Server) -> None:
    html = big.get("/").text
    assert "@media (prefers-color-scheme: dark)" in html
    assert '<meta name="color-scheme" content="light dark">' in html
