"""A theme: templates that replace the bundled ones, static files, values, a page policy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from feedhub.config import PAGE_POLICY, load_config
from feedhub.errors import ConfigError
from feedhub.export import Exporter, open_exported_site
from tests.helpers import REPO, Server, SiteFolder, open_index

EXAMPLE = REPO / "docs" / "theme-example"


@pytest.fixture
def themed(tmp_path: Path) -> Path:
    """The documented example, with a post."""
    root = tmp_path / "site"
    shutil.copytree(EXAMPLE, root)
    folder = SiteFolder(root)
    folder.add("2022-01-01-a.md", title="央行新闻", date="2022-01-01 10:00:00", categories="news")
    return root / "feedhub.yaml"


def test_the_example_theme(themed: Path, serve: Callable[..., Server], tmp_path: Path) -> None:
    config = load_config(themed)
    server = serve(config)
    home = server.get("/")
    page = home.body.decode()
    # its base.html extends the bundled one: the bundled page, and what it adds
    assert '<form class="search"' in page and "金融消息 · 自 2021 年起" in page
    assert '<link rel="stylesheet" href="https://finews.example.com/static/theme.css">' in page
    assert 'gtag/js?id=G-XXXXXXXXXX"' in page and 'data-id="G-XXXXXXXXXX"' in page
    assert "script-src 'self' https://www.googletagmanager.com" in home.headers["content-security-policy"]
    for path in ("/category/news.html", "/search?q=%E5%A4%AE%E8%A1%8C", "/no/such/page"):
        assert "gtag/js" in server.get(path).body.decode(), path
    stylesheet = server.get("/static/theme.css")
    assert stylesheet.status == 200 and stylesheet.headers["content-type"].startswith("text/css")
    assert stylesheet.body == (EXAMPLE / "static" / "theme.css").read_bytes()
    # the static export holds the same pages and files
    open_index(config).sync_all()
    out = tmp_path / "out"
    Exporter(open_exported_site(config), out).run()
    assert (out / "index.html").read_bytes() == home.body
    assert (out / "static/analytics.js").read_bytes() == (EXAMPLE / "static/analytics.js").read_bytes()


def test_only_the_static_folder_is_served(themed: Path, serve: Callable[..., Server]) -> None:
    folder = themed.parent / "static"
    (folder / ".secret").write_text("no")
    (folder / "sub").mkdir()
    (folder / "sub" / "a.txt").write_text("yes")
    server = serve(load_config(themed))
    assert server.get("/static/sub/a.txt").body == b"yes"
    for path in ("/static/.secret", "/static/../feedhub.yaml", "/static/%2e%2e/feedhub.yaml", "/static/sub"):
        assert server.get(path).status == 404, path


def test_a_template_of_the_theme_replaces_the_bundled_one(
    site: SiteFolder, serve: Callable[..., Server]
) -> None:
    (site.root / "layouts").mkdir()
    (site.root / "layouts" / "not_found.html").write_text("<p>Lost: {{ theme.where }}</p>", "utf-8")
    server = serve(site.config(templates_dir="layouts", theme={"where": "<nowhere>"}))
    reply = server.get("/no/such/page")
    assert reply.status == 404 and reply.body.decode() == "<p>Lost: &lt;nowhere&gt;</p>"  # escaped
    assert server.get("/").headers["content-security-policy"] == PAGE_POLICY  # the default policy


@pytest.mark.parametrize(
    ("settings", "key", "problem"),
    [
        ({"templates_dir": "missing"}, "templates_dir", "does not exist"),
        ({"static_dir": "missing"}, "static_dir", "does not exist"),
        ({"theme": ["x"]}, "theme", "mapping of at most 100"),
        ({"theme": {"a b": 1}}, "theme.'a b'", "must be a word"),
        ({"theme": {"x": {"y": 1}}}, "theme.x", "text, a number or true/false"),
        ({"content_security_policy": "default-src 'none'; \u00e9"}, "content_security_policy", "ASCII"),
    ],
)
def test_bad_theme_settings_are_named(site: SiteFolder, settings: dict, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        site.config(**settings)
    assert caught.value.key == key and problem in caught.value.problem


def test_a_template_with_a_typo_is_refused_at_start(site: SiteFolder) -> None:
    (site.root / "layouts").mkdir()
    (site.root / "layouts" / "base.html").write_text("<p>\n{% if x %}never closed\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        site.config(templates_dir="layouts")
    assert caught.value.key == "templates_dir"
    assert "base.html, line 2" in caught.value.problem and "endif" in caught.value.problem
