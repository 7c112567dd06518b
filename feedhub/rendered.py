"""Rendered HTML, kept: each post's Markdown is rendered once per content, on first use.

The index stores what the files say; this part adds the HTML beside it in its own table,
keyed by the file's digest, so an edited post is rendered again and an unchanged one never
is. Storing is best effort: when a sync holds the database, the HTML is served and kept
next time, rather than making a reader wait for a writer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from feedhub.errors import StorageError
from feedhub.index.model import Entry
from feedhub.index.read import StoredPost
from feedhub.render import Rendered, render_post
from feedhub.storage.base import Backend

log = logging.getLogger(__name__)


class RenderedHtml:
    def __init__(self, backend: Backend, base_url: str) -> None:
        self.backend = backend
        self.base_url = base_url

    def entries(self, posts: list[StoredPost]) -> list[Entry]:
        fresh = {
            post.entry.path: (
                post.digest,
                render_post(post.body, post.body_format, self.base_url, post.description),
            )
            for post in posts
            if not post.rendered
        }
        if fresh:
            self._keep(fresh)
        return [
            _with_html(post.entry, fresh[post.entry.path][1]) if not post.rendered else post.entry
            for post in posts
        ]

    def _keep(self, fresh: dict[str, tuple[str, Rendered]]) -> None:
        try:
            with self.backend.transaction(patient=False) as conn:
                conn.insert_rows(
                    "INSERT INTO rendered VALUES {} ON CONFLICT (path) DO UPDATE SET "
                    "digest=excluded.digest, html=excluded.html, summary=excluded.summary",
                    [
                        (path, digest, rendered.html, rendered.summary)
                        for path, (digest, rendered) in fresh.items()
                    ],
                )
        except StorageError as exc:  # busy, or the post was removed meanwhile: it is only a cache
            log.debug("rendered HTML not kept this time: %s", exc)


def _with_html(entry: Entry, rendered: Rendered) -> Entry:
    return replace(entry, html=rendered.html, summary=rendered.summary)
