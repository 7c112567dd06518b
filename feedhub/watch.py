"""Keep the index in step with the posts folder while a process serves it.

File-system events (inotify through watchfiles) name the files that changed, so a
new or edited post is re-read within a fraction of a second without scanning the
whole folder; a full rescan runs at start and every few minutes as a safety net
(events can be lost on network file systems or when the kernel queue overflows).
The same loop makes scheduled posts visible when their date comes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import watchfiles

from feedhub.index import Index, SyncReport
from feedhub.posts import is_post_file

log = logging.getLogger(__name__)

RESCAN_SECONDS = 300.0
FIRST_PASS_DELAY = 5.0  # after the parent's sync, the first full pass waits until the workers serve
_TICK_MS = 200  # how often the loop wakes without events, to publish scheduled posts


class Watcher:
    def __init__(
        self,
        index: Index,
        posts_dir: Path,
        rescan_seconds: float = RESCAN_SECONDS,
        parent_sync: str | None = None,
    ) -> None:
        self.index = index
        self.posts_dir = posts_dir
        self.rescan_seconds = rescan_seconds
        # The full sync the parent process (`feedhub serve`) finished just before it started us.
        self.parent_sync = parent_sync
        # Set once the index is known to be in step with the folder: after a full sync of this
        # process, or right after the parent's. Until then the index may be behind (a restart
        # after posts were deleted), and answers say so.
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._last_full_sync = 0.0
        self._first_pass_after = 0.0  # seconds before the loop's first full pass
        self.last_error: str | None = None  # why the last sync failed, for /healthz

    def start(self) -> None:
        """Start the watching thread in this process (threads do not survive a fork)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self.ready.clear()
        self._stop.clear()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="feedhub-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Sync before the watching starts, so the app is ready at once, unless the parent process
        # (`feedhub serve` before it starts the workers) just did, and no sync ran since. A full
        # pass of the loop soon after catches what changed before the watch was in place.
        if self.parent_sync is not None and self.index.full_sync_stamp() == self.parent_sync:
            self.ready.set()
            self._first_pass_after = FIRST_PASS_DELAY
        elif self._sync_safely(self.index.sync_all):
            self.ready.set()
        force_polling = False
        while not self._stop.is_set():
            try:
                self._watch(force_polling)
            except Exception:
                if not force_polling:
                    log.warning("%s: file events unavailable; polling the folder instead", self.posts_dir)
                    force_polling = True
                else:
                    log.exception("%s: watching failed; retrying in 5 s", self.posts_dir)
                    self._stop.wait(5)

    def _watch(self, force_polling: bool) -> None:
        self._last_full_sync = time.monotonic() - self.rescan_seconds + self._first_pass_after
        for changes in watchfiles.watch(
            self.posts_dir,
            watch_filter=lambda _change, path: not os.path.basename(path).startswith("."),
            debounce=300,
            step=50,
            rust_timeout=_TICK_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
            raise_interrupt=False,
            force_polling=force_polling,
            poll_delay_ms=1000,
        ):
            self._sync_safely(self._sync, changes)

    def _sync_safely(self, sync: Callable[..., object], *args: object) -> bool:
        """A failed sync (a missing folder, a full disk) is reported and retried, never fatal."""
        try:
            sync(*args)
        except Exception as exc:
            if str(exc) != self.last_error:
                log.exception("%s: syncing the index failed; retrying", self.posts_dir)
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True

    def _sync(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        paths = [self._relative(path) for _change, path in changes]
        report = SyncReport()
        due_for_rescan = time.monotonic() - self._last_full_sync >= self.rescan_seconds
        if due_for_rescan or any(self._maybe_folder(path) for path in paths):
            report = self.index.sync_all()
            self._last_full_sync = time.monotonic()
            self.ready.set()
        elif paths:
            report = self.index.sync_paths(path for path in paths if is_post_file(PurePosixPath(path).name))
        if report.added or report.updated or report.removed:
            # Only the process whose sync found the change logs it: the others find the index current.
            log.info(
                "%s: %d added, %d updated, %d removed",
                self.posts_dir,
                report.added,
                report.updated,
                report.removed,
            )
        next_due = self.index.next_due()
        if next_due is not None and next_due <= self.index.clock():
            self.index.publish_due()

    def _relative(self, path: str) -> str:
        return Path(path).relative_to(self.posts_dir).as_posix()

    def _maybe_folder(self, path: str) -> bool:
        """A folder moved in or out changes many posts at once; a full sync handles it."""
        return not PurePosixPath(path).suffix and not is_post_file(PurePosixPath(path).name)
