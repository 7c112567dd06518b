"""`feedhub sources import | export | list`, run as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from lxml import etree

from feedhub.aggregator.sources import load_sources
from tests.helpers import SiteFolder

# As real readers export them: nested folders, Chinese titles, a raw & that is not well-formed XML.
OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions & more</title></head>
  <body>
    <outline text="Top level feed" type="rss" xmlUrl="https://top.example/feed.xml"/>
    <outline text="财经" title="财经">
      <outline text="新华社 财经" type="rss" xmlUrl="https://www.xinhua.example/fin.xml" htmlUrl="https://x/"/>
      <outline text="Markets & Money" type="rss" xmlUrl="https://markets.example/rss?a=1&b=2"/>
      <outline text="Nested">
        <outline text="Deep Café" type="rss" xmlUrl="https://deep.example/atom"/>
      </outline>
    </outline>
    <outline text="Tech">
      <outline text="Already here" type="rss" xmlUrl="HTTPS://Known.Example/feed"/>
      <outline text="Top level feed" type="rss" xmlUrl="https://second.example/feed.xml"/>
      <outline text="javascript" type="rss" xmlUrl="javascript:alert(1)"/>
    </outline>
  </body>
</opml>
"""

SOURCES = """# the operator's own notes stay
defaults:
  interval: 30m
sources:
  # kept first, as it was
  - id: known
    url: https://known.example/feed
    category: tech   # an inline comment
"""


def feedhub(site: SiteFolder, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "feedhub", "sources", *args, "--config", str(site.write_config())]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def setup_site(site: SiteFolder, tmp_path: Path) -> Path:
    (site.root / "sources.yaml").write_text(SOURCES, "utf-8")
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(OPML, "utf-8")
    return opml


def test_import_adds_the_feeds_keeping_the_file_as_it_was(site: SiteFolder, tmp_path: Path) -> None:
    opml = setup_site(site, tmp_path)
    done = feedhub(site, "import", str(opml), "--category", "Misc News")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not well-formed, repaired: line 3:" in done.stdout  # the raw & is said, not hidden
    assert "already a source: HTTPS://Known.Example/feed" in done.stdout
    assert "skipped: javascript: not an http(s) feed URL" in done.stdout
    text = (site.root / "sources.yaml").read_text("utf-8")
    assert text.startswith(SOURCES)  # entries, order and comments as they were
    sources = {source.id: source for source in load_sources(site.config())}
    assert list(sources) == [
        "known",
        "top-level-feed",
        "xinhua-example",  # a title with no ASCII: named by its host
        "markets-money",
        "deep-cafe",
        "top-level-feed-2",
    ]
    assert sources["top-level-feed"].category == "misc-news"  # outside any folder: --category
    assert (sources["xinhua-example"].category, sources["xinhua-example"].category_title) == (
        "folder",
        "财经",
    )
    assert sources["markets-money"].url == "https://markets.example/rss?a=1&b=2"
    assert (sources["deep-cafe"].category, sources["deep-cafe"].category_title) == ("nested", "Nested")
    assert (sources["top-level-feed-2"].category, sources["top-level-feed-2"].category_title) == (
        "tech",
        "Tech",
    )
    again = feedhub(site, "import", str(opml))
    assert again.returncode == 0 and "0 to add, 6 already there" in again.stdout
    assert (site.root / "sources.yaml").read_text("utf-8") == text


def test_a_dry_run_changes_nothing(site: SiteFolder, tmp_path: Path) -> None:
    opml = setup_site(site, tmp_path)
    done = feedhub(site, "import", str(opml), "--dry-run")
    assert (
        done.returncode == 0
        and "would add: deep-cafe  nested (Nested)  https://deep.example/atom" in done.stdout
    )
    assert "5 to add, 1 already there (dry run: sources.yaml unchanged)" in done.stdout
    assert (site.root / "sources.yaml").read_text("utf-8") == SOURCES


def test_what_is_not_opml_is_refused_naming_the_file(site: SiteFolder, tmp_path: Path) -> None:
    setup_site(site, tmp_path)
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "' + "x" * 5000 + '">]>'
        '<opml><body><outline text="&a;&a;&a;" xmlUrl="https://b.example/"/></body></opml>',
        "utf-8",
    )
    for path, content in (
        (tmp_path / "page.opml", "<html><body>hi</body></html>"),
        (tmp_path / "empty.opml", ""),
    ):
        path.write_text(content, "utf-8")
        done = feedhub(site, "import", str(path))
        assert done.returncode == 2 and f"{path}: not an OPML document" in done.stderr
    done = feedhub(site, "import", str(bomb))
    assert done.returncode == 0  # the long entity is dropped, the feed is still read
    assert len((site.root / "sources.yaml").read_text("utf-8")) < 2000
    missing = feedhub(site, "import", str(tmp_path / "nowhere.opml"))
    assert missing.returncode == 2 and "cannot read it" in missing.stderr


def test_export_is_opml_2_with_a_folder_per_category_and_imports_back(
    site: SiteFolder, tmp_path: Path
) -> None:
    opml = setup_site(site, tmp_path)
    assert feedhub(site, "import", str(opml)).returncode == 0
    exported = feedhub(site, "export")
    assert exported.returncode == 0
    root = etree.fromstring(exported.stdout.encode())  # well-formed: a strict parser reads it
    assert root.get("version") == "2.0"
    folders = {folder.get("text"): [o.get("xmlUrl") for o in folder] for folder in root.find("body")}
    assert folders["财经"] == ["https://www.xinhua.example/fin.xml", "https://markets.example/rss?a=1&b=2"]
    assert folders["tech"] == ["https://known.example/feed", "https://second.example/feed.xml"]
    elsewhere = SiteFolder(tmp_path / "elsewhere", None)
    elsewhere.posts.mkdir(parents=True)
    (tmp_path / "export.opml").write_text(exported.stdout, "utf-8")
    assert feedhub(elsewhere, "import", str(tmp_path / "export.opml")).returncode == 0
    urls = sorted(source.url for source in load_sources(elsewhere.config()))
    assert urls == sorted(source.url for source in load_sources(site.config()))


def test_list_shows_id_category_redacted_url_and_state(site: SiteFolder) -> None:
    sources = {
        "sources": [
            {"id": "secret", "url": "https://user:pw@api.example/feed?token=abc", "category": "wire"},
            {"id": "off", "url": "https://off.example/feed", "category": "wire", "enabled": False},
        ]
    }
    (site.root / "sources.yaml").write_text(yaml.safe_dump(sources), "utf-8")
    done = feedhub(site, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "CATEGORY", "URL", "STATE"]
    assert lines[1].split() == ["secret", "wire", "https://api.example/feed", "never", "polled"]
    assert lines[2].split() == ["off", "wire", "https://off.example/feed", "disabled"]
    assert "pw" not in done.stdout and "token" not in done.stdout
