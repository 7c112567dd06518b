"""The index's tables and the settings they were built with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from feedhub.config import Config
from feedhub.storage.base import Connection, Dialect
from feedhub.storage.schema import Schema

# Bump when rendering or sanitizing changes, so stored HTML is rebuilt.
RENDER_VERSION = 1
SITE = ""  # the version key of the site-wide feed; every change bumps it
CHANGES_CHANNEL = "feedhub_index"  # NOTIFY channel: the index changed (payload: the site's version)

_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    mtime_ns BIGINT NOT NULL,
    size BIGINT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,          -- a FileStatus
    reason TEXT,                   -- why it was skipped
    warnings TEXT NOT NULL         -- JSON list
);
CREATE TABLE posts (
    path TEXT PRIMARY KEY REFERENCES files(path) ON DELETE CASCADE,
    digest TEXT NOT NULL,          -- of the file; rendered HTML belongs to this content
    entry_id TEXT NOT NULL UNIQUE,
    permalink TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    published TEXT NOT NULL,
    published_ts DOUBLE PRECISION NOT NULL,
    updated TEXT NOT NULL,
    updated_ts DOUBLE PRECISION NOT NULL,
    visible BIGINT NOT NULL,       -- 0 while its date is in the future
    author TEXT,
    description TEXT,
    categories TEXT NOT NULL,      -- JSON list, as written in the post
    tags TEXT NOT NULL,            -- JSON list
    via TEXT,
    enclosures TEXT NOT NULL,      -- JSON list of [url, type, length]
    source TEXT,                   -- for aggregated posts: the source, upstream identity and link
    source_id TEXT,
    source_url TEXT,
    body TEXT NOT NULL,
    body_format TEXT NOT NULL
);
CREATE INDEX posts_by_date ON posts (visible, published_ts DESC, path);
CREATE INDEX posts_by_update ON posts (visible, updated_ts);
CREATE INDEX posts_by_source_id ON posts (source, source_id);
CREATE INDEX posts_by_source_url ON posts (source, source_url);
CREATE TABLE post_categories (
    slug TEXT NOT NULL,
    path TEXT NOT NULL REFERENCES posts(path) ON DELETE CASCADE,
    published_ts DOUBLE PRECISION NOT NULL,
    updated_ts DOUBLE PRECISION NOT NULL,
    visible BIGINT NOT NULL,
    tag TEXT,                      -- the post's tag for this category: its display title
    PRIMARY KEY (slug, path)
);
CREATE INDEX post_categories_by_date ON post_categories (slug, visible, published_ts DESC, path);
CREATE INDEX post_categories_by_update ON post_categories (slug, visible, updated_ts);
CREATE INDEX post_categories_by_path ON post_categories (path);
CREATE TABLE versions (key TEXT PRIMARY KEY, version BIGINT NOT NULL);
CREATE TABLE rendered (            -- a cache: HTML rendered on first use, for one content of a post
    path TEXT PRIMARY KEY REFERENCES posts(path) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    html TEXT NOT NULL,
    summary TEXT NOT NULL
)
"""

# The full-text search (see feedhub.index.search): `search_rows` numbers the posts in publication
# order; `search` holds their tokens by that number.
_SEARCH_ROWS = """
CREATE TABLE search_rows (
    id {id_type} PRIMARY KEY,
    path TEXT NOT NULL UNIQUE REFERENCES posts(path) ON DELETE CASCADE
)"""
_SEARCH_TABLES = {
    Dialect.SQLITE: _SEARCH_ROWS.format(id_type="INTEGER")
    + """;
CREATE VIRTUAL TABLE search USING fts5(title, text, tokenize='ascii');
CREATE TRIGGER search_rows_removed AFTER DELETE ON search_rows
    BEGIN DELETE FROM search WHERE rowid = old.id; END
""",
    Dialect.POSTGRESQL: _SEARCH_ROWS.format(id_type="BIGINT")
    + """;
CREATE TABLE search (
    id BIGINT PRIMARY KEY REFERENCES search_rows(id) ON DELETE CASCADE,
    document TSVECTOR NOT NULL
);
CREATE INDEX search_by_document ON search USING gin (document)
""",
}


def _legacy_version(conn: Connection) -> int:
    """An index file of feedhub before schema versions: schema 4 or older, rebuilt from the posts."""
    return 4 if conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone() else 0


INDEX_SCHEMA = Schema(
    part="index",
    version=6,  # 5: schema_versions; rendered HTML in a table of its own. 6: search
    tables=_TABLES,
    dialect_tables=_SEARCH_TABLES,
    derived_tables=(
        "search",
        "search_rows",
        "rendered",
        "post_categories",
        "posts",
        "files",
        "versions",
        "meta",
    ),
    legacy_version=_legacy_version,
)


@dataclass(frozen=True)
class IndexSettings:
    """Everything the stored rows depend on; a change rebuilds the index's rows."""

    posts_dir: Path
    timezone: ZoneInfo
    base_url: str
    permalink: str
    future: bool

    @classmethod
    def from_config(cls, config: Config) -> IndexSettings:
        return cls(config.posts_dir, config.timezone, config.base_url, config.permalink, config.future)

    def fingerprint(self) -> str:
        # Not the folder's path: hosts mount a shared folder where they like, and the stored
        # paths are relative to it.
        settings = [self.timezone.key, self.base_url, self.permalink, self.future]
        return json.dumps([INDEX_SCHEMA.version, RENDER_VERSION, *settings])
