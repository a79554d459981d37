"""Reads WARC, ARC and WAT files record by record, surviving damage: each bad part is named.

Common Crawl writes one gzip member per record, so a gzip member is the unit of damage: a
truncated or corrupt member becomes one ``Damage`` and reading resumes at the next intact
member. We inflate members with ``zlib`` and split records ourselves rather than use FastWARC's
``ArchiveIterator``: measured on the same file it is as fast (zlib does the work in both), and
FastWARC raises on the first bad member and loses the rest of the file, while Resiliparse's Beam
reader (``resiliparse.beam.warcio``) needs boto3 and logs and drops errors, which would break
the job's accounting. Uncompressed files are read with the same record parser.

ARC files (the Internet Archive's format before WARC, and Common Crawl's in 2008-2012; version
1 or 2 headers, gzipped per record or not) go through the same reader: the first record's
header line says which format a file is in, whatever its name, and each ARC record becomes a
``WarcRecord`` (``format="arc"``) with WARC-style headers, so everything downstream is shared.

A damaged part keeps what could be read of its last record (``Damage.record``, its block cut
where the damage starts): HTML parsers tolerate a missing tail, so the harvest can still take
the pairs of a page that was clipped after its images.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b\x08"
CHUNK = 1 << 16
SALVAGE_STEP = 512  # compressed bytes per step when re-inflating a damaged member
DEFAULT_MAX_RECORD_BYTES = 32 << 20  # a longer record block is clipped (see WarcRecord.clipped)
MAX_LINE = 1 << 16  # a header line longer than this is malformed (bounds memory on garbage)


@dataclass
class WarcRecord:
    """One WARC (or ARC) record: its WARC headers (lower-case names) and its content block."""

    offset: int  # where the record starts: its gzip member's offset, or its byte offset
    headers: dict[str, str]
    block: bytes
    clipped: bool = False  # the block was longer than the reader's cap and was cut there
    inner: int = 0  # index of the record inside a gzip member holding several
    format: str = "warc"  # or "arc": headers were made from an ARC header line
    truncated: bool = False  # the file or member ended (or broke) inside the block

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "").lower()

    @property
    def target_uri(self) -> str:
        return self.headers.get("warc-target-uri", "").strip().strip("<>")

    def source(self, path: str) -> str:
        """``file@offset``: where to find the record again (``+n`` for a later one in a member)."""
        return f"{path}@{self.offset}" + (f"+{self.inner}" if self.inner else "")


@dataclass
class Damage:
    """A part of a file that holds no complete record, and why (a reject reason)."""

    offset: int
    reason: str  # truncated_gzip_member, corrupt_gzip_member, malformed_record, truncated_record
    record: WarcRecord | None = None  # what could be read of its last record, for salvage


class _Damaged(Exception):
    def __init__(self, reason: str, record: WarcRecord | None = None):
        super().__init__(reason)
        self.reason = reason
        self.record = record


class _Format:
    """Which format a file is in (``warc`` or ``arc``), fixed by its first readable record."""

    def __init__(self):
        self.name: str | None = None
        self.arc_fields: int | None = None  # 5 (ARC v1) or 10 (v2), from the file's filedesc

    def accepts(self, name: str) -> bool:
        return self.name in (None, name)

    def starts_record(self, line: bytes) -> bool:
        if line.startswith(b"WARC/"):
            return self.accepts("warc")
        return self.accepts("arc") and arc_header(line, self.arc_fields) is not None


def iter_records(
    stream: BinaryIO, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[WarcRecord | Damage]:
    """Every record of a WARC/ARC/WAT file, gzipped per record or not, in file order."""
    head = stream.read(len(GZIP_MAGIC))
    stream.seek(0)
    file_format = _Format()
    if head == GZIP_MAGIC:
        yield from _gzip_records(stream, max_record_bytes, file_format)
    else:
        yield from _RecordParser(stream, max_record_bytes, 0, file_format).records()


def _gzip_records(stream: BinaryIO, cap: int, file_format: _Format) -> Iterator:
    for offset, data, damage in _gzip_members(stream, cap + (64 << 10)):
        parser = _RecordParser(io.BytesIO(data), cap, offset, file_format, member=True)
        if not damage:
            yield from parser.records()
            continue
        # Records complete before the damage are read; the last one goes with the damage.
        items = list(parser.records())
        last = items.pop() if items else None
        yield from items
        yield Damage(offset, damage, last.record if isinstance(last, Damage) else last)


def _gzip_members(stream: BinaryIO, cap: int) -> Iterator[tuple[int, bytes, str | None]]:
    """(offset, inflated bytes, None) per member; (offset, bytes up to the damage, reason) per
    damaged part."""
    offset, buffer = 0, stream.read(CHUNK)
    while buffer:
        try:
            data, buffer, size = _inflate_member(stream, buffer, cap)
        except _Damaged as damage:
            yield offset, _salvage_member(stream, offset, cap), damage.reason
            offset = _next_member(stream, offset + 1)
            if offset is None:
                return
            stream.seek(offset)
            buffer = stream.read(CHUNK)
            continue
        yield offset, data, None
        offset += size
        if not buffer:
            buffer = stream.read(CHUNK)


def _inflate_member(stream: BinaryIO, buffer: bytes, cap: int) -> tuple[bytes, bytes, int]:
    """Inflates the member at the start of ``buffer``: (data up to cap, leftover, its size)."""
    inflater = zlib.decompressobj(31)
    parts, kept, fed = [], 0, 0
    data = buffer
    while True:
        try:
            out = inflater.decompress(data)
        except zlib.error:
            raise _Damaged("corrupt_gzip_member") from None
        fed += len(data)
        if kept < cap:
            parts.append(out[: cap - kept])
            kept += len(parts[-1])
        if inflater.eof:
            break
        data = stream.read(CHUNK)
        if not data:
            raise _Damaged("truncated_gzip_member")
    leftover = inflater.unused_data
    return b"".join(parts), leftover, fed - len(leftover)


def _salvage_member(stream: BinaryIO, offset: int, cap: int) -> bytes:
    """What a damaged member inflates to before its damage.

    Inflated as raw deflate after its gzip header, so a bad checksum loses nothing, and in small
    steps, because zlib keeps no output of a failing call: a corrupt spot costs the output of
    one step. Only damaged members pay for this.
    """
    stream.seek(offset)
    start = _gzip_header_size(stream.read(CHUNK))
    if start is None:
        return b""
    stream.seek(offset + start)
    inflater, parts, kept = zlib.decompressobj(-15), [], 0
    while kept < cap and not inflater.eof:
        data = stream.read(SALVAGE_STEP)
        if not data:
            break
        try:
            out = inflater.decompress(data, cap - kept)
        except zlib.error:
            break
        parts.append(out)
        kept += len(out)
    return b"".join(parts)


def _gzip_header_size(head: bytes) -> int | None:
    """The length of the gzip member header at the start of ``head`` (RFC 1952), or None."""
    if not head.startswith(GZIP_MAGIC) or len(head) < 10:
        return None
    flags, position = head[3], 10
    if flags & 4:  # FEXTRA
        position += 2 + int.from_bytes(head[position : position + 2], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            position = head.find(b"\0", position) + 1
            if position == 0:
                return None
    if flags & 2:  # FHCRC
        position += 2
    return position if position <= len(head) else None


def _next_member(stream: BinaryIO, start: int) -> int | None:
    """The offset of the next plausible gzip member at or after ``start``, or None."""
    position = start
    while True:
        stream.seek(position)
        window = stream.read(CHUNK)
        if len(window) < len(GZIP_MAGIC):
            return None
        index = window.find(GZIP_MAGIC)
        if index < 0:
            position += len(window) - len(GZIP_MAGIC) + 1
            continue
        candidate = position + index
        if _starts_member(stream, candidate):
            return candidate
        position = candidate + 1


def _starts_member(stream: BinaryIO, offset: int) -> bool:
    """Whether inflating from ``offset`` gets through its first 64 kB without an error."""
    stream.seek(offset)
    try:
        zlib.decompressobj(31).decompress(stream.read(CHUNK))
    except zlib.error:
        return False
    return True


class _RecordParser:
    """Splits a byte stream into records; a bad one becomes Damage and parsing resyncs."""

    def __init__(
        self, stream: BinaryIO, cap: int, base_offset: int, file_format: _Format, member=False
    ):
        self.stream = stream
        self.cap = cap
        self.base_offset = base_offset
        self.format = file_format
        self.member = member  # offsets are the member's; records are numbered inside it
        self.pending: bytes | None = None  # a record's first line found while resyncing
        self.count = 0

    def _readline(self) -> bytes:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        return self.stream.readline(MAX_LINE)

    def records(self) -> Iterator[WarcRecord | Damage]:
        while True:
            position = self.stream.tell() - len(self.pending or b"")
            line = self._readline()
            while line in (b"\r\n", b"\n"):
                position = self.stream.tell()
                line = self._readline()
            if not line:
                return
            offset = self.base_offset if self.member else self.base_offset + position
            try:
                record = self._record(line, offset)
            except _Damaged as damage:
                if damage.record is not None:
                    damage.record.inner = self.count if self.member else 0
                yield Damage(offset, damage.reason, damage.record)
                self._resync()
                continue
            record.inner = self.count if self.member else 0
            self.count += 1
            yield record

    def _record(self, first_line: bytes, offset: int) -> WarcRecord:
        if first_line.startswith(b"WARC/") and self.format.accepts("warc"):
            headers = self._headers()
            record_format = "warc"
        else:
            accepted = self.format.accepts("arc")
            headers = arc_header(first_line, self.format.arc_fields) if accepted else None
            if headers is None:
                raise _Damaged("malformed_record")
            record_format = "arc"
        try:
            length = int(headers["content-length"])
        except (KeyError, ValueError):
            raise _Damaged("malformed_record") from None
        if length < 0:
            raise _Damaged("malformed_record")
        block = self.stream.read(min(length, self.cap))
        record = WarcRecord(offset, headers, block, clipped=length > self.cap)
        record.format = record_format
        if len(block) < min(length, self.cap):
            record.truncated = True
            raise _Damaged("truncated_record", record)
        if length > self.cap:
            self.stream.seek(length - self.cap, io.SEEK_CUR)
        self.format.name = record_format
        if record_format == "arc" and record.type == "warcinfo":
            self.format.arc_fields = self.format.arc_fields or arc_version_fields(block)
        return record

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        name = None
        while True:
            line = self.stream.readline(MAX_LINE)
            if not line:
                raise _Damaged("truncated_record")
            if not line.endswith(b"\n"):
                raise _Damaged("malformed_record")
            if line in (b"\r\n", b"\n"):
                return headers
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text[:1] in (" ", "\t") and name:  # folded continuation line
                headers[name] += " " + text.strip()
                continue
            name, colon, value = text.partition(":")
            if not colon:
                raise _Damaged("malformed_record")
            name = name.strip().lower()
            headers.setdefault(name, value.strip())

    def _resync(self) -> None:
        """Skips to the next line that starts a record of the file's format."""
        while True:
            line = self.stream.readline(MAX_LINE)
            if not line or self.format.starts_record(line):
                self.pending = line or None
                return


# An ARC header line: URL IP-address Archive-date Content-type [v2: Result-code Checksum
# Location Offset Filename] Archive-length. The URL may hold spaces (it takes the surplus).
ARC_V1_FIELDS, ARC_V2_FIELDS = 5, 10
_ARC_DATE = re.compile(r"\d{8,17}")


def arc_header(line: bytes, fields: int | None = None) -> dict[str, str] | None:
    """WARC-style headers for an ARC record's header line, or None if it is not one.

    ``fields`` is 5 or 10 when the file's version block said so; otherwise a line of exactly
    ten fields whose fifth is an HTTP result code is version 2.
    """
    if not line.endswith(b"\n") or len(line) > MAX_LINE:
        return None
    parts = line.decode("utf-8", "replace").rstrip("\r\n").split(" ")
    if fields is None:
        v2 = len(parts) == ARC_V2_FIELDS and (parts[4].isdigit() or parts[4] == "-")
        fields = ARC_V2_FIELDS if v2 else ARC_V1_FIELDS
    if len(parts) < fields:
        return None
    url = " ".join(parts[: len(parts) - fields + 1]).strip()
    ip, date, mime = parts[len(parts) - fields + 1 : len(parts) - fields + 4]
    length = parts[-1]
    if ":" not in url or not _ARC_DATE.fullmatch(date) or not length.isdigit():
        return None
    scheme = url.split(":", 1)[0].lower()
    record_type = {"filedesc": "warcinfo", "http": "response", "https": "response"}
    return {
        "warc-type": record_type.get(scheme, "resource"),
        "warc-target-uri": url,
        "warc-date": date,
        "warc-ip-address": ip,
        "content-type": mime,
        "content-length": length,
    }


def arc_version_fields(filedesc_block: bytes) -> int | None:
    """5 or 10: the field count of a filedesc record's URL-record definition (its 2nd line)."""
    lines = filedesc_block.split(b"\n", 2)
    if len(lines) < 2:
        return None
    count = len(lines[1].split())
    return count if count in (ARC_V1_FIELDS, ARC_V2_FIELDS) else None


@dataclass
class HttpResponse:
    """The HTTP message in a response record's block."""

    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its first value,
    # except REPEATED_HEADERS, whose lines are joined by newlines
    payload: bytes


_HEADER_END = re.compile(rb"\r?\n\r?\n")  # the first empty line, CRLF or bare LF (ClueWeb09)


# Headers whose every line counts (a reservation may sit on a second ``X-Robots-Tag`` line);
# their repeated lines are joined by newlines, which pipeline/fetch/consent.py splits again.
REPEATED_HEADERS = frozenset({"x-robots-tag", "tdm-reservation"})


def parse_http_response(block: bytes) -> HttpResponse | None:
    """Status, headers and payload of an HTTP response, or None if the block is not one."""
    if not block.startswith(b"HTTP/"):
        return None
    end = _HEADER_END.search(block)
    if end is None:
        return None
    lines = block[: end.start()].decode("latin-1").split("\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip().lower()
            if name in headers and name in REPEATED_HEADERS:
                headers[name] += "\n" + value.strip()
            else:
                headers.setdefault(name, value.strip())
    return HttpResponse(status, headers, block[end.end() :])
