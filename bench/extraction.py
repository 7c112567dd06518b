"""Full-text extraction on the hand-marked article corpus: F1 of each extractor, in one run.

Scored as the published article-extraction benchmark scores (../shared/corpus/articles/README.md):
word tokens, runs of 4 (shingles) counted as a multiset; per page the true positives, false
positives and false negatives are normalized to sum to 1; precision and recall are averaged
over the pages, and F1 is computed from the two averages.

Rows: plain text of the whole page (the floor), readability-lxml, trafilatura (as the benchmark
runs it, and as feedhub runs it: its HTML output, sanitized by feedhub's policy, as text), so
the choice of library is a measurement and what the posts carry is measured too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.measure import REPO

CORPUS = REPO.parent / "shared" / "corpus" / "articles"
SHINGLE = 4
_WORD = re.compile(r"\w+")


def shingles(text: str) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text)
    return Counter(tuple(words[start : start + SHINGLE]) for start in range(max(1, len(words) - SHINGLE + 1)))


def page_score(true: str, predicted: str) -> tuple[float, float, float]:
    """(true positives, false positives, false negatives) of one page, summing to 1 (or all 0)."""
    wanted, found = shingles(true), shingles(predicted)
    wanted.pop((), None)
    found.pop((), None)
    hits = sum((wanted & found).values())
    extra = sum((found - wanted).values())
    missed = sum((wanted - found).values())
    total = hits + extra + missed
    return (hits / total, extra / total, missed / total) if total else (0.0, 0.0, 0.0)


def f1(scores: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(F1, precision, recall) over pages, as the benchmark computes them."""
    precision = statistics.mean(
        1.0 if extra == missed == 0 else hits / (hits + extra)
        for hits, extra, missed in scores
        if hits + extra
    )
    recall = statistics.mean(
        1.0 if extra == missed == 0 else hits / (hits + missed)
        for hits, extra, missed in scores
        if hits + missed
    )
    return 2 * precision * recall / (precision + recall), precision, recall


def load_corpus(corpus: Path) -> dict[str, tuple[str, str, str]]:
    """page id -> (url, html, the body text a person marked)."""
    truth = json.loads((corpus / "ground-truth.json").read_text("utf-8"))
    pages = {}
    for key, value in truth.items():
        page = gzip.decompress((corpus / "html" / f"{key}.html.gz").read_bytes()).decode("utf-8")
        pages[key] = (value["url"], page, value["articleBody"])
    return pages


def extractors() -> dict[str, Callable[[str, str], str]]:
    import trafilatura

    from feedhub.aggregator.extraction import extract_article
    from feedhub.render import html_to_text

    found: dict[str, Callable[[str, str], str]] = {
        "plain text of the page": lambda page, url: html_to_text(page),
        "trafilatura 2.3 (text, as the benchmark runs it)": lambda page, url: trafilatura.extract(page) or "",
        "feedhub full_text (trafilatura HTML, sanitized)": lambda page, url: html_to_text(
            extract_article(page.encode(), url) or ""
        ),
    }
    try:
        from readability import Document
    except ImportError:
        print("readability-lxml is not installed (pip install -e '.[bench]'): its row is left out")
    else:
        found["readability-lxml 0.9"] = lambda page, url: html_to_text(Document(page).summary())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.extraction", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    pages = load_corpus(args.corpus)
    print(f"{len(pages)} pages of {args.corpus}")
    for name, extract in extractors().items():
        begin = time.perf_counter()
        scores = [page_score(true, extract(page, url)) for url, page, true in pages.values()]
        seconds = time.perf_counter() - begin
        score, precision, recall = f1(scores)
        print(f"{name:<52} F1 {score:.3f}  precision {precision:.3f}  recall {recall:.3f}  {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
