"""Host-partitioned fetch lists: every host is owned by one list at a time, for the whole job.

The download groups its pairs by host (``--politeness-unit``), keeps each host's first
``--max-urls-per-host`` URLs by uid (the rest are deferred to a later run, by name) and puts
the host in exactly one fetch list, chosen by a hash of the host: the list's gates are then
the only ones that ever reach that host, so the per-host caps hold for the whole job whatever
the runner, the workers or the threads (the design of Nutch's generator and Heritrix).

A host with more URLs than one list should hold (``--rows-per-shard``) is split into at most
``--per-host-concurrency`` parts in different lists; the parts share the host's budget
(pipeline/fetch/hostgate.py: a part's share of the connections, every ``parts``-th tick of
its rate), so a large host is fetched in parallel without ever exceeding its caps.

Everything here is a pure function of the input and the flags, never of the worker count:
the same pairs give the same lists, the same order and the same files.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.fetch.hostgate import Share
from pipeline.fetch.robots import PolicyRecord, RobotsSeed

DEFAULT_ROWS_PER_SHARD = 10_000  # img2dataset's shard size: ~300 MB of 346-px JPEGs
DEFAULT_MAX_URLS_PER_HOST = 100_000  # ~3.5 h at 8 requests/s; the rest waits for a later run
HOST_URL_BUDGET = "host_url_budget"  # deferred: beyond --max-urls-per-host
NO_HOST = ""  # the key of URLs without a host: they fail fast, never reach the network


@dataclass
class Part:
    """One fetch list's part of one host: the URLs it fetches, and its share of the budget."""

    unit: str
    share: Share
    rows: list[dict]  # fetched by this part, in uid order
    deferred: list[dict] = field(default_factory=list)  # over the URL budget (part 0 only)
    policies: dict[tuple[str, str], RobotsSeed] = field(default_factory=dict)  # the planner's
    records: list[PolicyRecord] = field(default_factory=list)  # the planner's, part 0 only
    planned: int | None = None  # how many URLs it fetches, when planned before its rows are read

    @property
    def key(self) -> tuple[str, int]:
        return self.unit, self.share.index

    @property
    def size(self) -> int:
        return len(self.rows) if self.planned is None else self.planned


def num_lists(num_inputs: int, total_rows: int, rows_per_shard: int) -> int:
    """How many fetch lists (and image shards): at least one per input shard."""
    return max(1, num_inputs, math.ceil(total_rows / rows_per_shard))


def parts_of(num_urls: int, concurrency: int, rows_per_shard: int) -> int:
    """How many parts a host of ``num_urls`` URLs is split into (at most its concurrency)."""
    return max(1, min(concurrency, math.ceil(num_urls / rows_per_shard)))


def bucket_of(key: str, buckets: int) -> int:
    """A stable bucket for a key (never Python's salted hash): the same on every worker."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % buckets


def list_of(unit: str, part: int, lists: int) -> int:
    """The fetch list that owns part ``part`` of ``unit``: the host's stable bucket, its parts
    in consecutive lists so they share one only when lists are few."""
    return (bucket_of(unit, lists) + part) % lists


def split_host(
    unit: str,
    rows: Iterable[dict],
    max_urls: int,
    concurrency: int,
    rows_per_shard: int,
) -> list[Part]:
    """A host's parts: its first ``max_urls`` rows by uid (0: all), dealt round-robin into
    ``parts_of`` parts; the rest deferred, carried by part 0."""
    ordered = sorted(rows, key=lambda row: row["uid"])
    split = plan_host(unit, len(ordered), max_urls, concurrency, rows_per_shard)
    for part in split:
        part.rows, part.deferred = deal(ordered, part, max_urls)
        part.planned = None
    return split


def kept_count(num_urls: int, max_urls: int) -> int:
    """How many of a host's URLs are fetched this run (``max_urls`` 0: all)."""
    return min(num_urls, max_urls) if max_urls else num_urls


def plan_host(
    unit: str, num_urls: int, max_urls: int, concurrency: int, rows_per_shard: int
) -> list[Part]:
    """A host's parts from its URL count alone (their rows are read when a list runs, by
    ``deal``): each knows how many URLs it fetches."""
    kept = kept_count(num_urls, max_urls)
    parts = 1 if unit == NO_HOST else parts_of(kept, concurrency, rows_per_shard)
    split = [Part(unit, Share((index,), parts), []) for index in range(parts)]
    for part in split:
        part.planned = len(dealt(num_urls, part, max_urls)[0])
    return split


def dealt(num_urls: int, part: Part, max_urls: int) -> tuple[range, range]:
    """Which of its host's URLs in uid order a part fetches and which it defers: every
    ``parts``-th of the first ``max_urls``, from its index on; the rest deferred by part 0."""
    kept = kept_count(num_urls, max_urls)
    index, parts = part.share.index, part.share.parts
    return range(index, kept, parts), range(kept, num_urls) if index == 0 else range(0)


def deal(ordered: Sequence, part: Part, max_urls: int) -> tuple[list, list]:
    """A part's rows and deferred rows from its host's rows in uid order (``dealt``)."""
    mine, deferred = dealt(len(ordered), part, max_urls)
    return [ordered[i] for i in mine], [ordered[i] for i in deferred]


def fetch_order(parts: Sequence[Part]) -> list[tuple[Part, dict]]:
    """A list's rows in the order it fetches and writes them: one URL of each host in turn
    (its hosts in a fixed order), so the fetcher's window always spans many hosts."""
    parts = sorted(parts, key=lambda part: part.key)
    longest = max((len(part.rows) for part in parts), default=0)
    return [
        (part, part.rows[rank])
        for rank in range(longest)
        for part in parts
        if rank < len(part.rows)
    ]


def shares_of(parts: Sequence[Part]) -> dict[str, Share]:
    """Each split host's share in one list: the parts of it that the list holds, together."""
    shares: dict[str, Share] = {}
    for part in parts:
        if part.share.parts > 1:
            held = shares.get(part.unit)
            shares[part.unit] = held.joined(part.share) if held else part.share
    return shares


def politeness_floor(parts: Sequence[Part], rate: float) -> float:
    """Seconds the list needs at least: its slowest host's URLs at its share of the rate."""
    if rate <= 0:
        return 0.0
    urls: dict[str, int] = {}
    for part in parts:
        if part.unit:
            urls[part.unit] = urls.get(part.unit, 0) + part.size
    shares = shares_of(parts)
    return max(
        (
            count * (shares[u].parts / len(shares[u].indices) if u in shares else 1) / rate
            for u, count in urls.items()
        ),
        default=0.0,
    )


def fingerprint(parts: Sequence[Part]) -> str:
    """What a list fetches and defers, so a rerun knows a finished shard is this list's."""
    digest = hashlib.sha256()
    for part, row in fetch_order(parts):
        # A pair read from an archive: which record (another archive, another list).
        where = f"\0{row['_archive_source']}" if "_archive_source" in row else ""
        digest.update(f"{part.unit}\0{row['uid']}{where}\n".encode())
    for part in sorted(parts, key=lambda part: part.key):
        for row in part.deferred:
            digest.update(f"deferred\0{row['uid']}\n".encode())
    return digest.hexdigest()
