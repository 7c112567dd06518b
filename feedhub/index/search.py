"""How posts are found by their words: one tokenization for the posts and the queries, on both backends.

A post's title and text become tokens: words of letters and digits, case-folded and without
accents, and each CJK character (Han, kana, hangul) a token of its own, since those scripts put
no spaces between words. A query term is a phrase of its tokens, so 国务院 finds the posts with
those three characters in a row, and a one- or two-character term (北京, 京) works as well as a
long one. SQLite keeps the tokens in an FTS5 table (its `ascii` tokenizer only splits them at the
spaces put between them here); PostgreSQL in a tsvector made here too, positions and all, so
neither backend's own parser or locale can change what matches.

Rows are numbered in publication order (see `_first_id`): the newest matches are then the first
the full-text index gives, and a page of newest-first results reads a few rows however many match.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from feedhub.limits import MAX_QUERY_CHARS, MAX_QUERY_TERMS, MAX_SEARCH_TOKENS, RELEVANCE_WINDOW
from feedhub.render import html_to_text
from feedhub.storage.base import Connection, Dialect

# Scripts written without spaces between words: each character is a token.
_CJK = (
    "\u3040-\u30ff\u31f0-\u31ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # Han
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"  # hangul
)
_CJK_CHARACTER = re.compile(rf"[{_CJK}]")
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
# The accents of Latin, Greek and Cyrillic letters (é is e); not kana's voicing marks (が is not か).
_ACCENTS = re.compile("[\u0300-\u036f]")
_MARKDOWN_LINK_TARGET = re.compile(r"\]\([^)\n]*\)")  # [text](url): the text is read, not the URL
_QUERY_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_LONGEST_TOKEN = 64  # characters; PostgreSQL refuses a tsvector word over 2,046 bytes
_SCANNED = 2_000  # characters of a text read token by token for its excerpt's first match
_ID_SLOTS = 1 << 20  # ids within one second of publication: far more posts than one second sees


class SearchOrder(Enum):
    NEWEST = "newest"
    RELEVANCE = "relevance"


@dataclass(frozen=True)
class SearchQuery:
    """What a reader searched for: terms that must all match, each a phrase of tokens."""

    text: str
    terms: tuple[tuple[str, ...], ...]


def tokens(text: str) -> list[str]:
    """The tokens of a text, in order; none longer than _LONGEST_TOKEN (a key, a hash: no word)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    found = _TOKEN.findall(unicodedata.normalize("NFC", _ACCENTS.sub("", folded)))
    return [token for token in found if len(token) <= _LONGEST_TOKEN]


def searched_text(description: str | None, body: str) -> str:
    """The text of a post that is searched besides its title: its description and its body's text
    (Markdown or HTML; link targets, tags and what scripts hold are not text)."""
    return html_to_text(_MARKDOWN_LINK_TARGET.sub("]", f"{description or ''}\n\n{body}"))


def post_tokens(title: str, text: str) -> tuple[list[str], list[str]]:
    """A post's title tokens and text tokens: at most MAX_SEARCH_TOKENS in all, the title first."""
    title_tokens = tokens(title)[:MAX_SEARCH_TOKENS]
    return title_tokens, tokens(text)[: MAX_SEARCH_TOKENS - len(title_tokens)]


def parse_query(text: str) -> SearchQuery:
    """A query as typed: words and "quoted phrases", all of which must match. Terms with no
    letter or digit are left out; a query too long is cut to its first terms."""
    text = text[:MAX_QUERY_CHARS]
    terms = []
    for match in _QUERY_TERM.finditer(text):
        phrase = tuple(tokens(match.group(1) if match.group(1) is not None else match.group(2)))
        if phrase and phrase not in terms:
            terms.append(phrase)
    return SearchQuery(text.strip(), tuple(terms[:MAX_QUERY_TERMS]))


def fts5_query(query: SearchQuery) -> str:
    """The query in FTS5's syntax: each term a quoted phrase (tokens hold no quote), all of them."""
    return " ".join('"{}"'.format(" ".join(term)) for term in query.terms)


def tsquery(query: SearchQuery) -> str:
    """The query as a PostgreSQL tsquery: each term's tokens in a row (<->), all terms (&)."""
    return " & ".join("(" + " <-> ".join(f"'{token}'" for token in term) + ")" for term in query.terms)


def tsvector(title_tokens: list[str], text_tokens: list[str]) -> str:
    """A post's tokens as a PostgreSQL tsvector literal: positions from 1, the title's weighted A."""
    positions: dict[str, list[str]] = {}
    for number, token in enumerate(title_tokens, 1):
        positions.setdefault(token, []).append(f"{number}A")
    for number, token in enumerate(text_tokens, len(title_tokens) + 1):
        positions.setdefault(token, []).append(str(number))
    return " ".join(f"'{token}':{','.join(places)}" for token, places in positions.items())


class Searchable(NamedTuple):
    """A post as the search keeps it."""

    path: str
    published_ts: float
    title_tokens: list[str]
    text_tokens: list[str]


def store_searchable(conn: Connection, dialect: Dialect, posts: list[Searchable]) -> None:
    """The posts' rows of the search (their rows are gone with them: foreign keys, a trigger)."""
    ids = _free_ids(conn, {post.path: _first_id(post) for post in posts})
    conn.insert_rows("INSERT INTO search_rows VALUES {}", [(ids[post.path], post.path) for post in posts])
    rows: list[tuple[object, ...]]
    if dialect is Dialect.SQLITE:
        rows = [(ids[post.path], " ".join(post.title_tokens), " ".join(post.text_tokens)) for post in posts]
        conn.insert_rows("INSERT INTO search (rowid, title, text) VALUES {}", rows)
    else:
        rows = [(ids[post.path], tsvector(post.title_tokens, post.text_tokens)) for post in posts]
        conn.insert_rows("INSERT INTO search VALUES {}", rows, "(?, CAST(? AS tsvector))")


def _first_id(post: Searchable) -> int:
    """The id a post tries first: its second of publication, then a slot chosen by its path."""
    return math.floor(post.published_ts) * _ID_SLOTS + zlib.crc32(post.path.encode()) % _ID_SLOTS


def _free_ids(conn: Connection, wanted: dict[str, int]) -> dict[str, int]:
    """Each path's id: the one it wants, or the next free after it (held by another post)."""
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    while wanted:
        held = {
            row["id"]
            for row in conn.select_in("SELECT id FROM search_rows WHERE id IN ({})", [*wanted.values()])
        }
        for path, candidate in sorted(wanted.items()):
            if candidate in held or candidate in taken:
                wanted[path] = candidate + 1
            else:
                chosen[path] = candidate
                taken.add(candidate)
                del wanted[path]
    return chosen


# A piece of text, and whether it is a match (shown marked).
Segment = tuple[str, bool]


def marked(query: SearchQuery, text: str) -> list[Segment]:
    """The whole text (a title), its matches marked."""
    return _segments(text, sorted(set(_spans(query, text, 0, len(text)))), 0, len(text))


def excerpt(query: SearchQuery, text: str, length: int) -> list[Segment]:
    """About `length` characters of a text around its first match, matches marked; its start
    when nothing in it matched (the title did)."""
    text = text[: MAX_SEARCH_TOKENS * 4]  # past what was searched, nothing matched
    first = _first_match(query, text)
    start = max(0, first[0] - length // 3) if first else 0
    if first and start:
        space = text.find(" ", start, first[0])  # a Latin word is not cut at the start
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + length)
    if _only_cjk(query):  # the pattern finds exactly the matches, characters as they are written
        spans = [found.span() for found in _pattern(query).finditer(text, start, end)]
    else:
        spans = sorted(set(_spans(query, text, start, end)))
    segments = _segments(text, spans, start, end)
    if start:
        segments.insert(0, ("…", False))
    if end < len(text):
        segments.append(("…", False))
    return segments


def _first_match(query: SearchQuery, text: str) -> tuple[int, int] | None:
    """The first place a term occurs: found by a pattern (at the speed of C, which matters in a
    long text that only matched by its title), else by reading tokens (accents: cafe in café)
    for the first _SCANNED characters."""
    if not query.terms:
        return None
    found = _pattern(query).search(text)
    if found or _only_cjk(query):
        return found.span() if found else None
    return next(_spans(query, text, 0, min(len(text), _SCANNED)), None)


def _pattern(query: SearchQuery) -> re.Pattern[str]:
    """The terms as written: their tokens with anything but letters and digits between."""
    return re.compile(
        "|".join(r"[\W_]*".join(re.escape(token) for token in term) for term in query.terms), re.IGNORECASE
    )


def _only_cjk(query: SearchQuery) -> bool:
    return all(_CJK_CHARACTER.fullmatch(token) for term in query.terms for token in term)


def _spans(query: SearchQuery, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Where the query's terms occur in text[start:end], as (start, end) character spans, as the
    scan finds them (a long text is read only up to its first match when that is all it takes):
    each covers a term's tokens in a row, as the search matched them."""
    longest = max((len(term) for term in query.terms), default=0)
    recent: deque[tuple[int, int, str]] = deque(maxlen=longest or 1)
    for match in _TOKEN.finditer(text, start, end):
        recent.append((match.start(), match.end(), _folded(match.group())))
        for term in query.terms:
            size = len(term)
            if size <= len(recent) and all(recent[k - size][2] == token for k, token in enumerate(term)):
                yield recent[-size][0], recent[-1][1]


@functools.lru_cache(maxsize=65_536)
def _folded(token: str) -> str:
    """A token of a text as it was indexed (a text's words repeat: each is folded once)."""
    return "".join(tokens(token))


def _segments(text: str, spans: list[tuple[int, int]], start: int, end: int) -> list[Segment]:
    segments: list[Segment] = []
    position = start
    for span_start, span_end in spans:
        if span_start < position or span_end > end:
            continue  # outside, or overlapping the span before
        segments += [(text[position:span_start], False), (text[span_start:span_end], True)]
        position = span_end
    segments.append((text[position:end], False))
    return [segment for segment in segments if segment[0]]


def matching_sql(dialect: Dialect, order: SearchOrder, columns: str) -> tuple[str, int]:
    """The statement that reads a page of the visible posts matching a query (posts as `p`), and
    how many times it takes the query; its other parameters are the limit and the offset."""
    # Best match first ranks the newest RELEVANCE_WINDOW matches (scoring every match of a common
    # word, 30,000 of 100,000 posts, took 100 ms).
    if dialect is Dialect.SQLITE:
        matching = "SELECT rowid AS id{} FROM search WHERE search MATCH ? ORDER BY rowid DESC"
        score = ", bm25(search, 4.0, 1.0) AS score"
    else:
        matching = "SELECT id{} FROM search WHERE document @@ CAST(? AS tsquery) ORDER BY id DESC"
        score = ", ts_rank(document, CAST(? AS tsquery)) AS score"
    if order is SearchOrder.RELEVANCE:
        found = f"({matching.format(score)} LIMIT {RELEVANCE_WINDOW})"
        ranked = "s.score" if dialect is Dialect.SQLITE else "s.score DESC"
        uses = 1 if dialect is Dialect.SQLITE else 2
    else:
        found, ranked, uses = f"({matching.format('')})", "", 1
    return (
        f"SELECT {columns} FROM {found} s JOIN search_rows r ON r.id = s.id "
        f"JOIN posts p ON p.path = r.path WHERE p.visible=1 "
        f"ORDER BY {ranked + ', ' if ranked else ''}s.id DESC LIMIT ? OFFSET ?",
        uses,
    )


def backend_query(dialect: Dialect, query: SearchQuery) -> str:
    """The query as the backend takes it."""
    return fts5_query(query) if dialect is Dialect.SQLITE else tsquery(query)
