"""The published site as readers see it: categories with titles, feed pages, listings.

The one reader of the index: pages, feeds, OPML, health and the export all ask this,
never the storage. It joins the config (titles, page sizes) with the index (what the
posts say) and the rendered HTML, so that feeds and pages never decide these things twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from feedhub.config import Config
from feedhub.feeds import FeedPage, SiteInfo
from feedhub.i18n import labels
from feedhub.index.model import CategoryStats, Entry, Headline, Problem, PublishedPost
from feedhub.index.read import IndexReader, PageStart
from feedhub.index.schema import SITE
from feedhub.index.search import (
    SearchOrder,
    SearchQuery,
    Segment,
    excerpt,
    marked,
    parse_query,
    searched_text,
)
from feedhub.limits import MAX_SEARCH_PAGES
from feedhub.rendered import RenderedHtml
from feedhub.storage import open_storage
from feedhub.urls import UNCATEGORIZED, SiteUrls, category_slugs
from feedhub.websub.topics import hub_urls

LISTING_PAGE_SIZE = 100
HOME_LATEST = 20  # the newest posts of the site on the home page
HOME_CATEGORIES = 40  # the most recently active categories there; /categories.html has them all
SEARCH_PAGE_SIZE = 20
EXCERPT_CHARS = 160  # of a post's text shown under a search result, around the first match

Key = TypeVar("Key")
Value = TypeVar("Value")


@dataclass(frozen=True)
class Category:
    slug: str
    title: str
    count: int
    newest: datetime | None


@dataclass(frozen=True)
class Listing:
    """A page of headlines: of a category's posts, or (category None) of the site's."""

    category: Category | None
    page: int
    last_page: int
    headlines: list[Headline]


@dataclass(frozen=True)
class SearchHit:
    headline: Headline
    title: list[Segment]  # matches marked
    excerpt: list[Segment]


@dataclass(frozen=True)
class SearchResults:
    query: SearchQuery
    order: SearchOrder
    page: int
    hits: list[SearchHit]
    more: bool  # whether a next page has results

    @property
    def first(self) -> int:
        """The number of this page's first result."""
        return (self.page - 1) * SEARCH_PAGE_SIZE + 1


@dataclass(frozen=True)
class Home:
    latest: list[Headline]
    active: list[Category]  # the categories with the newest posts, newest first
    category_count: int


@dataclass(frozen=True)
class Neighbours:
    """The posts around one in its first category's order."""

    category: Category
    newer: Headline | None
    older: Headline | None


class CategoryLook(NamedTuple):
    description: str | None
    icon: str | None  # an image's URL


# What the upstream feeds of a category say of it (the aggregator knows).
UpstreamLooks = Callable[[str], CategoryLook]


class Site:
    def __init__(self, config: Config, index: IndexReader, upstream: UpstreamLooks | None = None) -> None:
        self.config = config
        self.index = index
        self.upstream = upstream
        self.rendered = RenderedHtml(index.backend, config.base_url)
        self.urls = SiteUrls(config.base_url)
        icon = config.icon
        self.icon_url = icon.url or self.urls.icon(icon.path.suffix if icon.path else "")
        self.info = SiteInfo(
            title=config.title,
            description=config.description,
            author=config.author,
            language=config.language,
            urls=self.urls,
            ttl_minutes=max(1, config.cache_max_age // 60),
            hubs=hub_urls(config),
        )
        # What a feed's version determines, kept for that version: (slug, page size) -> where its
        # pages start; slug -> its count and newest update; slug -> its title. Threads may race to
        # fill an entry: each finds the same for the same version.
        self._starts: dict[tuple[str | None, int], tuple[int, list[PageStart]]] = {}
        self._sizes: dict[str | None, tuple[int, tuple[int, datetime | None]]] = {}
        self._titles: dict[str, tuple[int, str]] = {}
        # The feed page last built, for its version: an export asks for each page in every format.
        self._last_page: dict[tuple[str | None, int], tuple[int, FeedPage | None]] = {}

    def version(self, slug: str | None) -> int:
        """Changes whenever anything in this category (or, for None, the site) changes."""
        return self.index.version(SITE if slug is None else slug)

    def changes_since(self, version: int) -> dict[str | None, int]:
        """The feeds changed since the highest version was `version` (a category, None for the
        site's), with their versions now: read from the index itself, never a cached copy."""
        return {
            None if key == SITE else key: number for key, number in self.index.versions_above(version).items()
        }

    def categories(self) -> list[Category]:
        """Every category with posts, plus the ones the config names, newest activity first."""
        found = {stats.slug: self._category(stats) for stats in self.index.categories()}
        for slug, title in self.config.categories.items():
            found.setdefault(slug, Category(slug, title, 0, None))
        by_slug = sorted(found.values(), key=lambda c: c.slug)
        return sorted(by_slug, key=lambda c: c.newest.timestamp() if c.newest else -math.inf, reverse=True)

    def category(self, slug: str) -> Category | None:
        count, newest = self._feed_size(slug, self.version(slug))
        if not count and slug not in self.config.categories:
            return None
        return Category(slug, self.title_of(slug), count, newest)

    def title_of(self, slug: str) -> str:
        """The config's title, else the one its newest post's tags give, else the slug."""
        if slug in self.config.categories:
            return self.config.categories[slug]
        if slug == UNCATEGORIZED:
            return labels(self.config.language)["uncategorized"]
        # Every post page and feed page names its categories: found again only when one changed.
        return _for_version(
            self._titles, slug, self.version(slug), lambda: self.index.category_tag(slug) or slug
        )

    def _category(self, stats: CategoryStats) -> Category:
        title = self.config.categories.get(stats.slug) or stats.tag or self.title_of(stats.slug)
        return Category(stats.slug, title, stats.count, stats.newest)

    def feed_page(self, slug: str | None, page: int) -> FeedPage | None:
        """One page of a feed, or None when there is no such category or page."""
        version = self.version(slug)
        if (slug, page) not in self._last_page:
            self._last_page.clear()  # one page kept: a page holds whole posts
        return _for_version(
            self._last_page, (slug, page), version, lambda: self._build_feed_page(slug, page, version)
        )

    def _build_feed_page(self, slug: str | None, page: int, version: int) -> FeedPage | None:
        size = self.config.feed_entries
        count, updated = self._feed_size(slug, version)
        if slug is None:
            title, home_url = self.config.title, self.urls.home()
        else:
            if not count and slug not in self.config.categories:
                return None
            title, home_url = f"{self.title_of(slug)} · {self.config.title}", self.urls.category_page(slug)
        last_page = _pages(count, size)
        if not 1 <= page <= last_page:
            return None
        start = self._page_start(slug, size, page, version)
        entries = self.rendered.entries(self.index.posts(slug, start, size)) if count else []
        look = self.look(slug)
        return FeedPage(
            slug=slug,
            title=title,
            home_url=home_url,
            page=page,
            last_page=last_page,
            updated=updated,
            entries=entries,
            labels=self._labels(entries),
            description=look.description or self.config.description,
            icon=look.icon or self.icon_url,
        )

    def look(self, slug: str | None) -> CategoryLook:
        """What describes a category besides its title: the config's words, else its upstream feed's
        (for a category the aggregator fills); nothing for the site's own feed."""
        if slug is None:
            return CategoryLook(None, None)
        upstream = self.upstream(slug) if self.upstream else CategoryLook(None, None)
        return CategoryLook(
            self.config.category_descriptions.get(slug) or upstream.description,
            self.config.category_icons.get(slug) or upstream.icon,
        )

    def _labels(self, entries: list[Entry]) -> dict[str, str]:
        slugs = {slug for entry in entries for slug in entry.categories}
        return {slug: self.title_of(slug) for slug in slugs}

    def page_count(self, slug: str | None, per_page: int) -> int:
        """How many pages of `per_page` a feed (or category listing) has, without building any."""
        return _pages(self._feed_size(slug, self.version(slug))[0], per_page)

    def _feed_size(self, slug: str | None, version: int) -> tuple[int, datetime | None]:
        """A feed's count and newest update, counted again only when the feed changed: an export
        asks for each of the site feed's thousands of pages."""
        return _for_version(self._sizes, slug, version, lambda: self.index.feed_size(slug))

    def _page_start(self, slug: str | None, per_page: int, page: int, version: int) -> PageStart | None:
        """Where a page starts: page 1 at the newest post, so that the page readers poll after every
        change costs no pass over the feed; a later one where the feed's page starts put it."""
        if page == 1:
            return None
        starts = self._page_starts(slug, per_page, version)
        # The feed may have shrunk since it was counted: its last page, then.
        return starts[min(page, len(starts)) - 1] if starts else None

    def _page_starts(self, slug: str | None, per_page: int, version: int) -> list[PageStart]:
        """Where the feed's pages start, found again only when the feed changed (its version)."""
        return _for_version(
            self._starts, (slug, per_page), version, lambda: self.index.page_starts(slug, per_page)
        )

    def listing(self, slug: str | None, page: int) -> Listing | None:
        """A page of a category's headlines (None: the site's latest), or None past the last."""
        category = None if slug is None else self.category(slug)
        if slug is not None and category is None:
            return None
        version = self.version(slug)
        count = self._feed_size(slug, version)[0]
        last_page = _pages(count, LISTING_PAGE_SIZE)
        if not 1 <= page <= last_page:
            return None
        start = self._page_start(slug, LISTING_PAGE_SIZE, page, version)
        headlines = self.index.headlines(slug, start, LISTING_PAGE_SIZE) if count else []
        return Listing(category, page, last_page, headlines)

    def home(self) -> Home:
        categories = self.categories()
        latest = self.index.headlines(None, None, HOME_LATEST)
        return Home(latest, categories[:HOME_CATEGORIES], len(categories))

    def search(self, text: str, order: SearchOrder, page: int) -> SearchResults | None:
        """A page of the posts matching a query as typed (none for an empty one); None past the
        pages offered."""
        if not 1 <= page <= MAX_SEARCH_PAGES:
            return None
        query = parse_query(text)
        offset = (page - 1) * SEARCH_PAGE_SIZE
        found = self.index.search(query, order, offset, SEARCH_PAGE_SIZE + 1)
        hits = [
            SearchHit(
                match.headline,
                marked(query, match.headline.title),
                excerpt(query, searched_text(match.description, match.body), EXCERPT_CHARS),
            )
            for match in found[:SEARCH_PAGE_SIZE]
        ]
        return SearchResults(
            query, order, page, hits, len(found) > SEARCH_PAGE_SIZE and page < MAX_SEARCH_PAGES
        )

    def directory(self) -> list[tuple[str, list[Category]]]:
        """Every category, grouped by the initial it is sorted by (A to Z, then "#")."""
        groups: dict[str, list[Category]] = {}
        for category in sorted(self.categories(), key=_sort_name):
            initial = _sort_name(category)[:1].upper()
            groups.setdefault(initial if "A" <= initial <= "Z" else "#", []).append(category)
        return sorted(groups.items(), key=lambda group: (group[0] == "#", group[0]))

    def post(self, permalink: str) -> tuple[Entry, list[Category], Neighbours] | None:
        stored = self.index.post_at(permalink)
        if stored is None:
            return None
        (entry,) = self.rendered.entries([stored])
        categories = [
            Category(slug, self.title_of(slug), 0, None) for slug in category_slugs(entry.categories)
        ]
        newer, older = self.index.neighbours(categories[0].slug, entry.path)
        return entry, categories, Neighbours(categories[0], newer, older)

    def updated(self) -> datetime | None:
        """When the newest post of the site was last updated."""
        return self.index.newest_update(None)

    def problems(self) -> tuple[list[Problem], list[Problem]]:
        """(post files that cannot be published, with the reason; warnings about published ones)."""
        return self.index.problems()

    def counts(self) -> dict[str, int]:
        """Published, scheduled and draft posts, and categories."""
        return self.index.counts()

    def instance(self) -> str:
        """Names this index: versions of another one are not comparable with its versions."""
        return self.index.instance()

    def published_posts(self) -> list[PublishedPost]:
        return self.index.published_posts()

    def changes_problem(self) -> str | None:
        """Why changes by other hosts may not be arriving (the shared database is away), or None."""
        return self.index.versions.problem()

    def find_category(self, name: str) -> str | None:
        """A category by slug, or by its lower-cased form as Jekyll wrote it into URLs."""
        if self.category(name) is not None:
            return name
        matches = [category.slug for category in self.categories() if category.slug.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None


def open_site(config: Config) -> Site:
    """The site of a config, reading its index from the configured storage."""
    return Site(config, IndexReader(open_storage(config).index, config.timezone))


def _sort_name(category: Category) -> str:
    """What a category is sorted by in the directory: its title when that starts with a Latin letter,
    else its slug (a Chinese title's slug is its pinyin: 国内 sorts under G)."""
    title = category.title.casefold()
    return title if title[:1].isascii() and title[:1].isalpha() else category.slug.casefold()


def _pages(count: int, per_page: int) -> int:
    """Pages of `per_page` that `count` posts fill; an empty feed has its one (empty) page."""
    return max(1, -(-count // per_page))


def _for_version(
    kept: dict[Key, tuple[int, Value]], key: Key, version: int, work: Callable[[], Value]
) -> Value:
    """What `work` finds for `key`, kept while its feed is at `version`. The version is read before
    the work, so a change that lands meanwhile is found again at the next version."""
    known = kept.get(key)
    if known is not None and known[0] == version:
        return known[1]
    found = work()
    kept[key] = (version, found)
    return found
