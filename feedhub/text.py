"""Plain-text hygiene shared by everything that puts text into XML or front matter."""

from __future__ import annotations

import re

# Characters XML 1.0 cannot carry; one would make every feed holding the text unparseable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_WHITESPACE = re.compile(r"\s+")


def xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def one_line(text: str) -> str:
    """Control characters dropped and every run of white space (line breaks too) made one space."""
    return _WHITESPACE.sub(" ", xml_safe(text)).strip()
