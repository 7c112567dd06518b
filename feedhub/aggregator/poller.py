"""Poll one source: fetch, parse, merge, and record how it went, in one log line.

Failures back off (interval × 2^errors, at most 24 h) and recover on the next
success; 429 and 503 wait as long as Retry-After says; only 410 Gone stops a source,
until an operator re-enables it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from feedhub import __version__
from feedhub.addresses import AddressPolicy, origin
from feedhub.aggregator.entries import ParsedFeed, ParseError
from feedhub.aggregator.fetch import Fetcher, FetchError
from feedhub.aggregator.full_text import ArticleCache, FullText
from feedhub.aggregator.merge import FirstPoll, MergeCounts, Merger
from feedhub.aggregator.parsing import Parsing
from feedhub.aggregator.sources import Source, comparable_url
from feedhub.aggregator.state import Outcome, PollResult, SourceState, StateStore
from feedhub.config import Config
from feedhub.errors import StorageError
from feedhub.index.write import IndexWriter
from feedhub.metrics import record_poll
from feedhub.text import quoted
from feedhub.websub.push_store import Pushed, PushStore
from feedhub.websub.subscriber import push_interval, record_discovery

log = logging.getLogger(__name__)

MAX_BACKOFF = 86400.0
# A source is leased to one poller for this long, renewed every LEASE_RENEW_SECONDS while its poll
# runs: a poller killed mid-poll holds it no longer than this.
LEASE_SECONDS = 30.0
LEASE_RENEW_SECONDS = 5.0


@dataclass(frozen=True)
class PollReport:
    source: str
    result: PollResult | None  # None: not polled, another poller holds it (until `leased_until`)
    reason: str | None
    counts: MergeCounts | None
    state: SourceState | None  # None when even recording the poll failed
    leased_until: float | None = None

    @property
    def failed(self) -> bool:
        return self.result is not None and self.result.failed

    @property
    def outcome_word(self) -> str:
        return self.result.value if self.result else "leased"


def user_agent(config: Config) -> str:
    return f"feedhub/{__version__} (+{config.base_url}/)"


class Poller:
    def __init__(
        self,
        config: Config,
        index: IndexWriter,
        state: StateStore,
        clock: Callable[[], float] = time.time,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.state = state
        self.index = index
        self.clock = clock
        self.fetcher = fetcher or Fetcher(user_agent(config), clock)
        self.parsing = Parsing(config.parse_processes)
        self.merger = Merger(
            config,
            index,
            state,
            clock,
            FullText(self.fetcher, ArticleCache(state.backend), self.parsing, clock),
        )
        self.config = config
        self.pushes = PushStore(state.backend)
        self.posts_dir = config.posts_dir
        # Names this poller in leases: unique across hosts, and across restarts of a pid.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leased: set[str] = set()
        self._leased_lock = threading.Lock()
        self._renewing: threading.Thread | None = None

    def poll(self, source: Source, due_only: bool = False) -> PollReport:
        """Poll once, unless another poller holds the source (or, with `due_only`, polled it since
        its poll came due); whatever fails is this source's error, with a reason, and never raises."""
        try:
            current = self.state.source(
                source.id, source.url, lambda: self.index.newest_source_post(source.id)
            )
            if current.gone:
                # Nothing is fetched: a 410 stands until `feedhub enable` (or a new url).
                return PollReport(source.id, PollResult.GONE, current.reason, None, current)
            busy_until = self.state.lease(
                source.id, self.owner, self.clock(), LEASE_SECONDS, due_only, holder_dead=gone_from_this_host
            )
        except Exception as exc:  # the state store itself failed: the report still says so
            log.exception("source %s: the poll could not start", source.id)
            return PollReport(
                source.id, PollResult.ERROR, f"cannot record the poll: {_failure(exc)}", None, None
            )
        if busy_until is not None:
            log.debug("source %s: another poller holds it until %s", source.id, busy_until)
            return PollReport(source.id, None, None, None, current, leased_until=busy_until)
        self._hold(source.id)
        recorded = False
        try:
            report = self._poll(source, current)  # recording the poll gives the lease back
            recorded = True
            return report
        except Exception as exc:
            log.exception("source %s: the poll could not be recorded", source.id)
            return PollReport(
                source.id, PollResult.ERROR, f"cannot record the poll: {_failure(exc)}", None, None
            )
        finally:  # also on SystemExit: only a kill -9 leaves a lease to expire
            with self._leased_lock:
                self._leased.discard(source.id)
            if not recorded:
                self._give_back(source.id)

    def _poll(self, source: Source, current: SourceState) -> PollReport:
        retry_at = None
        try:
            outcome, counts = self._fetch_and_merge(source, current)
        except FetchError as exc:
            outcome, counts = Outcome(PollResult.GONE if exc.gone else PollResult.ERROR, exc.reason), None
            retry_at = exc.retry_at
        except ParseError as exc:
            outcome, counts = Outcome(PollResult.ERROR, str(exc)), None
        except OSError as exc:  # a full or read-only disk: the posts cannot be written
            reason = f"cannot write posts to {self.posts_dir}: {exc.strerror or exc}"
            outcome, counts = Outcome(PollResult.ERROR, reason), None
        except StorageError as exc:
            outcome, counts = Outcome(PollResult.ERROR, f"the index failed: {exc}"), None
        except Exception as exc:  # a bug met on hostile input: this source fails, the others go on
            log.exception("source %s: the poll failed unexpectedly", source.id)
            outcome, counts = Outcome(PollResult.ERROR, f"unexpected error: {_failure(exc)}"), None
        now = self.clock()
        next_poll = self._next_poll(source, current, outcome, now, retry_at)
        state = self.state.record(source.id, outcome, now, next_poll)  # gives the lease back
        report = PollReport(source.id, outcome.result, outcome.reason, counts, state)
        _log(source, report, state)
        record_poll(source.id, outcome.result.value, outcome.new + outcome.updated)
        return report

    # ---- leases ------------------------------------------------------------------------

    def _hold(self, source_id: str) -> None:
        """Keep this source's lease alive while its poll runs (a slow feed outlives LEASE_SECONDS)."""
        with self._leased_lock:
            self._leased.add(source_id)
            if self._renewing is None or not self._renewing.is_alive():
                self._renewing = threading.Thread(target=self._renew, name="poll-leases", daemon=True)
                self._renewing.start()

    def _renew(self) -> None:
        while True:
            time.sleep(LEASE_RENEW_SECONDS)
            with self._leased_lock:
                held = sorted(self._leased)
            if not held:
                return
            try:
                self.state.renew(held, self.owner, self.clock() + LEASE_SECONDS)
            except StorageError as exc:  # the database is away: the poll finds out when it records
                log.warning("cannot renew the leases of %s: %s", ", ".join(held), exc)

    def _give_back(self, source_id: str) -> None:
        with contextlib.suppress(StorageError):  # else the lease ends by itself
            self.state.release(source_id, self.owner)

    def _fetch_and_merge(self, source: Source, current: SourceState) -> tuple[Outcome, MergeCounts | None]:
        policy = AddressPolicy(origin(source.url), source.allow_private_addresses)
        fetched = self.fetcher.fetch(
            current.url, current.validators, source.timeout, source.max_bytes, policy
        )
        moved_to = fetched.permanent_url
        if moved_to:
            log.warning(
                "source %s: %s moved permanently to %s (sources.yaml unchanged)",
                source.id,
                current.url,
                moved_to,
            )
        if fetched.not_modified:
            return Outcome(PollResult.NOT_MODIFIED, validators=fetched.validators, moved_to=moved_to), None
        feed = self.parsing.parse(source, fetched.body or b"", fetched.headers, fetched.url)
        record_discovery(self.pushes, self.config, source, fetched.headers, feed, fetched.url, self.clock())
        outcome, counts = self._merge(source, current, feed)
        landed = comparable_url(fetched.url)
        same = self.state.others_fetching(source.id, landed)
        if same:  # two entries of sources.yaml that are one feed: each entry would be merged twice
            names = ", ".join(same)
            warning = f"polls the same feed as source {names} after redirects ({fetched.url})"
            outcome = replace(outcome, reason="; ".join(filter(None, [outcome.reason, warning])))
        return replace(outcome, validators=fetched.validators, moved_to=moved_to, fetched_url=landed), counts

    def _merge(self, source: Source, current: SourceState, feed: ParsedFeed) -> tuple[Outcome, MergeCounts]:
        """Merge a feed's entries (polled or pushed) and say how it went."""
        counts = self.merger.merge(source, feed, None if current.polled else FirstPoll(current.resume_after))
        result = (
            PollResult.NEW if counts.new else PollResult.UPDATED if counts.updated else PollResult.UNCHANGED
        )
        found = (feed.warning, counts.full_text.summary(), counts.duplicates_summary())
        warnings = [warning for warning in found if warning]
        outcome = Outcome(
            result,
            reason="; ".join(warnings) or None,
            new=counts.new,
            updated=counts.updated,
            feed_title=feed.title or None,
            feed_look=(feed.image, feed.description or None),
        )
        return outcome, counts

    def _next_poll(
        self, source: Source, current: SourceState, outcome: Outcome, now: float, retry_at: float | None
    ) -> float | None:
        if outcome.result is PollResult.GONE:
            return None
        if outcome.result is PollResult.ERROR:
            backoff = min(source.interval * 2.0 ** (current.errors + 1), MAX_BACKOFF)
            return max(retry_at or 0.0, now + backoff)
        interval = push_interval(self.pushes, source, now)
        return now + interval + jitter(interval)

    def push(self, source: Source, pushed: Pushed) -> PollReport | None:
        """Merge what a hub pushed, through the poll's own path; None when the source is being
        polled right now (the push waits for the next round). Validators and schedule stay."""
        now = self.clock()
        with self._leased_lock:
            if source.id in self._leased:  # this process polls it right now (its lease is ours too)
                return None
        current = self.state.source(source.id, source.url, lambda: self.index.newest_source_post(source.id))
        if self.state.lease(source.id, self.owner, now, LEASE_SECONDS) is not None:
            return None
        self._hold(source.id)
        recorded = False
        try:
            try:
                headers = {"content-type": pushed.content_type} if pushed.content_type else {}
                feed = self.parsing.parse(source, pushed.body, headers, current.url)
            except ParseError as exc:
                log.warning("source %s: pushed content ignored: %s", source.id, exc)
                return PollReport(source.id, PollResult.ERROR, str(exc), None, current)
            outcome, counts = self._merge(source, current, feed)
            state = self.state.record(source.id, outcome, self.clock(), current.next_poll)
            recorded = True
            log.info("source %s: pushed: %d new, %d updated", source.id, counts.new, counts.updated)
            return PollReport(source.id, outcome.result, feed.warning, counts, state)
        finally:
            with self._leased_lock:
                self._leased.discard(source.id)
            if not recorded:
                self._give_back(source.id)


def gone_from_this_host(owner: str) -> bool:
    """Whether a lease holder (host:pid:token) is a process of this host that no longer runs: its
    leases need not run out before this host polls again (a poller restarted after kill -9)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def jitter(interval: int) -> float:
    """Up to a tenth of the interval (a minute at most), so sources do not poll in step."""
    return random.uniform(0, min(interval / 10, 60))


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {quoted(str(exc))}"


def _log(source: Source, report: PollReport, state: SourceState) -> None:
    when = (
        datetime.fromtimestamp(state.next_poll).astimezone().strftime("%H:%M:%S") if state.next_poll else "-"
    )
    if report.result is PollResult.GONE:
        log.error(
            "source %s: gone: %s; not polled until `feedhub enable %s`", source.id, report.reason, source.id
        )
    elif report.result is PollResult.ERROR:
        log.warning(
            "source %s: error: %s (%d in a row) from %s; next poll %s",
            source.id,
            report.reason,
            state.errors,
            state.url,
            when,
        )
    elif report.counts is None:
        log.info("source %s: not modified; next poll %s", source.id, when)
    else:
        counts = report.counts
        log.info(
            "source %s: %d new, %d updated, %d unchanged, %d filtered, %d held back%s; next poll %s",
            source.id,
            counts.new,
            counts.updated,
            counts.unchanged,
            counts.filtered,
            counts.held_back,
            f" (feed problem: {report.reason})" if report.reason else "",
            when,
        )
