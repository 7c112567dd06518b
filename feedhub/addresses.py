"""The one address policy for every address feedhub reaches by itself.

An operator's URL in sources.yaml is trusted as written: its origin (scheme, host and
port) is reached wherever it resolves. Every other address (where a redirect leads, and
the article links, hubs and callbacks feedhub finds in what it fetches) must be a
public one, checked on each address a connection is actually made to, so that neither a
redirect nor a DNS answer can turn feedhub against the machine it runs on or its
network: no loopback, private, link-local (cloud metadata at 169.254.169.254), shared,
multicast, reserved or unspecified address, unless the operator allows it for a source
or for all (``allow_private_addresses: true``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedhub.errors import FeedhubError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address reached through a NAT64 gateway


class AddressRefused(FeedhubError, OSError):
    """A connection the address policy does not allow (an OSError, as a refused connection is)."""


@dataclass(frozen=True)
class AddressPolicy:
    trusted_origin: str | None  # the operator's own URL's origin: reached wherever it resolves
    allow_private: bool = False

    def guards(self, url: str) -> bool:
        """Whether connections for this URL must go to public addresses only."""
        return not self.allow_private and origin(url) != self.trusted_origin


def origin(url: str) -> str:
    """``https://example.org:443`` for any URL of that scheme, host and port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def refusal(address: str) -> str | None:
    """What kind of address this IP address is when a connection to it is not allowed
    ("a loopback address"), or None for a public address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    for kind, flagged in (
        ("a loopback address", ip.is_loopback),
        ("a link-local address (where cloud metadata services answer)", ip.is_link_local),
        ("a private address", ip.is_private),
        ("a multicast address", ip.is_multicast),
        ("the unspecified address", ip.is_unspecified),
        ("a reserved address", ip.is_reserved),
        ("not a public address", not ip.is_global),
    ):
        if flagged:
            return kind
    return None
