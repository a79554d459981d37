"""The archive's index, in scratch files by key bucket: where each capture is, never its bytes.

Each archive file (or CDXJ file) is read once and its captures written to one Arrow file of
``buckets + 1`` record batches: batch ``b`` holds the captures whose key (``u <url>``, and
``d <digest>`` for an original with a payload digest) hashes to bucket ``b``; the last batch
holds the host policy files (robots.txt, ai.txt, tdmrep.json) by URL. The pairs are spilled
the same way by the key of their image URL. A bucket's resolver then reads batch ``b`` of
every file, keeping only the captures its pairs ask for, so no step holds the index, the
pairs of more than one bucket, or a record's bytes (read later by offset, archive.py).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.download.plan import bucket_of
from pipeline.fetch.policy import PATHS
from pipeline.shards import open_raw, read_parts, write_parts
from pipeline.warc.capture import PAGE_TYPES, Capture, canonical_url, capture_of, iso_date
from pipeline.warc.reader import Damage, iter_records

URL, DIGEST = "u ", "d "
JOB = "align-download"
POLICY_PATHS = frozenset(PATHS.values())  # /robots.txt, /ai.txt, /.well-known/tdmrep.json
# dataclass field types are strings under `from __future__ import annotations`
_TYPES = {"offset": pa.int64(), "inner": pa.int64(), "http_status": pa.int64()}
_TYPES["truncated"] = pa.bool_()
CAPTURE_SCHEMA = pa.schema(
    [("key", pa.string())]
    + [(f.name, _TYPES.get(f.name, pa.string())) for f in dataclasses.fields(Capture)]
)


def pair_key(url: str | None) -> str:
    return URL + (canonical_url(url or "") or "")


def is_policy_url(url: str) -> bool:
    path = url.split("://", 1)[-1].partition("/")[2]
    return "/" + path in POLICY_PATHS


def keys_of(capture: Capture) -> list[str]:
    """The keys a capture is found under: its URL, and its digest if it can be an original."""
    keys = [URL + capture.url]
    if capture.digest and capture.kind != "revisit":
        keys.append(DIGEST + capture.digest)
    return keys


def capture_parts(captures: Iterable[Capture], buckets: int) -> list[tuple[int, pa.Table]]:
    """Every bucket's captures (empty ones too, so batch ``b`` is bucket ``b``) and, last,
    the policy files'."""
    rows: list[list[dict]] = [[] for _ in range(buckets + 1)]
    for capture in captures:
        fields = dataclasses.asdict(capture)
        for key in keys_of(capture):
            rows[bucket_of(key, buckets)].append({"key": key, **fields})
        if is_policy_url(capture.url):
            rows[buckets].append({"key": URL + capture.url, **fields})
    return [(b, pa.Table.from_pylist(r, schema=CAPTURE_SCHEMA)) for b, r in enumerate(rows)]


def warc_captures(path: str) -> Iterator[Capture]:
    """One archive file's captures, in one pass (a record's block is dropped once read)."""
    with open_raw(path) as handle:
        for item in iter_records(handle):
            record = item.record if isinstance(item, Damage) else item
            capture = capture_of(record, path) if record is not None else None
            if capture is not None:
                yield capture


def cdxj_captures(path: str, by_name: dict[str, str]) -> Iterator[Capture]:
    with open_raw(path) as handle:
        for line in io.TextIOWrapper(handle, encoding="utf-8", errors="replace"):
            capture = capture_of_cdxj(line, by_name)
            if capture is not None:
                yield capture


def capture_of_cdxj(line: str, by_name: dict[str, str]) -> Capture | None:
    """A CDXJ line's capture (``surt timestamp {json}``, pywb's format), or None (a page,
    another file's record, a malformed line). CDXJ holds no Location and no revisit
    reference: redirects are read from their record when followed, revisits resolved by
    digest. Its ``filename`` names an --archive file by name."""
    parts = line.strip().split(" ", 2)
    try:
        fields = json.loads(parts[2])
        file = by_name[os.path.basename(fields["filename"])]
        offset = int(fields["offset"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    url = canonical_url(str(fields.get("url", "")))
    mime = str(fields.get("mime", ""))
    status = str(fields.get("status", ""))
    http_status = int(status) if status.isdigit() else None
    kind = "revisit" if mime == "warc/revisit" else "response"
    answered = http_status is None or 200 <= http_status < 300
    if url is None or (kind != "revisit" and answered and mime.lower().startswith(PAGE_TYPES)):
        return None
    return Capture(
        url, file, offset, 0, iso_date(parts[1]), kind, http_status, mime,
        str(fields.get("digest", "")), "", "", "",
    )  # fmt: skip


class IndexToScratch(beam.DoFn):
    """An archive file (or, with ``--archive-index``, a CDXJ file) in; its captures written
    to one scratch file of bucket batches; that file's path out."""

    def __init__(self, scratch: str, buckets: int, files: tuple[str, ...], cdxj: bool):
        self.scratch, self.buckets, self.cdxj = scratch, buckets, cdxj
        self.by_name = {os.path.basename(path): path for path in files}

    def process(self, path: str) -> Iterator[str]:
        indexed = beam.metrics.Metrics.counter(JOB, "archive/captures_indexed")
        captures = cdxj_captures(path, self.by_name) if self.cdxj else warc_captures(path)
        parts = capture_parts(captures, self.buckets)
        indexed.inc(sum(table.num_rows for _, table in parts[:-1]))
        out = FileSystems.join(self.scratch, f"captures-{uuid.uuid4().hex}.arrow")
        write_parts(parts, out)
        yield out


class SpillPairs(beam.DoFn):
    """A pair shard in; its rows written to one scratch file of bucket batches (by the key of
    the image URL); that file's path out."""

    def __init__(self, scratch: str, buckets: int, columns: list[str]):
        self.scratch, self.buckets, self.columns = scratch, buckets, columns

    def process(self, path: str) -> Iterator[str]:
        with FileSystems.open(path) as handle:
            table = pq.read_table(handle, columns=self.columns)
        buckets = [bucket_of(pair_key(url), self.buckets) for url in table["url"].to_pylist()]
        index = pa.array(buckets, pa.int64())
        parts = [(b, table.filter(pc.equal(index, b))) for b in range(self.buckets)]
        out = FileSystems.join(self.scratch, f"pairs-{uuid.uuid4().hex}.arrow")
        write_parts(parts, out)
        yield out


def bucket_rows(pair_files: Iterable[str], bucket: int) -> list[dict]:
    """A bucket's pairs from every spilled shard, in uid order."""
    tables = [t for t in read_parts((path, bucket) for path in sorted(pair_files)) if t.num_rows]
    rows = [row for table in tables for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["uid"])


class CaptureLookup:
    """Captures by key from the scratch index: only the keys asked for are kept."""

    def __init__(self, capture_files: Iterable[str], buckets: int):
        self.files, self.buckets = sorted(capture_files), buckets

    def find(self, keys: Iterable[str]) -> dict[str, list[Capture]]:
        by_bucket: dict[int, set[str]] = {}
        for key in keys:
            by_bucket.setdefault(bucket_of(key, self.buckets), set()).add(key)
        found: dict[str, list[Capture]] = {}
        for bucket, wanted in sorted(by_bucket.items()):
            self._read(bucket, wanted, found)
        return found

    def policies(self, urls: Iterable[str]) -> dict[str, list[Capture]]:
        """The captures of these policy-file URLs (canonical)."""
        found: dict[str, list[Capture]] = {}
        self._read(self.buckets, {URL + url for url in urls}, found)
        return {key[len(URL) :]: captures for key, captures in found.items()}

    def _read(self, batch: int, wanted: set[str], found: dict[str, list[Capture]]) -> None:
        if not wanted:
            return
        values = pa.array(sorted(wanted), pa.string())
        for table in read_parts((path, batch) for path in self.files):
            matched = table.filter(pc.is_in(table["key"], value_set=values))
            for row in matched.to_pylist():
                key = row.pop("key")
                found.setdefault(key, []).append(Capture(**row))
