"""JSON API sources: a news API's answer read by the source's JMESPath expressions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from feedhub.aggregator.entries import ParseError
from feedhub.aggregator.json_api import parse_json_api
from feedhub.aggregator.picked import api_date
from feedhub.aggregator.sources import JsonApi, SourceType, load_sources
from feedhub.errors import ConfigError
from tests.helpers import SiteFolder

SHANGHAI = ZoneInfo("Asia/Shanghai")
API = "https://api.news.example/v2/fast/list?client=web"
# Modelled on the fast-news API the seed site was scraped from: a wrapper, a list, terse keys.
ANSWER = {
    "rc": 1,
    "data": {
        "fastNewsList": [
            {
                "code": "202112082207168450",
                "title": "央行：保持流动性合理充裕",
                "summary": "央行今日开展逆回购操作。\n\n市场利率平稳。",
                "showTime": "2021-12-08 22:07:16",
                "url": "/a/202112082207168450.html",
                "image": ["//img.news.example/1.jpg"],
                "column": ["102", "economy"],
                "author": {"name": "记者 王"},
            },
            {
                "code": "202112082206870651",
                "title": "<b>Markets</b> close higher",
                "content": '<p>Stocks rose.<script>alert(1)</script></p><img src="chart.png">',
                "showTime": 1638972374000,
                "url": "javascript:alert(1)",
            },
            {"code": "no-title", "summary": "an item without its title"},
            {"code": "2", "title": "   "},
        ]
    },
}
FIELDS = {
    "id": "code",
    "title": "title",
    "link": "url",
    "date": "showTime",
    "content": "content",
    "summary": "summary",
    "image": "image[0]",
    "category": "column",
    "author": "author.name",
}


def parse(answer: object, items: str = "data.fastNewsList", fields: dict[str, str] | None = None):
    body = json.dumps(answer, ensure_ascii=False).encode()
    return parse_json_api(body, API, JsonApi(items, fields or FIELDS), SHANGHAI)


def test_items_and_fields_are_read_by_their_expressions() -> None:
    feed = parse(ANSWER)
    first, second = feed.entries
    assert first.upstream_id == "202112082207168450"
    assert first.title == "央行：保持流动性合理充裕"
    assert first.link == "https://api.news.example/a/202112082207168450.html"  # against the API's URL
    assert first.published == datetime(2021, 12, 8, 22, 7, 16, tzinfo=SHANGHAI)
    assert first.categories == ("102", "economy") and first.author == "记者 王"
    # a plain-text summary keeps its paragraphs; the image leads, made absolute
    assert first.html.startswith('<p><img src="https://img.news.example/1.jpg" alt=""></p><p>央行')
    assert first.html.count("<p>") == 3
    assert second.title == "Markets close higher"  # as text: never live markup
    assert second.link is None  # javascript: is no link
    assert "<script>" not in second.html and "alert" not in second.html
    assert 'src="https://api.news.example/v2/fast/chart.png"' in second.html
    assert second.published == datetime(2021, 12, 8, 14, 6, 14, tzinfo=UTC)  # epoch milliseconds
    assert feed.warning == "2 of 4 items skipped: no title ('title')"


def test_dates_in_every_form_an_api_writes() -> None:
    expected = datetime(2021, 12, 8, 22, 7, 16, tzinfo=SHANGHAI)
    for value in (
        "2021-12-08 22:07:16",
        "2021-12-08T22:07:16+08:00",
        "2021-12-08T14:07:16Z",
        "Wed, 08 Dec 2021 14:07:16 GMT",
        1638972436,
        1638972436000,
        "1638972436",
        1638972436.0,
    ):
        assert api_date(value, SHANGHAI) == expected, value
    for value in (True, None, "", "yesterday", -5, float("nan"), 10**30, "9" * 40, [1], {"a": 1}):
        assert api_date(value, SHANGHAI) is None, value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>maintenance</html>", "not usable JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not usable JSON"),
        (
            json.dumps({"data": {}}).encode(),
            "items: 'data.fastNewsList' found nothing in the answer \\(did the API change\\?\\)",
        ),
        (json.dumps({"data": {"fastNewsList": {"a": 1}}}).encode(), "found a dict, not a list"),
    ],
)
def test_an_answer_without_the_list_is_an_error_naming_the_expression(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_json_api(body, API, JsonApi("data.fastNewsList", FIELDS), SHANGHAI)


def test_items_of_the_wrong_shape_are_skipped_and_counted_never_a_crash() -> None:
    items = [None, 3, "text", [], {"title": ["a", "list"]}, {"title": {"x": 1}}, {"title": 42}]
    feed = parse({"data": {"fastNewsList": items}})
    assert [entry.title for entry in feed.entries] == ["42"]
    assert feed.warning == "6 of 7 items skipped: no title ('title')"
    # an expression that fails on an item's types finds nothing in that item
    feed = parse({"list": [{"t": "x"}, {"t": 5}]}, "list", {"title": "t", "summary": "length(t)"})
    assert [entry.title for entry in feed.entries] == ["x", "5"]


def write_sources(site: SiteFolder, *sources: dict[str, object]) -> SiteFolder:
    (site.root / "sources.yaml").write_text(yaml.safe_dump({"sources": list(sources)}), "utf-8")
    return site


def test_a_json_source_is_configured_with_items_and_fields(site: SiteFolder) -> None:
    write_sources(
        site,
        {
            "id": "fast",
            "type": "json",
            "url": API,
            "category": "wire",
            "items": "data.list",
            "fields": FIELDS,
        },
        {"id": "plain", "url": "https://up.example/feed.xml", "category": "wire"},
    )
    fast, plain = load_sources(site.config())
    assert fast.type is SourceType.JSON and fast.json_api == JsonApi("data.list", FIELDS)
    assert plain.type is SourceType.FEED and plain.json_api is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"type": "xml"}, "source 'bad': type: must be one of feed, json, html, got 'xml'"),
        ({"type": "json", "fields": {"title": "t"}}, "source 'bad': items: must be a JMESPath expression"),
        (
            {"type": "json", "items": "data.[", "fields": {"title": "t"}},
            "items: 'data.[' is not a JMESPath expression: Invalid jmespath expression: Incomplete",
        ),
        ({"type": "json", "items": "d"}, "fields: must map fields"),
        (
            {"type": "json", "items": "d", "fields": {"title": "t", "body": "b"}},
            "fields.body: is not a field",
        ),
        ({"type": "json", "items": "d", "fields": {"link": "u"}}, "fields.title: is required"),
        ({"type": "json", "items": "d", "fields": {"title": 5}}, "fields.title: must be a JMESPath"),
        ({"items": "d"}, "source 'bad': items: is not for a source of type feed"),
    ],
)
def test_json_source_mistakes_name_the_file_the_source_and_the_key(
    site: SiteFolder, extra: dict[str, object], message: str
) -> None:
    write_sources(site, {"id": "bad", "url": API, "category": "wire", **extra})
    with pytest.raises(ConfigError) as caught:
        load_sources(site.config())
    assert message in str(caught.value)
    assert str(Path(site.root / "sources.yaml")) in str(caught.value)
