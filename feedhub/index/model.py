"""What the index hands out: rows as typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from feedhub.posts import Enclosure


@dataclass(frozen=True)
class Entry:
    path: str
    entry_id: str
    permalink: str
    title: str
    published: datetime
    updated: datetime
    author: str | None
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    via: str | None
    enclosures: tuple[Enclosure, ...]
    html: str
    summary: str


@dataclass(frozen=True)
class Headline:
    permalink: str
    title: str
    published: datetime
    categories: tuple[str, ...]  # slugs, as the post lists them


@dataclass(frozen=True)
class CategoryStats:
    slug: str
    count: int
    newest: datetime | None
    tag: str | None  # the newest post's tag for it: the title when the config names none


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str


@dataclass(frozen=True)
class PublishedPost:
    permalink: str
    digest: str  # of the file
    categories: tuple[str, ...]
    # The files of the posts before and after it in its first category: its page links to them.
    neighbours: tuple[str | None, str | None]


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: list[Problem] = field(default_factory=list)

    def include(self, other: SyncReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.removed += other.removed
        self.skipped += other.skipped


class FileStatus(Enum):
    POST = "post"
    DRAFT = "draft"  # published: false
    SKIPPED = "skipped"  # cannot be published; the reason is stored beside it
