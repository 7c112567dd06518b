"""The aggregator's state: versioned, migrated, never dropped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from feedhub.aggregator.state import SCHEMA_VERSION, STATE_FILE, StateStore
from feedhub.errors import FeedhubError

# aggregator.sqlite3 as feedhub 0.1.0 made it, before schema versions were recorded
VERSION_1 = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY, config_url TEXT NOT NULL, current_url TEXT, etag TEXT, last_modified TEXT,
    feed_title TEXT, last_poll REAL, result TEXT, reason TEXT, last_new INTEGER NOT NULL DEFAULT 0,
    last_updated INTEGER NOT NULL DEFAULT 0, merged_total INTEGER NOT NULL DEFAULT 0, last_merge REAL,
    errors INTEGER NOT NULL DEFAULT 0, next_poll REAL, gone INTEGER NOT NULL DEFAULT 0,
    polled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE seen (
    source TEXT NOT NULL, identity TEXT NOT NULL, link TEXT, title TEXT NOT NULL, path TEXT, digest TEXT,
    first_seen REAL NOT NULL, PRIMARY KEY (source, identity)
);
INSERT INTO sources (id, config_url, etag, merged_total, polled)
    VALUES ('up', 'https://up.example/', '"v1"', 7, 1);
INSERT INTO seen VALUES ('up', 'id-1', NULL, 'A', 'a.md', 'd', 1.0);
"""


def test_a_version_1_state_is_migrated_with_everything_it_held(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / STATE_FILE) as conn:
        conn.executescript(VERSION_1)
    state = StateStore(tmp_path)
    source = state.source("up", "https://up.example/", lambda: pytest.fail("not a new source"))
    assert (source.validators.etag, source.merged_total, source.polled, source.resume_after) == (
        '"v1"',
        7,
        True,
        None,
    )
    assert state.find_seen("up", "id-1", None, "A") is not None
    with sqlite3.connect(tmp_path / STATE_FILE) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    StateStore(tmp_path)  # opening it again changes nothing


def test_a_new_state_of_a_source_with_posts_records_its_cutoff_once(tmp_path: Path) -> None:
    state = StateStore(tmp_path)
    asked: list[int] = []

    def newest() -> float:
        asked.append(1)
        return 1_600_000_000.0

    assert state.source("up", "https://up.example/", newest).resume_after == 1_600_000_000.0
    assert state.source("up", "https://up.example/", newest).resume_after == 1_600_000_000.0
    assert len(asked) == 1  # decided when the state was made, not at each retry


def test_a_state_from_a_newer_feedhub_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path)
    with sqlite3.connect(tmp_path / STATE_FILE) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(FeedhubError, match="from a newer feedhub"):
        StateStore(tmp_path)
