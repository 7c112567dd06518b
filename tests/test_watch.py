from __future__ import annotations

from pathlib import Path

from feedhub.index.model import SyncReport
from feedhub.watch import Watcher
from tests.helpers import SiteFolder, open_index, wait_for


def test_a_folder_gone_before_the_watch_starts_is_reported(site: SiteFolder) -> None:
    """The folder vanishes between the first sync and the start of the watch (seen in CI): the
    watch cannot start, on events or by polling, and health must say why rather than stay ok."""
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 10:00:00", categories="one")
    index = open_index(site.config())
    writer = index.writer
    unmounted = site.root / "unmounted"
    first_sync = writer.sync_all

    def sync_then_unmount() -> SyncReport:
        report = first_sync()
        if site.posts.exists() and not unmounted.exists():
            site.posts.rename(unmounted)
        return report

    writer.sync_all = sync_then_unmount  # type: ignore[method-assign]
    watcher = Watcher(writer, site.posts)
    watcher.start()
    try:
        assert watcher.ready.wait(10)
        assert wait_for(lambda: watcher.last_error is not None)
        assert "the posts folder is missing" in str(watcher.last_error)

        unmounted.rename(site.posts)
        assert wait_for(lambda: watcher.last_error is None, timeout=20)
    finally:
        watcher.stop()


def test_a_post_added_while_the_folder_was_away_is_found(site: SiteFolder) -> None:
    index = open_index(site.config())
    watcher = Watcher(index.writer, site.posts)
    watcher.start()
    try:
        assert watcher.ready.wait(10)
        away = site.root / "away"
        site.posts.rename(away)
        assert wait_for(lambda: watcher.last_error is not None)
        Path(away / "2022-01-02-b.md").write_text(
            "---\ntitle: B\ndate: 2022-01-02 10:00:00\ncategories: two\n---\nbody\n", encoding="utf-8"
        )
        away.rename(site.posts)
        assert wait_for(lambda: [entry.title for entry in index.entries(None, 0, 10)] == ["B"], timeout=20)
    finally:
        watcher.stop()
