from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedhub.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, DEFAULT_ICON, Icon, config_path, load_config
from feedhub.errors import ConfigError
from feedhub.limits import MAX_ICON_BYTES
from tests.helpers import REPO, SiteFolder


def test_defaults_and_relative_paths(site: SiteFolder) -> None:
    config = site.config()
    assert config.title == "Example News"
    assert config.description == config.author == "Example News"
    assert config.base_url == "https://news.example.org"
    assert config.timezone.key == "Asia/Shanghai"
    assert config.posts_dir == site.posts.resolve()
    assert config.data_dir == (site.root / "data").resolve() and config.data_dir.is_dir()
    assert config.feed_entries == 50
    assert config.cache_max_age == 300
    assert config.permalink == "/:categories/:year/:month/:day/:title:output_ext"
    assert config.categories == {}
    assert config.future is False


def test_all_keys(site: SiteFolder) -> None:
    config = site.config(
        title="金融消息",
        description="news",
        author="ZNing",
        base_url="https://finews.withounder.com/",
        language="zh-CN",
        timezone="Europe/Berlin",
        categories={"emnews": "东财滚动新闻", 2021: "numbers"},
        feed_entries=20,
        cache_max_age=0,
        permalink="pretty",
        future=True,
    )
    assert config.base_url == "https://finews.withounder.com"
    assert config.timezone.key == "Europe/Berlin"
    assert config.categories == {"emnews": "东财滚动新闻", "2021": "numbers"}
    assert config.permalink == "/:categories/:year/:month/:day/:title/"
    assert (config.feed_entries, config.cache_max_age, config.future) == (20, 0, True)
    assert config.icon == Icon(DEFAULT_ICON, None) and config.search


def test_categories_as_mappings_and_titles(site: SiteFolder) -> None:
    config = site.config(
        categories={
            "emnews": "东财滚动新闻",
            "world": {
                "title": "World",
                "description": "News from abroad",
                "icon": "https://cdn.example/w.png",
            },
            "sport": {"description": "Scores"},  # its title is the one its posts give
        }
    )
    assert config.categories == {"emnews": "东财滚动新闻", "world": "World"}
    assert config.category_descriptions == {"world": "News from abroad", "sport": "Scores"}
    assert config.category_icons == {"world": "https://cdn.example/w.png"}


def test_the_icon_is_a_file_or_a_url(site: SiteFolder) -> None:
    (site.root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert site.config(icon="logo.svg").icon == Icon((site.root / "logo.svg").resolve(), None)
    assert site.config(icon="https://cdn.example/i.png").icon == Icon(None, "https://cdn.example/i.png")
    (site.root / "huge.png").write_bytes(b"\x89PNG" + bytes(MAX_ICON_BYTES))
    with pytest.raises(ConfigError, match="is over 1024 KiB"):
        site.config(icon="huge.png")


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"title": None}, "title", "is required"),
        ({"title": ["a"]}, "title", "must be text"),
        ({"base_url": "finews.withounder.com"}, "base_url", "absolute http(s) URL"),
        ({"base_url": "ftp://example.org"}, "base_url", "absolute http(s) URL"),
        ({"base_url": "https://example.org/?x=1"}, "base_url", "query or fragment"),
        ({"language": "Chinese (China)"}, "language", "language tag"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"posts_dir": "missing"}, "posts_dir", "does not exist"),
        ({"categories": ["emnews"]}, "categories", "mapping of slug to title"),
        ({"categories": {"emnews": ""}}, "categories.emnews", "non-empty title"),
        ({"categories": {"emnews": {"titel": "x"}}}, "categories.emnews.titel", "did you mean 'title'"),
        ({"categories": {"emnews": {"icon": "logo.png"}}}, "categories.emnews.icon", "http(s) URL"),
        ({"categories": {"emnews": {"description": ["x"]}}}, "categories.emnews.description", "text"),
        ({"icon": "missing.png"}, "icon", "does not exist"),
        ({"icon": "feedhub.yaml"}, "icon", "an image named .png"),
        ({"icon": "javascript://x"}, "icon", "http(s) URL"),
        ({"search": "no"}, "search", "true or false"),
        ({"feed_entries": 0}, "feed_entries", "between 1 and 1000"),
        ({"feed_entries": "50"}, "feed_entries", "whole number"),
        ({"feed_entries": True}, "feed_entries", "whole number"),
        ({"cache_max_age": -1}, "cache_max_age", "between 0 and"),
        ({"permalink": "posts/:title"}, "permalink", "starting with '/'"),
        ({"permalink": "/:year/:month/"}, "permalink", ":title or :slug"),
        ({"future": "yes"}, "future", "true or false"),
        ({"feed_entry": 10}, "feed_entry", "did you mean 'feed_entries'"),
    ],
)
def test_invalid_values_name_file_key_and_problem(site: SiteFolder, overrides, key, problem) -> None:
    with pytest.raises(ConfigError) as caught:
        site.config(**overrides)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{site.config_path}: {key}: ")


def test_unreadable_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML: line 2"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listed)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert config_path(None) == DEFAULT_CONFIG_PATH
    monkeypatch.setenv(CONFIG_ENV, "/etc/feedhub.yaml")
    assert config_path(None) == Path("/etc/feedhub.yaml")
    assert config_path("mine.yaml") == Path("mine.yaml")


def test_bundled_default_config_is_valid() -> None:
    config = load_config(REPO / DEFAULT_CONFIG_PATH)
    assert config.posts_dir == (REPO / "config" / "demo" / "_posts").resolve()
    bundled = {"2022-04-15-NW202204152344738723.md", "2022-06-09-NW202206092407071065.md"}
    assert bundled <= {path.name for path in config.posts_dir.glob("*.md")}
    assert config.sources_path == REPO / "config" / "sources.yaml"


def test_cli_exits_2_naming_file_key_and_problem(site: SiteFolder) -> None:
    site.write_config(feed_entries="many")
    for argv in (["check", "--config", str(site.config_path)], ["serve", "--config", str(site.config_path)]):
        result = subprocess.run(
            [sys.executable, "-m", "feedhub", *argv], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert f"{site.config_path}: feed_entries: must be a whole number" in result.stderr
        assert "Traceback" not in result.stderr


def test_cli_reads_config_from_environment(site: SiteFolder) -> None:
    site.write_config(timezone="Nowhere/City")
    env = {**os.environ, CONFIG_ENV: str(site.config_path)}
    result = subprocess.run(
        [sys.executable, "-m", "feedhub", "check"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 2
    assert "timezone: unknown time zone 'Nowhere/City'" in result.stderr


def test_allow_private_addresses_for_all_sources_or_one(site: SiteFolder) -> None:
    from feedhub.aggregator.sources import load_sources

    assert site.config().allow_private_addresses is False
    site.write_sources(
        {"id": "a", "url": "https://a.example/"},
        {"id": "b", "url": "https://b.example/", "allow_private_addresses": True},
    )
    assert [s.allow_private_addresses for s in load_sources(site.config())] == [False, True]
    assert [s.allow_private_addresses for s in load_sources(site.config(allow_private_addresses=True))] == [
        True,
        True,
    ]
    with pytest.raises(ConfigError, match="allow_private_addresses: must be true or false"):
        site.config(allow_private_addresses="yes please")


def test_hostile_config_files_are_config_errors(site: SiteFolder) -> None:
    site.write_config()
    bomb = 'a: &a ["l","l","l","l","l","l","l","l","l"]\n' + "".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    for text, problem in [
        (bomb, "expands to more than"),
        ("title: " + "[" * 200_000, "nests 200000 levels deep"),
        ("title: x\nbase_url: 2022-02-30\n", "a value cannot be read"),
        ("title: x\n? " + "a" * 5_000 + "\n: 1\n", "unknown key"),
    ]:
        site.config_path.write_text(text, "utf-8")
        with pytest.raises(ConfigError, match=problem) as caught:
            load_config(site.config_path)
        assert len(str(caught.value)) < 1_000
