"""The address policy: which addresses feedhub may reach by itself."""

from __future__ import annotations

import pytest

from feedhub.addresses import AddressPolicy, origin, refusal


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("fd00:ec2::254", "a private address"),  # AWS's IPv6 metadata service
        ("169.254.169.254", "a link-local address (where cloud metadata services answer)"),
        ("fe80::1%eth0", "a link-local address (where cloud metadata services answer)"),
        ("100.100.100.200", "not a public address"),  # Alibaba's metadata service, in shared space
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4 inside IPv6
        ("2002:7f00:1::1", "a loopback address"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    assert refusal(address) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(address) is None


def test_the_operators_own_origin_is_trusted_as_written() -> None:
    policy = AddressPolicy(origin("http://127.0.0.1:8080/feed.xml"))
    assert not policy.guards("http://127.0.0.1:8080/elsewhere?x=1")
    assert not policy.guards("HTTP://127.0.0.1:8080/")
    assert policy.guards("http://127.0.0.1:8081/feed.xml")  # another port is another service
    assert policy.guards("https://127.0.0.1:8080/feed.xml")
    assert policy.guards("http://localhost:8080/feed.xml")
    assert origin("https://Example.org/a") == origin("https://example.org:443/b")
    assert not AddressPolicy(None, allow_private=True).guards("http://10.0.0.1/")
