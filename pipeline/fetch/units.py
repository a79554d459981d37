"""The unit of politeness: which URLs count as one site for the per-host caps.

``host`` (the default) is the URL's host name; ``domain`` groups a site's host names under
its registrable domain (``img1.cdn.example.com`` and ``img2.cdn.example.com`` are
``example.com`` to their owner), from the public suffix list that the ``publicsuffixlist``
package ships, so nothing is downloaded at run time. An IP address is its own unit.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import urllib.parse
from collections.abc import Callable, Sequence

UNITS = ("host", "domain")
DEFAULT_UNIT = "host"

UnitOf = Callable[[str], str | None]


def host_of(url: str) -> str | None:
    """The lower-case host name of a URL (no port, no user), or None when it has none."""
    try:
        host = urllib.parse.urlsplit(url.strip()).hostname
    except (ValueError, TypeError, AttributeError):
        return None
    return host.rstrip(".") or None if host else None


@functools.lru_cache(maxsize=1)
def _suffix_list():
    from publicsuffixlist import PublicSuffixList  # noqa: PLC0415 - parsed once, on first use

    return PublicSuffixList()


@functools.lru_cache(maxsize=65_536)
def registrable_domain(host: str) -> str:
    """``example.com`` for ``img1.cdn.example.com``; an IP address, ``localhost`` or a bare
    public suffix stays as it is (it names no larger site)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    return _suffix_list().privatesuffix(host) or host


def unit_of_host(url: str) -> str | None:
    return host_of(url)


def unit_of_domain(url: str) -> str | None:
    host = host_of(url)
    return registrable_domain(host) if host else None


def unit_function(unit: str) -> UnitOf:
    """The URL -> unit function for ``--politeness-unit``; picklable (module-level)."""
    if unit not in UNITS:
        raise ValueError(f"politeness unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return unit_of_domain if unit == "domain" else unit_of_host


def batches_by_unit(urls: Sequence[str], size: int, unit_of: UnitOf) -> list[list[str]]:
    """URLs in batches of about ``size`` that never share a unit: each host's URLs go to one
    batch (a host larger than ``size`` to a batch of its own), so the batch's gates and
    robots.txt cache are the only ones that reach it, for the whole job. Inside a batch the
    hosts take turns, so the fetcher's window always spans many of them."""
    by_unit: dict[str, list[str]] = {}
    for url in urls:
        by_unit.setdefault(unit_of(url) or "", []).append(url)
    batches: list[list[list[str]]] = [[]]
    for unit in sorted(by_unit):
        group = by_unit[unit]
        if batches[-1] and sum(map(len, batches[-1])) + len(group) > size:
            batches.append([])
        batches[-1].append(group)
    return [_interleave(groups) for groups in batches if groups]


def _interleave(groups: list[list[str]]) -> list[str]:
    turns = itertools.zip_longest(*groups)
    return [url for turn in turns for url in turn if url is not None]
