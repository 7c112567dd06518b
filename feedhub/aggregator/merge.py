"""Merge a source's entries into the post store: dedupe them, then write Jekyll post files.

A new entry becomes ``YYYY-MM-DD-<short-hash>.md`` in the posts folder, in the seeds'
format, written atomically. The file is written before the entry is recorded as
merged, and the record can always be rebuilt from the file's front matter (through
the index), so a crash between the two never yields a duplicate.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from feedhub.aggregator.entries import ParsedFeed, UpstreamEntry, entry_date, identities, own_date
from feedhub.aggregator.full_text import FullText, FullTextReport
from feedhub.aggregator.sources import Source
from feedhub.aggregator.state import PollResult, Seen, SeenEntry, StateStore
from feedhub.aggregator.stories import story_keys
from feedhub.config import Config
from feedhub.dates import format_date
from feedhub.i18n import labels
from feedhub.index.identity import EntryKey
from feedhub.index.write import IndexWriter
from feedhub.posts import DurableWrites, PostFile, read_post_file, write_post
from feedhub.text import counted
from feedhub.urls import SiteUrls

log = logging.getLogger(__name__)

_PRE = re.compile(r"(<pre\b.*?</pre>)", re.IGNORECASE | re.DOTALL)
_LINE_BREAK = re.compile(r"\s*(?:\r\n|\r|\n)\s*")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!&#])")
_NOT_IN_AUTOLINK = re.compile(r"[\x00-\x20<>\x7f]")


@dataclass
class MergeCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered: int = 0  # left out by the source's include/exclude
    held_back: int = 0  # older than a new source's backfill: remembered, never merged
    full_text: FullTextReport = field(default_factory=FullTextReport)
    # Entries another source's post already tells (one post per story): "'title' is <path> (source)".
    duplicates: list[str] = field(default_factory=list)

    def duplicates_summary(self) -> str | None:
        if not self.duplicates:
            return None
        duplicates = counted(len(self.duplicates), "duplicate")
        return f"{duplicates} of other sources' posts, not merged ({self.duplicates[0]})"


@dataclass
class _Batch:
    """What one merge wrote and saw: recorded together, once the files are safely on disk."""

    written: list[PostFile] = field(default_factory=list)
    seen: list[SeenEntry] = field(default_factory=list)
    stories: list[tuple[str, str]] = field(default_factory=list)  # (story key, path) of posts written
    # Posts written to their temporaries, in place once `writes` is committed: only then are
    # they written, seen and telling their stories.
    writes: DurableWrites = field(default_factory=DurableWrites)
    pending: list[tuple[PostFile, SeenEntry, list[tuple[str, str]]]] = field(default_factory=list)

    def commit(self) -> None:
        """The pending posts on disk and in place, and counted as written; when that fails, none
        of them is (a post renamed before the failure is found by the next poll, as claimed)."""
        try:
            self.writes.commit()
        finally:
            self.pending, pending = [], self.pending
        for file, seen, stories in pending:
            self.written.append(file)
            self.seen.append(seen)
            self.stories += stories


@dataclass(frozen=True)
class FirstPoll:
    """How a source's first poll chooses entries, as its state recorded when it was made."""

    resume_after: float | None  # the state was lost: entries dated from then on; None: a new source


@dataclass(frozen=True)
class _Candidate:
    entry: UpstreamEntry
    identity: str
    date: datetime


class Merger:
    def __init__(
        self,
        config: Config,
        index: IndexWriter,
        state: StateStore,
        clock: Callable[[], float],
        full_text: FullText | None = None,
    ) -> None:
        self.config = config
        self.full_text = full_text
        self.index = index
        self.state = state
        self.clock = clock
        self.urls = SiteUrls(config.base_url)
        self.text = labels(config.language)

    def merge(self, source: Source, feed: ParsedFeed, first_poll: FirstPoll | None) -> MergeCounts:
        """Merge a feed's entries; ``first_poll`` says how a source's first poll chooses them.

        Whatever happens part-way (kill -9, a full disk), what was written is recorded and
        indexed, and what was not is offered again by the next poll, which decides alike.
        """
        now = self.clock()
        candidates = [
            _Candidate(entry, identity, entry_date(entry, now, source.timezone))
            for entry, identity in zip(feed.entries, identities(feed.entries), strict=True)
        ]
        # Newest first (feeds list them in any order); the cap keeps the newest.
        candidates.sort(key=lambda candidate: candidate.date, reverse=True)
        counts = MergeCounts()
        batch = _Batch()
        try:
            ranked = self._known(source, feed, candidates, counts, batch)
            new = [candidate for _, candidate in ranked]
            if first_poll is not None:
                new, held_back = self._first_poll(source, first_poll, ranked, now)
                for candidate in held_back:
                    batch.seen.append(self._record(source, candidate, None, now))  # seen, and never merged
                counts.held_back = len(held_back)
            new, keys = self._one_per_story(source, new, counts, batch, now)
            planned = [
                self._record(source, candidate, _planned_path(self.config, source, candidate), now)
                for candidate in new
            ]
            claimed = self.state.claim(planned)
            # Oldest first, so the files appear in order; the others another poller saw first.
            mine = [candidate for candidate in reversed(new) if claimed.get(candidate.identity)]
            for candidate in self._with_articles(source, mine, counts):
                path = claimed[candidate.identity]
                assert path is not None  # claimed by this poll
                self._write_new(
                    source,
                    feed,
                    candidate,
                    path,
                    now,
                    batch,
                    [(key, path) for key in keys[candidate.identity]],
                )
                counts.new += 1
        finally:
            self._record_batch(source, batch)
        return counts

    def _known(
        self,
        source: Source,
        feed: ParsedFeed,
        candidates: list[_Candidate],
        counts: MergeCounts,
        batch: _Batch,
    ) -> list[tuple[int, _Candidate]]:
        """Update what was merged before; the new entries, each with its rank among the accepted ones."""
        accepted: list[_Candidate] = []
        handled: set[str] = set()
        for candidate in candidates[: source.max_entries]:
            if candidate.identity in handled:
                continue  # the same item twice in one feed (same title and content, no id or link)
            handled.add(candidate.identity)
            if source.filters and not source.accepts(candidate.entry.text):
                counts.filtered += 1
                continue
            accepted.append(candidate)
        seen = self.state.find_seen(source.id, [_key(candidate) for candidate in accepted])
        unseen = [_key(candidate) for candidate in accepted if candidate.identity not in seen]
        # Forgotten state: the posts' front matter still says what was merged.
        posted = self.index.find_source_posts(source.id, unseen) if unseen else {}
        new: list[tuple[int, _Candidate]] = []
        for rank, candidate in enumerate(accepted):
            outcome = self._merge_known(
                source,
                feed,
                candidate,
                seen.get(candidate.identity),
                posted.get(candidate.identity),
                batch,
                counts,
            )
            if outcome is PollResult.UPDATED:
                counts.updated += 1
            elif outcome is PollResult.UNCHANGED:
                counts.unchanged += 1
            else:
                new.append((rank, candidate))
        return new

    def _one_per_story(
        self, source: Source, new: list[_Candidate], counts: MergeCounts, batch: _Batch, now: float
    ) -> tuple[list[_Candidate], dict[str, tuple[str, ...]]]:
        """The new entries no other source's post in this category tells already (the others are
        remembered as seen, never merged, and counted), and every new entry's story keys."""
        keys = {candidate.identity: story_keys(candidate.entry) for candidate in new}
        told = self.state.find_stories(source.category, [key for found in keys.values() for key in found])
        kept = []
        for candidate in new:
            teller = next(
                (told[key] for key in keys[candidate.identity] if key in told and told[key][0] != source.id),
                None,
            )
            if teller is None:
                kept.append(candidate)
                continue
            batch.seen.append(self._record(source, candidate, None, now))
            counts.duplicates.append(f"{candidate.entry.title!r} is {teller[1]} ({teller[0]})")
        return kept, keys

    def _with_articles(
        self, source: Source, candidates: list[_Candidate], counts: MergeCounts
    ) -> list[_Candidate]:
        """The candidates with their articles' full text, for a source that asks for it."""
        if not source.full_text or self.full_text is None or not candidates:
            return candidates
        entries, report = self.full_text.enrich(source, [candidate.entry for candidate in candidates])
        counts.full_text = counts.full_text.plus(report)
        return [replace(candidate, entry=entry) for candidate, entry in zip(candidates, entries, strict=True)]

    def _record_batch(self, source: Source, batch: _Batch) -> None:
        """Count what was written as merged, once it is on disk, and publish it."""
        try:
            batch.commit()
        finally:
            self._remember(source, batch)

    def _remember(self, source: Source, batch: _Batch) -> None:
        self.state.remember(batch.seen)
        self.state.tell_stories(source.category, source.id, batch.stories)
        if batch.written:
            self.index.index_written(batch.written)  # published now, not when a watcher gets to it

    def _first_poll(
        self, source: Source, first_poll: FirstPoll, new: list[tuple[int, _Candidate]], now: float
    ) -> tuple[list[_Candidate], list[_Candidate]]:
        """(merged, held back) on a source's first poll, so that adding it does not flood the feeds.

        A new source adds its `backfill` newest entries: ranked among all it lists, merged
        or not, so a retry after a crash completes the same choice instead of taking more.
        A source whose state was lost adds only entries dated from its newest post then on
        (an undated one may be years old, so it is held back too).
        """
        merged: list[_Candidate] = []
        held_back: list[_Candidate] = []
        for rank, candidate in new:
            if first_poll.resume_after is None:
                chosen = rank < source.backfill
            else:
                dated = own_date(candidate.entry, now) is not None
                chosen = dated and candidate.date.timestamp() >= first_poll.resume_after
            (merged if chosen else held_back).append(candidate)
        return merged, held_back

    def _merge_known(
        self,
        source: Source,
        feed: ParsedFeed,
        candidate: _Candidate,
        seen: Seen | None,
        posted: str | None,
        batch: _Batch,
        counts: MergeCounts,
    ) -> PollResult | None:
        """UPDATED or UNCHANGED for an entry merged before (its post rewritten if it changed);
        None for a new one. `seen`: what the state recorded of it; `posted`: the path of the post
        the source made of it, as its front matter says (looked up when the state has nothing)."""
        entry = candidate.entry
        if seen is not None and seen.path is not None and seen.digest is None:
            # Claimed by a poll that stopped before recording it: written then, or written now.
            written = self._written_by(source, candidate, seen.path)
            if written is None:
                return None
            batch.seen.append(self._record(source, candidate, seen.path, seen.first_seen))
            batch.written.append(written)  # indexed, in case the poll stopped before that too
            batch.writes.include(self.config.posts_dir / seen.path)
            return PollResult.UNCHANGED
        if seen is None:
            if posted is None:
                return None
            batch.seen.append(self._record(source, candidate, posted, self.clock()))
            return PollResult.UNCHANGED
        if seen.digest == entry.digest or seen.path is None:
            if seen.identity != candidate.identity:  # the same entry under a new id
                record = self._record(source, candidate, seen.path, seen.first_seen, seen.identity)
                batch.seen.append(record._replace(digest=seen.digest))
            return PollResult.UNCHANGED
        post_file = read_post_file(self.config.posts_dir, seen.path, self.config.timezone)
        if post_file is None or post_file.post is None:
            # Deleted (or broken) by an operator: their decision stands; only remember the content.
            batch.seen.append(self._record(source, candidate, seen.path, seen.first_seen, seen.identity))
            return PollResult.UNCHANGED
        updated = entry.updated if entry.updated and entry.updated > post_file.post.date else None
        (candidate,) = self._with_articles(source, [candidate], counts)
        written = self._write_post(
            source, feed, candidate, seen.path, post_file.post.date, updated or self._now(), batch.writes
        )
        batch.pending.append(
            (written, self._record(source, candidate, seen.path, seen.first_seen, seen.identity), [])
        )
        log.debug("source %s: updated %s (%s)", source.id, seen.path, entry.title)
        return PollResult.UPDATED

    def _written_by(self, source: Source, candidate: _Candidate, path: str) -> PostFile | None:
        """The post file at `path` if it is this source's post of this entry."""
        file = read_post_file(self.config.posts_dir, path, self.config.timezone)
        post = file.post if file else None
        if post is not None and post.source == source.id and post.source_id == candidate.identity:
            return file
        return None

    def _write_new(
        self,
        source: Source,
        feed: ParsedFeed,
        candidate: _Candidate,
        path: str,
        now: float,
        batch: _Batch,
        stories: list[tuple[str, str]],
    ) -> None:
        """Write a new entry's post at the path claimed for it; `stories` it tells."""
        date = candidate.date.astimezone(self.config.timezone)
        written = self._write_post(source, feed, candidate, path, date, None, batch.writes)
        batch.pending.append((written, self._record(source, candidate, path, now), stories))
        log.debug("source %s: new %s (%s)", source.id, path, candidate.entry.title)

    @staticmethod
    def _record(
        source: Source,
        candidate: _Candidate,
        path: str | None,
        first_seen: float,
        old_identity: str | None = None,
    ) -> SeenEntry:
        entry = candidate.entry
        return SeenEntry(
            source.id,
            candidate.identity,
            entry.link,
            entry.title,
            path,
            entry.digest,
            first_seen,
            old_identity,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.config.timezone)

    def _write_post(
        self,
        source: Source,
        feed: ParsedFeed,
        candidate: _Candidate,
        path: str,
        date: datetime,
        updated: datetime | None,
        writes: DurableWrites,
    ) -> PostFile:
        """Write the entry's post file at `path` (in place once `writes` is committed); the file,
        as the index takes it."""
        entry = candidate.entry
        category_title = self._category_title(source, feed)
        categories: str | list[str] = source.category
        if re.search(r"\s", source.category):
            categories = [source.category]  # Jekyll splits a string at spaces; a list keeps it whole
        front_matter: list[tuple[str, object]] = [
            ("layout", "post"),
            ("title", entry.title),
            ("date", date.astimezone(self.config.timezone)),
            ("categories", categories),
            ("tags", category_title),
            ("source", source.id),
            ("source_url", entry.link),
            ("source_id", candidate.identity),
            ("last_modified_at", updated.astimezone(self.config.timezone) if updated else None),
            ("author", entry.author),
            (
                "enclosures",
                [
                    {"url": e.url}
                    | ({"type": e.type} if e.type else {})
                    | ({"length": e.length} if e.length else {})
                    for e in entry.enclosures
                ]
                or None,
            ),
        ]
        body = self._body(source, feed, entry, category_title)
        return write_post(self.config.posts_dir, path, front_matter, body, self.config.timezone, writes)

    def _body(self, source: Source, feed: ParsedFeed, entry: UpstreamEntry, category_title: str) -> str:
        """The seeds' shape: the article, the attribution, the original link, the back-links."""
        article = f"<div>{_one_line(entry.shown_html)}</div>" if entry.shown_html else ""
        name = source.attribution if source.attribution is not None else (feed.title or source.id)
        if name:
            article += f"<p>{html.escape(self.text['source_line'].format(name))}</p>"
        back_links = "｜".join(
            f"[{_markdown_text(self.text['back_to'].format(label))}]({url})"
            for label, url in (
                (category_title, self.urls.category_page(source.category)),
                (self.text["home"], self.urls.home()),
            )
        )
        link = f"<{_NOT_IN_AUTOLINK.sub(_percent, entry.link)}>" if entry.link else ""
        return "\n\n".join(part for part in (article, link, back_links) if part)

    def _category_title(self, source: Source, feed: ParsedFeed) -> str:
        return (
            source.category_title
            or self.config.categories.get(source.category)
            or feed.title
            or source.category
        )


def _planned_path(config: Config, source: Source, candidate: _Candidate) -> str:
    """The file a new entry becomes: its date in the site's zone and a hash of its identity."""
    date = candidate.date.astimezone(config.timezone)
    short = hashlib.sha1(f"{source.id}\x00{candidate.identity}".encode()).hexdigest()[:10]
    return f"{format_date(date)[:10]}-{short}.md"  # strftime writes year 1 as "1"


def _key(candidate: _Candidate) -> EntryKey:
    return EntryKey(candidate.identity, candidate.entry.link, candidate.entry.title)


def _one_line(fragment: str) -> str:
    """HTML on one line, so Markdown takes all of it as one raw HTML block.

    A blank line would end the block and let Markdown read the rest; line breaks are
    only meaningful inside <pre>, where they become &#10;.
    """
    parts = _PRE.split(fragment)
    return "".join(
        re.sub(r"\r\n|\r|\n", "&#10;", part) if index % 2 else _LINE_BREAK.sub(" ", part)
        for index, part in enumerate(parts)
    )


def _markdown_text(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode())
