from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedhub.config import PERMALINK_STYLES
from feedhub.urls import SiteUrls, expand_permalink, jekyll_slugify, slugify_by_character

WHEN = datetime(2021, 12, 8, 10, 46, 18, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_jekyll_date_permalink_keeps_old_urls() -> None:
    path = expand_permalink(PERMALINK_STYLES["date"], ("emnews",), WHEN, "202112082206672930")
    assert path == "/emnews/2021/12/08/202112082206672930.html"


def test_permalink_styles_and_placeholders() -> None:
    assert expand_permalink(PERMALINK_STYLES["pretty"], ("TechWeb",), WHEN, "x") == "/techweb/2021/12/08/x/"
    assert expand_permalink(PERMALINK_STYLES["none"], (), WHEN, "x") == "/x.html"
    assert expand_permalink(PERMALINK_STYLES["ordinal"], ("a", "b"), WHEN, "x") == "/a/b/2021/342/x.html"
    pattern = "/:short_year/:i_month/:i_day/:hour:minute:second/:slug/"
    assert expand_permalink(pattern, (), WHEN, "Hello, World_2") == "/21/12/8/104618/hello-world-2/"
    assert (
        expand_permalink("/:title:output_ext", (), WHEN, "Hello, World_2 (v2)") == "/Hello,-World_2-(v2).html"
    )
    assert expand_permalink("/:unknown/:title", (), WHEN, "x") == "/:unknown/x"


@given(st.text(st.characters(max_codepoint=127)), st.booleans())
def test_an_ascii_slug_is_made_as_the_character_rule_makes_it(text: str, pretty: bool) -> None:
    assert jekyll_slugify(text, pretty) == slugify_by_character(text, pretty)


def test_a_slug_of_other_scripts_keeps_letters_marks_and_digits() -> None:
    assert jekyll_slugify("बिक्री 2021 — Café ½", pretty=False) == "बिक्री-2021-Café"


def test_slugs_are_percent_encoded_whole() -> None:
    urls = SiteUrls("https://finews.withounder.com/")
    assert urls.home() == "https://finews.withounder.com/"
    assert urls.feed(None, "atom") == "https://finews.withounder.com/feed.atom"
    assert urls.feed(None, "rss", 3) == "https://finews.withounder.com/feed.rss?page=3"
    assert (
        urls.feed("21shijijingjibaodao 21caijingAPP", "json")
        == "https://finews.withounder.com/feeds/21shijijingjibaodao%2021caijingAPP.json"
    )
    assert (
        urls.category_page("anxinguojizhengquan(xianggang)")
        == "https://finews.withounder.com/category/anxinguojizhengquan%28xianggang%29.html"
    )
    assert urls.feed("国内/财经", "atom", 2) == (
        "https://finews.withounder.com/feeds/%E5%9B%BD%E5%86%85%2F%E8%B4%A2%E7%BB%8F.atom?page=2"
    )
    assert urls.post("/a b/2021/12/08/x.html") == "https://finews.withounder.com/a%20b/2021/12/08/x.html"


# What Jekyll 4.3.1 (Debian's) made of these file names with `permalink: /:title/:slug:output_ext`.
JEKYLL_SLUGS = {
    "foo_bar": ("foo_bar", "foo-bar"),
    "Hello,_World_2_(v2)": ("Hello,_World_2_(v2)", "hello-world-2-v2"),
    "a--b": ("a-b", "a-b"),
    "café": ("café", "café"),
    "cafe\u0301": ("cafe\u0301", "cafe\u0301"),  # a combining accent is a mark: kept
    "hindi-हिन्दी": ("hindi-हिन्दी", "hindi-हिन्दी"),
    "half½x": ("half-x", "half-x"),  # ½ and ² are numbers, not decimal digits
    "x²y": ("x-y", "x-y"),
    "Ⅻ-x": ("x", "x"),
    "q*bert_says": ("q-bert_says", "q-bert-says"),
    "Ab_C d": ("Ab_C-d", "ab-c-d"),
    "_lead_": ("_lead_", "lead"),
    "x~y.z": ("x~y.z", "x-y-z"),
    "a$b&c": ("a$b&c", "a-b-c"),
    "a#b%c": ("a-b-c", "a-b-c"),
    "A'B(C)": ("A'B(C)", "a-b-c"),
    "中文_標題": ("中文_標題", "中文-標題"),
    "ٱلعربية": ("ٱلعربية", "ٱلعربية"),
}


@pytest.mark.parametrize(("name", "expected"), JEKYLL_SLUGS.items())
def test_title_and_slug_follow_jekyll_exactly(name: str, expected: tuple[str, str]) -> None:
    title, slug = expected
    assert expand_permalink("/:title/:slug.html", (), WHEN, name) == f"/{title}/{slug}.html"
