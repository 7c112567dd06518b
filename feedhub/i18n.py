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
        "latest": "Latest",
        "latest_news": "Latest news",
        "more_latest": "More news",
        "categories": "Categories",
        "all_categories": "All {} categories",
        "most_active": "Most active",
        "category": "Category",
        "post_count": "Posts",
        "last_post": "Last post",
        "jump_to": "Jump to",
        "newer_in": "Newer in {}",
        "older_in": "Older in {}",
        "page_of": "Page {} of {}",
        "not_found": "Not found",
        "not_found_text": "There is nothing at this address.",
        "uncategorized": "Uncategorized",
        # the lines the aggregator adds under an upstream entry
        "status": "Sources",
        "scheduler_running": "The scheduler is polling",
        "scheduler_stopped": (
            "No scheduler holds the data folder, so nothing is polled: `feedhub serve` starts "
            "its own again within seconds; without it, run `feedhub poll`"
        ),
        "source": "Source",
        "last_poll": "Last poll",
        "result": "Result",
        "merged": "Merged (last / total)",
        "errors": "Errors in a row",
        "next_poll": "Next poll",
        "moved_from": "moved from",
        "disabled": "disabled",
        "hub": "WebSub hub",
        "topic": "Topic",
        "subscriptions": "Subscriptions",
        "no_subscriptions": "No subscriptions.",
        "failing_callbacks": "Failing callbacks",
        "callback": "Callback",
        "failing_since": "Failing since",
        "last_error": "Last error",
        "source_line": "(Source: {})",
        "back_to": "Back to {}",
    },
    "zh": {
        "home": "首页",
        "feeds": "订阅",
        "all_feeds": "全部订阅（OPML）",
        "newer": "较新",
        "older": "较早",
        "posts": "篇",
        "latest": "最新",
        "latest_news": "最新新闻",
        "more_latest": "更多新闻",
        "categories": "分类",
        "all_categories": "全部 {} 个分类",
        "most_active": "最近更新",
        "category": "分类",
        "post_count": "文章数",
        "last_post": "最近发布",
        "jump_to": "跳转到",
        "newer_in": "{}的较新文章",
        "older_in": "{}的较早文章",
        "page_of": "第 {} 页，共 {} 页",
        "not_found": "页面不存在",
        "not_found_text": "这个地址没有内容。",
        "uncategorized": "未分类",
        "status": "上游源",
        "scheduler_running": "调度器正在轮询",
        "scheduler_stopped": (
            "没有调度器占用数据目录，上游源不会被轮询："
            "`feedhub serve` 会在数秒内重启自己的调度器；未使用它时，请运行 `feedhub poll`"
        ),
        "source": "源",
        "last_poll": "上次轮询",
        "result": "结果",
        "merged": "合并（上次／总计）",
        "errors": "连续错误",
        "next_poll": "下次轮询",
        "moved_from": "原地址",
        "disabled": "已停用",
        "hub": "WebSub 推送中心",
        "topic": "主题",
        "subscriptions": "订阅数",
        "no_subscriptions": "暂无订阅。",
        "failing_callbacks": "推送失败的回调",
        "callback": "回调",
        "failing_since": "失败开始于",
        "last_error": "最近错误",
        "source_line": "（文章来源：{}）",
        "back_to": "返回{}",
    },
}


def all_labels(name: str) -> list[str]:
    """One label in every language (to recognize it in text, whatever wrote it)."""
    return [table[name] for table in _LABELS.values()]


def labels(language: str) -> Mapping[str, str]:
    """Labels for a language tag ('zh-CN' uses 'zh'); English when there are none."""
    return _LABELS.get(language.split("-")[0].lower(), _LABELS["en"])
