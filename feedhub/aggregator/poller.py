"""Poll one source: fetch, parse, merge, and record how it went, in one log line.

Failures back off (interval × 2^errors, at most 24 h) and recover on the next
success; 429 and 503 wait as long as Retry-After says; only 410 Gone stops a source,
until an operator re-enables it.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedhub import __version__
from feedhub.addresses import AddressPolicy, origin
from feedhub.aggregator.entries import ParseError, parse_feed
from feedhub.aggregator.fetch import Fetcher, FetchError
from feedhub.aggregator.merge import FirstPoll, MergeCounts, Merger
from feedhub.aggregator.sources import Source
from feedhub.aggregator.state import Outcome, SourceState, StateStore
from feedhub.config import Config
from feedhub.index import Index
from feedhub.metrics import record_poll
from feedhub.text import quoted

log = logging.getLogger(__name__)

MAX_BACKOFF = 86400.0
FAILED = frozenset({"error", "gone"})


@dataclass(frozen=True)
class PollReport:
    source: str
    result: str  # new | updated | unchanged | not-modified | error | gone
    reason: str | None
    counts: MergeCounts | None
    state: SourceState | None  # None when even recording the poll failed

    @property
    def failed(self) -> bool:
        return self.result in FAILED


def user_agent(config: Config) -> str:
    return f"feedhub/{__version__} (+{config.base_url}/)"


class Poller:
    def __init__(
        self,
        config: Config,
        index: Index,
        state: StateStore,
        clock: Callable[[], float] = time.time,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.state = state
        self.index = index
        self.clock = clock
        self.fetcher = fetcher or Fetcher(user_agent(config), clock)
        self.merger = Merger(config, index, state, clock)
        self.posts_dir = config.posts_dir

    def poll(self, source: Source) -> PollReport:
        """Poll once; whatever fails is this source's error, with a reason, and never raises."""
        try:
            return self._poll(source)
        except Exception as exc:  # the state store itself failed: the report still says so
            log.exception("source %s: the poll could not be recorded", source.id)
            return PollReport(source.id, "error", f"cannot record the poll: {_failure(exc)}", None, None)

    def _poll(self, source: Source) -> PollReport:
        current = self.state.source(source.id, source.url, lambda: self.index.newest_source_post(source.id))
        if current.gone:
            # Nothing is fetched: a 410 stands until `feedhub enable` (or a new url).
            return PollReport(source.id, "gone", current.reason, None, current)
        retry_at = None
        try:
            outcome, counts = self._fetch_and_merge(source, current)
        except FetchError as exc:
            outcome, counts = Outcome("gone" if exc.gone else "error", exc.reason), None
            retry_at = exc.retry_at
        except ParseError as exc:
            outcome, counts = Outcome("error", str(exc)), None
        except OSError as exc:  # a full or read-only disk: the posts cannot be written
            reason = f"cannot write posts to {self.posts_dir}: {exc.strerror or exc}"
            outcome, counts = Outcome("error", reason), None
        except sqlite3.Error as exc:
            outcome, counts = Outcome("error", f"the index failed: {_failure(exc)}"), None
        except Exception as exc:  # a bug met on hostile input: this source fails, the others go on
            log.exception("source %s: the poll failed unexpectedly", source.id)
            outcome, counts = Outcome("error", f"unexpected error: {_failure(exc)}"), None
        now = self.clock()
        next_poll = self._next_poll(source, current, outcome, now, retry_at)
        state = self.state.record(source.id, outcome, now, next_poll)
        report = PollReport(source.id, outcome.result, outcome.reason, counts, state)
        _log(source, report, state)
        record_poll(source.id, outcome.result, outcome.new + outcome.updated)
        return report

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
            return Outcome("not-modified", validators=fetched.validators, moved_to=moved_to), None
        feed = parse_feed(fetched.body or b"", fetched.headers, fetched.url, source.timezone)
        first_poll = None if current.polled else FirstPoll(current.resume_after)
        counts = self.merger.merge(source, feed, first_poll)
        result = "new" if counts.new else "updated" if counts.updated else "unchanged"
        outcome = Outcome(
            result,
            reason=feed.warning,
            new=counts.new,
            updated=counts.updated,
            validators=fetched.validators,
            moved_to=moved_to,
            feed_title=feed.title or None,
        )
        return outcome, counts

    def _next_poll(
        self, source: Source, current: SourceState, outcome: Outcome, now: float, retry_at: float | None
    ) -> float | None:
        if outcome.result == "gone":
            return None
        if outcome.result == "error":
            backoff = min(source.interval * 2.0 ** (current.errors + 1), MAX_BACKOFF)
            return max(retry_at or 0.0, now + backoff)
        return now + source.interval + jitter(source.interval)


def jitter(interval: int) -> float:
    """Up to a tenth of the interval (a minute at most), so sources do not poll in step."""
    return random.uniform(0, min(interval / 10, 60))


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {quoted(str(exc))}"


def _log(source: Source, report: PollReport, state: SourceState) -> None:
    when = (
        datetime.fromtimestamp(state.next_poll).astimezone().strftime("%H:%M:%S") if state.next_poll else "-"
    )
    if report.result == "gone":
        log.error(
            "source %s: gone: %s; not polled until `feedhub enable %s`", source.id, report.reason, source.id
        )
    elif report.result == "error":
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
