"""URL-list files in, Arrow batches out: CSV, TSV, JSON lines, JSON arrays and Parquet, gzip
or not, read in bounded pieces (never a whole file in memory).

Two steps. ``sniff`` looks at a file's head (or Parquet footer) before any work: its format,
whether it is gzip, its column names, whether a text file has a header. ``read_unit`` reads
one unit of work: a byte range of an uncompressed TSV or JSON-lines file (split at line
starts, as Beam's text source splits), a run of row groups of a Parquet file, or a whole
CSV, JSON array or gzip file (a quoted CSV field may hold a newline; gzip cannot seek). It
yields ``Chunk``s: a table of ``url``, ``caption``, ``source`` and the extras, plus the rows
the format itself could not read (``bad_row``, ``not_utf8``).

Text formats give their extras as text (what the file holds); Parquet keeps its types.
Where a row came from (``source``): ``file@byte offset`` of its line for TSV and JSON lines,
``file#n`` for the n-th record (from 0) of Parquet, CSV and JSON arrays.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from commandline.flags import UsageError
from pipeline.ingest.clean import BAD_ROW, NOT_UTF8
from pipeline.ingest.columns import Layout, is_header
from pipeline.ingest.settings import FORMATS
from pipeline.records import open_parquet

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl"}
EXTENSIONS.update({".ndjson": "jsonl", ".parquet": "parquet", ".txt": "txt"})
SPLITTABLE = ("tsv", "jsonl")  # line-based: a byte range starts at the next line start
HEAD_BYTES = 1 << 16  # what sniffing reads of a text file
BLOCK_BYTES = 4 << 20  # text read per chunk
BATCH_ROWS = 1 << 16  # Parquet and JSON-array rows per chunk
SAMPLE_ROWS = 1000  # JSON records whose keys name a JSON file's columns

Opener = Callable[..., BinaryIO]


@dataclass(frozen=True)
class Sniffed:
    """What the head of a file says: format, gzip, columns, header, a first data row."""

    path: str
    format: str  # one of FORMATS; "jsonl" also for a .json file of JSON lines
    gzip: bool
    names: tuple[str, ...]
    header: bool = False
    first_row: tuple[str | None, ...] | None = None  # of a file without a header
    schema: pa.Schema | None = None  # a Parquet file's
    row_groups: tuple[int, ...] = ()  # a Parquet file's rows per row group
    row_bytes: float = 100.0  # a text file's stored bytes per line, as its head has them

    def estimated_rows(self, size: int) -> int:
        """Rows of the file: exact for Parquet, from its size for text (sizes shards)."""
        if self.row_groups:
            return sum(self.row_groups)
        return int(size / self.row_bytes)


@dataclass(frozen=True)
class Unit:
    """One piece of work: bytes [start, stop) of a text file (stop None: to the end), or row
    groups [start, stop) of a Parquet file."""

    sniffed: Sniffed
    layout: Layout
    start: int = 0
    stop: int | None = None


@dataclass
class Chunk:
    table: pa.Table  # url, caption, source, extras
    bad: list[tuple[str, str, str]] = field(default_factory=list)  # (source, reason, detail)


def format_of(path: str, asked: str) -> str:
    """The format a file is read as: ``asked``, or by its name (``.gz`` aside)."""
    if asked != "auto":
        return asked.removesuffix(".gz")
    name = path.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    extension = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    found = EXTENSIONS.get(extension)
    if found is None:
        raise UsageError(
            f"--input {path}: cannot tell its format from the name; use --input-format "
            f"{'|'.join(FORMATS)}"
        )
    if found == "txt":
        raise UsageError(
            f"--input {path}: a txt list holds URLs without captions, and ALIGN learns from "
            "url+caption pairs: give a csv, tsv, json(l) or parquet list with a caption column"
        )
    return found


def _decompressed_head(head: bytes) -> tuple[bytes, float]:
    """(the text the gzip head holds, stored bytes per byte of text)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text = inflate.decompress(head, HEAD_BYTES)
    consumed = len(head) - len(inflate.unconsumed_tail)
    return text, consumed / max(1, len(text))


def sniff(path: str, file_format: str, header: str, open_raw: Opener) -> Sniffed:
    """Reads a file's head (or footer) to learn its columns; UsageError when it is not a
    file of ``file_format`` (empty, binary, not JSON...)."""
    with open_raw(path) as handle:
        head = handle.read(HEAD_BYTES)
        if not head:
            raise UsageError(f"--input {path} is empty (0 bytes)")
        gzip = head[:2] == b"\x1f\x8b"
        if file_format == "parquet":
            return _sniff_parquet(path, handle, head)
    stored = 1.0
    if gzip:
        try:
            head, stored = _decompressed_head(head)
        except zlib.error:
            raise UsageError(f"--input {path} is not a readable gzip file") from None
    if head.startswith(b"PAR1"):
        raise UsageError(f"--input {path} is a Parquet file: use --input-format parquet")
    if b"\x00" in head:
        raise UsageError(f"--input {path} is not {file_format} text (it holds NUL bytes)")
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    if text.count("\ufffd") > max(8, len(text) // 100):  # a stray bad row is the rows' to name
        raise UsageError(
            f"--input {path} is not UTF-8 {file_format} text; convert it first, e.g. "
            "iconv -f latin1 -t utf-8"
        )
    if file_format in ("json", "jsonl"):
        sniffed = _sniff_json(path, text, gzip, file_format)
    else:
        sniffed = _sniff_delimited(path, text, gzip, file_format, header)
    lines = head.count(b"\n") or 1
    return dataclasses.replace(sniffed, row_bytes=head.rfind(b"\n") / lines * stored or 100.0)


def _sniff_parquet(path: str, handle: BinaryIO, head: bytes) -> Sniffed:
    parquet = open_parquet(handle, head, f"--input {path}", " (no PAR1 magic)")
    metadata = parquet.metadata
    groups = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
    schema = parquet.schema_arrow
    return Sniffed(path, "parquet", False, tuple(schema.names), schema=schema, row_groups=groups)


def _complete_lines(text: str) -> list[str]:
    """The head's lines, less a last one the head may have cut."""
    lines = text.split("\n")
    return [line.rstrip("\r") for line in (lines[:-1] if len(lines) > 1 else lines)]


def _sniff_delimited(path: str, text: str, gzip: bool, fmt: str, header: str) -> Sniffed:
    lines = [line for line in _complete_lines(text) if line]
    if not lines:
        raise UsageError(f"--input {path} holds no {fmt} line")
    if fmt == "tsv":
        first = lines[0].split("\t")
    else:
        first = next(csv.reader(io.StringIO("\n".join(lines[:50]))), [])
    has_header = header == "yes" or (header == "auto" and is_header(first))
    if has_header:
        if len(set(first)) != len(first) or not all(first):
            raise UsageError(
                f"--input {path}: its header {first[:8]} has empty or repeated names; "
                "use --header no and name columns by position (--url-col 1)"
            )
        return Sniffed(path, fmt, gzip, tuple(first), header=True)
    names = tuple(str(index) for index in range(len(first)))
    return Sniffed(path, fmt, gzip, names, header=False, first_row=tuple(first))


def _sniff_json(path: str, text: str, gzip: bool, fmt: str) -> Sniffed:
    start = text.lstrip()[:1]
    if start == "[":
        records, kind = _json_array_head(text), "json"
    elif start == "{":
        records, kind = [], "jsonl"
        for line in _complete_lines(text)[:SAMPLE_ROWS]:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    break
    else:
        raise UsageError(f"--input {path} is not JSON lines or a JSON array of objects")
    records = [record for record in records if isinstance(record, dict)]
    if not records:
        raise UsageError(
            f"--input {path}: no JSON object in its first lines (one object per line, or an "
            "array of objects, each holding a url and a caption)"
        )
    names = tuple(dict.fromkeys(key for record in records for key in record))
    return Sniffed(path, kind, gzip, names)


def _json_array_head(text: str) -> list:
    decoder, records = json.JSONDecoder(), []
    position = text.index("[") + 1
    while len(records) < SAMPLE_ROWS:
        position = _skip_separators(text, position)
        if position >= len(text) or text[position] == "]":
            break
        try:
            record, position = decoder.raw_decode(text, position)
        except ValueError:
            break
        records.append(record)
    return records


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n,":
        position += 1
    return position


# --- units ------------------------------------------------------------------------------------


def plan_units(sniffed: Sniffed, layout: Layout, size: int, unit_bytes: int, unit_rows: int):
    """The units of one file: byte ranges of about ``unit_bytes`` (uncompressed TSV, JSON
    lines), runs of row groups of about ``unit_rows`` (Parquet), else the whole file."""
    if sniffed.format == "parquet":
        units, start, rows = [], 0, 0
        for index, count in enumerate(sniffed.row_groups):
            rows += count
            if rows >= unit_rows:
                units.append(Unit(sniffed, layout, start, index + 1))
                start, rows = index + 1, 0
        if start < len(sniffed.row_groups) or not units:
            units.append(Unit(sniffed, layout, start, len(sniffed.row_groups)))
        return units
    if sniffed.format in SPLITTABLE and not sniffed.gzip and size > unit_bytes:
        edges = list(range(0, size, unit_bytes))
        return [Unit(sniffed, layout, s, s + unit_bytes) for s in edges[:-1]] + [
            Unit(sniffed, layout, edges[-1], None)
        ]
    return [Unit(sniffed, layout)]


# --- reading ------------------------------------------------------------------------------------


def read_unit(unit: Unit, open_file: Opener) -> Iterator[Chunk]:
    """The unit's rows, chunk by chunk; ``open_file(path, gzip)`` gives the file's bytes."""
    sniffed = unit.sniffed
    if sniffed.format == "parquet":
        yield from _read_parquet(unit, open_file)
        return
    with open_file(sniffed.path, sniffed.gzip) as handle:
        if sniffed.format == "csv":
            yield from _read_csv(unit, handle)
        elif sniffed.format == "json":
            yield from _read_json_array(unit, handle)
        else:
            for offset, block in line_blocks(handle, unit.start, unit.stop):
                if offset == 0:
                    offset, block = _past_header(unit, block)
                if block:
                    yield _lines_chunk(unit, offset, block)


def _past_header(unit: Unit, block: bytes) -> tuple[int, bytes]:
    """The file's first block without its BOM and its header line: (offset, rest)."""
    skip = 3 if block.startswith(b"\xef\xbb\xbf") else 0
    if unit.sniffed.header:
        skip = block.index(b"\n", skip) + 1
    return skip, block[skip:]


def line_blocks(
    handle: BinaryIO, start: int, stop: int | None, block_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of blocks of whole lines: exactly the lines that start in [start,
    stop), each ending in a newline (one is added to a last line without). A line that
    starts before ``start`` belongs to the unit before, however far it reaches."""
    position, buffer, pending = 0, b"", b""
    if start > 0:  # skip to the first line start at or after ``start``
        handle.seek(start - 1)
        position = start - 1
        while True:
            data = handle.read(block_bytes)
            found = data.find(b"\n")
            if not data:
                return
            if found >= 0:
                position, pending = position + found + 1, data[found + 1 :]
                break
            position += len(data)
    while stop is None or position < stop:
        data, pending = pending or handle.read(block_bytes), b""  # one block at a time
        buffer += data
        if not data and buffer and not buffer.endswith(b"\n"):
            buffer += b"\n"
        cut = buffer.rfind(b"\n") + 1
        if cut:
            lines, buffer = buffer[:cut], buffer[cut:]
            if stop is not None and position + len(lines) > stop:
                yield position, lines[: lines.find(b"\n", stop - position - 1) + 1]
                return
            yield position, lines
            position += len(lines)
        if not data:
            return


def _lines_chunk(unit: Unit, offset: int, block: bytes) -> Chunk:
    """A block of TSV or JSON lines as a chunk (blank lines are not rows)."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    carriage = np.zeros(len(ends), dtype=bool)
    carriage[ends > starts] = data[ends[ends > starts] - 1] == 13
    blank = ends - starts - carriage == 0
    sources = _sources(f"{unit.sniffed.path}@", starts[~blank] + offset)
    if unit.sniffed.format == "tsv" and not blank.any():
        fast = _tsv_fast(unit, block, sources)
        if fast is not None:
            return fast
    bounds = np.concatenate([starts, [len(block)]])
    lines = pa.Array.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(bounds), pa.py_buffer(block)]
    )
    lines = pc.filter(pc.binary_slice(lines, 0, -1), pa.array(~blank))  # the newlines
    crlf = pc.ends_with(lines, b"\r")
    if pc.any(crlf).as_py():
        lines = pc.if_else(crlf, pc.binary_slice(lines, 0, -1), lines)
    text, bad = _as_text(lines, sources)
    if unit.sniffed.format == "tsv":
        table, more = _tsv_table(text.column(0), unit, text.column(1))
    else:
        table, more = _jsonl_table(text.column(0), unit, text.column(1))
    return Chunk(table, bad + more)


def _tsv_fast(unit: Unit, block: bytes, sources: pa.Array) -> Chunk | None:
    """Arrow's CSV parser on a block of TSV lines (10x our own split), or None when its rows
    might not be the block's lines one for one: a lone carriage return (Arrow ends a row
    there), a row of the wrong width, bytes that are not UTF-8."""
    if block.count(b"\r") != block.count(b"\r\n"):
        return None
    wrong = []
    names, needed = list(unit.sniffed.names), unit.layout.needed
    try:
        table = pa_csv.read_csv(
            io.BytesIO(block),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter="\t",
                quote_char=False,
                invalid_row_handler=lambda row: wrong.append(row) or "skip",
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(needed, pa.string()),
                include_columns=needed,
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if wrong or table.num_rows != len(sources):
        return None
    columns = {key: table.column(name) for key, name in _targets(unit.layout)}
    return Chunk(_chunk_table(columns, sources, unit.layout))


def _sources(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` + each number, built by Arrow (a Python f-string per row costs more)."""
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def _as_text(lines: pa.Array, sources: pa.Array) -> tuple[pa.Table, list]:
    """(table of UTF-8 lines and their sources, the rows that are not UTF-8 as bad rows)."""
    try:
        text = lines.cast(pa.large_string())
        return pa.table({"line": text, "source": sources}), []
    except pa.ArrowInvalid:
        pass
    valid, bad = [], []
    for value, source in zip(lines.to_pylist(), sources.to_pylist(), strict=True):
        try:
            value.decode("utf-8")
            valid.append(True)
        except UnicodeDecodeError as error:
            valid.append(False)
            bad.append((source, NOT_UTF8, str(error)[:200]))
    mask = pa.array(valid)
    good = pc.filter(lines, mask).cast(pa.large_string())
    return pa.table({"line": good, "source": pc.filter(sources, mask)}), bad


def _tsv_table(lines, unit: Unit, sources) -> tuple[pa.Table, list]:
    fields = pc.split_pattern(lines, "\t")
    width = len(unit.sniffed.names)
    fits = pc.equal(pc.list_value_length(fields), width)
    bad = [
        (source, BAD_ROW, f"{len(row)} tab-separated fields, expected {width}")
        for source, row in zip(
            pc.filter(sources, pc.invert(fits)).to_pylist(),
            pc.filter(fields, pc.invert(fits)).to_pylist(),
            strict=True,
        )
    ]
    fields = pc.filter(fields, fits)
    index = {name: position for position, name in enumerate(unit.sniffed.names)}
    columns = {key: pc.list_element(fields, index[name]) for key, name in _targets(unit.layout)}
    return _chunk_table(columns, pc.filter(sources, fits), unit.layout), bad


def _targets(layout: Layout) -> list[tuple[str, str]]:
    """(column of the chunk, column of the file)."""
    return [("url", layout.url), ("caption", layout.caption)] + [
        (output, name) for name, output in layout.extras
    ]


def _chunk_table(columns: dict, sources, layout: Layout) -> pa.Table:
    columns = dict(columns)
    columns["source"] = sources
    names = ["url", "caption", "source"] + [output for _, output in layout.extras]
    return pa.table({name: _plain(columns[name]) for name in names})


def plain_type(kind: pa.DataType) -> pa.DataType:
    """Large and dictionary types as their plain forms, so every chunk has one schema."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_large_string(kind):
        return pa.string()
    return pa.binary() if pa.types.is_large_binary(kind) else kind


def _plain(column):
    plain = plain_type(column.type)
    return column if plain == column.type else column.cast(plain)


def json_text(value) -> str | None:
    """A JSON value as an extra's text: strings as they are, other values as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _records_table(
    records: list, sources: list[str], layout: Layout, unreadable: str | None = None
) -> tuple[pa.Table, list]:
    """JSON records -> chunk table; a record that is not an object is a bad row (a None
    record: ``unreadable`` says why). A url or caption that is not a string is read as its
    JSON text (and judged as such)."""
    bad, good, kept_sources = [], [], []
    for record, source in zip(records, sources, strict=True):
        if isinstance(record, dict):
            good.append(record)
            kept_sources.append(source)
        else:
            why = unreadable if record is None and unreadable else None
            why = why or f"a JSON {type(record).__name__}, not an object"
            bad.append((source, BAD_ROW, why[:200]))
    columns = {
        key: pa.array([json_text(record.get(name)) for record in good], pa.string())
        for key, name in _targets(layout)
    }
    return _chunk_table(columns, pa.array(kept_sources, pa.string()), layout), bad


def _jsonl_table(lines, unit: Unit, sources) -> tuple[pa.Table, list]:
    records, record_sources, bad = [], [], []
    for line, source in zip(lines.to_pylist(), sources.to_pylist(), strict=True):
        try:
            records.append(json.loads(line))
            record_sources.append(source)
        except ValueError as error:
            bad.append((source, BAD_ROW, f"not JSON: {error}"[:200]))
    table, more = _records_table(records, record_sources, unit.layout)
    return table, bad + more


def _read_json_array(unit: Unit, handle: BinaryIO) -> Iterator[Chunk]:
    """A JSON array of objects, decoded one element at a time from a bounded buffer. Past a
    syntax error (or bytes that are not UTF-8) no element can be found again: the rest of
    the file is one bad row."""
    decoder, path = json.JSONDecoder(), unit.sniffed.path
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    text, position, index, started, ended = "", 0, 0, False, False
    records, sources, detail = [], [], None
    while not ended:
        if position > BLOCK_BYTES // 2:
            text, position = text[position:], 0
        data = handle.read(BLOCK_BYTES // 4)
        try:
            text += utf8.decode(data, final=not data)
        except UnicodeDecodeError as error:
            records.append(None)
            sources.append(f"{path}#{index}")
            yield Chunk(*_records_table(records, sources, unit.layout, f"not UTF-8: {error}"))
            return
        if not started:
            position = _skip_separators(text, 0)
            started = position < len(text)
            position += started  # the "["
        while started:
            position = _skip_separators(text, position)
            if position >= len(text):
                break
            if text[position] == "]":
                ended = True
                break
            try:
                record, end = decoder.raw_decode(text, position)
            except ValueError as error:
                if data:
                    break  # an element cut by the block: read on
                record, end, ended = None, len(text), True
                detail = f"not JSON from here on: {error}"
            records.append(record)
            sources.append(f"{path}#{index}")
            index, position = index + 1, end
            if len(records) >= BATCH_ROWS:
                yield Chunk(*_records_table(records, sources, unit.layout))
                records, sources = [], []
        ended = ended or not data
    if records or index == 0:
        yield Chunk(*_records_table(records, sources, unit.layout, detail))


def _read_csv(unit: Unit, handle: BinaryIO) -> Iterator[Chunk]:
    """A whole CSV file with Arrow's streaming reader (quoted fields may span lines)."""
    sniffed, layout = unit.sniffed, unit.layout
    bad_rows: list[tuple[str, str, str]] = []

    def invalid(row) -> str:
        detail = f"{row.actual_columns} fields, expected {row.expected_columns}: {row.text}"
        bad_rows.append((sniffed.path, BAD_ROW, detail[:200]))
        return "skip"

    reader = pa_csv.open_csv(
        handle,
        read_options=pa_csv.ReadOptions(
            column_names=list(sniffed.names),
            skip_rows=1 if sniffed.header else 0,
            block_size=BLOCK_BYTES,
            use_threads=False,
        ),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(layout.needed, pa.binary()),
            include_columns=layout.needed,
            strings_can_be_null=False,
        ),
    )
    index = 0
    for batch in reader:
        sources = _sources(f"{sniffed.path}#", np.arange(batch.num_rows) + index)
        index += batch.num_rows
        columns, bad = _utf8_columns(batch, sources)
        table = {key: columns[name] for key, name in _targets(layout)}
        chunk_sources = pc.filter(sources, columns["__valid__"])
        yield Chunk(_chunk_table(table, chunk_sources, layout), bad_rows + bad)
        bad_rows.clear()
    if bad_rows or index == 0:
        yield Chunk(_chunk_table(_empty(layout), pa.array([], pa.string()), layout), bad_rows)


def _empty(layout: Layout) -> dict:
    return {key: pa.array([], pa.string()) for key, _ in _targets(layout)}


def _utf8_columns(batch: pa.RecordBatch, sources: pa.Array) -> tuple[dict, list]:
    """The batch's binary columns as text; rows with a non-UTF-8 field become bad rows."""
    valid = np.ones(batch.num_rows, dtype=bool)
    for column in batch.columns:
        try:
            column.cast(pa.string())
        except pa.ArrowInvalid:
            for row, value in enumerate(column.to_pylist()):
                try:
                    (value or b"").decode("utf-8")
                except UnicodeDecodeError:
                    valid[row] = False
    mask = pa.array(valid)
    columns = {
        name: pc.filter(column, mask).cast(pa.string())
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    }
    columns["__valid__"] = mask
    bad = [
        (sources[int(row)].as_py(), NOT_UTF8, "a field is not UTF-8")
        for row in np.flatnonzero(~valid)
    ]
    return columns, bad


def _read_parquet(unit: Unit, open_file: Opener) -> Iterator[Chunk]:
    sniffed, layout = unit.sniffed, unit.layout
    first_row = sum(sniffed.row_groups[: unit.start])
    with open_file(sniffed.path, False) as handle:
        # Buffered, not pre-buffered: pages stream in, a row group is not read whole (pyarrow
        # still holds some 40 MB more at the end of a 1M-row group than at its start).
        parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 16)
        groups = list(range(unit.start, unit.stop))
        batches = parquet.iter_batches(BATCH_ROWS, row_groups=groups, columns=layout.needed)
        for batch in batches:
            sources = _sources(f"{sniffed.path}#", np.arange(batch.num_rows) + first_row)
            first_row += batch.num_rows
            columns = {key: batch.column(name) for key, name in _targets(layout)}
            yield Chunk(_chunk_table(columns, sources, layout))
