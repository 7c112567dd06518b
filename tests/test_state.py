"""The aggregator's state: versioned, migrated, never dropped; sources leased to one poller."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from feedhub.aggregator.state import STATE_SCHEMA, Outcome, PollResult, SeenEntry, StateStore
from feedhub.errors import StorageError, StorageFault
from feedhub.index.identity import EntryKey
from feedhub.storage import STATE_FILE, open_storage
from feedhub.storage.postgres import PostgresBackend
from feedhub.storage.sqlite import SqliteBackend
from tests.helpers import BOTH_BACKENDS, SiteFolder
from tests.postgres import free_port

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
INSERT INTO sources (id, config_url, etag, merged_total, polled, result)
    VALUES ('up', 'https://up.example/', '"v1"', 7, 1, 'not-modified');
INSERT INTO seen VALUES ('up', 'id-1', NULL, 'A', 'a.md', 'd', 1.0);
"""
# and as feedhub 0.8 left it: schema 2 in user_version, a resume point recorded
VERSION_2 = VERSION_1 + "ALTER TABLE sources ADD COLUMN resume_after REAL;\nPRAGMA user_version=2;\n"


def store(site: SiteFolder) -> StateStore:
    return StateStore(open_storage(site.config()).state)


@pytest.mark.parametrize("old", [VERSION_1, VERSION_2], ids=["version-1", "version-2"])
def test_an_older_state_file_is_migrated_with_everything_it_held(tmp_path: Path, old: str) -> None:
    with sqlite3.connect(tmp_path / STATE_FILE) as conn:
        conn.executescript(old)
    state = StateStore(SqliteBackend(tmp_path / STATE_FILE))
    source = state.source("up", "https://up.example/", lambda: pytest.fail("not a new source"))
    assert (source.validators.etag, source.merged_total, source.polled, source.resume_after) == (
        '"v1"',
        7,
        True,
        None,
    )
    assert source.result is PollResult.NOT_MODIFIED
    assert "id-1" in state.find_seen("up", [EntryKey("id-1", None, "A")])
    assert state.lease("up", "poller-1", 100.0, 30) is None  # the columns the migration added work
    state.tell_stories("news", "up", [("link:https://up.example/1", "a.md")])
    assert state.find_stories("news", ["link:https://up.example/1"]) == {
        "link:https://up.example/1": ("up", "a.md")
    }
    with sqlite3.connect(tmp_path / STATE_FILE) as conn:
        version = conn.execute("SELECT version FROM schema_versions WHERE part='aggregator'").fetchone()
        assert version == (STATE_SCHEMA.version,) == (5,)
    StateStore(SqliteBackend(tmp_path / STATE_FILE))  # opening it again changes nothing


@BOTH_BACKENDS
def test_a_new_state_of_a_source_with_posts_records_its_cutoff_once(site: SiteFolder) -> None:
    state = store(site)
    asked: list[int] = []

    def newest() -> float:
        asked.append(1)
        return 1_600_000_000.0

    assert state.source("up", "https://up.example/", newest).resume_after == 1_600_000_000.0
    assert state.source("up", "https://up.example/", newest).resume_after == 1_600_000_000.0
    assert len(asked) == 1  # decided when the state was made, not at each retry


@BOTH_BACKENDS
def test_a_state_from_a_newer_feedhub_is_refused(site: SiteFolder) -> None:
    state = store(site)
    with state.backend.transaction() as conn:
        conn.execute(
            "UPDATE schema_versions SET version=? WHERE part='aggregator'", (STATE_SCHEMA.version + 1,)
        )
    with pytest.raises(StorageError, match="aggregator is from a newer feedhub") as raised:
        store(site)
    assert raised.value.fault is StorageFault.NEWER


@BOTH_BACKENDS
def test_a_source_is_leased_to_one_poller_until_it_records_or_the_lease_ends(site: SiteFolder) -> None:
    state = store(site)
    state.source("up", "https://up.example/", lambda: None)
    assert state.lease("up", "a", 1000.0, 30) is None
    assert state.lease("up", "b", 1010.0, 30) == 1030.0  # a holds it: ask again when its lease ends
    assert state.lease("up", "b", 1031.0, 30) is None  # a died: its lease ended
    state.record("up", Outcome(PollResult.UNCHANGED), 1040.0, next_poll=1100.0)
    assert state.lease("up", "a", 1050.0, 30, due_only=True) == 1100.0  # b polled it: not due yet
    assert state.lease("up", "a", 1100.0, 30, due_only=True) is None


@BOTH_BACKENDS
def test_a_renewed_lease_outlives_its_first_term(site: SiteFolder) -> None:
    state = store(site)
    state.source("up", "https://up.example/", lambda: None)
    assert state.lease("up", "a", 1000.0, 30) is None
    state.renew(["up"], "a", 1060.0)
    assert state.lease("up", "b", 1045.0, 30) == 1060.0


@BOTH_BACKENDS
def test_an_upstream_entry_is_claimed_once_whatever_the_race(site: SiteFolder) -> None:
    state = store(site)
    claimed: list[str | None] = []

    def claim(number: int) -> None:
        record = SeenEntry(
            "up", "entry-1", "https://up.example/1", "One", f"2026-12-0{number}-x.md", None, 1.0
        )
        claimed.append(StateStore(state.backend).claim([record])[record.identity])

    racers = [threading.Thread(target=claim, args=(number,)) for number in range(1, 9)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(claimed) == 8 and len(set(claimed)) == 1 and claimed[0] is not None


@BOTH_BACKENDS
def test_more_entries_than_one_statement_takes_are_claimed_and_remembered(site: SiteFolder) -> None:
    # 1,200 rows of 7 values: several INSERT statements (999 parameters each at most)
    state = store(site)
    records = [
        SeenEntry("up", f"entry-{n}", f"https://up.example/{n}", f"T{n}", f"p{n}.md", None, 1.0)
        for n in range(1200)
    ]
    claimed = state.claim(records)
    assert claimed == {record.identity: record.path for record in records}
    # written twice in one batch (last one wins, as one row)
    state.remember([*records, records[5]._replace(digest="second"), records[7]._replace(digest="d")])
    keys = [EntryKey(record.identity, record.link, record.title) for record in records]
    seen = state.find_seen("up", keys)
    assert len(seen) == 1200 and seen["entry-5"].digest == "second" and seen["entry-7"].digest == "d"
    assert seen["entry-0"].digest is None and seen["entry-1199"].path == "p1199.md"


def test_storage_errors_name_the_database_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as raised:
        StateStore(SqliteBackend(tmp_path / "missing" / STATE_FILE))
    assert raised.value.fault is StorageFault.UNAVAILABLE
    assert str(raised.value).startswith(f"{tmp_path}/missing/{STATE_FILE}: cannot open")
    assert f"check that {tmp_path}/missing exists" in str(raised.value)

    url = f"postgresql://feedhub:secret@127.0.0.1:{free_port()}/feedhub"
    with pytest.raises(StorageError) as raised:
        StateStore(PostgresBackend(url))
    assert raised.value.fault is StorageFault.UNAVAILABLE
    message = str(raised.value)
    assert message.startswith(
        f"postgresql://feedhub@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/feedhub: "
    )
    assert "cannot reach PostgreSQL" in message and "secret" not in message
