from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from feedhub.aggregator.sources import DEFAULT_MAX_BYTES, load_sources
from feedhub.config import Config
from feedhub.errors import ConfigError
from tests.helpers import SiteFolder


def sources_config(site: SiteFolder, document: object, **overrides: object) -> Config:
    (site.root / "sources.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return site.config(**overrides)


def test_no_sources_file_means_no_sources(site: SiteFolder) -> None:
    assert load_sources(site.config()) == ()


def test_an_explicit_sources_file_must_exist(site: SiteFolder) -> None:
    with pytest.raises(ConfigError, match=r"sources: file .*missing.yaml does not exist"):
        site.config(sources="missing.yaml")


def test_full_source_with_defaults(site: SiteFolder) -> None:
    config = sources_config(
        site,
        {
            "defaults": {"interval": "15m", "backfill": 3},
            "sources": [
                {
                    "id": "xinhua",
                    "url": "https://feeds.example/xinhua.xml",
                    "category": "xinhua",
                    "category_title": "新华社",
                    "interval": "1h30m",
                    "enabled": False,
                    "max_entries": 20,
                    "include": ["央行", "/利率|汇率/"],
                    "exclude": "广告",
                    "attribution": "新华社",
                    "timezone": "Europe/Berlin",
                    "timeout": 10,
                    "max_bytes": 2048,
                },
                {"id": "local", "url": "file:upstream/feed.xml", "category": "local"},
            ],
        },
    )
    xinhua, local = load_sources(config)
    assert (xinhua.interval, xinhua.backfill, xinhua.max_entries, xinhua.enabled) == (5400, 3, 20, False)
    assert (xinhua.category_title, xinhua.attribution, xinhua.timezone.key) == (
        "新华社",
        "新华社",
        "Europe/Berlin",
    )
    assert (xinhua.timeout, xinhua.max_bytes) == (10.0, 2048)
    assert xinhua.accepts("央行宣布降准") and xinhua.accepts("人民币汇率走高")
    assert not xinhua.accepts("央行广告") and not xinhua.accepts("天气")
    assert local.url == (site.root / "upstream" / "feed.xml").resolve().as_uri()
    assert local.is_file and local.interval == 900 and local.backfill == 3
    assert (local.max_entries, local.max_bytes, local.attribution) == (50, DEFAULT_MAX_BYTES, None)
    assert local.timezone.key == "Asia/Shanghai" and local.enabled


@pytest.mark.parametrize(
    ("source", "key", "problem"),
    [
        ({"url": "https://a.example/f", "category": "c"}, "sources[1]: id", "is required"),
        ({"id": "a b", "url": "https://a.example/f", "category": "c"}, "source 'a b': id", "letters, digits"),
        ({"id": "a", "category": "c"}, "source 'a': url", "is required"),
        (
            {"id": "a", "url": "ftp://a.example/f", "category": "c"},
            "source 'a': url",
            "http(s) URL or a file",
        ),
        ({"id": "a", "url": "https://a.example:99999/", "category": "c"}, "source 'a': url", "invalid port"),
        ({"id": "a", "url": "file://host/f.xml", "category": "c"}, "source 'a': url", "local path"),
        ({"id": "a", "url": "https://a.example/f"}, "source 'a': category", "is required"),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "interval": "30s"},
            "source 'a': interval",
            "1m",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "interval": 30},
            "source 'a': interval",
            "like '15m'",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "interval": "soon"},
            "source 'a': interval",
            "like",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "enabled": "no"},
            "source 'a': enabled",
            "true or",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "include": "/(/"},
            "source 'a': include",
            "regular",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "exclude": [1]},
            "source 'a': exclude",
            "keyword",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "backfill": -1},
            "source 'a': backfill",
            "between",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "timezone": "X/Y"},
            "source 'a': timezone",
            "unknown",
        ),
        (
            {"id": "a", "url": "https://a.example/f", "category": "c", "intervall": "1h"},
            "source 'a': intervall",
            "interval",
        ),
    ],
)
def test_invalid_sources_name_the_source_and_key(
    site: SiteFolder, source: dict, key: str, problem: str
) -> None:
    config = sources_config(site, {"sources": [source]})
    with pytest.raises(ConfigError) as caught:
        load_sources(config)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{(site.root / 'sources.yaml').resolve()}: {key}: ")


def test_duplicate_ids_and_urls(site: SiteFolder) -> None:
    twice = [
        {"id": "a", "url": "https://a.example/f", "category": "c"},
        {"id": "a", "url": "https://b.example/", "category": "c"},
    ]
    with pytest.raises(ConfigError, match="source 'a': duplicate id"):
        load_sources(sources_config(site, {"sources": twice}))
    same_feed = [
        {"id": "a", "url": "https://A.example:443/f", "category": "c"},
        {"id": "b", "url": "https://a.example/f#top", "category": "c"},
    ]
    with pytest.raises(ConfigError, match="source 'b': url: same feed as source 'a'"):
        load_sources(sources_config(site, {"sources": same_feed}))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"sources": {"id": "a"}}, "sources: must be a list"),
        ({"sources": ["a"]}, r"sources\[1\]: must be a mapping"),
        ({"defaults": ["a"]}, "defaults: must be a mapping"),
        ({"defaults": {"id": "x"}}, "defaults: id: unknown key"),
        ({"feeds": []}, "feeds: unknown key"),
        (["a"], "must be a mapping"),
    ],
)
def test_invalid_file_shapes(site: SiteFolder, document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sources(sources_config(site, document))


def test_the_cli_exits_2_naming_file_source_and_key(site: SiteFolder) -> None:
    config = sources_config(
        site, {"sources": [{"id": "xinhua", "url": "https://a.example/f", "category": "c", "interval": "5s"}]}
    )
    for command in (["check"], ["poll", "--once"], ["serve"]):
        result = subprocess.run(
            [sys.executable, "-m", "feedhub", *command, "--config", str(config.path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, command
        assert (
            f"{Path(site.root / 'sources.yaml').resolve()}: source 'xinhua': interval: must be between"
            in result.stderr
        )
