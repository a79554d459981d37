"""One archived capture of a URL: where its record is, when it was made, what it answered; and
reading that record back by seeking to its offset (no pass over the file).

A capture is what an index of an archive holds per record (the CDX idea): small, so millions
of them can be shuffled and joined with pairs, while the bytes stay in the WARC/ARC files.
"""

from __future__ import annotations

import io
import itertools
import os
import urllib.parse
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from pipeline.pairs import resolve_url
from pipeline.warc.reader import (
    CHUNK,
    DEFAULT_MAX_RECORD_BYTES,
    GZIP_MAGIC,
    Damage,
    WarcRecord,
    _Damaged,
    _Format,
    _inflate_member,
    _RecordParser,
    _salvage_member,
    parse_http_response,
)

CAPTURE_TYPES = frozenset({"response", "resource", "revisit"})
PAGE_TYPES = ("text/html", "application/xhtml")  # pages: never an image, left out of the index


@dataclass(frozen=True)
class Capture:
    """A record of the archive that answered a URL (a ``response``, ``resource`` or
    ``revisit``): its place, its date, and what a reader needs to resolve it."""

    url: str  # canonical (canonical_url)
    file: str
    offset: int
    inner: int
    date: str  # ISO 8601 UTC, as WARC-Date (an ARC date converted)
    kind: str  # response, resource or revisit
    http_status: int | None  # None: a resource record, or a block that is no HTTP message
    content_type: str
    digest: str  # WARC-Payload-Digest, "" when absent
    location: str  # a 3xx's absolute Location, "" otherwise
    refers_to: str  # a revisit's WARC-Refers-To-Target-URI (canonical), "" otherwise
    refers_date: str  # a revisit's WARC-Refers-To-Date (ISO 8601), "" otherwise
    truncated: bool = False  # the file ended inside the record

    @property
    def source(self) -> str:
        """``file@offset`` (``+n`` for a later record of one gzip member), like a pair's source."""
        return f"{self.file}@{self.offset}" + (f"+{self.inner}" if self.inner else "")


def canonical_url(url: str) -> str | None:
    """The key URLs are matched by: the crawl's resolution (pipeline/pairs.py), the scheme and
    host lower-cased, the fragment dropped (it never reaches a server, so no capture has it)."""
    resolved, _ = resolve_url("", url)
    if resolved is None:
        return None
    parts = urllib.parse.urlsplit(resolved)
    netloc = parts.netloc.rpartition("@")[2].lower()
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))


def iso_date(value: str) -> str:
    """A WARC-Date (ISO 8601) or an ARC date (14 digits) as ISO 8601 UTC seconds; "" if neither."""
    value = (value or "").strip()
    if value.isdigit() and len(value) >= 8:
        d = (value + "000000")[:14]
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    when = when.astimezone(UTC) if when.tzinfo else when
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_of(iso: str) -> float | None:
    if not iso:
        return None
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def capture_of(record: WarcRecord, path: str) -> Capture | None:
    """The capture a record is, or None: not a capture type, no http(s) target, or a page."""
    if record.type not in CAPTURE_TYPES:
        return None
    url = canonical_url(record.target_uri)
    if url is None:
        return None
    status, content_type, location = None, record.headers.get("content-type", ""), ""
    if record.type != "resource":
        response = parse_http_response(record.block)
        if response is not None:
            status = response.status
            content_type = response.headers.get("content-type", "")
            if 300 <= status < 400 and response.headers.get("location"):
                location = canonical_url(urllib.parse.urljoin(url, response.headers["location"]))
    if record.type != "revisit" and (status is None or 200 <= status < 300):
        if content_type.split(";")[0].strip().lower().startswith(PAGE_TYPES):
            return None
    headers = record.headers
    refers_to = headers.get("warc-refers-to-target-uri", "").strip().strip("<>")
    return Capture(
        url=url,
        file=path,
        offset=record.offset,
        inner=record.inner,
        date=iso_date(headers.get("warc-date", "")),
        kind=record.type,
        http_status=status,
        content_type=content_type,
        digest=headers.get("warc-payload-digest", "").strip(),
        location=location or "",
        refers_to=(canonical_url(refers_to) or "") if refers_to else "",
        refers_date=iso_date(headers.get("warc-refers-to-date", "")),
        truncated=record.truncated,
    )


def same_file(path: str, other: str) -> bool:
    """Whether two paths name the same archive file: by name, so a crawl of local copies and
    a download from gs:// still agree."""
    return bool(path) and os.path.basename(path) == os.path.basename(other)


def record_at(
    stream: BinaryIO, offset: int, inner: int = 0, cap: int = DEFAULT_MAX_RECORD_BYTES
) -> WarcRecord | Damage:
    """The record at ``offset`` (the ``inner``-th of its gzip member), read with the same parser
    as a full pass; Damage when it cannot be read whole."""
    stream.seek(offset)
    head = stream.read(len(GZIP_MAGIC))
    stream.seek(offset)
    if head != GZIP_MAGIC:
        items = _RecordParser(stream, cap, 0, _Format()).records()
        return next(items, Damage(offset, "malformed_record"))
    damage = None
    try:
        data, _, _ = _inflate_member(stream, stream.read(CHUNK), cap + (64 << 10))
    except _Damaged as error:
        damage = error.reason
        data = _salvage_member(stream, offset, cap)
    parser = _RecordParser(io.BytesIO(data), cap, offset, _Format(), member=True)
    items = list(itertools.islice(parser.records(), inner + 2))
    if len(items) <= inner:
        return Damage(offset, damage or "malformed_record")
    item = items[inner]
    if damage and isinstance(item, WarcRecord) and len(items) == inner + 1:
        item.truncated = True  # the member broke after (or inside) its last readable record
        return Damage(offset, damage, item)
    return item


def header_values(block: bytes, name: str) -> list[str]:
    """Every value of one header of the HTTP message in a block (X-Robots-Tag may repeat)."""
    end = block.find(b"\r\n\r\n")
    end = block.find(b"\n\n") if end < 0 else end
    head = block[: end if end >= 0 else 0].decode("latin-1")
    wanted = name.lower()
    values = []
    for line in head.split("\n")[1:]:
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == wanted:
            values.append(value.strip())
    return values


def decoded_payload(headers: dict[str, str], payload: bytes) -> bytes:
    """The entity as the server meant it: chunked transfer coding and gzip/deflate content
    coding undone; a declared coding that does not decode leaves the bytes as stored (warcio
    does the same), since archives often store bodies already decoded."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        payload = _dechunk(payload)
    coding = headers.get("content-encoding", "").strip().lower()
    if coding in ("gzip", "x-gzip", "deflate"):
        try:
            wbits = 31 if coding != "deflate" else 15
            payload = zlib.decompressobj(wbits).decompress(payload)
        except zlib.error:
            pass
    return payload


def _dechunk(payload: bytes) -> bytes:
    """Chunked transfer coding undone; a body that is not chunked after all is kept as is."""
    out, position = [], 0
    while True:
        end = payload.find(b"\n", position)
        if end < 0:
            return b"".join(out) if out else payload
        size_text = payload[position:end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return b"".join(out) if out else payload
        if size == 0:
            return b"".join(out)
        out.append(payload[end + 1 : end + 1 + size])
        position = end + 1 + size + 2  # the chunk's CRLF
