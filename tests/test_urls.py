from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from feedhub.config import PERMALINK_STYLES
from feedhub.urls import SiteUrls, expand_permalink

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
