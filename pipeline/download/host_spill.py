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

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.download.plan import NO_HOST, Part, dealt, kept_count, list_of
from pipeline.fetch.robots import origin_of
from pipeline.fetch.units import unit_function
from pipeline.shards import read_parts, write_parts

UNIT = "_unit"  # the spilled rows' host (--politeness-unit), dropped when they are read
COUNTS = "counts"  # SpillHosts' tagged output: (host, pairs in this file)
T = TypeVar("T")


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


_READER_LOCK = threading.Lock()
_READER: list[ThreadPoolExecutor] = []


def _on_reader(function: Callable[..., T], *args) -> T:
    """Runs a read of the scratch files on the worker's one reader thread: its lists then read
    one at a time, and the freed buffers stay with one thread's allocator, not with each list
    thread's (8 list threads reading a large host kept ~85 MiB more, measured)."""
    with _READER_LOCK:
        if not _READER:
            _READER.append(ThreadPoolExecutor(1, thread_name_prefix="scratch-reader"))
    return _READER[0].submit(function, *args).result()


def uid_order(files: Sequence[str], bucket: int, units: set[str]) -> dict[str, pa.Table]:
    """Where these hosts' pairs lie, as (file, row) in uid order per host: only their uids
    are held, never a whole bucket's rows (a large host's bucket holds all its rows)."""
    found = []
    for number, path in enumerate(files):
        (table,) = read_parts([(path, bucket)])
        rows = pa.array(range(table.num_rows), pa.int64())
        where = pa.table({UNIT: table[UNIT], "uid": table["uid"], "row": rows})
        where = where.filter(pc.is_in(where[UNIT], value_set=pa.array(sorted(units))))
        found.append(where.append_column("file", pa.array([number] * where.num_rows, pa.int64())))
    every = pa.concat_tables(found) if found else None
    orders = {}
    for unit in sorted(units) if every is not None else []:
        rows = every.filter(pc.equal(every[UNIT], unit))  # files in order, rows in order: stable
        orders[unit] = rows.take(pc.sort_indices(rows, [("uid", "ascending")]))
    return orders


def take(files: Sequence[str], bucket: int, where: pa.Table) -> pa.Table:
    """The pairs at ``where``'s (file, row), in its order, without ``_unit``."""
    position = pa.array(range(where.num_rows), pa.int64())
    where = where.append_column("position", position)
    pieces = []
    for number, path in enumerate(files):
        wanted = where.filter(pc.equal(where["file"], number))
        if wanted.num_rows:
            (table,) = read_parts([(path, bucket)])
            piece = table.take(wanted["row"]).drop_columns([UNIT])
            pieces.append(piece.append_column("position", wanted["position"]))
    if not pieces:
        return pa.table({})
    rows = pa.concat_tables(pieces)
    return rows.take(pc.sort_indices(rows["position"])).drop_columns(["position"])


def fill(parts: Sequence[Part], files: Iterable[str], lists: int, max_urls: int) -> None:
    """Gives a fetch list's parts their rows (and part 0 its host's deferred rows), read from
    the scratch files; their planned counts must be what the files hold."""
    _on_reader(_fill, parts, sorted(files), lists, max_urls)


def _fill(parts: Sequence[Part], files: list[str], lists: int, max_urls: int) -> None:
    units, orders = {part.unit for part in parts}, {}
    for bucket in sorted({list_of(unit, 0, lists) for unit in units}):
        here = {unit for unit in units if list_of(unit, 0, lists) == bucket}
        orders = uid_order(files, bucket, here)
        for part in (part for part in parts if part.unit in orders):
            mine, deferred = dealt(orders[part.unit].num_rows, part, max_urls)
            wanted = pa.array([*mine, *deferred], pa.int64())  # one read for both
            rows = take(files, bucket, orders[part.unit].take(wanted)).to_pylist()
            part.rows, part.deferred = rows[: len(mine)], rows[len(mine) :]
            part.planned = None
    del orders
    pa.default_memory_pool().release_unused()


def kept_origins(files: Iterable[str], lists: int, unit: str, max_urls: int) -> set[str]:
    """The origins of the URLs of a host that this run fetches (its first ``max_urls`` by
    uid), from its uids and URLs alone."""
    return _on_reader(_kept_origins, sorted(files), lists, unit, max_urls)


def _kept_origins(files: list[str], lists: int, unit: str, max_urls: int) -> set[str]:
    bucket, wanted = list_of(unit, 0, lists), pa.array([unit])
    found = []
    for path in sorted(files):
        (table,) = read_parts([(path, bucket)])
        found.append(table.select(["uid", "url", UNIT]).filter(pc.is_in(table[UNIT], wanted)))
    urls = pa.concat_tables(found) if found else None
    origins: set[str] = set()
    if urls is not None and urls.num_rows:
        urls = urls.take(pc.sort_indices(urls, [("uid", "ascending")]))["url"]
        urls = urls.slice(0, kept_count(len(urls), max_urls))
        for start in range(0, len(urls), 8192):
            origins.update(origin_of(url) for url in urls.slice(start, 8192).to_pylist())
    del found, urls
    pa.default_memory_pool().release_unused()
    return origins
