"""Sources to and from OPML, the format every feed reader exports its subscriptions in.

Import reads an OPML file (real exports are often not well-formed: a raw ``&`` in a title is
common, so a recovering parser reads them and says what it repaired), turns folder outlines into
categories and feed outlines into sources, and adds the new ones to sources.yaml without
touching what is there: its entries, their order and its comments stay (a round-trip YAML
library edits the file). Export writes the sources as OPML 2.0, a folder per category.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from feedhub.aggregator.defuse import UnsafeDocument, defuse
from feedhub.aggregator.sources import Source, SourceType, comparable_url
from feedhub.errors import ConfigError, FeedhubError
from feedhub.text import one_line
from feedhub.urls import is_http_url

MAX_OPML_BYTES = 10 * 1024 * 1024
MAX_ID_CHARS = 40
_NOT_ID = re.compile(r"[^a-z0-9]+")
_RAW_AMPERSAND = re.compile(rb"&(?!#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z_][\w.-]*;)")


class OpmlError(FeedhubError):
    pass


@dataclass(frozen=True)
class FeedOutline:
    title: str
    url: str
    folder: str | None  # the title of the folder outline it is in (the nearest one)


@dataclass
class OpmlRead:
    feeds: list[FeedOutline] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)  # what the recovering parser mended
    skipped: list[str] = field(default_factory=list)  # outlines that name no usable feed


def read_opml(data: bytes, name: str) -> OpmlRead:
    """The feed outlines of an OPML document, each with its folder."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"{name}: larger than {MAX_OPML_BYTES // 1024 // 1024} MiB")
    try:
        body = defuse(data).body  # no entity bombs, no references beyond Unicode
    except UnsafeDocument as exc:
        raise OpmlError(f"{name}: {exc}") from None
    # The commonest flaw first, as its writer meant it (a recovering parser would drop `&b` of
    # `?a=1&b=2` as an unknown entity): a raw & becomes &amp;.
    repairs = [
        f"line {_line_of(body, match.start())}: a raw & escaped" for match in _RAW_AMPERSAND.finditer(body)
    ]
    body = _RAW_AMPERSAND.sub(b"&amp;", body)
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(body, parser) if body.strip() else None
    repairs += [f"line {error.line}: {one_line(error.message)}" for error in parser.error_log]
    read = OpmlRead(repairs=repairs)
    if root is None or not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise OpmlError(f"{name}: not an OPML document (no <opml> element)")
    body_element = next((child for child in root if _tag(child) == "body"), None)
    if body_element is None:
        raise OpmlError(f"{name}: an OPML document without a <body>")
    _walk(body_element, None, read)
    return read


def _line_of(body: bytes, offset: int) -> int:
    return body.count(b"\n", 0, offset) + 1


def _walk(parent: etree._Element, folder: str | None, read: OpmlRead) -> None:
    for outline in parent:
        if _tag(outline) != "outline":
            continue
        title = one_line(outline.get("title") or outline.get("text") or "")
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            if is_http_url(url):
                read.feeds.append(FeedOutline(title, url, folder))
            else:
                read.skipped.append(f"{title or url}: not an http(s) feed URL ({url[:200]})")
        elif len(outline):
            _walk(outline, title or folder, read)


def _tag(element: etree._Element) -> str:
    return element.tag.lower() if isinstance(element.tag, str) else ""


def ascii_id(text: str) -> str:
    """Letters, digits and '-' of a title, accents dropped; "" when nothing ASCII is left."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _NOT_ID.sub("-", folded).strip("-")[:MAX_ID_CHARS].strip("-")


def _unique(wanted: str, taken: set[str]) -> str:
    chosen, number = wanted, 2
    while chosen in taken:
        chosen = f"{wanted}-{number}"
        number += 1
    taken.add(chosen)
    return chosen


def _named(title: str, fallback: str) -> str:
    """An ASCII id of a title; a title with no ASCII (中文) is named by the fallback's."""
    return ascii_id(title) or ascii_id(fallback) or f"x{hashlib.sha256(title.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class NewSource:
    id: str
    url: str
    category: str
    category_title: str | None


@dataclass
class ImportPlan:
    added: list[NewSource] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # URLs sources.yaml already has


def plan_import(read: OpmlRead, existing: Iterable[Source], default_category: str) -> ImportPlan:
    """The sources to add: one per feed URL not already there, ids and categories ASCII and unique."""
    existing = list(existing)
    taken_ids = {source.id for source in existing}
    known_urls = {comparable_url(source.url) for source in existing}
    categories: dict[str, str] = {}  # folder title -> category slug
    # Folders of different titles get different categories; a folder may join an existing one.
    taken_categories: set[str] = set()
    plan = ImportPlan()
    for feed in read.feeds:
        key = comparable_url(feed.url)
        if key in known_urls:
            plan.already.append(feed.url)
            continue
        known_urls.add(key)
        category, category_title = default_category, None
        if feed.folder:
            if feed.folder not in categories:
                categories[feed.folder] = _unique(_named(feed.folder, "folder"), taken_categories)
            category, category_title = categories[feed.folder], feed.folder
        host = urlsplit(feed.url).hostname or "feed"
        source_id = _unique(_named(feed.title, host.removeprefix("www.")), taken_ids)
        plan.added.append(NewSource(source_id, feed.url, category, category_title))
    return plan


def with_sources_added(path: Path, added: list[NewSource]) -> str:
    """sources.yaml's text with the sources appended: its entries, order and comments kept."""
    yaml = YAML()  # round-trip: comments, order and quoting stay as they are
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        document = yaml.load(path.read_text("utf-8")) if path.exists() else None
    except YAMLError as exc:
        raise ConfigError(path, "sources", f"cannot be edited: {one_line(str(exc))}") from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise ConfigError(path, "sources", "the file must be a mapping with a `sources` list")
    sources = document.get("sources")
    if sources is None:
        sources = document["sources"] = CommentedSeq()
    if not isinstance(sources, CommentedSeq):
        raise ConfigError(path, "sources", "must be a list of sources")
    for source in added:
        entry = CommentedMap(id=source.id, url=source.url, category=source.category)
        if source.category_title:
            entry["category_title"] = source.category_title
        sources.append(entry)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def sources_opml(sources: Iterable[Source], title: str) -> bytes:
    """OPML 2.0 of the sources, a folder outline per category."""
    root = ElementTree.Element("opml", version="2.0")
    ElementTree.SubElement(ElementTree.SubElement(root, "head"), "title").text = title
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}
    for source in sources:
        if source.type is not SourceType.FEED or not is_http_url(source.url):
            continue  # a JSON API or a local file is no feed another reader could poll
        folder = folders.get(source.category)
        if folder is None:
            label = source.category_title or source.category
            folder = folders[source.category] = ElementTree.SubElement(
                body, "outline", text=label, title=label, category=source.category
            )
        ElementTree.SubElement(
            folder, "outline", type="rss", text=source.id, title=source.id, xmlUrl=source.url
        )
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()
