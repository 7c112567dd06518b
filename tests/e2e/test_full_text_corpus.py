"""Full text over the hand-marked article corpus: 88 real pages served from 127.0.0.1 behind a
feed whose items carry only a title and a link; the posts `feedhub poll --once` writes are scored
as the published benchmark scores extractors (bench/extraction.py)."""

from __future__ import annotations

import html
import subprocess
import sys

import pytest
import yaml

from bench.extraction import CORPUS, f1, load_corpus, page_score
from feedhub.posts import read_post_file
from feedhub.render import html_to_text
from tests.helpers import SiteFolder
from tests.upstream import Upstream, item, rss


def test_posts_carry_the_articles_a_person_marked(site: SiteFolder, upstream: Upstream) -> None:
    if not (CORPUS / "ground-truth.json").is_file():
        pytest.skip(f"{CORPUS} is absent (../shared/corpus is not beside the checkout)")
    pages = load_corpus(CORPUS)
    items = []
    for number, (key, (_, page, _)) in enumerate(pages.items()):
        upstream.feed(f"/articles/{key}.html", page.encode(), "text/html; charset=utf-8")
        link = upstream.url(f"/articles/{key}.html")
        items.append(item(html.escape(f"Article {number}"), guid=key, link=link, description=""))
    upstream.feed("/feed.xml", rss(*items))
    source = {
        "id": "articles",
        "url": upstream.url("/feed.xml"),
        "category": "articles",
        "full_text": True,
        "full_text_delay": 0,
        "backfill": len(pages),
        "max_entries": len(pages),
        "attribution": "",
    }
    (site.root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), "utf-8")
    config = site.write_config()
    timezone = site.config().timezone
    command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    scores = []
    for path in sorted(site.posts.glob("*.md")):
        file = read_post_file(site.posts, path.name, timezone)
        assert file is not None and file.post is not None and file.post.source_id in pages
        article = file.post.body.split("\n\n")[0]  # the article; then the original link, the back-links
        scores.append(page_score(pages[file.post.source_id][2], html_to_text(article)))
    assert len(scores) == len(pages)
    score, precision, recall = f1(scores)
    assert score >= 0.95, (score, precision, recall)
