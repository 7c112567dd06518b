"""Load and validate ``feedhub.yaml`` into a frozen :class:`Config`.

Every error names the file, the key and the problem, so an operator can fix it
without reading code. Unknown keys are errors too: a typo must not silently fall
back to a default.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, TemplateSyntaxError

from feedhub.errors import ConfigError
from feedhub.limits import MAX_CONFIG_BYTES, MAX_CONFIG_NODES, MAX_ICON_BYTES, MAX_QUOTED_CHARS, MIB
from feedhub.processes import processes_per_core
from feedhub.safe_yaml import YamlError, load_yaml
from feedhub.text import one_line, quoted
from feedhub.urls import is_http_url

DEFAULT_CONFIG_PATH = Path("config/feedhub.yaml")
CONFIG_ENV = "FEEDHUB_CONFIG"
STATUS_TOKEN_ENV = "FEEDHUB_STATUS_TOKEN"
DATABASE_ENV = "FEEDHUB_DATABASE_URL"


class StatusAccess(Enum):
    PUBLIC = "public"  # anyone sees /status, redacted
    TOKEN = "token"  # full detail with the bearer token, 401 without it
    OFF = "off"  # 404


# Jekyll's built-in permalink styles; anything else is a pattern with :placeholders.
PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


# What an icon file may be, by its name's ending, and the type it is served as.
ICON_TYPES = {
    ".png": "image/png",
    ".ico": "image/vnd.microsoft.icon",
    ".svg": "image/svg+xml",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
DEFAULT_ICON = Path(__file__).parent / "static" / "icon.png"
# Post content is sanitized already; this is the second line of defence for the pages. A theme
# that adds scripts (analytics, comments) names their origins in `content_security_policy`.
PAGE_POLICY = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
MAX_THEME_VALUES = 100


@dataclass(frozen=True)
class Icon:
    """The site's icon: a file feedhub serves (the bundled one unless the config names another),
    or an image elsewhere, by its URL."""

    path: Path | None
    url: str | None

    @property
    def media_type(self) -> str:
        return ICON_TYPES[self.path.suffix.lower()] if self.path else ""


@dataclass(frozen=True)
class Config:
    path: Path
    title: str
    description: str
    author: str
    base_url: str  # without a trailing slash
    language: str
    timezone: ZoneInfo
    posts_dir: Path
    data_dir: Path
    categories: Mapping[str, str]  # slug -> display title
    feed_entries: int
    cache_max_age: int
    permalink: str  # a pattern, styles already expanded
    future: bool  # publish posts dated in the future right away (Jekyll's `future`)
    sources_path: Path  # the aggregator's upstream feeds (a missing default file means none)
    allow_private_addresses: bool  # may redirects (and every address feedhub finds itself) be internal
    status: StatusAccess  # who may see /status and /status.json, and how much
    status_token: str | None = field(default=None, repr=False)  # with StatusAccess.TOKEN
    # A PostgreSQL URL shared by several hosts; None: SQLite files in data_dir. It may hold a password.
    database: str | None = field(default=None, repr=False)
    websub: WebSubSettings = field(default_factory=lambda: WebSubSettings())
    parse_processes: int = 0  # processes that parse upstream answers for the poller; 0: its threads
    search: bool = True  # /search, and the search box on every page (off for a purely static export)
    icon: Icon = field(default_factory=lambda: Icon(DEFAULT_ICON, None))
    # What the config says of categories besides their titles: slug -> description, slug -> icon URL.
    category_descriptions: Mapping[str, str] = field(default_factory=dict)
    category_icons: Mapping[str, str] = field(default_factory=dict)
    # A theme: templates that replace the bundled ones by name, files served under /static/, and
    # values its templates read as `theme.<key>` (google_analytics: G-…).
    templates_dir: Path | None = None
    static_dir: Path | None = None
    theme: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    content_security_policy: str = PAGE_POLICY


@dataclass(frozen=True)
class WebSubSettings:
    """The `websub:` block: the built-in hub, the outside hubs pinged, and the hub's bounds."""

    builtin_hub: bool = True  # answer subscriptions at <base_url>/websub and deliver to them
    hubs: tuple[str, ...] = ()  # outside hubs, told of every change (hub.mode=publish)
    allow_private_callbacks: bool = False  # callbacks on loopback, private or link-local addresses
    lease_seconds: int = 10 * 86_400  # a subscription's lease when the subscriber asks for none
    min_lease_seconds: int = 3_600
    max_lease_seconds: int = 30 * 86_400
    max_subscriptions_per_topic: int = 10_000
    max_subscriptions_per_callback_host: int = 1_000


def config_path(cli_value: str | None) -> Path:
    """The config file to use: ``--config``, else ``$FEEDHUB_CONFIG``, else the default."""
    return Path(cli_value or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load_config(path: Path) -> Config:
    return _Reader(path, read_yaml_mapping(path)).config()


def read_yaml_mapping(path: Path) -> dict[Any, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty one)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            path, None, f"larger than the {MAX_CONFIG_BYTES // MIB} MiB limit for a config file"
        )
    try:
        raw = load_yaml(text, MAX_CONFIG_NODES)
    except YamlError as exc:
        raise ConfigError(path, None, f"not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "must be a mapping of keys to values")
    return raw


ChoiceT = TypeVar("ChoiceT", bound=Enum)


class MappingReader:
    """Validates the keys of one YAML mapping; every error names the file and the key."""

    def __init__(
        self, path: Path, raw: dict[Any, Any], known_keys: tuple[str, ...], prefix: str = ""
    ) -> None:
        self.path = path
        self.raw = raw
        self.known_keys = known_keys
        self.prefix = prefix  # e.g. "source 'xinhua': ", so a key reads as it does to the operator

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, f"{self.prefix}{key}", problem)

    def reject_unknown_keys(self) -> None:
        for key in self.raw:
            if key not in self.known_keys:
                name = key if isinstance(key, str) and len(key) <= MAX_QUOTED_CHARS else quoted(key)
                close = difflib.get_close_matches(name, self.known_keys, n=1)
                hint = f" (did you mean {quoted(close[0])}?)" if close else ""
                raise self.fail(name, f"unknown key{hint}; known keys: {', '.join(self.known_keys)}")

    def text(self, key: str, required: bool = False) -> str:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(key, f"must be text, got {_describe(value)}")
        text = str(value).strip()
        if required and not text:
            raise self.fail(key, "must not be empty")
        return text

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, got {_describe(value)}")
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_describe(value)}")
        return value

    def choice(self, key: str, kind: type[ChoiceT], default: ChoiceT) -> ChoiceT:
        """One of an enum's values, by its value ("public", "json")."""
        value = self.text(key) or default.value
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in kind)
            raise self.fail(key, f"must be one of {choices}, got {quoted(value)}") from None

    def timezone(self, key: str, default: str) -> ZoneInfo:
        name = self.text(key) or default
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(
                key, f"unknown time zone {quoted(name)} (use an IANA name like 'Asia/Shanghai')"
            ) from None


class _Reader(MappingReader):
    """Reads feedhub.yaml; each method validates one key."""

    def __init__(self, path: Path, raw: dict[Any, Any]) -> None:
        super().__init__(path, raw, _KEYS)
        self.folder = path.resolve().parent

    def config(self) -> Config:
        self.reject_unknown_keys()
        title = self.text("title", required=True)
        sources_path = self._sources_path()
        return Config(
            path=self.path,
            title=title,
            description=self.text("description") or title,
            author=self.text("author") or title,
            base_url=self._base_url(),
            language=self._language(),
            timezone=self.timezone("timezone", "Asia/Shanghai"),
            # the aggregator writes posts: a read-only folder is fine for a site without sources
            posts_dir=self._folder("posts_dir", must_exist=True, writable=sources_path.is_file()),
            data_dir=self._folder("data_dir", default="data"),
            categories=self._categories(),
            feed_entries=self.integer("feed_entries", default=50, low=1, high=1000),
            cache_max_age=self.integer("cache_max_age", default=300, low=0, high=31_536_000),
            permalink=self._permalink(),
            future=self.flag("future", default=False),
            sources_path=sources_path,
            allow_private_addresses=self.flag("allow_private_addresses", default=False),
            status=self._status(),
            status_token=os.environ.get(STATUS_TOKEN_ENV) or None,
            database=self._database(),
            websub=self._websub(),
            parse_processes=self.integer("parse_processes", default=processes_per_core(), low=0, high=64),
            search=self.flag("search", default=True),
            icon=self._icon(),
            category_descriptions=self._category_details("description"),
            category_icons=self._category_details("icon"),
            templates_dir=self._templates_dir(),
            static_dir=self._theme_folder("static_dir"),
            theme=self._theme(),
            content_security_policy=self._policy(),
        )

    def _websub(self) -> WebSubSettings:
        value = self.raw.get("websub") or {}
        if not isinstance(value, dict):
            raise self.fail("websub", f"must be a mapping of settings, got {_describe(value)}")
        block = MappingReader(self.path, value, _WEBSUB_KEYS, "websub.")
        block.reject_unknown_keys()
        defaults = WebSubSettings()
        hubs = value.get("hubs") or []
        if not isinstance(hubs, list) or not all(isinstance(hub, str) and _is_hub_url(hub) for hub in hubs):
            raise block.fail(
                "hubs", f"must be a list of http(s) URLs (written as in a Link header), got {_describe(hubs)}"
            )
        year = 365 * 86_400
        minimum = block.integer("min_lease_seconds", defaults.min_lease_seconds, 1, year)
        maximum = block.integer("max_lease_seconds", defaults.max_lease_seconds, minimum, year)
        return WebSubSettings(
            builtin_hub=block.flag("builtin_hub", defaults.builtin_hub),
            hubs=tuple(dict.fromkeys(hubs)),
            allow_private_callbacks=block.flag("allow_private_callbacks", defaults.allow_private_callbacks),
            lease_seconds=block.integer(
                "lease_seconds", min(max(defaults.lease_seconds, minimum), maximum), minimum, maximum
            ),
            min_lease_seconds=minimum,
            max_lease_seconds=maximum,
            max_subscriptions_per_topic=block.integer(
                "max_subscriptions_per_topic", defaults.max_subscriptions_per_topic, 1, 10_000_000
            ),
            max_subscriptions_per_callback_host=block.integer(
                "max_subscriptions_per_callback_host",
                defaults.max_subscriptions_per_callback_host,
                1,
                10_000_000,
            ),
        )

    def _database(self) -> str | None:
        """``database:``, or $FEEDHUB_DATABASE_URL (which wins: a password stays out of the file)."""
        from_env = os.environ.get(DATABASE_ENV, "").strip()
        url = from_env or self.text("database")
        if not url:
            return None
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            where = f"the environment variable {DATABASE_ENV}" if from_env else "it"
            raise self.fail(
                "database",
                f"must be a PostgreSQL URL like postgresql://user@host:5432/feedhub; {where} starts "
                f"{quoted(url.partition(':')[0])}",
            )
        return url

    def _status(self) -> StatusAccess:
        access = self.choice("status", StatusAccess, StatusAccess.PUBLIC)
        if access is StatusAccess.TOKEN and not os.environ.get(STATUS_TOKEN_ENV):
            raise self.fail("status", f"is token, but the environment variable {STATUS_TOKEN_ENV} is not set")
        return access

    def _base_url(self) -> str:
        url = self.text("base_url", required=True)
        parts = urlsplit(url)
        if not is_http_url(url):
            raise self.fail("base_url", f"must be an absolute http(s) URL, got {quoted(url)}")
        if parts.query or parts.fragment:
            raise self.fail("base_url", f"must not have a query or fragment, got {quoted(url)}")
        return url.rstrip("/")

    def _language(self) -> str:
        language = self.text("language") or "en"
        if not _LANGUAGE_TAG.match(language):
            raise self.fail(
                "language", f"must be a language tag like 'en' or 'zh-CN', got {quoted(language)}"
            )
        return language

    def _folder(
        self, key: str, must_exist: bool = False, default: str | None = None, writable: bool = True
    ) -> Path:
        value = self.text(key, required=default is None) or default
        folder = (self.folder / str(value)).resolve()
        if must_exist and not folder.is_dir():
            raise self.fail(key, f"folder {folder} does not exist")
        if not must_exist:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self.fail(key, f"cannot create folder {folder}: {exc.strerror}") from None
        if writable:
            # Tried, not asked (os.access): a read-only mount, chattr +i or a full disk say no only then.
            try:
                descriptor, probe = tempfile.mkstemp(prefix=".feedhub-probe-", dir=folder)
                os.close(descriptor)
                os.unlink(probe)
            except OSError as exc:
                raise self.fail(key, f"cannot write to folder {folder}: {exc.strerror}") from None
        return folder

    def _categories(self) -> Mapping[str, str]:
        """slug -> title, from `{slug: title}` or `{slug: {title, description, icon}}` (a category
        given without a title takes the one its posts give)."""
        titles: dict[str, str] = {}
        for slug, value in self._category_entries().items():
            title = value.text("title") if isinstance(value, MappingReader) else value
            if title:
                titles[slug] = title
        return MappingProxyType(titles)

    def _category_details(self, key: str) -> Mapping[str, str]:
        """slug -> the `description` (or `icon`) of the categories given as mappings."""
        details: dict[str, str] = {}
        for slug, value in self._category_entries().items():
            if not isinstance(value, MappingReader) or not (detail := value.text(key)):
                continue
            if key == "icon" and not is_http_url(detail):
                raise value.fail(key, f"must be an absolute http(s) URL, got {quoted(detail)}")
            details[slug] = detail
        return MappingProxyType(details)

    def _category_entries(self) -> dict[str, str | MappingReader]:
        value = self.raw.get("categories") or {}
        if not isinstance(value, dict):
            raise self.fail("categories", f"must be a mapping of slug to title, got {_describe(value)}")
        entries: dict[str, str | MappingReader] = {}
        for slug, given in value.items():
            key = f"categories.{slug}"
            if isinstance(given, dict):
                reader = MappingReader(self.path, given, _CATEGORY_KEYS, prefix=f"{key}.")
                reader.reject_unknown_keys()
                entries[str(slug).strip()] = reader
            elif isinstance(given, str | int | float) and not isinstance(given, bool) and str(given).strip():
                entries[str(slug).strip()] = str(given).strip()
            else:
                raise self.fail(key, "must be a non-empty title, or a mapping of title, description and icon")
        return entries

    def _theme_folder(self, key: str) -> Path | None:
        return self._folder(key, must_exist=True, writable=False) if self.text(key) else None

    def _templates_dir(self) -> Path | None:
        """The theme's templates folder, each template in it read now: a typo is found at start,
        not by the reader of the page it breaks."""
        folder = self._theme_folder("templates_dir")
        for path in sorted(folder.rglob("*")) if folder else []:
            if not path.is_file() or path.suffix not in (".html", ".xsl"):
                continue
            try:
                Environment().parse(path.read_text("utf-8"))
            except TemplateSyntaxError as exc:
                raise self.fail("templates_dir", f"{path}, line {exc.lineno}: {exc.message}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise self.fail("templates_dir", f"{path}: cannot be read ({exc})") from None
        return folder

    def _theme(self) -> Mapping[str, str | int | float | bool]:
        value = self.raw.get("theme") or {}
        if not isinstance(value, dict) or len(value) > MAX_THEME_VALUES:
            raise self.fail("theme", f"must be a mapping of at most {MAX_THEME_VALUES} names to values")
        theme: dict[str, str | int | float | bool] = {}
        for name, given in value.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise self.fail(f"theme.{quoted(name)}", "a name must be a word (letters, digits, _)")
            if not isinstance(given, str | int | float | bool):
                raise self.fail(
                    f"theme.{name}", f"must be text, a number or true/false, got {_describe(given)}"
                )
            theme[name] = given
        return MappingProxyType(theme)

    def _policy(self) -> str:
        policy = one_line(self.text("content_security_policy")) or PAGE_POLICY
        if not all(char.isprintable() and char.isascii() for char in policy):
            raise self.fail("content_security_policy", "must be printable ASCII (it is an HTTP header)")
        return policy

    def _icon(self) -> Icon:
        value = self.text("icon")
        if not value:
            return Icon(DEFAULT_ICON, None)
        if "://" in value:
            if not is_http_url(value):
                raise self.fail(
                    "icon", f"must be an image file or an absolute http(s) URL, got {quoted(value)}"
                )
            return Icon(None, value)
        path = (self.folder / value).resolve()
        if path.suffix.lower() not in ICON_TYPES:
            raise self.fail("icon", f"must be an image named {', '.join(ICON_TYPES)}, got {quoted(value)}")
        if not path.is_file():
            raise self.fail("icon", f"file {path} does not exist")
        if path.stat().st_size > MAX_ICON_BYTES:
            raise self.fail("icon", f"file {path} is over {MAX_ICON_BYTES // 1024} KiB")
        return Icon(path, None)

    def _sources_path(self) -> Path:
        value = self.text("sources")
        path = (self.folder / (value or "sources.yaml")).resolve()
        if value and not path.is_file():
            raise self.fail("sources", f"file {path} does not exist")
        return path

    def _permalink(self) -> str:
        value = self.text("permalink") or "date"
        pattern = PERMALINK_STYLES.get(value, value)
        if not pattern.startswith("/"):
            raise self.fail(
                "permalink",
                f"must be one of {', '.join(PERMALINK_STYLES)} or a pattern starting with '/', "
                f"got {quoted(value)}",
            )
        if ":title" not in pattern and ":slug" not in pattern:
            raise self.fail("permalink", "pattern must contain :title or :slug, or posts would share URLs")
        return pattern


def _is_hub_url(url: str) -> bool:
    """An http(s) URL that goes into a Link header and an nginx string as it is: nothing to escape."""
    return is_http_url(url) and not any(
        char in "<>\"'$\\" or not char.isprintable() or char.isspace() for char in url
    )


def _describe(value: object) -> str:
    return f"{type(value).__name__} {quoted(value)}"


_KEYS = (
    "title",
    "description",
    "author",
    "base_url",
    "language",
    "timezone",
    "posts_dir",
    "data_dir",
    "categories",
    "feed_entries",
    "cache_max_age",
    "permalink",
    "future",
    "sources",
    "allow_private_addresses",
    "status",
    "database",
    "websub",
    "parse_processes",
    "search",
    "icon",
    "templates_dir",
    "static_dir",
    "theme",
    "content_security_policy",
)
_CATEGORY_KEYS = ("title", "description", "icon")
_WEBSUB_KEYS = tuple(WebSubSettings.__dataclass_fields__)
