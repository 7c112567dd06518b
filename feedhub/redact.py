"""What a public page may say about an address or an error: no credentials, no server paths.

A source URL may carry `user:password@` or `?key=SECRET`; a `file:` source and an error
text may carry absolute paths of the server. Public answers show each address without
userinfo, query or fragment, and each path relative to the config folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>)\]]+")
# An absolute path in free text (a slash not inside a word or a URL, then one part or more), with
# the query a request path may carry.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(/(?:[^\s/'\"<>:,;()?]+/)*[^\s/'\"<>:,;()?]+)(\?[^\s'\"<>)]*)?")


def public_url(url: str, config_folder: Path) -> str:
    """The address without secrets; a `file:` address as its path relative to the config folder."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return public_path(unquote(parts.path), config_folder)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def public_origin(url: str) -> str:
    """Only the scheme and host: what a public page shows of a subscriber's callback, whose path
    may be the token that lets anyone post to it."""
    parts = urlsplit(public_url(url, Path("/")))
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def public_path(path: str, config_folder: Path) -> str:
    """A path inside the config folder relative to it; one outside it as ``…/`` and its name."""
    if not os.path.isabs(path):
        return path
    relative = os.path.relpath(path, config_folder)
    return f"…/{os.path.basename(path)}" if relative.startswith("..") else relative


def public_text(text: str, config_folder: Path) -> str:
    """Free text (an error message) with every URL and absolute path in it made public."""
    without_urls = _URL.sub(lambda match: public_url(match.group(0), config_folder), text)
    return _ABSOLUTE_PATH.sub(lambda match: public_path(match.group(1), config_folder), without_urls)
