"""What /status shows: every configured source with how its polls are going."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from feedhub.aggregator.scheduler import holder_pid
from feedhub.aggregator.sources import Source, load_sources
from feedhub.aggregator.state import SourceState, StateStore
from feedhub.config import Config
from feedhub.errors import FeedhubError


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


@dataclass(frozen=True)
class StatusReport:
    scheduler_pid: int | None  # None: no scheduler runs on this data folder
    config_error: str | None  # sources.yaml could not be read; the sources shown are the last known
    sources: list[SourceStatus]

    def as_json(self) -> dict[str, object]:
        return {
            "scheduler": {"running": self.scheduler_pid is not None, "pid": self.scheduler_pid or None},
            "config_error": self.config_error,
            "sources": [asdict(source) for source in self.sources],
        }


class StatusBoard:
    """Reads sources.yaml again only when it changed, and the state on every request."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = StateStore(config.data_dir)
        self._stamp: tuple[int, int] | None = None
        self._sources: tuple[Source, ...] = ()
        self._error: str | None = None

    def report(self) -> StatusReport:
        self._refresh_sources()
        states = self.state.all_sources()
        zone = self.config.timezone
        return StatusReport(
            scheduler_pid=holder_pid(self.config.data_dir),
            config_error=self._error,
            sources=[_status(source, states.get(source.id), zone) for source in self._sources],
        )

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
        result=current.result if current else None,
        reason=current.reason if current else None,
        merged_last_time=(current.last_new + current.last_updated) if current else 0,
        merged_total=current.merged_total if current else 0,
        last_merge=_iso(current.last_merge if current else None, zone),
        consecutive_errors=current.errors if current else 0,
        next_poll=_iso(current.next_poll if current and source.enabled else None, zone),
    )


def _iso(timestamp: float | None, zone: ZoneInfo) -> str | None:
    return datetime.fromtimestamp(timestamp, zone).isoformat(timespec="seconds") if timestamp else None
