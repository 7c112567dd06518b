"""Every public URL the site has, built from ``base_url``; and Jekyll-style permalinks.

Slugs are percent-encoded whole (spaces, parentheses, slashes, non-ASCII), so a
category named ``anxinguojizhengquan(xianggang)`` or ``21shijijingjibaodao 21caijingAPP``
gets one unambiguous URL that routes back to it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

UNCATEGORIZED = "uncategorized"

_PLACEHOLDER = re.compile(r":([a-z_]+)")
# What Jekyll's pretty slugify keeps besides letters, marks and decimal digits (SLUGIFY_PRETTY_REGEXP).
_PRETTY_PUNCTUATION = "._~!$&'()+,;=@"
_ASCII_RUN = re.compile(r"[^A-Za-z0-9]+")
_ASCII_PRETTY_RUN = re.compile(f"[^A-Za-z0-9{re.escape(_PRETTY_PUNCTUATION)}]+")
_SLASHES = re.compile(r"/{2,}")
_PAGE_DIGITS = 9


class SiteUrls:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def home(self) -> str:
        return f"{self.base_url}/"

    def opml(self) -> str:
        return f"{self.base_url}/opml"

    def category_page(self, slug: str, page: int = 1) -> str:
        return _paged(f"{self.base_url}/category/{quote(slug, safe='')}.html", page)

    def latest(self, page: int = 1) -> str:
        return _paged(f"{self.base_url}/latest.html", page)

    def listing(self, slug: str | None, page: int = 1) -> str:
        """A page of a category's listing, or (None) of the site's latest posts."""
        return self.latest(page) if slug is None else self.category_page(slug, page)

    def directory(self) -> str:
        return f"{self.base_url}/categories.html"

    def search(self, query: str = "", order: str | None = None, page: int = 1) -> str:
        """The search page; with a query, its results (in `order` when not the default), page `page`."""
        if not query:
            return f"{self.base_url}/search"
        params = {"q": query, **({"sort": order} if order else {}), **({"page": page} if page > 1 else {})}
        return f"{self.base_url}/search?{urlencode(params)}"

    def icon(self, suffix: str) -> str:
        """The site's icon file, named by the ending of the file it is (.png, .svg…)."""
        return f"{self.base_url}/icon{suffix.lower()}"

    def static(self, name: str) -> str:
        """A file of the theme's static folder (static_dir)."""
        return f"{self.base_url}/static/{quote(name)}"

    def feed_stylesheet(self) -> str:
        """The XSLT by which a browser shows an Atom or RSS feed as a page."""
        return f"{self.base_url}/feed.xsl"

    def feed(self, slug: str | None, fmt: str, page: int = 1) -> str:
        """A category's feed, or the site-wide one when ``slug`` is None."""
        path = f"/feed.{fmt}" if slug is None else f"/feeds/{quote(slug, safe='')}.{fmt}"
        return _paged(self.base_url + path, page)

    def post(self, permalink: str) -> str:
        return self.base_url + quote(permalink, safe="/")


def category_slugs(categories: tuple[str, ...]) -> tuple[str, ...]:
    """The categories a post is listed in: its own, or the one for posts without any."""
    return categories or (UNCATEGORIZED,)


def page_number(value: str) -> int | None:
    """A ?page= value as a number: ASCII digits only ("²" is a digit to str.isdigit), and short
    enough to be a page (int() refuses 5,000 digits with a ValueError)."""
    if value.isascii() and value.isdigit() and len(value) <= _PAGE_DIGITS:
        return int(value)
    return None


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host: the only kind feedhub stores or follows."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or a bracketed host that is not an IPv6 address
        return False


def jekyll_slugify(text: str, pretty: bool) -> str:
    """Jekyll 4's Utils.slugify, case kept: every run of other characters than letters (\\p{L}),
    marks (\\p{M}) and decimal digits (\\p{Nd}), and in pretty mode ``._~!$&'()+,;=@``, becomes one
    hyphen; hyphens at either end go. (Python's \\w differs: it takes ``_``, ``½`` and ``²`` and
    refuses combining marks, which Devanagari and decomposed accents are made of.)"""
    if text.isascii():  # most slugs: one regular expression does it (a sync slugs every post)
        return (_ASCII_PRETTY_RUN if pretty else _ASCII_RUN).sub("-", text).strip("-")
    return slugify_by_character(text, pretty)


def slugify_by_character(text: str, pretty: bool) -> str:
    """jekyll_slugify for any text, a character at a time."""
    kept: list[str] = []
    for character in text:
        if _slug_keeps(character, pretty):
            kept.append(character)
        elif not kept or kept[-1] != "-":
            kept.append("-")
    return "".join(kept).strip("-")


def _slug_keeps(character: str, pretty: bool) -> bool:
    if character.isascii():
        return character.isalnum() or (pretty and character in _PRETTY_PUNCTUATION)
    category = unicodedata.category(character)
    return category[0] in "LM" or category == "Nd"


def _paged(url: str, page: int) -> str:
    return url if page == 1 else f"{url}?page={page}"


def expand_permalink(pattern: str, categories: tuple[str, ...], date: datetime, slug: str) -> str:
    """Fill a Jekyll permalink pattern (``/:categories/:year/:month/:day/:title:output_ext``).

    As in Jekyll, ``date`` is in the site's time zone and categories are lower-cased,
    so links into the old Jekyll site keep working.
    """
    # Only the placeholders the pattern names are worked out: a sync fills one in for every post.
    values: dict[str, Callable[[], str]] = {
        "categories": lambda: "/".join(dict.fromkeys(c.lower() for c in categories)),
        "year": lambda: f"{date.year:04d}",
        "short_year": lambda: f"{date.year % 100:02d}",
        "month": lambda: f"{date.month:02d}",
        "i_month": lambda: str(date.month),
        "day": lambda: f"{date.day:02d}",
        "i_day": lambda: str(date.day),
        "y_day": lambda: f"{date.timetuple().tm_yday:03d}",
        "hour": lambda: f"{date.hour:02d}",
        "minute": lambda: f"{date.minute:02d}",
        "second": lambda: f"{date.second:02d}",
        "title": lambda: jekyll_slugify(slug, pretty=True),
        "slug": lambda: jekyll_slugify(slug, pretty=False).lower(),
        "output_ext": lambda: ".html",
    }

    def filled(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return value() if value else match.group(0)

    path = _PLACEHOLDER.sub(filled, pattern)
    return "/" + _SLASHES.sub("/", path).lstrip("/")
