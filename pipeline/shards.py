"""Deterministic, atomic shard output, and Arrow-batched reading of Parquet shards.

Records travel between DoFns as ``pyarrow.Table`` batches, not one dict per element:
per-element Beam steps cost microseconds each, a batch amortises them over thousands.

A row's shard is ``shard_of(uid)``; a shard's rows are sorted by uid and written to a
temporary name, then renamed. The same input therefore gives the same files, byte for
byte, whatever the runner's bundling, and a reader never sees a half-written shard.

Rows reach their shard through files, not through the runner's shuffle: each batch's rows
for a shard are written as an Arrow piece in a scratch folder beside the output, and only
the piece's path is grouped by shard (the pattern of Beam's own file sinks). The shuffle
then moves a path per piece instead of every record, which on the DirectRunner is the
difference between the runner process holding the whole output in memory and not.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from commandline.flags import UsageError
from pipeline.records import Contract, check_files, shard_of

TableWriter = Callable[[pa.Table, str], None]


def shard_name(prefix: str, index: int, num_shards: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


def read_text(path: str) -> str:
    """A text file through Beam's FileSystems (local or gs://), e.g. a --config file."""
    with FileSystems.open(path) as handle:
        return handle.read().decode("utf-8")


def parquet_rows(path: str) -> int | None:
    """Row count from a Parquet footer, or None when the file is missing or unreadable."""
    if not FileSystems.exists(path):  # GCS raises NotFound, not OSError, for a missing object
        return None
    try:
        with FileSystems.open(path) as handle:
            return pq.ParquetFile(handle).metadata.num_rows
    except (OSError, pa.ArrowException):
        return None


def total_rows(paths: Sequence[str], threads: int = 16) -> int | None:
    """Rows in all these Parquet files, from their footers (read in parallel: on gs:// each
    is a request); None if one cannot be read (the job then reports it, not this count)."""
    with ThreadPoolExecutor(threads) as pool:
        counts = list(pool.map(parquet_rows, paths))
    return None if None in counts else sum(counts)


def write_parquet(table: pa.Table, path: str) -> None:
    with FileSystems.create(path) as handle:
        pq.write_table(table, handle, compression="zstd")


def publish(temporary: str, path: str) -> str:
    """Renames a finished ``temporary`` file to ``path``, replacing any earlier file: a
    reader never sees half a file, and a crash leaves only the temporary behind."""
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])
    return path


def write_atomically(write: TableWriter, table: pa.Table, path: str) -> str:
    """Writes to ``path + '.tmp'`` and publishes it."""
    write(table, path + ".tmp")
    return publish(path + ".tmp", path)


def rows_to_table(rows: Iterable[dict], schema: pa.Schema) -> pa.Table:
    """Dicts to a table of exactly ``schema`` (missing columns become nulls)."""
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


_HEX = np.full(256, -1, dtype=np.int64)
for _value, _digit in enumerate("0123456789abcdef"):
    _HEX[ord(_digit)] = _HEX[ord(_digit.upper())] = _value


def shard_indices(uids: pa.ChunkedArray | pa.Array, num_shards: int) -> np.ndarray:
    """``shard_of`` for a column: in numpy when every uid starts with 8 hex digits (ours
    always do), else one Python call per row."""
    heads = pc.utf8_slice_codeunits(uids, 0, 8)
    if isinstance(heads, pa.ChunkedArray):
        heads = heads.combine_chunks()
    if heads.null_count == 0 and pc.all(pc.equal(pc.binary_length(heads), 8)).as_py():
        heads = heads.cast(pa.string())  # 32-bit offsets
        start = int(np.frombuffer(heads.buffers()[1], dtype=np.int32)[heads.offset])
        data = np.frombuffer(heads.buffers()[2], dtype=np.uint8)[start : start + 8 * len(heads)]
        digits = _HEX[data.reshape(-1, 8)]
        if len(heads) == 0 or digits.min() >= 0:
            values = (digits << (4 * np.arange(7, -1, -1, dtype=np.int64))).sum(axis=1)
            return values % num_shards
    return np.fromiter(
        (shard_of(uid, num_shards) for uid in uids.to_pylist()), dtype=np.int64, count=len(uids)
    )


def split_by_index(table: pa.Table, index: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """(value, the rows whose ``index`` is that value, in their order) per value, ascending:
    one sort and a take per part, not a pass over the whole table per part."""
    if table.num_rows == 0:
        return
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    ends = np.r_[starts[1:], len(sorted_index)]
    for start, end in zip(starts, ends, strict=True):
        yield int(sorted_index[start]), table.take(pa.array(order[start:end]))


def split_by_column(table: pa.Table, column: str) -> Iterator[tuple[object, pa.Table]]:
    """(value, its rows without ``column``) per distinct value of the column."""
    encoded = pc.dictionary_encode(table.column(column).combine_chunks())
    values = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    for code, part in split_by_index(table.drop_columns([column]), codes):
        yield values[code], part


def split_by_shard(table: pa.Table, num_shards: int, key: str = "uid"):
    """Yields (shard index, sub-table) for each shard the table's rows fall into."""
    yield from split_by_index(table, shard_indices(table.column(key), num_shards))


def sorted_table(tables: Iterable[pa.Table], schema: pa.Schema, key: str) -> pa.Table:
    tables = [table.select(schema.names).cast(schema) for table in tables if table.num_rows]
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables(tables)
    return table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))


def write_piece(table: pa.Table, path: str) -> None:
    """A scratch file: Arrow's stream format, written and read back without conversion."""
    with FileSystems.create(path) as handle, pa.ipc.new_stream(handle, table.schema) as writer:
        writer.write_table(table)


def read_piece(path: str) -> pa.Table:
    with FileSystems.open(path) as handle:
        return pa.ipc.open_stream(handle).read_all()


PartRef = tuple[str, int]  # (scratch file, index of the part in it)


def write_parts(
    parts: Iterable[tuple[object, pa.Table]], path: str
) -> list[tuple[object, PartRef]]:
    """Tables of one schema as the record batches of one Arrow file (random access), so a
    step can shuffle a small ``(key, ref)`` in place of each ``(key, table)``. Writes nothing
    when there are no parts."""
    parts = list(parts)
    if not parts:
        return []
    with (
        FileSystems.create(path) as handle,
        pa.ipc.new_file(handle, parts[0][1].schema) as writer,
    ):
        for _, table in parts:
            writer.write_batch(_one_batch(table))
    return [(key, (path, index)) for index, (key, _) in enumerate(parts)]


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def read_parts(refs: Iterable[PartRef]) -> list[pa.Table]:
    """The tables behind ``refs``, in their order; each file is opened once."""
    refs = list(refs)
    wanted: dict[str, list[int]] = {}
    for path, index in refs:
        wanted.setdefault(path, []).append(index)
    tables = {}
    for path, indices in wanted.items():
        with FileSystems.open(path) as handle:
            reader = pa.ipc.open_file(handle)
            for index in indices:
                tables[path, index] = pa.Table.from_batches([reader.get_batch(index)])
    return [tables[path, index] for path, index in refs]


class _WritePieces(beam.DoFn):
    """A table's rows split by shard, each part written as a piece: yields (shard, path)."""

    def __init__(self, scratch: str, schema: pa.Schema, num_shards: int, key: str):
        self.scratch = scratch
        self.schema = schema
        self.num_shards = num_shards
        self.key = key

    def process(self, table: pa.Table):
        for index, part in split_by_shard(table, self.num_shards, self.key):
            path = FileSystems.join(self.scratch, f"{index:05d}-{uuid.uuid4().hex}.arrow")
            write_piece(part.select(self.schema.names).cast(self.schema), path)
            yield index, path


class WriteShards(beam.PTransform):
    """Writes a PCollection of Arrow tables as ``num_shards`` shards sorted by ``key``.

    Every shard file is written, empty ones too, so a reader can tell a finished job
    by its complete set of names. The output PCollection holds ``(path, rows)``. Pieces
    live in ``_pieces_<prefix>_<suffix>/`` under the output until every shard is written;
    pieces are only deleted with the folder, so a retried shard step can read them again,
    and a retried bundle's stray pieces are never read (only grouped paths are).
    """

    def __init__(
        self,
        output_dir: str,
        prefix: str,
        schema: pa.Schema,
        num_shards: int,
        writer: TableWriter = write_parquet,
        suffix: str = ".parquet",
        key: str = "uid",
    ):
        super().__init__()
        if num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, got {num_shards}")
        self.output_dir = output_dir
        self.prefix = prefix
        self.schema = schema
        self.num_shards = num_shards
        self.writer = writer
        self.suffix = suffix
        self.key = key

    @property
    def scratch(self) -> str:
        return FileSystems.join(self.output_dir, f"_pieces_{self.prefix}_{self.suffix.strip('.')}")

    def expand(self, tables):
        every_shard = (
            tables.pipeline
            | "ShardIndices" >> beam.Create(range(self.num_shards))
            | "NoPiece" >> beam.Map(lambda index: (index, None))
        )
        pieces = tables | "WritePieces" >> beam.ParDo(
            _WritePieces(self.scratch, self.schema, self.num_shards, self.key)
        )
        written = (
            (pieces, every_shard)
            | "WithEveryShard" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.MapTuple(self._write_shard)
        )
        _ = (
            written
            | "CountShards" >> beam.combiners.Count.Globally()
            | "RemovePieces" >> beam.Map(lambda _: remove_folder(self.scratch))
        )
        return written

    def shard_table(self, tables: Iterable[pa.Table]) -> pa.Table:
        """A shard's rows from its pieces, sorted by the key (a subclass may order them
        further or drop some)."""
        return sorted_table(tables, self.schema, self.key)

    def _write_shard(self, index: int, paths: Iterable[str | None]):
        pieces = sorted(path for path in paths if path is not None)
        table = self.shard_table(read_piece(path) for path in pieces)
        name = shard_name(self.prefix, index, self.num_shards, self.suffix)
        path = FileSystems.join(self.output_dir, name)
        write_atomically(self.writer, table, path)
        return path, table.num_rows


def remove_folder(path: str) -> None:
    """Deletes a scratch folder and whatever is left in it (local or gs://)."""
    if FileSystems.exists(path):
        FileSystems.delete([path])
    elif path.startswith("gs://"):
        matches = FileSystems.match([path.rstrip("/") + "/*"])[0].metadata_list
        if matches:
            FileSystems.delete([m.path for m in matches])


class ReadTables(beam.PTransform):
    """Reads Parquet shards matching a glob as Arrow tables (one per row group)."""

    def __init__(self, file_pattern: str, columns: list[str] | None = None):
        super().__init__()
        self.file_pattern = file_pattern
        self.columns = columns

    def expand(self, pipeline):
        return pipeline | "ReadParquet" >> beam.io.ReadFromParquetBatched(
            self.file_pattern, columns=self.columns
        )


def read_table(file_pattern: str, columns: list[str] | None = None) -> pa.Table:
    """Reads every shard matching a glob into one table, in name order (for tools and tests)."""
    paths = sorted(
        metadata.path
        for match in FileSystems.match([file_pattern])
        for metadata in match.metadata_list
    )
    tables = []
    for path in paths:
        with FileSystems.open(path) as handle:
            tables.append(pq.read_table(handle, columns=columns))
    if not tables:
        raise FileNotFoundError(f"no files match {file_pattern}")
    return pa.concat_tables(tables)


# The bytes of a file as stored (Beam's default guesses a compression from the file name).
open_raw = functools.partial(FileSystems.open, compression_type=CompressionTypes.UNCOMPRESSED)


def match_files(pattern: str) -> list[str]:
    """The files a pattern matches, sorted; folders and ``.tmp`` leftovers left out."""
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - Beam raises BeamIOError for a missing path
        return []
    paths = (m.path for m in matched if not m.path.endswith((".tmp", "/")))
    return sorted(path for path in paths if "://" in path or not os.path.isdir(path))


def match_shards(spec: str, prefixes: Sequence[str], what: str) -> tuple[str, list[str]]:
    """The Parquet shards an ``--input`` names: a glob, a folder's ``<prefix>-*.parquet``
    (the first prefix that matches), or one file. Returns (pattern, sorted paths)."""
    if any(char in spec for char in "*?["):
        candidates = [spec]
    else:
        candidates = [FileSystems.join(spec, f"{prefix}-*.parquet") for prefix in prefixes]
        candidates += [] if spec.endswith("/") else [spec]  # one file
    for pattern in candidates:
        paths = match_files(pattern)
        if paths:
            return pattern, paths
    raise FileNotFoundError(f"no {what} match {spec} (looked for {' or '.join(candidates)})")


def check_input(paths: Sequence[str], contract: Contract, flag: str = "--input") -> pa.Schema:
    """A job's door: ``records.check_files`` through Beam's file systems (local or gs://)."""
    return check_files(paths, contract, open_raw, flag)


def sized_inputs(pattern: str) -> list[tuple[str, int]]:
    """(path, bytes) of the files a glob (or a folder) names, sorted by path."""
    patterns = [pattern]
    if not any(char in pattern for char in "*?["):
        patterns.insert(0, FileSystems.join(pattern, "*"))  # a folder: the files in it
    for candidate in patterns:
        try:
            matched = FileSystems.match([candidate])[0].metadata_list
        except Exception:  # noqa: BLE001 - Beam raises BeamIOError for a missing path
            matched = []
        files = sorted((m.path, m.size_in_bytes) for m in matched if not m.path.endswith("/"))
        if files:
            return files
    raise UsageError(f"--input {pattern}: no files match")
