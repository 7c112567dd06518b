"""The index's read side: what `Site` asks, and nothing else. Opening it takes no lock and
reads nothing, so a web process never waits behind a sync, however long the sync runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from feedhub.index.model import CategoryStats, Entry, FileStatus, Headline, Problem, PublishedPost
from feedhub.index.search import SearchOrder, SearchQuery, backend_query, matching_sql
from feedhub.index.versions import NotifiedVersions, QueriedVersions, Versions, versions_above
from feedhub.posts import Enclosure
from feedhub.storage.base import Backend, Connection, Row
from feedhub.urls import category_slugs


@dataclass(frozen=True)
class StoredPost:
    """A post as the index holds it, with what rendering it needs. Its entry carries the HTML once
    it was rendered and kept (see `rendered`); until then `rendered` is False and the HTML empty."""

    entry: Entry
    rendered: bool
    digest: str
    description: str | None
    body: str
    body_format: str


class Found(NamedTuple):
    """A post that matched a search, with the text its excerpt is taken from."""

    headline: Headline
    description: str | None
    body: str


class PageStart(NamedTuple):
    """The first post of a page: its place in the feeds' order."""

    published_ts: float
    path: str


_POST_COLUMNS = (
    "p.path, p.digest, p.entry_id, p.permalink, p.title, p.published, p.updated, p.author, "
    "p.description, p.categories, p.tags, p.via, p.enclosures, p.body, p.body_format, "
    "r.html, r.summary"
)
_HEADLINE_COLUMNS = "p.permalink, p.title, p.published, p.categories"
# The post next to one (`me`) in a category, on one side: {0} the dates' side, {1} the paths' side
# among posts of the same date, {2} the order that puts the nearest first.
_NEIGHBOUR = (
    f"SELECT {_HEADLINE_COLUMNS} FROM post_categories me "
    "JOIN post_categories c ON c.slug = me.slug AND c.visible=1 "
    "AND (c.published_ts {0} me.published_ts OR (c.published_ts = me.published_ts AND c.path {1} me.path)) "
    "JOIN posts p ON p.path = c.path WHERE me.slug=? AND me.path=? ORDER BY c.published_ts {2} LIMIT 1"
)
_WITH_RENDERED = "LEFT JOIN rendered r ON r.path = p.path AND r.digest = p.digest"


class IndexReader:
    def __init__(self, backend: Backend, timezone: ZoneInfo) -> None:
        self.backend = backend
        self.timezone = timezone
        self.versions: Versions = NotifiedVersions(backend) if backend.shared else QueriedVersions(backend)

    def version(self, key: str) -> int:
        """The version of a feed (a category slug, or SITE); 0 for an unknown one."""
        return self.versions.version(key)

    def versions_above(self, version: int) -> dict[str, int]:
        """The feeds changed since the highest version was `version`, with their versions."""
        with self.backend.reading() as conn:
            return versions_above(conn, version)

    def instance(self) -> str:
        """Identifies this index: versions are comparable only within one instance."""
        with self.backend.reading() as conn:
            return str(conn.execute("SELECT value FROM meta WHERE key='instance'").fetchone()["value"])

    def published_posts(self) -> list[PublishedPost]:
        """Every visible post, with the files of its neighbours in its first category."""
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT c.slug, p.permalink, p.digest, p.categories, "
                "lag(p.digest) OVER by_date AS newer, lead(p.digest) OVER by_date AS older "
                "FROM post_categories c JOIN posts p ON p.path = c.path WHERE c.visible=1 "
                "WINDOW by_date AS (PARTITION BY c.slug ORDER BY c.published_ts DESC, c.path)"
            ).fetchall()
        published = []
        for row in rows:
            categories = tuple(json.loads(row["categories"]))
            if row["slug"] == category_slugs(categories)[0]:
                neighbours = (row["newer"], row["older"])
                published.append(PublishedPost(row["permalink"], row["digest"], categories, neighbours))
        return published

    def feed_size(self, slug: str | None) -> tuple[int, datetime | None]:
        """How many visible posts a feed has, and the newest `updated` among them."""
        table, where, params = _feed_rows(slug)
        with self.backend.reading() as conn:
            count = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}", params).fetchone()["n"]
        return int(count), self.newest_update(slug) if count else None

    def newest_update(self, slug: str | None) -> datetime | None:
        """The newest `updated` among a feed's visible posts."""
        with self.backend.reading() as conn:
            if slug is None:
                newest = conn.execute(
                    "SELECT updated FROM posts WHERE visible=1 ORDER BY updated_ts DESC LIMIT 1"
                ).fetchone()
            else:
                newest = conn.execute(
                    "SELECT p.updated FROM post_categories c JOIN posts p ON p.path = c.path "
                    "WHERE c.slug=? AND c.visible=1 ORDER BY c.updated_ts DESC LIMIT 1",
                    (slug,),
                ).fetchone()
        return datetime.fromisoformat(newest["updated"]) if newest else None

    def page_starts(self, slug: str | None, per_page: int) -> list[PageStart]:
        """Where each page of `per_page` posts of a feed (or listing) starts, newest first: one pass
        over the feed's index, after which any page is read from its start as page 1 is, instead of
        skipping every post before it (an OFFSET made the last pages of a big feed the slowest)."""
        table, where, params = _feed_rows(slug)
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT published_ts, path FROM ("
                "SELECT published_ts, path, row_number() OVER (ORDER BY published_ts DESC, path) AS n "
                f"FROM {table} WHERE {where}) numbered WHERE (n - 1) % ? = 0 ORDER BY n",
                (*params, per_page),
            ).fetchall()
        return [PageStart(float(row["published_ts"]), row["path"]) for row in rows]

    def posts(self, slug: str | None, start: PageStart | None, limit: int) -> list[StoredPost]:
        """A feed's visible posts, newest first, from `start` on (None: from the newest)."""
        with self.backend.reading() as conn:
            rows = _newest(conn, f"{_POST_COLUMNS} FROM {{}} {_WITH_RENDERED}", slug, start, limit)
        return [_stored_post(row) for row in rows]

    def search(self, query: SearchQuery, order: SearchOrder, offset: int, limit: int) -> list[Found]:
        """A page of the visible posts matching `query`, in `order`."""
        if not query.terms:
            return []
        dialect = self.backend.dialect
        sql, uses = matching_sql(dialect, order, f"{_HEADLINE_COLUMNS}, p.description, p.body")
        with self.backend.reading() as conn:
            rows = conn.execute(sql, (*[backend_query(dialect, query)] * uses, limit, offset)).fetchall()
        return [Found(_headline(row), row["description"], row["body"]) for row in rows]

    def post_at(self, permalink: str) -> StoredPost | None:
        with self.backend.reading() as conn:
            row = conn.execute(
                f"SELECT {_POST_COLUMNS} FROM posts p {_WITH_RENDERED} WHERE p.permalink=? AND p.visible=1",
                (permalink,),
            ).fetchone()
        return _stored_post(row) if row else None

    def categories(self) -> list[CategoryStats]:
        """Every category with visible posts, with its newest post's tag."""
        with self.backend.reading() as conn:
            rows = conn.execute(
                """
                SELECT c.slug, c.count, c.newest, t.tag FROM (
                    SELECT slug, count(*) AS count, max(published_ts) AS newest
                    FROM post_categories WHERE visible=1 GROUP BY slug
                ) c LEFT JOIN (
                    SELECT slug, tag,
                           row_number() OVER (PARTITION BY slug ORDER BY published_ts DESC, path) AS rank
                    FROM post_categories WHERE visible=1 AND tag IS NOT NULL
                ) t ON t.slug = c.slug AND t.rank = 1
                ORDER BY c.slug
                """
            ).fetchall()
        return [
            CategoryStats(
                row["slug"],
                int(row["count"]),
                datetime.fromtimestamp(row["newest"], self.timezone),
                row["tag"],
            )
            for row in rows
        ]

    def category_tag(self, slug: str) -> str | None:
        with self.backend.reading() as conn:
            row = conn.execute(
                "SELECT tag FROM post_categories WHERE slug=? AND visible=1 AND tag IS NOT NULL "
                "ORDER BY published_ts DESC, path LIMIT 1",
                (slug,),
            ).fetchone()
        return row["tag"] if row else None

    def headlines(self, slug: str | None, start: PageStart | None, limit: int) -> list[Headline]:
        """A feed's visible posts as headlines, newest first, from `start` on (None: the newest)."""
        with self.backend.reading() as conn:
            rows = _newest(conn, f"{_HEADLINE_COLUMNS} FROM {{}}", slug, start, limit)
        return [_headline(row) for row in rows]

    def neighbours(self, slug: str, path: str) -> tuple[Headline | None, Headline | None]:
        """The posts just newer and just older than the one at `path`, in a category's order."""
        with self.backend.reading() as conn:
            newer, older = (
                conn.execute(_NEIGHBOUR.format(*sides), (slug, path)).fetchone()
                for sides in ((">", "<", "ASC, c.path DESC"), ("<", ">", "DESC, c.path"))
            )
        return (_headline(newer) if newer else None), (_headline(older) if older else None)

    def problems(self) -> tuple[list[Problem], list[Problem]]:
        """(skipped files with their reason, warnings about published ones)."""
        with self.backend.reading() as conn:
            skipped = conn.execute(
                "SELECT path, reason FROM files WHERE status=? ORDER BY path", (FileStatus.SKIPPED.value,)
            ).fetchall()
            warned = conn.execute(
                "SELECT path, warnings FROM files WHERE warnings != '[]' ORDER BY path"
            ).fetchall()
        return (
            [Problem(row["path"], row["reason"]) for row in skipped],
            [Problem(row["path"], warning) for row in warned for warning in json.loads(row["warnings"])],
        )

    def counts(self) -> dict[str, int]:
        with self.backend.reading() as conn:
            posts = conn.execute(
                "SELECT count(*) AS total, coalesce(sum(visible), 0) AS visible FROM posts"
            ).fetchone()
            drafts = conn.execute(
                "SELECT count(*) AS n FROM files WHERE status=?", (FileStatus.DRAFT.value,)
            ).fetchone()["n"]
            categories = conn.execute(
                "SELECT count(DISTINCT slug) AS n FROM post_categories WHERE visible=1"
            ).fetchone()["n"]
        visible = int(posts["visible"])
        return {
            "posts": visible,
            "scheduled": int(posts["total"]) - visible,
            "drafts": int(drafts),
            "categories": int(categories),
        }


def _feed_rows(slug: str | None) -> tuple[str, str, tuple[str, ...]]:
    """(table, condition, its parameters) of a feed's visible rows: the site's posts, or a category's."""
    return (
        ("posts", "visible=1", ()) if slug is None else ("post_categories", "slug=? AND visible=1", (slug,))
    )


def _newest(
    conn: Connection, selected: str, slug: str | None, start: PageStart | None, limit: int
) -> list[Row]:
    """A feed's visible rows, newest first, from `start` on: `selected` is what the SELECT takes,
    its {} where the posts (`p`) come from, the site's or a category's."""
    if slug is None:
        sql = f"SELECT {selected.format('posts p')} WHERE p.visible=1{_from_start('p', start)} "
        order, params = "p.published_ts DESC, p.path", (*_start_params(start), limit)
    else:
        source = "post_categories c JOIN posts p ON p.path = c.path"
        sql = f"SELECT {selected.format(source)} WHERE c.slug=? AND c.visible=1{_from_start('c', start)} "
        order, params = "c.published_ts DESC, c.path", (slug, *_start_params(start), limit)
    return list(conn.execute(f"{sql}ORDER BY {order} LIMIT ?", params).fetchall())


def _from_start(alias: str, start: PageStart | None) -> str:
    """The condition that keeps the posts from `start` on, in the feeds' order (newest first, then
    by path), written so the date index is searched from there (a range on published_ts)."""
    if start is None:
        return ""
    return f" AND {alias}.published_ts <= ? AND NOT ({alias}.published_ts = ? AND {alias}.path < ?)"


def _start_params(start: PageStart | None) -> tuple[object, ...]:
    return () if start is None else (start.published_ts, start.published_ts, start.path)


def _headline(row: Row) -> Headline:
    return Headline(
        row["permalink"],
        row["title"],
        datetime.fromisoformat(row["published"]),
        tuple(json.loads(row["categories"])),
    )


def _stored_post(row: Row) -> StoredPost:
    entry = Entry(
        path=row["path"],
        entry_id=row["entry_id"],
        permalink=row["permalink"],
        title=row["title"],
        published=datetime.fromisoformat(row["published"]),
        updated=datetime.fromisoformat(row["updated"]),
        author=row["author"],
        categories=tuple(json.loads(row["categories"])),
        tags=tuple(json.loads(row["tags"])),
        via=row["via"],
        enclosures=tuple(Enclosure(*item) for item in json.loads(row["enclosures"])),
        html=row["html"] or "",
        summary=row["summary"] or "",
    )
    rendered = row["html"] is not None
    return StoredPost(entry, rendered, row["digest"], row["description"], row["body"], row["body_format"])
