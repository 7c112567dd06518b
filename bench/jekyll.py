"""Jekyll + jekyll-feed building the same store: the seed site's own stack, the peer to beat."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.measure import timed_run

FIX = Path(__file__).with_name("jekyll_fix.rb")


def available() -> bool:
    return shutil.which("jekyll") is not None


def prepare(store: Path, categories: list[str], site: Path) -> None:
    """A Jekyll site over the store's posts, with a jekyll-feed feed per category."""
    if site.exists():
        shutil.rmtree(site)
    (site / "_layouts").mkdir(parents=True)
    (site / "_posts").symlink_to(store / "_posts", target_is_directory=True)
    listed = "".join(f"    - {name}\n" for name in categories)
    (site / "_config.yml").write_text(
        "title: bench\nurl: https://bench.example\ntimezone: Asia/Shanghai\n"
        "plugins:\n  - jekyll-feed\nfeed:\n  categories:\n" + listed,
        "utf-8",
    )
    (site / "_layouts" / "post.html").write_text("<h1>{{ page.title }}</h1>{{ content }}", "utf-8")
    (site / "_layouts" / "default.html").write_text("{{ content }}", "utf-8")


def build(site: Path, log: Path, budget: float, fixed: bool) -> float | None:
    """Seconds for a full `jekyll build`; None when it ran past the budget."""
    destination = site / "_site"
    shutil.rmtree(destination, ignore_errors=True)
    env = {"RUBYOPT": f"-r{FIX}"} if fixed else {"RUBYOPT": ""}
    command = ["jekyll", "build", "--quiet", "--source", str(site), "--destination", str(destination)]
    result = timed_run(command, log, timeout=budget, env=env)
    return None if result is None else result[0]
