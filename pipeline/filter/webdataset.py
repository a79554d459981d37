"""WebDataset tar shards: per record ``{key}.jpg``, ``{key}.txt`` and ``{key}.json``.

This is the layout open_clip, img2dataset and the ``webdataset`` package read: members of one
record share a key (here the uid, which has no dot) and follow each other. The caption is the
alt-text; the JSON is the record's sidecar row (the Parquet sidecar's columns, extras too).

Written with the standard library's tarfile, so the pipeline needs no webdataset package. The
bytes depend only on the rows: ustar headers with a fixed mtime, owner and mode, records in
the shard's (uid) order and each record's members in name order.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import math
import tarfile
from collections.abc import Sequence

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

MTIME = 0  # every member's modification time, so a rerun gives the same bytes
_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"RIFF", "webp"))


def image_extension(data: bytes) -> str:
    """The extension of the stored image bytes (align-download stores JPEG)."""
    for magic, extension in _MAGIC:
        if data.startswith(magic):
            return extension
    return "jpg"


def _jsonable(value):
    """A sidecar value as JSON: bytes as base64, dates as ISO text, NaN and infinities as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return str(value) if isinstance(value, datetime.timedelta) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def metadata_json(row: dict, columns: Sequence[str]) -> bytes:
    """The sidecar row of a record as UTF-8 JSON, columns in the sidecar's order."""
    document = {name: _jsonable(row[name]) for name in columns}
    return json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")


def record_members(row: dict, columns: Sequence[str]) -> list[tuple[str, bytes]]:
    """(member name, bytes) of one record, in name order."""
    key = row["uid"]
    image = row["image"] or b""
    members = [
        (f"{key}.{image_extension(image)}", image),
        (f"{key}.json", metadata_json(row, columns)),
        (f"{key}.txt", (row["alt"] or "").encode("utf-8")),
    ]
    return sorted(members)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, MTIME, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_webdataset(table: pa.Table, path: str, columns: Sequence[str]) -> None:
    """A WriteShards writer (with ``columns`` bound): one tar of the table's rows, in order.

    Streamed ("w|"), so it needs no seekable file (gs://)."""
    with (
        FileSystems.create(path) as handle,
        tarfile.open(fileobj=handle, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for row in table.to_pylist():
            for name, data in record_members(row, columns):
                tar.addfile(_member(name, len(data)), io.BytesIO(data))
