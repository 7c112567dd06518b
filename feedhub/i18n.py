"""The few words the HTML pages say themselves, in the site's language."""

from __future__ import annotations

from collections.abc import Mapping

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "home": "Home",
        "feeds": "Feeds",
        "all_feeds": "All feeds (OPML)",
        "newer": "Newer",
        "older": "Older",
        "posts": "posts",
        "not_found": "Not found",
        "not_found_text": "There is nothing at this address.",
        "uncategorized": "Uncategorized",
    },
    "zh": {
        "home": "首页",
        "feeds": "订阅",
        "all_feeds": "全部订阅（OPML）",
        "newer": "较新",
        "older": "较早",
        "posts": "篇",
        "not_found": "页面不存在",
        "not_found_text": "这个地址没有内容。",
        "uncategorized": "未分类",
    },
}


def labels(language: str) -> Mapping[str, str]:
    """Labels for a language tag ('zh-CN' uses 'zh'); English when there are none."""
    return _LABELS.get(language.split("-")[0].lower(), _LABELS["en"])
