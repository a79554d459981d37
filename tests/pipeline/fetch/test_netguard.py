"""The SSRF guard: every spelling of a non-public address is recognised and refused."""

import ipaddress
import socket

import pytest

from pipeline.fetch.netguard import (
    AddressGuard,
    BlockedAddress,
    CachingResolver,
    InvalidHost,
    classify,
    parse_ip_literal,
)

NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("2130706433", "loopback"),  # decimal
    ("0177.0.0.1", "loopback"),  # octal
    ("0x7f.0.0.1", "loopback"),  # hex
    ("0x7f000001", "loopback"),
    ("017700000001", "loopback"),
    ("127.1", "loopback"),  # short form
    ("127.0.1", "loopback"),
    ("127.0.0.1.", "loopback"),  # trailing dot
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
    ("[::ffff:7f00:1]", "loopback"),
    ("[::7f00:1]", "loopback"),  # IPv4-compatible
    ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
    ("[64:ff9b::7f00:1]", "loopback"),  # NAT64 of 127.0.0.1
    ("[64:ff9b::a00:1]", "private"),  # NAT64 of 10.0.0.1
    ("[2002:a9fe:a9fe::]", "metadata"),  # 6to4 of 169.254.169.254
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("[::]", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("[::ffff:192.168.1.1]", "private"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("169.254.1.1", "link_local"),
    ("169.254.169.254", "metadata"),
    ("0xa9fea9fe", "metadata"),  # 169.254.169.254 in hex
    ("2852039166", "metadata"),  # ... and decimal
    ("[::ffff:169.254.169.254]", "metadata"),
    ("[fd00:ec2::254]", "metadata"),
    ("100.100.100.200", "metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "reserved"),
    ("[ff02::1]", "multicast"),
    ("[fd00::1]", "private"),
    ("[fc00::1]", "private"),
    ("[fe80::1]", "link_local"),
    ("[fe80::1%25eth0]", "link_local"),
    ("[2001:db8::1]", "reserved"),
    ("[2001::1]", "reserved"),  # Teredo
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]"]


@pytest.mark.parametrize("host, category", NON_PUBLIC)
def test_non_public_addresses_are_classified_in_every_spelling(host, category):
    assert classify(parse_ip_literal(host)) == category


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses_are_allowed(host):
    assert classify(parse_ip_literal(host)) is None
    assert AddressGuard(resolver=lambda name: []).addresses(host)


@pytest.mark.parametrize("host, category", NON_PUBLIC)
def test_guard_blocks_them_by_default_and_allows_them_when_asked(host, category):
    with pytest.raises(BlockedAddress) as blocked:
        AddressGuard(resolver=lambda name: []).addresses(host)
    assert blocked.value.category == category
    assert AddressGuard(allow_private_networks=True, resolver=lambda name: []).addresses(host)


@pytest.mark.parametrize(
    "host, expected", [("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("1.2.3", "1.2.0.3")]
)
def test_legacy_ipv4_spellings_parse_like_inet_aton(host, expected):
    assert str(parse_ip_literal(host)) == expected
    assert socket.inet_ntoa(socket.inet_aton(host)) == expected


@pytest.mark.parametrize("host", ["example.com", "images.example.org", "localhost", "a1.b2"])
def test_domain_names_are_not_literals(host):
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("host", ["1.2.3.256", "256.1.1.1", "08.0.0.1", "[::1::2]", "0xg.1"])
def test_malformed_numeric_hosts_are_invalid(host):
    with pytest.raises(InvalidHost):
        parse_ip_literal(host)


@pytest.mark.parametrize(
    "addresses, category",
    [
        (["127.0.0.1"], "loopback"),
        (["10.0.0.7"], "private"),
        (["169.254.169.254"], "metadata"),
        (["fd12::1"], "private"),
        (["::ffff:10.0.0.1"], "private"),
        (["93.184.216.34", "192.168.0.1"], "private"),  # one bad answer taints the name
    ],
)
def test_names_resolving_to_private_addresses_are_blocked(addresses, category):
    guard = AddressGuard(resolver=lambda name: addresses)
    with pytest.raises(BlockedAddress) as blocked:
        guard.addresses("innocent.example")
    assert blocked.value.category == category


def test_a_name_resolving_to_public_addresses_is_allowed():
    guard = AddressGuard(resolver=lambda name: ["93.184.216.34", "2606:2800:220:1::"])
    assert guard.addresses("example.com") == ["93.184.216.34", "2606:2800:220:1::"]


@pytest.mark.parametrize("name", ["metadata.google.internal", "METADATA.google.internal."])
def test_metadata_names_are_blocked_before_any_lookup(name):
    asked = []
    guard = AddressGuard(resolver=lambda host: asked.append(host) or ["93.184.216.34"])
    with pytest.raises(BlockedAddress):
        guard.addresses(name)
    assert asked == []


def test_metadata_name_resolving_to_the_metadata_address_is_blocked_when_asked_by_resolver():
    guard = AddressGuard(resolver={"metadata.internal.example": ["169.254.169.254"]}.__getitem__)
    with pytest.raises(BlockedAddress, match="metadata"):
        guard.addresses("metadata.internal.example")


def test_resolver_failure_is_an_os_error():
    def fail(name):
        raise socket.gaierror("no such name")

    with pytest.raises(OSError):
        AddressGuard(resolver=fail).addresses("nowhere.example")


def test_caching_resolver_asks_once_per_name_and_caches_failures():
    asked = []

    def resolve(name):
        asked.append(name)
        if name == "bad.example":
            raise socket.gaierror("nope")
        return ["93.184.216.34"]

    cache = CachingResolver(resolve)
    for _ in range(3):
        assert cache("good.example") == ["93.184.216.34"]
        with pytest.raises(OSError):
            cache("bad.example")
    assert asked == ["good.example", "bad.example"]


def test_caching_resolver_forgets_after_its_ttl():
    asked = []
    cache = CachingResolver(lambda name: asked.append(name) or ["1.1.1.1"], ttl_s=0.0)
    cache("a.example")
    cache("a.example")
    assert asked == ["a.example", "a.example"]


def test_every_address_python_calls_non_global_is_blocked():
    """A sweep over the IPv4 space (one address per /16, plus edges): a superset of Python's."""
    samples = [ipaddress.IPv4Address((block << 16) + 1) for block in range(65536)]
    samples += [ipaddress.IPv4Address(edge) for edge in ("255.255.255.255", "192.0.0.8")]
    missed = [str(a) for a in samples if not a.is_global and classify(a) is None]
    assert missed == []
