"""Lists of records to leave out (``--opt-out FILE``) or to remove (``align-purge --list``).

One entry a line, ``kind:value``; blank lines and ``#`` comments are skipped:

- ``url:<image URL>`` exact, after the crawl's canonicalisation (pipeline/pairs.py);
- ``page:<page URL>`` exact: every pair found on that page;
- ``prefix:<URL prefix>``: every image URL or page URL that starts with it;
- ``domain:<host>``: every image or page on that host or below it (``domain:example.com``
  also matches ``cdn.example.com``);
- ``uid:<uid>``: one pair (pipeline/records.py ``make_uid``);
- ``sha256:<hex>``: every image whose original bytes have that digest;
- ``phash:<16 hex digits>[/distance]``: every image whose perceptual hash is within
  ``distance`` bits of it (default 0).

Pair entries (url, page, prefix, domain, uid) can be applied by any job; image entries
(sha256, phash) only where the image is known (align-download, align-filter --rules all).
A match is named by its kind (``opt_out_domain``, ...), the first of MATCH_ORDER that
matches. Pure Python, no Beam: the jobs, the download and align-purge share it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyarrow as pa

from commandline.flags import UsageError
from pipeline.pairs import resolve_url

PAIR_KINDS = ("uid", "url", "page", "prefix", "domain")
IMAGE_KINDS = ("sha256", "phash")
MATCH_ORDER = PAIR_KINDS + IMAGE_KINDS
MAX_PHASH_DISTANCE = 32
_HEX = re.compile(r"[0-9a-f]+")


def reason_of(kind: str) -> str:
    """The reject reason (and purge count) of an entry kind: ``opt_out_domain``."""
    return f"opt_out_{kind}"


def host_of(url: str | None) -> str | None:
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


class PhashIndex:
    """Perceptual hashes with a distance each, searched without comparing every pair: by
    the pigeonhole principle two 64-bit hashes within ``d`` bits agree exactly on at least one
    of ``d + 1`` bands, so only the entries sharing a band with a hash are compared."""

    def __init__(self, entries: Iterable[tuple[int, int]] = ()):
        self.entries = sorted(set(entries))
        self.exact = {value for value, distance in self.entries if distance == 0}
        near = [(value, distance) for value, distance in self.entries if distance > 0]
        bands = max((distance for _, distance in near), default=0) + 1
        self.bounds = [(64 * i // bands, 64 * (i + 1) // bands) for i in range(bands)]
        self.index: list[dict[int, list[tuple[int, int]]]] = [{} for _ in self.bounds]
        for value, distance in near:
            for band, table in zip(self._bands(value), self.index, strict=True):
                table.setdefault(band, []).append((value, distance))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _bands(self, value: int) -> list[int]:
        return [(value >> (64 - end)) & ((1 << (end - start)) - 1) for start, end in self.bounds]

    def matches(self, phash: str | None) -> bool:
        if not phash or not self.entries:
            return False
        try:
            value = int(phash, 16)
        except ValueError:
            return False
        if value in self.exact:
            return True
        for band, table in zip(self._bands(value), self.index, strict=True):
            for entry, distance in table.get(band, ()):
                if (entry ^ value).bit_count() <= distance:
                    return True
        return False


@dataclass
class OptOutList:
    """A parsed list; ``entries`` keeps each kind's values for the purge record."""

    uids: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    pages: set[str] = field(default_factory=set)
    prefixes: dict[int, set[str]] = field(default_factory=dict)  # length -> prefixes
    domains: set[str] = field(default_factory=set)
    sha256s: set[str] = field(default_factory=set)
    phashes: PhashIndex = field(default_factory=PhashIndex)
    entries: int = 0

    def __bool__(self) -> bool:
        return self.entries > 0

    @property
    def has_image_entries(self) -> bool:
        return bool(self.sha256s or self.phashes)

    def _prefixed(self, url: str | None) -> bool:
        return bool(url) and any(url[:n] in found for n, found in self.prefixes.items())

    def _on_domain(self, url: str | None) -> bool:
        host = host_of(url)
        if not host or not self.domains:
            return False
        labels = host.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))

    def pair_kind(self, url: str | None, page_url: str | None = None, uid: str | None = None):
        """The kind of the first pair entry that matches (None: none does)."""
        if uid and uid in self.uids:
            return "uid"
        if url and url in self.urls:
            return "url"
        if page_url and page_url in self.pages:
            return "page"
        if self.prefixes and (self._prefixed(url) or self._prefixed(page_url)):
            return "prefix"
        if self._on_domain(url) or self._on_domain(page_url):
            return "domain"
        return None

    def image_kind(self, sha256: str | None, phash: str | None):
        if sha256 and sha256.lower() in self.sha256s:
            return "sha256"
        if self.phashes.matches(phash):
            return "phash"
        return None

    def kinds(self, table) -> list[str | None]:
        """The matching kind of every row of an Arrow table (None: kept), from the columns
        it has (uid, url, page_url, sha256, phash)."""
        names = set(table.column_names)

        def column(name):
            return table.column(name).to_pylist() if name in names else [None] * table.num_rows

        uids, urls, pages = column("uid"), column("url"), column("page_url")
        images = self.has_image_entries and bool({"sha256", "phash"} & names)
        digests, phashes = (column("sha256"), column("phash")) if images else ([], [])
        out = []
        for row, (uid, url, page) in enumerate(zip(uids, urls, pages, strict=True)):
            kind = self.pair_kind(url, page, uid)
            if kind is None and images:
                kind = self.image_kind(digests[row], phashes[row])
            out.append(kind)
        return out


def leave_out(table: pa.Table, listed: OptOutList | None) -> tuple[pa.Table, Counter]:
    """The rows of ``table`` no entry matches, and how many each kind left out (by reason
    name, ``opt_out_<kind>``); the table itself when nothing matches."""
    if not listed or table.num_rows == 0:
        return table, Counter()
    kinds = listed.kinds(table)
    dropped = Counter(reason_of(kind) for kind in kinds if kind is not None)
    if not dropped:
        return table, dropped
    return table.filter(pa.array([kind is None for kind in kinds])), dropped


def parse_entry(line: str) -> tuple[str, str]:
    """(kind, canonical value) of one line; ValueError saying what is wrong."""
    kind, colon, value = line.partition(":")
    kind, value = kind.strip().lower(), value.strip()
    if not colon or kind not in MATCH_ORDER:
        raise ValueError(f"expected one of {', '.join(k + ':' for k in MATCH_ORDER)}")
    if not value:
        raise ValueError(f"{kind}: has no value")
    if kind in ("url", "page", "prefix"):
        url, why = resolve_url(value, value)
        if url is None:
            raise ValueError(f"{kind}: {value!r} is not an http(s) URL ({why})")
        return kind, url
    if kind == "domain":
        host = value.lower().rstrip(".")
        if "/" in host or ":" in host or " " in host:
            raise ValueError(f"domain: {value!r} is a host name, without scheme, port or path")
        return kind, host
    if kind == "sha256":
        if len(value) != 64 or not _HEX.fullmatch(value.lower()):
            raise ValueError("sha256: takes 64 hex digits")
        return kind, value.lower()
    if kind == "phash":
        return kind, _phash_value(value)
    return kind, value


def _phash_value(value: str) -> str:
    digits, _, distance = value.partition("/")
    digits = digits.strip().lower()
    if len(digits) != 16 or not _HEX.fullmatch(digits):
        raise ValueError("phash: takes 16 hex digits, then an optional /distance")
    distance = distance.strip() or "0"
    if not distance.isdigit() or int(distance) > MAX_PHASH_DISTANCE:
        raise ValueError(f"phash: distance must be 0 to {MAX_PHASH_DISTANCE}")
    return f"{digits}/{int(distance)}"


def parse_list(text: str, where: str = "--opt-out") -> OptOutList:
    """A list's text, checked line by line: a bad line is a UsageError naming it."""
    found, phashes = OptOutList(), []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):  # a URL may hold a "#": only whole-line comments
            continue
        try:
            kind, value = parse_entry(line)
        except ValueError as error:
            raise UsageError(f"{where} line {number}: {error} (got {line!r})") from None
        if kind == "phash":
            digits, _, distance = value.partition("/")
            phashes.append((int(digits, 16), int(distance)))
            found.entries += 1
        else:
            add_entry(found, kind, value)
    found.phashes = PhashIndex(phashes)
    return found


def add_entry(found: OptOutList, kind: str, value: str) -> None:
    """Adds a pair or sha256 entry (phash entries are indexed together, by parse_list)."""
    found.entries += 1
    if kind == "prefix":
        found.prefixes.setdefault(len(value), set()).add(value)
    else:
        {"uid": found.uids, "url": found.urls, "page": found.pages, "domain": found.domains,
         "sha256": found.sha256s}[kind].add(value)  # fmt: skip


def add_opt_out_flag(parser) -> None:
    """``--opt-out FILE``, the same flag on every job that can leave a record out early."""
    parser.add_argument(
        "--opt-out",
        metavar="FILE",
        help="list of records to leave out, one 'kind:value' a line (url:, page:, prefix:, "
        "domain:, uid:, sha256:, phash:HEX[/distance]); local or gs://",
    )


def read_list(path: str, read_text, flag: str = "--opt-out") -> OptOutList:
    """A list file through ``read_text`` (the job's reader: local or gs://), parsed; a file
    that cannot be read is a UsageError naming it."""
    try:
        text = read_text(path)
    except Exception as error:  # noqa: BLE001 - Beam raises its own errors for a missing file
        raise UsageError(f"{flag} {path}: cannot be read ({type(error).__name__})") from None
    return parse_list(text, f"{flag} {path}")
