"""Poll one source: fetch, parse, merge, and record how it went, in one log line.

Failures back off (interval × 2^errors, at most 24 h) and recover on the next
success; 429 and 503 wait as long as Retry-After says; only 410 Gone stops a source,
until an operator re-enables it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedhub import __version__
from feedhub.aggregator.entries import ParseError, parse_feed
from feedhub.aggregator.fetch import Fetcher, FetchError
from feedhub.aggregator.merge import MergeCounts, Merger
from feedhub.aggregator.sources import Source
from feedhub.aggregator.state import Outcome, SourceState, StateStore
from feedhub.config import Config
from feedhub.index import Index

log = logging.getLogger(__name__)

MAX_BACKOFF = 86400.0
FAILED = frozenset({"error", "gone"})


@dataclass(frozen=True)
class PollReport:
    source: str
    result: str  # new | updated | unchanged | not-modified | error | gone
    reason: str | None
    counts: MergeCounts | None
    state: SourceState

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
        self.clock = clock
        self.fetcher = fetcher or Fetcher(user_agent(config), clock)
        self.merger = Merger(config, index, state, clock)

    def poll(self, source: Source) -> PollReport:
        current = self.state.source(source.id, source.url)
        if current.gone:
            # Nothing is fetched: a 410 stands until `feedhub enable` (or a new url).
            return PollReport(source.id, "gone", current.reason, None, current)
        try:
            outcome, counts = self._fetch_and_merge(source, current)
        except FetchError as exc:
            outcome, counts = Outcome("gone" if exc.gone else "error", exc.reason), None
            retry_at = exc.retry_at
        except ParseError as exc:
            outcome, counts, retry_at = Outcome("error", str(exc)), None, None
        else:
            retry_at = None
        now = self.clock()
        next_poll = self._next_poll(source, current, outcome, now, retry_at)
        state = self.state.record(source.id, outcome, now, next_poll)
        report = PollReport(source.id, outcome.result, outcome.reason, counts, state)
        _log(source, report)
        return report

    def _fetch_and_merge(self, source: Source, current: SourceState) -> tuple[Outcome, MergeCounts | None]:
        fetched = self.fetcher.fetch(current.url, current.validators, source.timeout, source.max_bytes)
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
        counts = self.merger.merge(source, feed, first_poll=not current.polled)
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


def _log(source: Source, report: PollReport) -> None:
    state = report.state
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
