"""Load and validate the upstream feeds an operator lists in ``sources.yaml``.

The file is a mapping with a ``sources`` list and optional ``defaults`` applied to
every source. Errors name the file, the source and the key, as in feedhub.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from feedhub.config import Config, MappingReader, read_yaml_mapping
from feedhub.errors import ConfigError
from feedhub.limits import MAX_FEED_BYTES
from feedhub.text import quoted
from feedhub.urls import is_http_url

MIN_INTERVAL = 60
MAX_INTERVAL = 7 * 86400
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

_SOURCE_KEYS = (
    "id",
    "url",
    "type",
    "items",
    "fields",
    "date_format",
    "category",
    "category_title",
    "interval",
    "enabled",
    "max_entries",
    "include",
    "exclude",
    "attribution",
    "backfill",
    "timezone",
    "timeout",
    "max_bytes",
    "allow_private_addresses",
    "websub",
    "websub_poll_interval",
    "full_text",
    "full_text_delay",
)
_PER_SOURCE_KEYS = ("id", "url", "type", "items", "fields", "date_format")  # not in `defaults`
_DEFAULT_KEYS = tuple(key for key in _SOURCE_KEYS if key not in _PER_SOURCE_KEYS)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_INTERVAL = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# What a JSON API source may pick from each item, what a web page source from each block, and
# what both must.
FIELDS = ("id", "title", "link", "date", "content", "summary", "author", "image", "category")
HTML_FIELDS = ("title", "link", "date", "summary", "image")
_HTML_KEYS = ("items", "fields", "date_format")
REQUIRED_FIELDS = ("title",)


@dataclass(frozen=True)
class JsonApi:
    """Where an API's answer keeps its items, and where an item keeps each field (JMESPath)."""

    items: str
    fields: Mapping[str, str]

    def __hash__(self) -> int:
        return hash((self.items, tuple(sorted(self.fields.items()))))


@dataclass(frozen=True)
class HtmlPage:
    """Where a page keeps its article blocks (`items`), and where a block keeps each field: CSS
    selectors, `selector@attribute` for an attribute (`@href` alone: the block's own)."""

    items: str
    fields: Mapping[str, str]
    date_format: str | None = None  # strptime, for dates in a page's own words

    def __hash__(self) -> int:
        return hash((self.items, tuple(sorted(self.fields.items())), self.date_format))


def expression_problem(expression: str) -> str | None:
    """Why `expression` is not JMESPath, or None when it is."""
    try:
        compiled(expression)
    except JMESPathError as exc:
        return " ".join(str(exc).split())
    return None


def split_selector(rule: str) -> tuple[str, str | None]:
    """(the CSS selector, the attribute after its last '@' or None)."""
    selector, at, attribute = rule.rpartition("@")
    if not at or not attribute.replace("-", "").replace(":", "").isalnum():
        return rule.strip(), None
    return selector.strip(), attribute


def selector_problem(rule: str) -> str | None:
    """Why `rule` is not a CSS selector (with an optional @attribute), or None when it is."""
    from cssselect import GenericTranslator, SelectorError  # the web app never needs it

    selector, _ = split_selector(rule)
    if not selector:
        return None  # `@href`: the block itself
    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


@dataclass(frozen=True)
class RuleLanguage:
    name: str
    example: str
    problem: Callable[[str], str | None]


JMESPATH = RuleLanguage("JMESPath expression", "'data.items' or 'headline'", expression_problem)
CSS = RuleLanguage("CSS selector", "'article.story' or 'a@href'", selector_problem)


@lru_cache(maxsize=512)
def compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


class SourceType(Enum):
    FEED = "feed"  # RSS, Atom or JSON Feed
    JSON = "json"  # a JSON API: items and fields picked by JMESPath
    HTML = "html"  # a web page listing articles: blocks and fields picked by CSS selectors


class PushMode(Enum):
    AUTO = "auto"  # subscribe when the feed names a WebSub hub
    OFF = "off"


@dataclass(frozen=True)
class Source:
    id: str
    url: str  # http(s), or file:///absolute/path (relative file: paths resolved)
    category: str
    category_title: str | None
    interval: int  # seconds
    enabled: bool
    max_entries: int  # entries considered per poll, newest first
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    attribution: str | None  # None: the upstream feed's own title; "": no attribution line
    backfill: int  # entries merged by a new source's first poll
    timezone: ZoneInfo  # for upstream dates without an offset
    timeout: float  # seconds to wait for the server (connect, and between bytes)
    max_bytes: int  # response size cap, after decompression
    allow_private_addresses: bool  # may redirects lead to loopback, private or link-local addresses
    websub: PushMode = field(default_factory=lambda: PushMode.AUTO)
    websub_poll_interval: int = 6 * 3600  # seconds between polls while the hub pushes
    type: SourceType = SourceType.FEED
    json_api: JsonApi | None = None  # where a JSON API's answer keeps items and fields
    html_page: HtmlPage | None = None  # where a web page's list keeps its articles and their fields
    full_text: bool = False  # fetch each new or changed entry's article for its whole text
    full_text_delay: float = 1.0  # seconds between the starts of two article requests to one host

    @property
    def is_file(self) -> bool:
        return self.url.startswith("file:")

    @property
    def filters(self) -> bool:
        return bool(self.include or self.exclude)

    def accepts(self, text: str) -> bool:
        """The include/exclude filters, on an entry's title and content text."""
        if self.include and not any(pattern.search(text) for pattern in self.include):
            return False
        return not any(pattern.search(text) for pattern in self.exclude)


def load_sources(config: Config) -> tuple[Source, ...]:
    """The configured sources; none when the default sources file does not exist."""
    path = config.sources_path
    if not path.exists():
        return ()
    raw = read_yaml_mapping(path)
    top = MappingReader(path, raw, ("defaults", "sources"))
    top.reject_unknown_keys()
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise top.fail("defaults", "must be a mapping of keys to values")
    MappingReader(path, defaults, _DEFAULT_KEYS, "defaults: ").reject_unknown_keys()
    entries = raw.get("sources") or []
    if not isinstance(entries, list):
        raise top.fail("sources", "must be a list of sources")

    sources: list[Source] = []
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, str] = {}
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(path, f"sources[{position}]", "must be a mapping with id, url and category")
        source = _SourceReader(path, {**defaults, **entry}, position, config).source()
        if source.id in seen_ids:
            raise ConfigError(
                path, f"source {source.id!r}", f"duplicate id (also source {seen_ids[source.id]})"
            )
        key = comparable_url(source.url)
        if key in seen_urls:
            raise ConfigError(path, f"source {source.id!r}: url", f"same feed as source {seen_urls[key]!r}")
        seen_ids[source.id], seen_urls[key] = position, source.id
        sources.append(source)
    return tuple(sources)


class _SourceReader(MappingReader):
    def __init__(self, path: Path, raw: dict[Any, Any], position: int, config: Config) -> None:
        name = raw.get("id")
        label = f"source {quoted(name)}" if isinstance(name, str) and name else f"sources[{position}]"
        super().__init__(path, raw, _SOURCE_KEYS, f"{label}: ")
        self.config = config

    def source(self) -> Source:
        self.reject_unknown_keys()
        source_id = self.text("id", required=True)
        if not _ID.match(source_id):
            raise self.fail("id", "use letters, digits, '.', '_' and '-' (it names files and URLs)")
        kind = self._type()
        return Source(
            id=source_id,
            url=self._url(),
            category=self.text("category", required=True),
            category_title=self.text("category_title") or None,
            interval=self._duration("interval", "30m"),
            enabled=self.flag("enabled", default=True),
            max_entries=self.integer("max_entries", default=50, low=1, high=10_000),
            include=self._patterns("include"),
            exclude=self._patterns("exclude"),
            attribution=self.text("attribution") if "attribution" in self.raw else None,
            backfill=self.integer("backfill", default=10, low=0, high=10_000),
            timezone=self.timezone("timezone", self.config.timezone.key),
            timeout=float(self.integer("timeout", default=30, low=1, high=600)),
            max_bytes=self.integer("max_bytes", default=DEFAULT_MAX_BYTES, low=1024, high=MAX_FEED_BYTES),
            allow_private_addresses=self.flag(
                "allow_private_addresses", default=self.config.allow_private_addresses
            ),
            websub=self._push_mode(),
            websub_poll_interval=self._duration("websub_poll_interval", "6h"),
            type=kind,
            json_api=self._json_api() if kind is SourceType.JSON else None,
            html_page=self._html_page() if kind is SourceType.HTML else None,
            full_text=self.flag("full_text", default=False),
            full_text_delay=self._seconds("full_text_delay", default=1.0, high=60.0),
        )

    def _seconds(self, key: str, default: float, high: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
            raise self.fail(key, f"must be a number of seconds from 0 to {high:g}, got {quoted(value)}")
        return float(value)

    def _type(self) -> SourceType:
        kind = self.choice("type", SourceType, SourceType.FEED)
        keys = {SourceType.FEED: (), SourceType.JSON: ("items", "fields"), SourceType.HTML: _HTML_KEYS}
        for key in _HTML_KEYS:
            if key in self.raw and key not in keys[kind]:
                raise self.fail(key, f"is not for a source of type {kind.value}")
        return kind

    def _json_api(self) -> JsonApi:
        return JsonApi(*self._rules(JMESPATH, FIELDS))

    def _html_page(self) -> HtmlPage:
        items, fields = self._rules(CSS, HTML_FIELDS)
        date_format = self.text("date_format") or None
        if date_format is not None and "%" not in date_format:
            raise self.fail(
                "date_format",
                f"must be a strptime format like '%Y年%m月%d日 %H:%M', got {quoted(date_format)}",
            )
        return HtmlPage(items, fields, date_format)

    def _rules(self, language: RuleLanguage, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        """`items` and `fields`, each a rule the language compiles."""
        items = self._rule(language, "items", self.raw.get("items"))
        value = self.raw.get("fields")
        if not isinstance(value, dict) or not value:
            raise self.fail("fields", f"must map fields (title, link, date, ...) to {language.name}s")
        fields = {}
        for name, rule in value.items():
            if name not in names:
                raise self.fail(f"fields.{name}", f"is not a field; the fields are {', '.join(names)}")
            fields[name] = self._rule(language, f"fields.{name}", rule)
        for name in REQUIRED_FIELDS:
            if name not in fields:
                raise self.fail(
                    f"fields.{name}", f"is required: the {language.name} that finds an item's {name}"
                )
        return items, fields

    def _rule(self, language: RuleLanguage, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a {language.name}, like {language.example}")
        problem = language.problem(value)
        if problem:
            raise self.fail(key, f"{quoted(value)} is not a {language.name}: {problem}")
        return value

    def _push_mode(self) -> PushMode:
        value = self.text("websub") or PushMode.AUTO.value
        try:
            return PushMode(value)
        except ValueError:
            raise self.fail("websub", f"must be auto or off, got {quoted(value)}") from None

    def _url(self) -> str:
        url = self.text("url", required=True)
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise self.fail("url", f"has an invalid port: {quoted(url)}") from None
        if is_http_url(url):
            return url
        if parts.scheme == "file":
            # file:///absolute/path, or file:relative/path from the sources file's folder
            if parts.netloc not in ("", "localhost"):
                raise self.fail("url", f"a file URL names a local path (file:///path), got {quoted(url)}")
            folder = self.path.resolve().parent
            return (folder / parts.path).resolve().as_uri()
        raise self.fail("url", f"must be an http(s) URL or a file: path, got {quoted(url)}")

    def _duration(self, key: str, default: str) -> int:
        value = self.raw.get(key, default)
        match = _INTERVAL.match(str(value).strip().replace(" ", "")) if isinstance(value, str) else None
        if not match or not any(match.groups()):
            raise self.fail(key, f"must be a duration like '15m', '2h' or '1h30m', got {quoted(value)}")
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        if not MIN_INTERVAL <= total <= MAX_INTERVAL:
            raise self.fail(key, f"must be between 1m and 7d, got {quoted(value)}")
        return total

    def _patterns(self, key: str) -> tuple[re.Pattern[str], ...]:
        """Keywords match anywhere, ignoring case; `/.../` is a regular expression."""
        value = self.raw.get(key) or []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
            raise self.fail(key, "must be a keyword, a /regex/, or a list of them")
        patterns = []
        for item in items:
            is_regex = len(item) > 2 and item.startswith("/") and item.endswith("/")
            try:
                patterns.append(re.compile(item[1:-1] if is_regex else re.escape(item), re.IGNORECASE))
            except re.error as exc:
                raise self.fail(key, f"{quoted(item)} is not a valid regular expression: {exc}") from None
        return tuple(patterns)


def comparable_url(url: str) -> str:
    """Two spellings of one feed URL compare equal (case of scheme and host, default port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return urlunsplit((parts.scheme.lower(), host + port, parts.path or "/", parts.query, ""))
