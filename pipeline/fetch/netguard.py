"""SSRF guard: which addresses a fetch may reach, host parsing in every spelling, cached DNS.

A URL's host is turned into IP addresses *once* (an IP literal in any spelling a browser or
``inet_aton`` accepts, else a DNS lookup), every address is classified, and the fetcher then
connects to exactly the address that was checked: there is no second lookup an attacker's DNS
could answer differently (no DNS-rebinding gap). Redirects go through the same check.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str], Sequence[str]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Cloud metadata endpoints, named so a blocked fetch says what it nearly reached.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_V4_BLOCKED: tuple[tuple[str, _V4], ...] = tuple(
    (category, _V4(network))
    for category, network in (
        ("unspecified", "0.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("cgnat", "100.64.0.0/10"),
        ("loopback", "127.0.0.0/8"),
        ("link_local", "169.254.0.0/16"),
        ("private", "172.16.0.0/12"),
        ("reserved", "192.0.0.0/24"),  # IETF protocol assignments
        ("reserved", "192.0.2.0/24"),  # documentation
        ("reserved", "192.88.99.0/24"),  # deprecated 6to4 relay anycast
        ("private", "192.168.0.0/16"),
        ("reserved", "198.18.0.0/15"),  # benchmarking
        ("reserved", "198.51.100.0/24"),
        ("reserved", "203.0.113.0/24"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),  # includes 255.255.255.255
    )
)
_V6_BLOCKED: tuple[tuple[str, _V6], ...] = tuple(
    (category, _V6(network))
    for category, network in (
        ("reserved", "100::/64"),  # discard-only
        ("private", "64:ff9b:1::/48"),  # local-use NAT64
        ("reserved", "2001::/32"),  # Teredo: the client address is obfuscated, refuse it
        ("reserved", "2001:2::/48"),  # benchmarking
        ("reserved", "2001:10::/28"),  # ORCHID
        ("reserved", "2001:db8::/32"),  # documentation
        ("reserved", "3fff::/20"),  # documentation
        ("private", "fc00::/7"),  # unique local, fd00::/8 included
        ("link_local", "fe80::/10"),
        ("private", "fec0::/10"),  # deprecated site-local
        ("multicast", "ff00::/8"),
    )
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_IPV4_COMPATIBLE = _V6("::/96")


class BlockedAddress(Exception):
    """The host is, or resolves to, an address the fetcher may not reach."""

    def __init__(self, host: str, address: str, category: str):
        super().__init__(f"{host} -> {address} is {category}")
        self.host = host
        self.address = address
        self.category = category


class InvalidHost(ValueError):
    """A host that is neither a valid IP literal nor a valid domain name."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> str | None:
    """None for a public unicast address, else why not: loopback, private, metadata, ..."""
    if address in METADATA_ADDRESSES:
        return "metadata"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link_local"
        if int(address) == 0:
            return "unspecified"
        if int(address) == 1:
            return "loopback"
        inner = embedded_ipv4(address)
        if inner is not None:
            compatible = address in _IPV4_COMPATIBLE  # deprecated form, never routable
            return classify(inner) or ("reserved" if compatible else None)
        for category, network in _V6_BLOCKED:
            if address in network:
                return category
        return None if address in _GLOBAL_UNICAST_V6 else "reserved"
    for category, network in _V4_BLOCKED:
        if address in network:
            return category
    return None


def _ipv4_number(part: str) -> int | None:
    """One dotted part as inet_aton and the WHATWG URL parser read it: 0x hex, 0 octal."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    try:
        return int(digits, base) if digits.isalnum() else None
    except ValueError:
        return None


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 in every legacy spelling: 2130706433, 0177.0.0.1, 0x7f.1, 127.1 (WHATWG rules)."""
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # "127.0.0.1." is the same host
    if not parts or len(parts) > 4 or _ipv4_number(parts[-1]) is None:
        return None  # the last label is not a number: a domain name
    numbers = [_ipv4_number(part) for part in parts]
    if any(number is None for number in numbers):
        raise InvalidHost(f"malformed IPv4 address {host!r}")
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        raise InvalidHost(f"IPv4 address out of range {host!r}")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host names literally, or None when it is a domain name to resolve."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.replace("%25", "%"))
        except ValueError as error:
            raise InvalidHost(f"malformed IPv6 address {host!r}") from error
    return _parse_ipv4(host)


def system_resolve(host: str) -> list[str]:
    """Every address the OS resolver gives for a name, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CachingResolver:
    """A per-worker DNS cache: one lookup per name per TTL, failures cached too.

    Thread-safe; concurrent lookups of one new name wait for a single query. Bounded LRU.
    """

    def __init__(
        self,
        resolve: Resolve = system_resolve,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 60.0,
        max_entries: int = 100_000,
    ):
        self.resolve = resolve
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, list[str] | OSError]] = OrderedDict()
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}

    def __call__(self, host: str) -> list[str]:
        cached = self._cached(host)
        if cached is None:
            with self._name_lock(host):
                cached = self._cached(host)
                if cached is None:
                    cached = self._lookup(host)
        if isinstance(cached, OSError):
            raise cached
        return cached

    def _name_lock(self, host: str) -> threading.Lock:
        with self._lock:
            return self._name_locks.setdefault(host, threading.Lock())

    def _cached(self, host: str) -> list[str] | OSError | None:
        with self._lock:
            entry = self._entries.get(host)
            if entry is None or entry[0] < time.monotonic():
                return None
            self._entries.move_to_end(host)
            return entry[1]

    def _lookup(self, host: str) -> list[str] | OSError:
        try:
            value: list[str] | OSError = list(self.resolve(host))
            expires = time.monotonic() + self.ttl_s
        except OSError as error:  # socket.gaierror included
            value, expires = error, time.monotonic() + self.negative_ttl_s
        with self._lock:
            self._entries[host] = (expires, value)
            self._entries.move_to_end(host)
            while len(self._entries) > self.max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._name_locks.pop(evicted, None)
        return value


class AddressGuard:
    """Turns a URL host into the addresses a fetch may connect to, or raises BlockedAddress."""

    def __init__(
        self,
        allow_private_networks: bool = False,
        resolver: Resolve | None = None,
        classify: Callable[[IPAddress], str | None] = classify,
    ):
        self.allow_private_networks = allow_private_networks
        if not isinstance(resolver, CachingResolver):
            resolver = CachingResolver(resolver or system_resolve)
        self.resolver = resolver
        self.classify = classify

    def addresses(self, host: str) -> list[str]:
        """Checked addresses of host; raises BlockedAddress, InvalidHost or OSError (DNS)."""
        name = host.strip().lower().rstrip(".")
        if not name:
            raise InvalidHost("empty host")
        literal = parse_ip_literal(name)
        if literal is None and not self.allow_private_networks and name in METADATA_NAMES:
            raise BlockedAddress(host, name, "metadata")
        found = [literal] if literal is not None else self._resolve(name)
        if not self.allow_private_networks:
            for address in found:  # one bad address taints the name: no round-robin games
                category = self.classify(address)
                if category is not None:
                    raise BlockedAddress(host, str(address), category)
        return [str(address) for address in found]

    def _resolve(self, name: str) -> list[IPAddress]:
        found = []
        for text in self.resolver(name):
            try:
                found.append(ipaddress.ip_address(text))
            except ValueError as error:
                raise OSError(f"resolver returned a non-address {text!r} for {name}") from error
        if not found:
            raise OSError(f"no address for {name}")
        return found
