"""Plain-text hygiene shared by everything that puts text into XML, front matter or a message."""

from __future__ import annotations

import re
import reprlib

from feedhub.limits import MAX_QUOTED_CHARS

# Characters XML 1.0 cannot carry (one would make every feed holding the text unparseable), the C1
# controls YAML cannot carry (left by text decoded with the wrong charset, never meant), and lone
# surrogates, which no UTF-8 file can hold.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
# Invisible characters that only reorder or hide text in a one-line field (a title, a name):
# bidirectional embeddings, overrides, isolates and marks, zero-width space, word joiner and
# invisible operators, the byte-order mark. ZWNJ and ZWJ (U+200C, U+200D) stay: Persian, Indic
# scripts and emoji sequences need them to be spelled right.
_INVISIBLE = "\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_NOT_TEXT = re.compile(f"[{_CONTROLS}]")
_NOT_IN_ONE_LINE = re.compile(f"[{_CONTROLS}{_INVISIBLE}]")
_WHITESPACE = re.compile(r"\s+")  # U+0085, U+2028 and U+2029 included: line breaks in YAML

_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 2
_QUOTE.maxstring = _QUOTE.maxother = MAX_QUOTED_CHARS
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 4


def xml_safe(text: str) -> str:
    """Text without the characters XML and YAML cannot carry; line breaks and layout kept."""
    return _NOT_TEXT.sub("", text)


def one_line(text: str) -> str:
    """Text for a one-line field: nothing invisible, every run of white space one space."""
    return _WHITESPACE.sub(" ", _NOT_IN_ONE_LINE.sub("", text.replace("\x85", " "))).strip()


def quoted(value: object) -> str:
    """A value as a message quotes it: its repr, bounded in size whatever the value holds.

    reprlib never walks more than a few items of a few levels, so even a YAML alias bomb
    (a list holding itself expanded a billion times) is quoted in a few microseconds.
    """
    text = _QUOTE.repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a sentence end (CJK) or a space (Latin) when that
    keeps most of the text; a cut without a sentence end ends with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence_end = max(cut.rfind(mark) for mark in "。！？")
    if sentence_end >= limit * 0.6:
        return cut[: sentence_end + 1]
    cut = cut[:-1]  # room for the ellipsis
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """ "1 source", "2 sources": the number with its noun, singular or plural as it needs."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
