"""The record contracts between stages: column names, Arrow schemas and the pair uid.

A stage adds columns, it never renames them (docs/architecture.md, "Records between stages").
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

# "ok": the status of a usable download, declared beside the download rule that reads it.
from filters.image import STATUS_OK as STATUS_OK

PAIR_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),  # make_uid(url, alt): stable across runs and runners
        ("url", pa.string()),  # absolute http(s) URL of the image
        ("alt", pa.string()),  # alt-text, entities decoded, whitespace normalised
        ("page_url", pa.string()),  # page the <img> was found on
        ("source", pa.string()),  # "file@offset" of the WARC/WAT record, or "fetch:<page url>"
    ]
)

DOWNLOAD_SCHEMA = pa.schema(
    list(PAIR_SCHEMA)
    + [
        ("status", pa.string()),  # "ok" or a named failure (http_404, timeout, ...)
        ("error", pa.string()),  # human-readable detail of a failure, null when ok
        ("image", pa.binary()),  # encoded (resized) image bytes, null unless ok
        ("width", pa.int32()),  # of the stored image
        ("height", pa.int32()),
        ("original_width", pa.int32()),  # of the image as served, before resizing
        ("original_height", pa.int32()),
        ("sha256", pa.string()),  # hex digest of the original bytes as served
        ("phash", pa.string()),  # 64-bit perceptual hash, 16 lowercase hex digits
        ("mime", pa.string()),  # judged from the bytes, e.g. image/jpeg
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("url", pa.string()),
        ("alt", pa.string()),
        ("reasons", pa.list_(pa.string())),  # every failing rule, the first one first
        ("measured", pa.list_(pa.string())),  # what each rule measured, e.g. "alt_count=37"
    ]
)


def make_uid(url: str, alt: str) -> str:
    """A stable id of an (image URL, alt-text) pair: 16 hex digits of SHA-1."""
    digest = hashlib.sha1(f"{url}\x00{alt}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def shard_of(uid: str, num_shards: int) -> int:
    """Which of num_shards a record belongs to; uids are uniformly distributed hex."""
    return int(uid[:8], 16) % num_shards
