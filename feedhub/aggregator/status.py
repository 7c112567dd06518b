"""What /status and /healthz say about aggregation: every source with how its polls go, and
whether a scheduler is doing its job.

Public answers are redacted (see feedhub.redact): no credentials, queries or server paths,
no pid. Full detail is for the operator (the `status: token` setting).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from zoneinfo import ZoneInfo

from feedhub.aggregator.lock import holder_pid
from feedhub.aggregator.sources import Source, load_sources
from feedhub.aggregator.state import PollResult, SourceState, StateStore
from feedhub.config import Config
from feedhub.errors import FeedhubError
from feedhub.redact import public_origin, public_text, public_url
from feedhub.site import CategoryLook
from feedhub.storage import open_storage
from feedhub.websub.push_store import PushStore, UpstreamSubscription, push_status
from feedhub.websub.store import HubStore, TopicCount

# A scheduler is late when nothing was polled for the shortest interval and this much more.
HEALTH_GRACE_SECONDS = 60
# A scheduler on another host counts as running while its heartbeat is at most this old.
POLLER_SILENCE_SECONDS = 30
FAILING_SHOWN = 100  # failing WebSub callbacks listed, most failures first


class SourceHealth(Enum):
    """How a source is doing, in the order the status page lists them: what needs a look first."""

    FAILING = "failing"  # its last poll failed (an error, or 410 Gone)
    NEVER_POLLED = "never-polled"
    DISABLED = "disabled"
    OK = "ok"


_HEALTH_ORDER = {health: rank for rank, health in enumerate(SourceHealth)}


@dataclass(frozen=True)
class SourceStatus:
    id: str
    url: str  # as configured
    current_url: str  # where it is polled now (after permanent redirects)
    category: str
    enabled: bool
    interval: int
    last_poll: str | None
    result: str | None  # new | updated | unchanged | not-modified | error | gone; None: never polled
    reason: str | None
    merged_last_time: int
    merged_total: int
    last_merge: str | None
    consecutive_errors: int
    next_poll: str | None
    push: str | None = None  # WebSub: subscribed until …, pending, or failed with the reason

    @property
    def health(self) -> SourceHealth:
        if self.result is not None and PollResult(self.result).failed:
            return SourceHealth.FAILING
        if not self.enabled:
            return SourceHealth.DISABLED
        return SourceHealth.NEVER_POLLED if self.result is None else SourceHealth.OK


@dataclass(frozen=True)
class FailingCallbackStatus:
    topic: str
    callback: str
    failures: int  # deliveries failed in a row
    failing_since: str | None
    last_error: str | None


@dataclass(frozen=True)
class HubStatus:
    topics: list[TopicCount]  # live subscriptions per topic, most first
    failing: list[FailingCallbackStatus]


@dataclass(frozen=True)
class StatusReport:
    scheduler_pid: int | None  # None: no scheduler runs on this data folder
    config_error: str | None  # sources.yaml could not be read; the sources shown are the last known
    sources: list[SourceStatus]
    hub: HubStatus | None = None  # None: the built-in hub is off

    def health_counts(self) -> dict[SourceHealth, int]:
        """How many sources are in each health, every health named (0 when none)."""
        counts = dict.fromkeys(SourceHealth, 0)
        for source in self.sources:
            counts[source.health] += 1
        return counts

    def by_health(self) -> list[SourceStatus]:
        """The sources, those that need a look first; by id within each health."""
        return sorted(self.sources, key=lambda source: (_HEALTH_ORDER[source.health], source.id))

    def as_json(self, detail: bool) -> dict[str, object]:
        scheduler: dict[str, object] = {"running": self.scheduler_pid is not None}
        if detail:
            scheduler["pid"] = self.scheduler_pid or None
        return {
            "scheduler": scheduler,
            "config_error": self.config_error,
            "summary": {health.value: count for health, count in self.health_counts().items()},
            "sources": [{**asdict(source), "health": source.health.value} for source in self.sources],
            "hub": asdict(self.hub) if self.hub else None,
        }

    def public(self, config_folder: Path) -> StatusReport:
        """This report as anyone may see it: addresses and messages without secrets or paths."""

        def text(value: str | None) -> str | None:
            return public_text(value, config_folder) if value else value

        hub = self.hub and replace(
            self.hub,
            failing=[
                replace(
                    failing,
                    callback=public_origin(failing.callback),
                    last_error=text(failing.last_error),
                )
                for failing in self.hub.failing
            ],
        )
        return replace(
            self,
            hub=hub,
            config_error=text(self.config_error),
            sources=[
                replace(
                    source,
                    url=public_url(source.url, config_folder),
                    current_url=public_url(source.current_url, config_folder),
                    reason=text(source.reason),
                    push=text(source.push),
                )
                for source in self.sources
            ],
        )


@dataclass(frozen=True)
class SchedulerHealth:
    running: bool  # a scheduler holds the data folder
    last_poll: str | None  # when the last poll of any source finished
    sources: int  # enabled sources
    failing: int  # enabled sources whose last poll failed
    problem: str | None  # why aggregation is unhealthy; None: it is fine

    def as_json(self) -> dict[str, object]:
        return asdict(self)


LOOKS_SECONDS = 10.0


class StatusBoard:
    """Reads sources.yaml again only when it changed, and the state on every request."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.state = StateStore(open_storage(config).state)
        self.hub = HubStore(self.state.backend) if config.websub.builtin_hub else None
        self.pushes = PushStore(self.state.backend)
        self._stamp: tuple[int, int] | None = None
        self._sources: tuple[Source, ...] = ()
        self._error: str | None = None
        self._started = clock()
        self._scheduler_seen = self._started  # when a scheduler was last seen holding the folder
        self._looks: dict[str, CategoryLook] = {}
        self._looks_read = -math.inf

    def category_look(self, slug: str) -> CategoryLook:
        """What the upstream feeds filling a category say of themselves: the first image and the
        first description among its sources, in the order sources.yaml lists them. Read again
        every LOOKS_SECONDS: every feed and category page asks."""
        now = self.clock()
        if now - self._looks_read >= LOOKS_SECONDS:
            self._refresh_sources()
            states = self.state.all_sources()
            looks: dict[str, CategoryLook] = {}
            for source in self._sources:
                state = states.get(source.id)
                if state is None or state.config_url != source.url:
                    continue
                known = looks.get(source.category, CategoryLook(None, None))
                looks[source.category] = CategoryLook(
                    known.description or state.feed_description, known.icon or state.feed_image
                )
            self._looks, self._looks_read = looks, now
        return self._looks.get(slug, CategoryLook(None, None))

    def report(self) -> StatusReport:
        self._refresh_sources()
        states = self.state.all_sources()
        pushes = self.pushes.all()
        return StatusReport(
            scheduler_pid=holder_pid(self.config.data_dir),
            config_error=self._error,
            sources=[self._source_status(source, states.get(source.id), pushes) for source in self._sources],
            hub=self._hub_status(),
        )

    def _source_status(
        self, source: Source, state: SourceState | None, pushes: dict[str, UpstreamSubscription]
    ) -> SourceStatus:
        zone = self.config.timezone
        push = push_status(pushes.get(source.id), self.clock(), lambda moment: _iso(moment, zone) or "")
        return replace(_status(source, state, zone), push=push)

    def _hub_status(self) -> HubStatus | None:
        if self.hub is None:
            return None
        failing = [
            FailingCallbackStatus(
                failing.topic,
                failing.callback,
                failing.failures,
                _iso(failing.failing_since, self.config.timezone),
                failing.last_error,
            )
            for failing in self.hub.failing(FAILING_SHOWN)
        ]
        return HubStatus(self.hub.topic_counts(self.clock()), failing)

    def health(self) -> SchedulerHealth:
        """Unhealthy when sources are configured and, for longer than the shortest interval plus
        HEALTH_GRACE_SECONDS, no scheduler held the data folder or no poll finished (and one was due)."""
        self._refresh_sources()
        now = self.clock()
        running = holder_pid(self.config.data_dir) is not None or self._pollers_elsewhere(now)
        if running:
            self._scheduler_seen = now
        states = self.state.all_sources()
        # the state of each enabled source (None: never polled at its configured URL), gone ones aside
        live = {
            source: state if state and state.config_url == source.url else None
            for source in self._sources
            if source.enabled and not ((state := states.get(source.id)) and state.gone)
        }
        last_poll = max(
            (state.last_poll for state in live.values() if state and state.last_poll), default=None
        )
        return SchedulerHealth(
            running=running,
            last_poll=_iso(last_poll, self.config.timezone),
            sources=len(live),
            failing=sum(bool(state and state.errors) for state in live.values()),
            problem=self._problem(live, running, last_poll, now) if live else None,
        )

    def _pollers_elsewhere(self, now: float) -> bool:
        """With a shared database, schedulers on other hosts do the polling: seen by their heartbeats."""
        return self.state.backend.shared and self.state.pollers_seen_since(now - POLLER_SILENCE_SECONDS) > 0

    def _problem(
        self, live: dict[Source, SourceState | None], running: bool, last_poll: float | None, now: float
    ) -> str | None:
        shortest = min(source.interval for source in live)
        allowed = shortest + HEALTH_GRACE_SECONDS
        if not running and now - self._scheduler_seen > allowed:
            return f"no scheduler has held the data folder for {now - self._scheduler_seen:.0f} s"
        quiet = now - (last_poll or self._started)
        # a source in backoff is not due: only a poll that is due and late counts
        overdue = any(
            state is None or state.next_poll is None or now - state.next_poll > HEALTH_GRACE_SECONDS
            for state in live.values()
        )
        if quiet > allowed and overdue:
            return f"no poll has finished for {quiet:.0f} s (the shortest source interval is {shortest} s)"
        return None

    def _refresh_sources(self) -> None:
        try:
            stat = self.config.sources_path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and self._stamp is not None:
            return
        self._stamp = stamp
        try:
            self._sources, self._error = load_sources(self.config), None
        except FeedhubError as exc:
            self._error = str(exc)


def _status(source: Source, state: SourceState | None, zone: ZoneInfo) -> SourceStatus:
    current = state if state and state.config_url == source.url else None
    return SourceStatus(
        id=source.id,
        url=source.url,
        current_url=current.url if current else source.url,
        category=source.category,
        enabled=source.enabled and not (current and current.gone),
        interval=source.interval,
        last_poll=_iso(current.last_poll if current else None, zone),
        result=current.result.value if current and current.result else None,
        reason=current.reason if current else None,
        merged_last_time=(current.last_new + current.last_updated) if current else 0,
        merged_total=current.merged_total if current else 0,
        last_merge=_iso(current.last_merge if current else None, zone),
        consecutive_errors=current.errors if current else 0,
        next_poll=_iso(current.next_poll if current and source.enabled else None, zone),
    )


def _iso(timestamp: float | None, zone: ZoneInfo) -> str | None:
    return datetime.fromtimestamp(timestamp, zone).isoformat(timespec="seconds") if timestamp else None
