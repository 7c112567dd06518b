"""One post per story: what makes two sources' entries the same story within a category.

Two keys: the entry's canonical link (scheme and host lowercased, the default port, the fragment
and common tracking parameters dropped), and a hash of its normalized title and content (case,
white space and punctuation ignored), for the same wire story under two links.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feedhub.aggregator.entries import UpstreamEntry
from feedhub.render import html_to_text

# Parameters that say who sent the reader, never which article it is.
_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|_hsenc|_hsmi|igshid"
    r"|spm|ref_src|s_cid|cmpid|ocid)$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"\W+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_link(url: str) -> str:
    """The link as the same article's other spellings have it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING.match(key)
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def story_keys(entry: UpstreamEntry) -> tuple[str, ...]:
    """The keys under which this entry is a story: its canonical link, its text's hash."""
    keys = []
    if entry.link:
        keys.append(f"link:{canonical_link(entry.link)}")
    text = _NOT_WORD.sub("", f"{entry.title} {html_to_text(entry.html)}".casefold())
    if text:
        keys.append(f"text:{hashlib.sha256(text.encode()).hexdigest()[:32]}")
    return tuple(keys)
