"""Keep the index in step with the posts folder while a process serves it.

File-system events (inotify through watchfiles) name the files that changed, so a
new or edited post is re-read within a fraction of a second without scanning the
whole folder; a full rescan runs at start and every few minutes as a safety net
(events can be lost on network file systems or when the kernel queue overflows).
The same loop makes scheduled posts visible when their date comes.

With a shared database one process among all hosts keeps the index (the indexer role, an
advisory lock the server drops when its holder dies); the others stand by, try again every
LEAD_RETRY_SECONDS, and learn of changes by notice. On a network file system (NFS, SMB…)
file events from other hosts never arrive, so the folder is polled instead.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import watchfiles

from feedhub.index.model import SyncReport
from feedhub.index.write import IndexWriter
from feedhub.posts import is_post_file
from feedhub.storage.base import Leadership

log = logging.getLogger(__name__)

RESCAN_SECONDS = 300.0
FIRST_PASS_DELAY = 5.0  # after the parent's sync, the first full pass waits until the workers serve
_TICK_MS = 200  # how often the loop wakes without events, to publish scheduled posts
LEAD_RETRY_SECONDS = 2.0  # how often a process standing by tries to become the indexer
RETRY_SECONDS = 2.0  # after a failed sync, the next full one
# File systems where inotify sees no change made by another host.
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "fuse.sshfs", "fuse.glusterfs", "afs"}
)


def file_system_type(folder: Path) -> str | None:
    """The type of the file system `folder` is on (from /proc/mounts), or None where unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target, best = os.path.realpath(folder), ("", "")
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best[1] or None


class Watcher:
    def __init__(
        self,
        index: IndexWriter,
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
        self._leadership: Leadership | None = None
        self._lead_checked = 0.0

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
        while not self._stop.is_set():
            self._stand_by()
            if self._stop.is_set():
                return
            self._keep_the_index()

    def _stand_by(self) -> None:
        """Wait until this process may keep the index (at once, with SQLite); ready meanwhile as
        soon as another process has synced it."""
        waited = False
        while not self._stop.is_set():
            try:
                self._leadership = self.index.lead()
            except Exception as exc:
                self._note_failure(exc)
                self._leadership = None
            if self._leadership is not None:
                if waited:
                    log.info("%s: this process keeps the index now", self.posts_dir)
                return
            if not waited:
                log.info("%s: another process keeps the index; standing by", self.posts_dir)
                waited = True
            try:
                if self.index.full_sync_stamp() is not None:
                    self.ready.set()
            except Exception as exc:
                self._note_failure(exc)
            self._stop.wait(LEAD_RETRY_SECONDS)

    def _keep_the_index(self) -> None:
        # Sync before the watching starts, so the app is ready at once, unless the parent process
        # (`feedhub serve` before it starts the workers) just did, and no sync ran since. A full
        # pass of the loop soon after catches what changed before the watch was in place.
        if self.parent_sync is not None and self.index.full_sync_stamp() == self.parent_sync:
            self.ready.set()
            self._first_pass_after = FIRST_PASS_DELAY
        else:
            self._sync_safely(self._sync_the_folder)
        fs_type = file_system_type(self.posts_dir)
        force_polling = fs_type in NETWORK_FILE_SYSTEMS
        if force_polling:
            log.info(
                "%s: on %s, where changes made by other hosts raise no file events; polling the folder",
                self.posts_dir,
                fs_type,
            )
        while not self._stop.is_set() and self._still_leading():
            try:
                self._watch(force_polling)
            except _LostTheLead:
                log.warning("%s: lost the indexer role (the database connection broke)", self.posts_dir)
                return
            except Exception as exc:
                # The watch stopped or could not start. A full sync catches up on what it missed and,
                # when the folder itself is the trouble (gone, unmounted), says so for /healthz.
                if not self._sync_safely(self._sync_the_folder):
                    self._stop.wait(RETRY_SECONDS)
                elif not force_polling:
                    log.warning(
                        "%s: file events unavailable (%s); polling the folder instead", self.posts_dir, exc
                    )
                    force_polling = True
                else:
                    log.warning(
                        "%s: watching failed (%s); retrying in %g s", self.posts_dir, exc, RETRY_SECONDS
                    )
                    self._stop.wait(RETRY_SECONDS)

    def _still_leading(self) -> bool:
        if self._leadership is None:
            return False
        now = time.monotonic()
        if now - self._lead_checked < LEAD_RETRY_SECONDS:
            return True
        self._lead_checked = now
        return self._leadership.held()

    def _note_failure(self, exc: Exception) -> None:
        if str(exc) != self.last_error:
            log.warning("%s: %s", self.posts_dir, exc)
        self.last_error = str(exc)

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
        except _LostTheLead:
            raise
        except Exception as exc:
            if str(exc) != self.last_error:
                log.exception("%s: syncing the index failed; retrying", self.posts_dir)
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True

    def _sync(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        if not self._still_leading():
            raise _LostTheLead
        paths = [self._relative(path) for _change, path in changes]
        report = SyncReport()
        since_full_sync = time.monotonic() - self._last_full_sync
        due_for_rescan = since_full_sync >= self.rescan_seconds
        # After a failed sync, changes may have been missed (their events are gone): compare it all.
        retry = self.last_error is not None and since_full_sync >= RETRY_SECONDS
        if due_for_rescan or retry or any(self._maybe_folder(path) for path in paths):
            report = self._sync_the_folder()
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

    def _sync_the_folder(self) -> SyncReport:
        self._last_full_sync = time.monotonic()
        report = self.index.sync_all()
        self.ready.set()
        return report

    def _relative(self, path: str) -> str:
        return Path(path).relative_to(self.posts_dir).as_posix()

    def _maybe_folder(self, path: str) -> bool:
        """A folder moved in or out changes many posts at once; a full sync handles it."""
        return not PurePosixPath(path).suffix and not is_post_file(PurePosixPath(path).name)


class _LostTheLead(Exception):
    """Another process may keep the index now: this one stops watching and stands by."""
