"""Which hub pushes an upstream feed, and whether feedhub subscribes to it (the Recommendation's
section 4: the HTTP Link header wins over the links in the document)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from feedhub.addresses import refusal
from feedhub.limits import MAX_HUBS, MAX_URL_CHARS
from feedhub.urls import is_http_url

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z*-]+\s*=\s*(?:"[^"]*"|[^;,]*))*)')
_REL = re.compile(r';\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]*))', re.IGNORECASE)


@dataclass(frozen=True)
class Discovery:
    hubs: tuple[str, ...]
    topic: str


def link_targets(header: str, base: str) -> dict[str, list[str]]:
    """An RFC 8288 Link header as {relation: [absolute http(s) targets]}, in order."""
    found: dict[str, list[str]] = {}
    for target, parameters in _LINK.findall(header[: 64 * 1024]):
        rel = _REL.search(parameters)
        if not rel:
            continue
        url = _absolute(target.strip(), base)
        for relation in (rel.group(1) or rel.group(2) or "").lower().split():
            if url:
                found.setdefault(relation, []).append(url)
    return found


def discover(
    link_header: str | None, feed_hubs: tuple[str, ...], feed_self: str | None, fetched_url: str
) -> Discovery | None:
    """The hubs and topic of a fetched feed: from its Link header if that names a hub, else from
    the document; None when neither names one."""
    header = link_targets(link_header or "", fetched_url)
    if header.get("hub"):
        hubs, topic = header["hub"], (header.get("self") or [fetched_url])[0]
    elif feed_hubs:
        hubs, topic = list(feed_hubs), feed_self or fetched_url
    else:
        return None
    return Discovery(tuple(dict.fromkeys(hubs))[:MAX_HUBS], topic)


def unreachable_reason(base_url: str, hub: str) -> str | None:
    """Why a hub could not reach this site's callbacks: base_url names a loopback or private
    address that the hub, on a public one, cannot connect to. None: it may (a name is trusted)."""
    site_kind = _address_kind(base_url)
    if site_kind is None:
        return None
    hub_kind = _address_kind(hub)
    if hub_kind is not None and (site_kind != "a loopback address" or hub_kind == site_kind):
        return None  # both on a private network (or both on this machine)
    return f"base_url {base_url} is {site_kind}: the hub {hub} cannot reach its callbacks"


def _address_kind(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback address"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return refusal(host)


def _absolute(url: str, base: str) -> str | None:
    if not url or len(url) > MAX_URL_CHARS:
        return None
    try:
        absolute = urljoin(base, url)
    except ValueError:
        return None
    return absolute if is_http_url(absolute) else None
