"""The record contracts between stages: column names, Arrow schemas, the pair uid, and the
check every job makes at its door before any work.

A stage adds columns, it never renames them (docs/architecture.md, "Records between stages").
Columns outside the contract (a URL list's ``similarity``, ``NSFW``...) are *extras*: every
job carries them through unchanged, to the final shards' sidecars.

No Beam here (it takes seconds to import): the door check opens files with the reader the
job passes it.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from commandline.flags import UsageError

# "ok": the status of a usable download, declared beside the download rule that reads it.
from filters.rules.download import STATUS_OK as STATUS_OK

PAIR_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),  # make_uid(url, alt): stable across runs and runners
        ("url", pa.string()),  # absolute http(s) URL of the image
        ("alt", pa.string()),  # alt-text, entities decoded, whitespace normalised
        ("page_url", pa.string()),  # page the <img> was found on
        # "file@offset" of the WARC/WAT record or URL-list line, "fetch:<page url>", or
        # "file#n" of a URL list's n-th record (Parquet, CSV, JSON array; from 0)
        ("source", pa.string()),
    ]
)

# An extra column align-crawl writes beside the pair: when the page was captured (WARC-Date,
# ISO 8601 UTC; null for fetched pages). align-download --archive prefers the image capture
# nearest to it. An extra, not a contract column: other pair sources need not have it.
PAGE_DATE = pa.field("page_date", pa.string())
CRAWL_PAIR_SCHEMA = PAIR_SCHEMA.append(PAGE_DATE)

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


# --- extras -----------------------------------------------------------------------------------

# Columns the jobs own. An input column outside them is an extra, carried through as it is.
CORE_COLUMNS = frozenset(DOWNLOAD_SCHEMA.names)


def extra_fields(schema: pa.Schema) -> list[pa.Field]:
    """The extras of a schema, in their order (``_``-prefixed columns are a job's scratch)."""
    return [f for f in schema if f.name not in CORE_COLUMNS and not f.name.startswith("_")]


def with_extras(base: pa.Schema, source: pa.Schema) -> pa.Schema:
    """``base`` followed by the extras of ``source``: what a job writes for that input."""
    return pa.schema(list(base) + extra_fields(source))


# --- the door check ---------------------------------------------------------------------------

# Column names of url+caption lists in the wild (img2dataset's defaults, LAION, COYO, DataComp,
# CC3M/CC12M as img2dataset writes them), compared case-insensitively. align-ingest guesses its
# columns from them; the door check names align-ingest when a job is handed such a list.
URL_NAMES = ("url", "image_url", "img_url", "imageurl")
CAPTION_NAMES = ("caption", "text", "alt", "alt_text", "alttext")


@dataclass(frozen=True)
class Contract:
    """What a job needs of its input files: these columns with these types, and values (no
    nulls) in ``required``; ``made_by`` names the jobs that write such files."""

    name: str
    schema: pa.Schema
    required: tuple[str, ...]
    made_by: str


PAIRS = Contract(
    "pair shards",
    PAIR_SCHEMA,
    ("uid", "url", "alt"),
    "align-crawl, align-ingest or align-filter --rules text",
)
DOWNLOADED = Contract(
    "downloaded image shards", DOWNLOAD_SCHEMA, ("uid", "url", "alt", "status"), "align-download"
)

Opener = Callable[[str], BinaryIO]


def check_files(
    paths: Sequence[str], contract: Contract, open_file: Opener, flag: str = "--input"
) -> pa.Schema:
    """Checks every input file against ``contract`` before any work; returns the first file's
    schema. Raises UsageError with one line naming the file, the column and what to do: not
    Parquet, a column missing or of another type, a null where a value is needed, or files
    whose extras differ (the jobs write one schema per run)."""
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(paths)))) as pool:
        schemas = list(pool.map(lambda path: _check_file(path, contract, open_file, flag), paths))
    first = extra_fields(schemas[0])
    for path, schema in zip(paths, schemas, strict=True):
        if extra_fields(schema) != first:
            raise UsageError(
                f"{flag} {path} has extra columns {_names(extra_fields(schema))} but "
                f"{paths[0]} has {_names(first)}: a run reads files of one schema"
            )
    return schemas[0]


def open_parquet(handle: BinaryIO, head: bytes, where: str, why_not: str) -> pq.ParquetFile:
    """The Parquet file behind ``handle`` (whose first bytes are ``head``), or a one-line
    UsageError: ``{where} is not a Parquet file{why_not}``."""
    if not head.startswith(b"PAR1"):
        raise UsageError(f"{where} is not a Parquet file{why_not}")
    handle.seek(0)
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError) as error:
        detail = str(error).splitlines()[0]
        raise UsageError(f"{where} is not a readable Parquet file ({detail})") from None


def _names(fields: list[pa.Field]) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in fields) + ")" if fields else "none"


def _check_file(path: str, contract: Contract, open_file: Opener, flag: str) -> pa.Schema:
    where = f"{flag} {path}"
    with open_file(path) as handle:
        head = handle.read(4096)
        if not head:
            raise UsageError(
                f"{where} is empty (0 bytes): {contract.name} come from {contract.made_by}"
            )
        parquet = open_parquet(handle, head, where, ": " + _foreign_hint(head, path))
        schema = parquet.schema_arrow
        _check_columns(where, schema, contract, path)
        for name in contract.required:
            nulls = _null_count(parquet, name)
            if nulls:
                raise UsageError(
                    f"{where}: column {name!r} is null in {nulls} of "
                    f"{parquet.metadata.num_rows} rows, but every record of {contract.name} "
                    f"needs one; {_remake_hint(contract, path)}"
                )
    return schema


def _check_columns(where: str, schema: pa.Schema, contract: Contract, path: str) -> None:
    names = set(schema.names)
    missing = [name for name in contract.schema.names if name not in names]
    if missing:
        columns = ", ".join(repr(name) for name in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        plural = "s" if len(missing) > 1 else ""
        hint = _missing_hint(schema, contract, path)
        raise UsageError(f"{where} lacks column{plural} {columns}{more}: {hint}")
    for field in contract.schema:
        got = schema.field(field.name).type
        if got != field.type and not (_is_text(got) and _is_text(field.type)):
            raise UsageError(
                f"{where}: column {field.name!r} is {got}, not {field.type}; "
                f"{_remake_hint(contract, path)}"
            )


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _null_count(parquet: pq.ParquetFile, name: str) -> int:
    """Nulls of a column, from the footer's statistics; a row group without them is read."""
    leaf = next(i for i in range(len(parquet.schema)) if parquet.schema.column(i).path == name)
    nulls = 0
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(leaf).statistics
        if stats is not None and stats.has_null_count:
            nulls += stats.null_count
        else:
            nulls += parquet.read_row_group(group, columns=[name]).column(0).null_count
    return nulls


def looks_like_url_list(names: Sequence[str]) -> bool:
    lowered = {name.lower() for name in names}
    return bool(lowered & set(URL_NAMES)) and bool(lowered & set(CAPTION_NAMES))


def _ingest_hint(path: str) -> str:
    return (
        f"make {PAIRS.name} of a url+caption list with align-ingest --input {path} "
        "--output DIR (--url-col/--caption-col name its columns)"
    )


def _missing_hint(schema: pa.Schema, contract: Contract, path: str) -> str:
    if contract is DOWNLOADED and set(PAIR_SCHEMA.names) <= set(schema.names):
        return "these are pair shards: run align-download on them first"
    if "uid" not in schema.names and looks_like_url_list(schema.names):
        return _ingest_hint(path)
    return f"{contract.name} come from {contract.made_by}"


def _remake_hint(contract: Contract, path: str) -> str:
    if contract is PAIRS:
        return "re-make them with align-ingest, which rejects such rows by name"
    return f"re-make them with {contract.made_by}"


def kind_of(head: bytes) -> str:
    """What a file is by its first bytes: ``parquet``, ``warc``, ``url list`` or ``other``."""
    if head[:2] == b"\x1f\x8b":  # gzip: look at what it holds
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
        except zlib.error:
            return "other"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"WARC/", b"filedesc://")):  # WARC, WAT, or the older ARC
        return "warc"
    text = head.lstrip()
    if b"\x00" not in head and (b"://" in text or text[:1] in (b"[", b"{")):
        return "url list"
    return "other"


def _foreign_hint(head: bytes, path: str) -> str:
    """What a non-Parquet input probably is (by its first bytes), and what to run instead."""
    kind = kind_of(head)
    if kind == "warc":
        return "a WARC file: extract its pairs with align-crawl --input"
    if kind == "url list":
        return _ingest_hint(path)
    return "the jobs exchange Parquet shards (a url+caption list goes through align-ingest)"


def check_crawl_inputs(paths: Sequence[str], open_file: Opener, sample: int = 16) -> None:
    """align-crawl's door: its first ``sample`` inputs must not be Parquet files or URL lists
    (the usual mistakes). Damage inside a WARC file is the crawl's to count, not refused."""
    for path in paths[:sample]:
        with open_file(path) as handle:
            head = handle.read(4096)
        kind = kind_of(head)
        if kind == "parquet":
            raise UsageError(
                f"--input {path} is a Parquet file, not WARC/WAT: pair shards go to "
                "align-filter --rules text or align-download, a url+caption list to align-ingest"
            )
        if kind == "url list":
            raise UsageError(
                f"--input {path} looks like a URL list, not WARC/WAT: {_ingest_hint(path)} "
                "(or crawl a list of page URLs with --page-urls)"
            )
