"""The rules that give a post its permalink and its feed id: pure functions of the post.

A post keeps both for as long as its file lives: the id comes from the file's path (or the
post's own `id`), never from its title, category or date, so editing those changes nothing
a reader has stored. When two posts want the same one, the one indexed later gets a
variant derived from its path, so the choice repeats on every host and every rebuild.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from feedhub.index.schema import IndexSettings
from feedhub.posts import Post, split_suffix
from feedhub.urls import expand_permalink

_ENTRY_ID_NAMESPACE = uuid.UUID("6f1d7a52-3c0e-4c4b-9a57-5a0f2e0b8c11").bytes


def wanted_permalink(post: Post, settings: IndexSettings) -> str:
    """The post's own `permalink`, else the site's pattern filled in (Jekyll's rules)."""
    site_date = post.date.astimezone(settings.timezone)
    return post.permalink or expand_permalink(settings.permalink, post.categories, site_date, post.slug)


def permalink_variant(wanted: str, path: str) -> str:
    """Another permalink for the post at `path` when `wanted` is taken: a tag from the path
    before the extension (``/a/b-1f2e3d.html``) or the closing slash (``/a/b-1f2e3d/``)."""
    tag = hashlib.blake2b(path.encode(), digest_size=3).hexdigest()
    stem, dot, ext = wanted.rstrip("/").rpartition(".")
    variant = f"{stem}-{tag}.{ext}" if dot and "/" not in ext else f"{wanted.rstrip('/')}-{tag}"
    return variant + ("/" if wanted.endswith("/") else "")


def entry_id_candidates(post: Post) -> list[str]:
    """The ids a post may have, best first: its own `id`, then ids derived from its file path
    (without the extension, so renaming .md to .markdown keeps it; then with it, which is unique)."""
    stem = split_suffix(post.path)[0]
    candidates = [name_based_id(stem), name_based_id(post.path)]
    return [post.entry_id, *candidates] if post.entry_id else candidates


def name_based_id(name: str) -> str:
    """``urn:uuid:`` and uuid5 of the name in feedhub's namespace, made without the UUID objects
    uuid.uuid5 builds and checks (a sync makes two ids a post: a tenth of reading one)."""
    digest = bytearray(hashlib.sha1(_ENTRY_ID_NAMESPACE + name.encode()).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122's variant
    hexed = digest.hex()
    return f"urn:uuid:{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def paired_tag(post: Post, position: int) -> str | None:
    """The tag naming a category: tags pair with categories by position, or one tag names the one category."""
    if post.categories and len(post.tags) == len(post.categories):
        return post.tags[position]
    if len(post.categories) <= 1 and post.tags:
        return post.tags[0]
    return None


class EntryKey(NamedTuple):
    """What an upstream entry is known by: its identity, and its link and title."""

    identity: str
    link: str | None
    title: str


Found = TypeVar("Found")


def find_entries(
    keys: Sequence[EntryKey],
    by_identity: Callable[[list[str]], dict[str, Found]],
    by_link: Callable[[list[str]], dict[tuple[str, str], Found]],
) -> dict[str, Found]:
    """What was recorded of each entry (by the identity asked for): found by its identity, or by
    its link and title (an entry whose id changed upstream). The lookups take lists of values,
    so a feed's entries are looked up in two queries, not two per entry."""
    found = by_identity(sorted({key.identity for key in keys}))
    rest = [key for key in keys if key.identity not in found and key.link]
    if rest:
        linked = by_link(sorted({key.link for key in rest if key.link}))
        for key in rest:
            hit = linked.get((key.link or "", key.title))
            if hit is not None:
                found[key.identity] = hit
    return found
