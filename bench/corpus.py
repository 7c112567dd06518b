"""Post stores of any size, shaped like the finews site: Chinese digests, some long HTML articles.

Bodies and titles are recombined from ../shared/corpus/finews and the seeds (the site
feedhub was specified from); categories are spread like the seed site's outlets.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import frontmatter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FINEWS = SHARED / "corpus" / "finews" / "_posts"
SEEDS = SHARED / "seeds"
REAL_WORLD = SHARED / "corpus" / "upstream" / "realworld"  # feeds of many generators


@dataclass(frozen=True)
class Material:
    titles: list[str]
    digests: list[str]  # short Markdown bodies: a paragraph, the source link, back-links
    articles: list[str]  # long raw-HTML bodies (the seeds' shape)


def load_material() -> Material:
    if not FINEWS.is_dir() or not SEEDS.is_dir():
        raise SystemExit(f"the finews corpus and the seeds are needed beside the checkout ({SHARED})")
    titles, digests = [], []
    for path in sorted(FINEWS.glob("*.md")):
        post = frontmatter.loads(path.read_text("utf-8"))
        if post.get("title"):
            titles.append(str(post["title"]))
            digests.append(re.sub(r"\n*\[返回.*", "", post.content, flags=re.S))
    articles = [frontmatter.loads(path.read_text("utf-8")).content for path in sorted(SEEDS.glob("*.txt"))]
    return Material(titles, digests, [re.sub(r"\n*\[返回.*", "", a, flags=re.S) for a in articles])


def category_count(posts: int) -> int:
    """200 categories for 1k posts, 1,000 for 10k, 2,000 for 100k (the seed site had ~2,000)."""
    return 200 if posts <= 1_000 else 1_000 if posts <= 10_000 else 2_000


def write_store(folder: Path, posts: int, seed: int = 2021) -> int:
    """Write `posts` Jekyll posts into folder/_posts; return the number of categories."""
    material = load_material()
    rng = random.Random(seed)
    categories = category_count(posts)
    target = folder / "_posts"
    target.mkdir(parents=True, exist_ok=True)
    start = datetime(2021, 12, 8, 9, 0, 0)
    for number in range(posts):
        # a few big outlets and a long tail, as on the real site
        category = (
            min(int(rng.paretovariate(1.2)) - 1, categories - 1)
            if rng.random() < 0.5
            else rng.randrange(categories)
        )
        when = start + timedelta(seconds=number * 37 + rng.randrange(30))
        title = f"{rng.choice(material.titles)}（{number}）"
        if rng.random() < 0.1:
            body = rng.choice(material.articles)
        else:
            body = "\n\n".join(rng.sample(material.digests, 2))
        home = "//finews.example"
        back = f"[返回栏目{category}新闻]({home}/category/cat{category:04d}.html)｜[返回首页]({home}/)"
        text = (
            "---\nlayout: post\n"
            f'title: "{title}"\n'
            f"date: {when:%Y-%m-%d %H:%M:%S} +0800\n"
            f"categories: cat{category:04d}\n"
            f"tags: 栏目{category}新闻\n"
            f"---\n{body}\n\n{back}\n"
        )
        (target / f"{when:%Y-%m-%d}-{number:08d}.md").write_text(text, "utf-8")
    return categories


def new_post(folder: Path, number: int, category: str, title: str) -> Path:
    """One more post, dated now, as an editor (or the aggregator) would add it."""
    now = datetime.now().astimezone()
    path = folder / "_posts" / f"{now:%Y-%m-%d}-bench-{number:06d}.md"
    text = (
        "---\nlayout: post\n"
        f'title: "{title}"\n'
        f"date: {now:%Y-%m-%d %H:%M:%S %z}\n"
        f"categories: {category}\ntags: {category}\n"
        "---\n<p>基准测试新增的文章。</p>\n"
    )
    path.write_text(text, "utf-8")
    return path
