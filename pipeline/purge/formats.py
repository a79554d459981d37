"""Every shard format the jobs write, read record by record and rewritten without some.

Parquet (every stage's rows and the final shards' sidecars), TFRecord of tf.train.Example
and WebDataset tars (the final shards). A rewrite keeps every other record's bytes as they
were: TFRecord frames are copied as they are, tar members keep their headers, and Parquet is
written back with the file's own compression and row-group size. The formats are read here
rather than imported from align-filter, which wrote them: a job never imports another job.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.shards import open_raw, publish

MATCH_COLUMNS = ("uid", "url", "page_url", "sha256", "phash")
SUFFIXES = (".parquet", ".tfrecord", ".tar")

# A record's verdict: the reason it goes (``opt_out_domain``, ...) or None.
Verdict = Callable[[dict], str | None]


@dataclass
class Rewrite:
    """What a purge did to one file: rows before, and each removed row's reason and bucket
    (``kept``, ``rejected/<reason>`` or None for files that are copies of counted rows)."""

    path: str
    rows: int = 0
    removed: list[tuple[str, str | None]] = field(default_factory=list)


def format_of(path: str) -> str | None:
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return suffix.lstrip(".")
    return None


def read_bytes(path: str) -> bytes:
    with open_raw(path) as handle:
        return handle.read()


def write_bytes_atomically(path: str, data: bytes) -> None:
    with FileSystems.create(path + ".tmp") as handle:
        handle.write(data)
    publish(path + ".tmp", path)


# --- Parquet ----------------------------------------------------------------------------------


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    with open_raw(path) as handle:
        parquet = pq.ParquetFile(handle)
        wanted = None
        if columns is not None:
            wanted = [name for name in columns if name in parquet.schema_arrow.names]
        return parquet.read(columns=wanted)


def bucket_of(name: str, row: dict) -> str | None:
    """Where a row of the file named ``name`` is counted in its folder's stats.json."""
    if name.startswith("rejects-"):
        reasons = row.get("reasons") or ["unknown"]
        return f"rejected/{reasons[0]}"
    if name.startswith("images-"):
        status = row.get("status")
        return "kept" if status == "ok" else f"rejected/{status}"
    if name.startswith(("pairs-", "align-")):
        return "kept"
    return None  # measurements: one more view of rows counted elsewhere


def parquet_write_options(metadata: pq.FileMetaData) -> dict:
    """The file's own compression (per column when they differ) and row-group size."""
    if metadata.num_row_groups == 0:
        return {"compression": "zstd"}
    group = metadata.row_group(0)
    codecs = {}
    for index in range(group.num_columns):
        column = group.column(index)
        codec = column.compression.lower()
        codecs[column.path_in_schema.split(".")[0]] = "none" if codec == "uncompressed" else codec
    options = {
        "compression": codecs if len(set(codecs.values())) > 1 else next(iter(codecs.values()))
    }
    if metadata.num_row_groups > 1:
        options["row_group_size"] = group.num_rows
    return options


def purge_parquet(path: str, verdict: Verdict) -> Rewrite:
    with open_raw(path) as handle:
        parquet = pq.ParquetFile(handle)
        table = parquet.read()
        options = parquet_write_options(parquet.metadata)
    result = Rewrite(path, table.num_rows)
    name = path.rsplit("/", 1)[-1]
    counted = [c for c in ("reasons", "status") if c in table.column_names]
    rows = table.select([c for c in MATCH_COLUMNS + tuple(counted) if c in table.column_names])
    keep = []
    for row in rows.to_pylist():
        reason = verdict(row)
        keep.append(reason is None)
        if reason is not None:
            result.removed.append((reason, bucket_of(name, row)))
    if result.removed:
        buffer = io.BytesIO()
        pq.write_table(table.filter(pa.array(keep)), buffer, **options)
        write_bytes_atomically(path, buffer.getvalue())
    return result


# --- TFRecord of tf.train.Example -------------------------------------------------------------


def tfrecord_frames(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, payload) of every framed record: length, its crc, payload, its crc."""
    offset = 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise ValueError(f"TFRecord cut short at byte {offset}")
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            raise ValueError(f"TFRecord cut short at byte {offset}")
        yield offset, end, data[offset + 12 : offset + 12 + length]
        offset = end


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message; length-delimited values as bytes."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = data[position : position + size], position + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def example_strings(example: bytes, names: tuple[str, ...] = ("uid", "url")) -> dict:
    """The first bytes value of each named feature of a tf.train.Example, as text."""
    found = {}
    for _, features in _fields(example):  # Example.features
        for _, entry in _fields(features):  # Features.feature: map entries
            parts = dict(_fields(entry))
            key = parts.get(1, b"").decode("utf-8", "replace")
            if key not in names or not isinstance(parts.get(2), bytes):
                continue
            for kind, values in _fields(parts[2]):  # Feature: 1 = BytesList
                if kind == 1:
                    first = next((v for n, v in _fields(values) if n == 1), b"")
                    found[key] = first.decode("utf-8", "replace")
    return found


def purge_tfrecord(path: str, verdict: Verdict) -> Rewrite:
    data = read_bytes(path)
    result, kept = Rewrite(path), []
    for start, end, payload in tfrecord_frames(data):
        result.rows += 1
        reason = verdict(example_strings(payload))
        if reason is None:
            kept.append(data[start:end])
        else:
            result.removed.append((reason, None))
    if result.removed:
        write_bytes_atomically(path, b"".join(kept))
    return result


# --- WebDataset tar ---------------------------------------------------------------------------


def tar_key(name: str) -> str:
    """A WebDataset record's key: the member's path up to the first dot of its file name."""
    folder, _, base = name.rpartition("/")
    return (folder + "/" if folder else "") + base.split(".", 1)[0]


def purge_tar(path: str, verdict: Verdict) -> Rewrite:
    data = read_bytes(path)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = [(info, tar.extractfile(info).read() if info.isfile() else b"") for info in tar]
    records: dict[str, list] = {}
    for info, body in members:
        records.setdefault(tar_key(info.name), []).append((info, body))
    result, gone = Rewrite(path, len(records)), set()
    for key, parts in records.items():
        row = {"uid": key.rsplit("/", 1)[-1]}
        for info, body in parts:
            if info.name.endswith(".json"):
                try:
                    row.update(json.loads(body))
                except ValueError:
                    pass
        reason = verdict(row)
        if reason is not None:
            gone.add(key)
            result.removed.append((reason, None))
    if gone:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            for info, body in members:
                if tar_key(info.name) not in gone:
                    tar.addfile(info, io.BytesIO(body) if info.isfile() else None)
        write_bytes_atomically(path, buffer.getvalue())
    return result


PURGERS = {"parquet": purge_parquet, "tfrecord": purge_tfrecord, "tar": purge_tar}


def purge_file(path: str, verdict: Verdict) -> Rewrite:
    """Removes the records ``verdict`` names from one shard, rewriting it only if any go."""
    return PURGERS[format_of(path)](path, verdict)
