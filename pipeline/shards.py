"""Deterministic, atomic shard output, and Arrow-batched reading of Parquet shards.

Records travel between DoFns as ``pyarrow.Table`` batches, not one dict per element:
per-element Beam steps cost microseconds each, a batch amortises them over thousands.

A row's shard is ``shard_of(uid)``; a shard's rows are sorted by uid and written to a
temporary name, then renamed. The same input therefore gives the same files, byte for
byte, whatever the runner's bundling, and a reader never sees a half-written shard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.records import shard_of

TableWriter = Callable[[pa.Table, str], None]


def shard_name(prefix: str, index: int, num_shards: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


def write_parquet(table: pa.Table, path: str) -> None:
    with FileSystems.create(path) as handle:
        pq.write_table(table, handle, compression="zstd")


def write_atomically(write: TableWriter, table: pa.Table, path: str) -> str:
    """Writes to ``path + '.tmp'`` and renames, replacing any earlier file."""
    temporary = path + ".tmp"
    write(table, temporary)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])
    return path


def rows_to_table(rows: Iterable[dict], schema: pa.Schema) -> pa.Table:
    """Dicts to a table of exactly ``schema`` (missing columns become nulls)."""
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def split_by_shard(table: pa.Table, num_shards: int, key: str = "uid"):
    """Yields (shard index, sub-table) for each shard the table's rows fall into."""
    if table.num_rows == 0:
        return
    shards = np.fromiter(
        (shard_of(uid, num_shards) for uid in table.column(key).to_pylist()),
        dtype=np.int64,
        count=table.num_rows,
    )
    for index in np.unique(shards):
        yield int(index), table.filter(pa.array(shards == index))


def sorted_table(tables: Iterable[pa.Table], schema: pa.Schema, key: str) -> pa.Table:
    tables = [table.select(schema.names).cast(schema) for table in tables if table.num_rows]
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables(tables)
    return table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))


class WriteShards(beam.PTransform):
    """Writes a PCollection of Arrow tables as ``num_shards`` shards sorted by ``key``.

    Every shard file is written, empty ones too, so a reader can tell a finished job
    by its complete set of names. The output PCollection holds ``(path, rows)``.
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

    def expand(self, tables):
        empty_shards = (
            tables.pipeline
            | "ShardIndices" >> beam.Create(range(self.num_shards))
            | "EmptyShard" >> beam.Map(lambda index: (index, self.schema.empty_table()))
        )
        return (
            (
                tables | "SplitByShard" >> beam.FlatMap(split_by_shard, self.num_shards, self.key),
                empty_shards,
            )
            | "WithEmptyShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.MapTuple(self._write_shard)
        )

    def _write_shard(self, index: int, tables: Iterable[pa.Table]):
        table = sorted_table(tables, self.schema, self.key)
        name = shard_name(self.prefix, index, self.num_shards, self.suffix)
        path = FileSystems.join(self.output_dir, name)
        write_atomically(self.writer, table, path)
        return path, table.num_rows


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
