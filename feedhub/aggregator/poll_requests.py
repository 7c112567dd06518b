"""`feedhub poll --once` while a scheduler runs: asked through the data folder, no network port.

The command writes ``poll-requests/<id>.request.json`` (the source ids, or none for every
enabled source); the scheduler notices it within a fraction of a second, polls those
sources now (through their jobs, so a source is never polled twice at once), and writes
``<id>.result.json`` beside it with one report per source. Both files are written
atomically; the command removes them when it has read the answer.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feedhub.aggregator.merge import MergeCounts
from feedhub.aggregator.poller import PollReport
from feedhub.aggregator.state import PollResult
from feedhub.errors import FeedhubError
from feedhub.posts import write_atomically

FOLDER = "poll-requests"
_REQUEST = ".request.json"
_RESULT = ".result.json"
ANSWER_TIMEOUT = 600.0  # a slow upstream times out long before (the fetcher's own limits)
_CHECK_SECONDS = 0.1


class NoAnswer(FeedhubError):
    pass


@dataclass(frozen=True)
class PollRequest:
    id: str
    sources: list[str] | None  # None: every enabled source


def ask(data_dir: Path, sources: list[str] | None, scheduler_alive: Callable[[], bool]) -> list[PollReport]:
    """Ask the running scheduler to poll now, and wait for its reports."""
    folder = data_dir / FOLDER
    folder.mkdir(exist_ok=True)
    request_id = uuid.uuid4().hex
    request, result = folder / f"{request_id}{_REQUEST}", folder / f"{request_id}{_RESULT}"
    write_atomically(request, json.dumps({"sources": sources}), fsync=False)
    deadline = time.monotonic() + ANSWER_TIMEOUT
    try:
        while not result.exists():
            if not scheduler_alive():
                raise NoAnswer(f"{data_dir}: the scheduler stopped before it answered; run the command again")
            if time.monotonic() > deadline:
                raise NoAnswer(f"{data_dir}: the scheduler did not answer within {ANSWER_TIMEOUT:.0f} s")
            time.sleep(_CHECK_SECONDS)
        return [_report(entry) for entry in json.loads(result.read_text("utf-8"))]
    finally:
        for path in (request, result):
            path.unlink(missing_ok=True)


def pending(data_dir: Path) -> list[PollRequest]:
    """Requests not yet taken, oldest first; each is taken (renamed) as it is returned."""
    folder = data_dir / FOLDER
    if not folder.is_dir():
        return []
    names = sorted(folder.glob(f"*{_REQUEST}"))
    _remove_unclaimed(folder)
    taken = []
    for path in names:
        request_id = path.name.removesuffix(_REQUEST)
        try:
            document = json.loads(path.read_text("utf-8"))
            os.replace(path, folder / f"{request_id}.taken")
        except (OSError, ValueError):
            continue  # half gone (the asker gave up) or not ours: never a crash of the scheduler
        sources = document.get("sources") if isinstance(document, dict) else None
        names_asked = [str(name) for name in sources] if isinstance(sources, list) else None
        taken.append(PollRequest(request_id, names_asked))
    return taken


def _remove_unclaimed(folder: Path) -> None:
    """Answers nobody waited for any more (the command was interrupted)."""
    too_old = time.time() - 2 * ANSWER_TIMEOUT
    for path in folder.glob(f"*{_RESULT}"):
        try:
            if path.stat().st_mtime < too_old:
                path.unlink()
        except OSError:
            continue


def answer(data_dir: Path, request: PollRequest, reports: list[PollReport]) -> None:
    folder = data_dir / FOLDER
    entries = [
        {
            "source": report.source,
            "result": report.outcome_word,
            "reason": report.reason,
            "new": report.counts.new if report.counts else None,
            "updated": report.counts.updated if report.counts else None,
        }
        for report in reports
    ]
    write_atomically(folder / f"{request.id}{_RESULT}", json.dumps(entries), fsync=False)
    (folder / f"{request.id}.taken").unlink(missing_ok=True)


def _report(entry: dict[str, object]) -> PollReport:
    new, updated = entry.get("new"), entry.get("updated")
    counts = (
        MergeCounts(new=new, updated=updated) if isinstance(new, int) and isinstance(updated, int) else None
    )
    reason = entry.get("reason")
    return PollReport(
        str(entry["source"]), _result(entry["result"]), str(reason) if reason else None, counts, None
    )


def _result(word: object) -> PollResult | None:
    """A report's result as written by `answer` ("leased": another poller had the source)."""
    return None if word == "leased" else PollResult(word)
