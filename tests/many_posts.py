"""A site at the size feedhub is meant for: posts spread over 1,988 categories, as the seed site's
outlets were. Post n is in category n mod 1,988, published n minutes after the first."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import datetime, timedelta

from tests.helpers import SiteFolder, post_text

CATEGORIES = 1_988
START = datetime(2021, 12, 8, 9, 0, 0)


def slug_of(category: int) -> str:
    """Slugs under every initial, and some under none (digits, Chinese)."""
    if category % 50 == 0:
        return f"{category}shiji"
    if category % 97 == 0:
        return f"国内{category}"
    return f"{string.ascii_lowercase[category % 26]}outlet{category}"


def tag_of(category: int) -> str:
    """The category's title (its posts' tag): Chinese, or Latin for every third."""
    return f"栏目{category}" if category % 3 else f"Outlet {category}"


def date_of(post: int) -> datetime:
    return START + timedelta(minutes=post)


def category_of(post: int) -> int:
    return post % CATEGORIES


def write_posts(site: SiteFolder, posts: int, title: Callable[[int], str] = "新闻标题 {}".format) -> None:
    site.posts.mkdir(parents=True, exist_ok=True)
    for number in range(posts):
        category = category_of(number)
        text = post_text(
            title=title(number),
            date=f"{date_of(number):%Y-%m-%d %H:%M:%S} +0800",
            categories=slug_of(category),
            tags=tag_of(category),
            body=f"正文 {number}。\n\n<http://example.com/{number}>",
        )
        (site.posts / f"{date_of(number):%Y-%m-%d}-{number:05d}.md").write_text(text, "utf-8")
