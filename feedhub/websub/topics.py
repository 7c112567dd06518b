"""Which URLs are WebSub topics, and how a feed names its hubs and itself.

A topic is the first page of a feed: the site's or a category's, in one format. Its canonical
URL is the feed's `self` link; jekyll-feed's ``/feed.xml`` is another name of the site's Atom feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from feedhub.config import Config
from feedhub.feeds import FEED_FORMATS
from feedhub.urls import SiteUrls

HUB_PATH = "/websub"
_ALIASES = {"/feed.xml": "atom"}


@dataclass(frozen=True)
class Topic:
    slug: str | None  # None: the site-wide feed
    fmt: str


def parse_topic(urls: SiteUrls, url: str) -> Topic | None:
    """The feed a topic URL names, or None when it is not one of this site's feed URLs
    (written exactly as the site writes them: no query, slugs percent-encoded as in its links)."""
    if not url.startswith(urls.base_url + "/"):
        return None
    path = url[len(urls.base_url) :]
    if path in _ALIASES:
        return Topic(None, _ALIASES[path])
    name, dot, fmt = path.rpartition(".")
    if not dot or fmt not in FEED_FORMATS:
        return None
    if name == "/feed":
        return Topic(None, fmt)
    encoded = name.removeprefix("/feeds/")
    if encoded == name or not encoded:
        return None
    slug = unquote(encoded)
    return Topic(slug, fmt) if quote(slug, safe="") == encoded else None


def hub_urls(config: Config) -> tuple[str, ...]:
    """The hubs every feed advertises: the built-in one first, then the outside ones."""
    builtin = (config.base_url + HUB_PATH,) if config.websub.builtin_hub else ()
    return builtin + tuple(hub for hub in config.websub.hubs if hub not in builtin)


def link_header(hubs: tuple[str, ...], self_url: str) -> str:
    """RFC 8288 Link header value: the hubs, then the feed's own URL."""
    links = [f'<{hub}>; rel="hub"' for hub in hubs] + [f'<{self_url}>; rel="self"']
    return ", ".join(links)
