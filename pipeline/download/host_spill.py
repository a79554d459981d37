"""The live fetch lists' pairs, in scratch files by host bucket: only counts are planned.

Each pair shard (and, with --archive, each bucket's pairs the archive lacks) is written once
to an Arrow file of ``lists`` record batches: batch ``b`` holds the pairs whose host's first
fetch list (plan.list_of, part 0) is ``b``, with their host in a ``_unit`` column. Through
Beam travel the file names and a ``(host, count)`` per host and file; the planner works on
the counts (plan.plan_host) and a fetch list reads its hosts' rows when it runs (a host's
later parts lie in the following lists, so its rows are in the batch of its part 0's list).
No step then holds more than one list's rows, the way archive_index.py keeps the archive's.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.download.plan import NO_HOST, Part, kept_count, list_of
from pipeline.fetch.units import unit_function
from pipeline.shards import read_parts, write_parts

UNIT = "_unit"  # the spilled rows' host (--politeness-unit), dropped when they are read
COUNTS = "counts"  # SpillHosts' tagged output: (host, pairs in this file)


def spill(table: pa.Table, unit: str, lists: int, scratch: str) -> tuple[str, Counter]:
    """``table``'s pairs written by their host's bucket: (the file, pairs per host)."""
    unit_of = unit_function(unit)
    units = [unit_of(url or "") or NO_HOST for url in table["url"].to_pylist()]
    buckets = {name: list_of(name, 0, lists) for name in set(units)}
    index = pa.array([buckets[name] for name in units], pa.int64())
    table = table.append_column(UNIT, pa.array(units, pa.string()))
    parts = [(b, table.filter(pc.equal(index, b))) for b in range(lists)]
    path = FileSystems.join(scratch, f"hosts-{uuid.uuid4().hex}.arrow")
    write_parts(parts, path)
    return path, Counter(units)


class SpillHosts(beam.DoFn):
    """A pair shard in; its pairs spilled by host bucket; the file's path out, and
    ``(host, count)`` for each of its hosts on ``COUNTS``."""

    def __init__(self, scratch: str, lists: int, unit: str, columns: list[str]):
        self.scratch, self.lists, self.unit, self.columns = scratch, lists, unit, columns

    def process(self, path: str) -> Iterator:
        with FileSystems.open(path) as handle:
            table = pq.read_table(handle, columns=self.columns)
        spilled, counts = spill(table, self.unit, self.lists, self.scratch)
        yield spilled
        for unit, count in sorted(counts.items()):
            yield beam.pvalue.TaggedOutput(COUNTS, (unit, count))


def hosts_in_uid_order(files: Iterable[str], lists: int, units: set[str]) -> dict[str, pa.Table]:
    """These hosts' spilled pairs (without ``_unit``), each host's sorted by uid."""
    by_bucket: dict[int, set[str]] = {}
    for unit in units:
        by_bucket.setdefault(list_of(unit, 0, lists), set()).add(unit)
    found: dict[str, pa.Table] = {}
    for bucket, wanted in sorted(by_bucket.items()):
        tables = [t for t in read_parts((path, bucket) for path in sorted(files)) if t.num_rows]
        if not tables:
            continue
        table = pa.concat_tables(tables)
        table = table.filter(pc.is_in(table[UNIT], value_set=pa.array(sorted(wanted))))
        for unit in sorted(wanted):
            rows = table.filter(pc.equal(table[UNIT], unit)).drop_columns([UNIT])
            found[unit] = rows.take(pc.sort_indices(rows, [("uid", "ascending")]))
    return found


def fill(parts: Sequence[Part], files: Iterable[str], lists: int, max_urls: int) -> None:
    """Gives a fetch list's parts their rows (and part 0 its host's deferred rows), read from
    the scratch files; their planned counts must be what the files hold."""
    hosts = hosts_in_uid_order(files, lists, {part.unit for part in parts})
    for part in parts:
        table = hosts.get(part.unit)
        if table is None:
            continue
        kept = kept_count(table.num_rows, max_urls)
        index, step = part.share.index, part.share.parts
        part.rows = table.take(pa.array(range(index, kept, step), pa.int64())).to_pylist()
        part.deferred = table.slice(kept).to_pylist() if index == 0 else []
        part.planned = None


def kept_urls(files: Iterable[str], lists: int, unit: str, max_urls: int) -> list[str]:
    """The URLs of a host that this run fetches (its first ``max_urls`` by uid)."""
    table = hosts_in_uid_order(files, lists, {unit}).get(unit)
    if table is None:
        return []
    return table["url"].slice(0, kept_count(table.num_rows, max_urls)).to_pylist()
