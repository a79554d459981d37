"""tf.train.Example records and TFRecord framing, hand-encoded so the pipeline needs no TF.

An Example is a small protobuf: Example{1: Features{1: map<string, Feature>}}, Feature is a
oneof of BytesList (1) / FloatList (2) / Int64List (3), each a repeated field 1. Map entries
are written in key order, so the same record always gives the same bytes.
"""

from __future__ import annotations

import struct

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

try:
    from google_crc32c import value as _crc32c
except ImportError:  # the gcp extras are optional: a table-driven pure-Python crc32c
    _TABLE = []
    for _byte in range(256):
        _crc = _byte
        for _ in range(8):
            _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
        _TABLE.append(_crc)

    def _crc32c(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for byte in data:
            crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


Feature = bytes | str | int | list


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte two's complement varints
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: Feature) -> bytes:
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and values:
        packed = b"".join(_varint(v) for v in values)
        return _field(3, _field(1, packed))  # Int64List, packed
    encoded = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
    return _field(1, b"".join(_field(1, v) for v in encoded))  # BytesList


def encode_example(features: dict[str, Feature]) -> bytes:
    """A serialized tf.train.Example of bytes/str/int (or lists of them) features."""
    entries = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, _feature(features[key])))
        for key in sorted(features)
    )
    return _field(1, entries)


def masked_crc32c(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """TFRecord framing: length, masked crc of length, data, masked crc of data."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def read_records(data: bytes) -> list[bytes]:
    """Splits TFRecord bytes into records, checking both checksums (for tools and tests)."""
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        (length_crc,) = struct.unpack_from("<I", data, offset + 8)
        if length_crc != masked_crc32c(data[offset : offset + 8]):
            raise ValueError(f"corrupt TFRecord length at byte {offset}")
        start = offset + 12
        record = data[start : start + length]
        (data_crc,) = struct.unpack_from("<I", data, start + length)
        if data_crc != masked_crc32c(record):
            raise ValueError(f"corrupt TFRecord data at byte {start}")
        records.append(record)
        offset = start + length + 4
    return records


def image_format(mime: str | None) -> str:
    """'image/jpeg' -> 'jpeg' (what tf.io.decode_image and readers of image/format expect)."""
    return (mime or "").removeprefix("image/") or "unknown"


def example_of(row: dict) -> bytes:
    """The training Example of a kept image record (docs/architecture.md: the shard)."""
    return encode_example(
        {
            "image/encoded": row["image"] or b"",
            "image/format": image_format(row["mime"]),
            "image/height": int(row["height"] or 0),
            "image/width": int(row["width"] or 0),
            "text": row["alt"] or "",
            "uid": row["uid"],
            "url": row["url"] or "",
        }
    )


def write_tfrecord(table: pa.Table, path: str) -> None:
    """A WriteShards writer: one framed Example per row, uncompressed."""
    with FileSystems.create(path) as handle:
        for row in table.to_pylist():
            handle.write(frame_record(example_of(row)))
