"""Post bodies to safe HTML: Markdown (markdown-it-py), one nh3 policy, absolute URLs.

nh3 (Rust's ammonia) replaces bleach, which its maintainers ended on 2026-06-05
with no further security releases. The same policy is used for everything feedhub
publishes, whether written by hand or pulled from an upstream feed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common import normalize_url
from markdown_it.token import Token

from feedhub.i18n import all_labels
from feedhub.limits import MAX_HTML_DEPTH
from feedhub.text import one_line, truncate, xml_safe

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
        "dd", "del", "details", "div", "dl", "dt", "em", "figcaption", "figure",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
        "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "summary", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "col": {"span"},
    "colgroup": {"span"},
    "abbr": {"title"},
    "time": {"datetime"},
}
# Dropped together with everything inside them: active content, and markup whose text is
# not meant to be read (a form's controls, an SVG's drawing instructions).
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "applet", "frame", "frameset",
        "noframes", "noembed", "template", "form", "textarea", "select", "svg", "math",
        "title", "head",
    }
)  # fmt: skip
URL_SCHEMES = frozenset({"http", "https", "mailto"})
_STAND_IN_HOST = "base.feedhub.invalid"  # .invalid: no real URL has it (RFC 2606)
# Elements that hold nothing (void) or that the next of their kind closes: they never nest deep.
_NEVER_NEST = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
        "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rp",
    }
)  # fmt: skip
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_ANY_TAG = re.compile(r"<[^>]*>?")
_DROPPED_START = re.compile(rf"<({'|'.join(sorted(DROPPED_WITH_CONTENT))})\b", re.IGNORECASE)
_DROPPED_END = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in DROPPED_WITH_CONTENT}
SUMMARY_LENGTH = 200

_LINKS_KEPT = 4096


@lru_cache(maxsize=_LINKS_KEPT)
def _normalized_link(url: str) -> str:
    return normalize_url.normalizeLink(url)


@lru_cache(maxsize=_LINKS_KEPT)
def _normalized_link_text(link: str) -> str:
    return normalize_url.normalizeLinkText(link)


class _Markdown(MarkdownIt):
    """markdown-it with each link normalized once: every post of a category ends in the same
    back-links, and normalizing a URL (parsing it, IDNA, percent-encoding) is a third of a parse."""

    def normalizeLink(self, url: str) -> str:
        return _normalized_link(url)

    def normalizeLinkText(self, link: str) -> str:
        return _normalized_link_text(link)


_markdown = _Markdown("commonmark", {"html": True}).enable(["table", "strikethrough"])

# The original-article line of a post: an autolink alone on its line.
_VIA_LINE = re.compile(r"^[ \t]*<(https?://[^\s<>]+)>[ \t]*$", re.MULTILINE)
# An autolink with nothing in it, as the generator wrote for items without a URL.
_EMPTY_LINK_LINE = re.compile(r"^[ \t]*<>[ \t]*(?:\n|$)", re.MULTILINE)
# A line of nothing but Markdown links and separators: the seeds' back-links footer.
_NAVIGATION_LINE = re.compile(r"^[ \t]*(?:\[[^\]\n]*\]\([^)\n]*\)[ \t]*[｜|·/]?[ \t]*)+$", re.MULTILINE)
# The attribution paragraph under an aggregated entry (and the seeds' articles): not article text.
_SOURCE_LINES = "|".join(
    re.escape(line).replace(re.escape("{}"), "[^<]*") for line in all_labels("source_line")
)
_ATTRIBUTION = re.compile(rf"<p[^>]*>\s*(?:{_SOURCE_LINES})\s*</p>")
# How an HTML block that a blank line ends starts (CommonMark's kinds 6 and 7), and the kind 1
# starts, which end at their closing tag instead.
_TAG_START = re.compile(r"</?[a-z]", re.IGNORECASE)
_RAW_TEXT_START = re.compile(r"<(?:script|pre|style|textarea)\b", re.IGNORECASE)
_BLOCK_TAG = re.compile(
    r"<(?:/?(?:p|div|br|li|h[1-6]|tr|td|th|blockquote|pre|hr|table|ul|ol|dl|dt|dd)\b)[^>]*>"
)


@dataclass(frozen=True)
class Rendered:
    html: str  # sanitized, every URL absolute
    summary: str  # plain text


def find_via(body: str) -> str | None:
    """The original-article URL: the body's first ``<http…>`` line."""
    match = _VIA_LINE.search(body)
    return match.group(1) if match else None


def render_post(body: str, body_format: str, base_url: str, description: str | None) -> Rendered:
    """Render a post body; ``description`` (front matter) is preferred as the summary."""
    source = _EMPTY_LINK_LINE.sub("", body)
    base_url = base_url.rstrip("/") + "/"  # the site root: `../emnews/` is /emnews/
    if body_format == "html":
        content = sanitize(source, base_url)
        article = content
    else:
        env: dict[str, Any] = {}
        tokens = _markdown.parse(source, env)
        html_of_body: str = _markdown.renderer.render(tokens, _markdown.options, env)
        content = sanitize(html_of_body, base_url)
        article = "" if description else sanitize(_article_html(source, tokens, env), base_url)
    summary = one_line(description) if description else html_to_text(article)
    return Rendered(html=content, summary=truncate(summary, SUMMARY_LENGTH))


def _article_html(source: str, tokens: list[Token], env: dict[str, Any]) -> str:
    """A Markdown body's HTML without its original-article and back-link lines or its attribution:
    the text its summary is made from. Made from the body's own tokens when that is sure to give
    what rendering the body without them gives (every body the site and the aggregator write);
    else the body is rendered again without them."""
    lines = source.split("\n")
    removed = {number for number, line in enumerate(lines) if _is_removed_line(line)}
    blanked = "\n".join("" if number in removed else line for number, line in enumerate(lines))
    attributions = _ATTRIBUTION.findall(blanked)
    if "\r" not in source and _paragraphs_alone(tokens, removed) and _inside_blocks(tokens, blanked):
        kept = _without_paragraphs(tokens, removed)
        html_of_kept: str = _markdown.renderer.render(kept, _markdown.options, env)
        if _ATTRIBUTION.findall(html_of_kept) == attributions:  # no paragraph's <p> among them
            return _ATTRIBUTION.sub("", html_of_kept)
    html_of_article: str = _markdown.render(_ATTRIBUTION.sub("", blanked))
    return html_of_article


def _is_removed_line(line: str) -> bool:
    """An original-article autolink or a line of back-links: not the article's text."""
    return bool(_VIA_LINE.fullmatch(line) or _NAVIGATION_LINE.fullmatch(line))


def _paragraphs_alone(tokens: list[Token], numbers: set[int]) -> bool:
    """Whether each of these lines is a paragraph of its own: blank, it would only end that one."""
    alone = {
        token.map[0]
        for token in tokens
        if token.type == "paragraph_open" and token.map and token.map[1] - token.map[0] == 1
    }
    return numbers <= alone


def _inside_blocks(tokens: list[Token], blanked: str) -> bool:
    """Whether each attribution is inside a line of a top-level HTML block (one that a blank line
    ends), which passes it through as it is, without starting or filling that line: without it,
    the block is the same block."""
    first_line_of = {
        number: token.map[0]
        for token in tokens
        if token.type == "html_block" and token.level == 0 and token.map and _ends_at_blank(token)
        for number in range(*token.map)
    }
    for match in _ATTRIBUTION.finditer(blanked):
        line_start = blanked.rfind("\n", 0, match.start()) + 1
        line_end = blanked.find("\n", match.start())
        line = blanked[line_start : len(blanked) if line_end < 0 else line_end]
        number = blanked.count("\n", 0, match.start())
        if (
            "\n" in match.group()
            or number not in first_line_of
            or not line.replace(match.group(), "").strip()
        ):
            return False
        if first_line_of[number] == number and not blanked[line_start : match.start()].strip():
            return False
    return True


def _ends_at_blank(token: Token) -> bool:
    """An HTML block of a block-level tag (CommonMark's kinds 6 and 7), not a comment, <script>,
    <pre> or the like, which end at a marker an attribution might hold."""
    start = token.content.lstrip()
    return bool(_TAG_START.match(start)) and not _RAW_TEXT_START.match(start)


def _without_paragraphs(tokens: list[Token], numbers: set[int]) -> list[Token]:
    kept: list[Token] = []
    skipping = False
    for token in tokens:
        if token.type == "paragraph_open" and token.map and token.map[0] in numbers:
            skipping = True
        if not skipping:
            kept.append(token)
        elif token.type == "paragraph_close":
            skipping = False
    return kept


def sanitize(fragment: str, base: str) -> str:
    """The one sanitizing policy; relative and protocol-relative URLs resolve against ``base``.

    ``base`` is a URL as a browser would take it: a site root ends with '/', a page does not.
    """
    # Rust strings hold no lone surrogate (a JSON Feed's "\\ud800"), XML no control character.
    fragment = xml_safe(fragment)
    if _nests_too_deep(fragment):
        return text_to_html(_text_without_parsing(fragment))
    scheme = base.partition(":")[0].lower()
    if scheme in ("http", "https"):
        # Upstream entries each have a base of their own, and a cleaner costs about a third of a
        # cleaning to make. A base changes the output only through URLs resolved against it, whose
        # host it gives them (a protocol-relative URL takes only its scheme): cleaned against a
        # stand-in host that does not show up in the output, the fragment is cleaned as it would be
        # against any base of that scheme.
        cleaned = _cleaner(f"{scheme}://{_STAND_IN_HOST}/").clean(fragment)
        if _STAND_IN_HOST not in cleaned:
            return cleaned
    return _cleaner(base).clean(fragment)


def _nests_too_deep(fragment: str) -> bool:
    """Whether elements may nest deeper than MAX_HTML_DEPTH, which html5ever (under nh3) takes
    quadratic time for: 300,000 nested <div>s would cost minutes. Counted generously (an
    element some later tag would close implicitly still counts), and only for long fragments."""
    if fragment.count("<") <= MAX_HTML_DEPTH:
        return False
    open_by_name: dict[str, int] = {}
    depth = 0
    for closing, name in _TAG_NAME.findall(fragment):
        name = name.lower()
        if name in _NEVER_NEST:
            continue
        if not closing:
            open_by_name[name] = open_by_name.get(name, 0) + 1
            depth += 1
            if depth > MAX_HTML_DEPTH:
                return True
        elif open_by_name.get(name):  # a stray closing tag closes nothing
            open_by_name[name] -= 1
            depth -= 1
    return False


def _text_without_parsing(fragment: str) -> str:
    """The text of a fragment too deep to parse: what dropped elements hold goes, tags go.

    One pass forward: an element never closed takes the rest with it, as in a browser (a
    pattern searching for each one's end would be quadratic on 100,000 unclosed <script>s).
    """
    kept, position = [], 0
    while (start := _DROPPED_START.search(fragment, position)) is not None:
        kept.append(fragment[position : start.start()])
        end = _DROPPED_END[start.group(1).lower()].search(fragment, start.end())
        position = end.end() if end else len(fragment)
    kept.append(fragment[position:])
    return html.unescape(_ANY_TAG.sub(" ", " ".join(kept)))


def text_to_html(text: str) -> str:
    """Plain text as HTML: escaped, blank lines between paragraphs, other line breaks kept."""
    paragraphs = (part.strip() for part in re.split(r"\n\s*\n", text))
    return "".join(f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in paragraphs if part)


def html_to_text(fragment: str) -> str:
    """Readable plain text: tags dropped, entities decoded, whitespace collapsed."""
    spaced = _BLOCK_TAG.sub(" ", fragment)
    if _nests_too_deep(spaced):
        return one_line(_text_without_parsing(spaced))
    return one_line(html.unescape(_text_cleaner().clean(spaced)))


@lru_cache(maxsize=1)
def _text_cleaner() -> nh3.Cleaner:
    """Keeps no tag (made once: nh3.clean makes a cleaner, a third of its cost, every call)."""
    return nh3.Cleaner(tags=set(), clean_content_tags=set(DROPPED_WITH_CONTENT))


@lru_cache(maxsize=64)
def _cleaner(base: str) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative=("rewrite_with_base", base),
    )
