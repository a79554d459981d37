"""An HTTP response's body as a browser would render it, and whether it is a page at all.

One decision for every way a response reaches the crawl: a WARC or ARC record's stored message
and a page fetched with ``--page-urls`` (fetched raw, so the same decoder runs). Archives are not
always what their headers say: ClueWeb09 and some Common Crawl 2014 records keep
``Content-Encoding: gzip`` over a body that is already decoded, wget keeps
``Transfer-Encoding: chunked`` over de-chunked bytes, and records cut short end mid-stream. Like
warcio, a declared encoding that does not decode falls back to the raw body, but only when that
body sniffs as HTML, and every tolerance is counted under ``payload/*`` (never silent):

- ``payload/undeclared_identity_body``: the declared content coding did not decode; raw body used;
- ``payload/not_chunked``: declared chunked, stored de-chunked; kept as it is;
- ``payload/cut_short``: a coded or chunked body ends early; what decoded up to the cut is kept;
- ``payload/<coding>``: a coding undone (``chunked``, ``gzip``, ``deflate``, ``br``, ``zstd``).

Decoding stops after ``limit`` bytes (the page cap): a compression bomb costs no more memory
than a page that size. ``br`` and ``zstd`` are undone when their well-kept libraries are installed
(``brotli`` comes with FastWARC, ``zstandard`` with Beam); otherwise they fall back as above.
"""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.crawl.extract import is_html, may_be_html, sniffs_as_html

try:  # optional: see the module docstring
    import brotli
except ImportError:  # pragma: no cover - depends on the installation
    brotli = None
try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_GZIP_NAMES = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity", "none"})


class _Undecodable(Exception):
    """The bytes are not in the declared coding."""


@dataclass
class Body:
    """A response's entity body after its codings were undone, or why it cannot be used."""

    data: bytes = b""
    reason: str | None = None  # a reject name: not_html, bad_content_encoding
    counts: Counter = field(default_factory=Counter)


def page_body(headers: Mapping[str, str], payload: bytes, limit: int) -> Body:
    """The HTML body of a response (lower-case header names), decoded, or why there is none.

    A declared type that is neither HTML nor sniffable is ``not_html`` before anything is
    decoded; a sniffable one (``text/plain``, none, ...) is sniffed after decoding.
    """
    content_type = headers.get("content-type")
    if not may_be_html(content_type):
        return Body(reason="not_html")
    body = decode_body(headers, payload, limit)
    if body.reason is None and not is_html(content_type, body.data):
        body.reason = "not_html"
    return body


def decode_body(headers: Mapping[str, str], payload: bytes, limit: int | None = None) -> Body:
    """Undoes the transfer and content codings the headers declare, tolerantly (see above)."""
    counts = Counter()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        payload = _dechunk(payload, counts)
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",")]
    codings = [coding for coding in codings if coding not in _IDENTITY]
    data = payload
    try:
        for coding in reversed(codings):  # applied in the order listed, so undone backwards
            data = _undo(coding, data, limit, counts)
    except _Undecodable:
        if not sniffs_as_html(payload):
            return Body(reason="bad_content_encoding", counts=counts)
        counts["payload/undeclared_identity_body"] += 1
        data = payload
    if limit is not None and len(data) > limit + 1:
        data = data[: limit + 1]  # one byte over, so the page cap still sees and counts the cut
    return Body(data, None, counts)


def _undo(coding: str, data: bytes, limit: int | None, counts: Counter) -> bytes:
    if coding in _GZIP_NAMES or coding == "deflate":
        # gzip or zlib by their header (47); deflate is also sent raw, without one (-15).
        attempts = (47, -15) if coding == "deflate" else (47,)
        for wbits in attempts:
            try:
                decoded, complete = _inflate(data, wbits, limit)
            except zlib.error:
                continue
            break
        else:
            raise _Undecodable(coding)
    elif coding == "br" and brotli is not None:
        decoded, complete = _unbrotli(data, limit)
    elif coding == "zstd" and zstandard is not None:
        decoded, complete = _unzstd(data, limit)
    else:
        raise _Undecodable(coding)
    if not complete and (not decoded or sniffs_as_html(data)):
        # Nothing decoded (brotli has no magic bytes: any start is a valid prefix), or an
        # unfinished stream whose raw bytes read as HTML: not this coding after all.
        raise _Undecodable(coding)
    counts[f"payload/{'gzip' if coding in _GZIP_NAMES else coding}"] += 1
    if not complete:
        counts["payload/cut_short"] += 1
    return decoded


def _cap(limit: int | None) -> int:
    return 0 if limit is None else limit + 2  # zlib: 0 means no cap


def _inflate(data: bytes, wbits: int, limit: int | None) -> tuple[bytes, bool]:
    """(output, whether the stream ended or the cap was reached); zlib.error if not this coding."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, _cap(limit))
    if not out and not inflater.eof:
        raise zlib.error("no output")  # not even one block: try the next wbits
    capped = limit is not None and len(out) > limit
    return out, inflater.eof or capped


def _unbrotli(data: bytes, limit: int | None) -> tuple[bytes, bool]:
    decompressor = brotli.Decompressor()
    try:
        if limit is None:
            out = decompressor.process(data)
        else:
            out = decompressor.process(data, output_buffer_limit=limit + 2)
    except brotli.error:
        raise _Undecodable("br") from None
    capped = limit is not None and len(out) > limit
    return out, decompressor.is_finished() or capped


def _unzstd(data: bytes, limit: int | None) -> tuple[bytes, bool]:
    decompressor = zstandard.ZstdDecompressor()
    try:
        with decompressor.stream_reader(io.BytesIO(data)) as reader:  # reads at most the cap
            out = reader.read(-1 if limit is None else limit + 2)
        if limit is not None and len(out) > limit:
            return out, True
        stream = decompressor.decompressobj()  # all of it fit under the cap: cheap to redo,
        stream.decompress(data)  # and only this says whether the frame ended
        return out, stream.eof
    except zstandard.ZstdError:
        raise _Undecodable("zstd") from None


def _dechunk(payload: bytes, counts: Counter) -> bytes:
    """Undoes chunked transfer coding; a body that does not start with a chunk is kept as is."""
    out, position = [], 0
    while True:
        end = payload.find(b"\n", position)
        size_field = payload[position:end].split(b";")[0].strip() if end >= 0 else b""
        if not _CHUNK_SIZE.fullmatch(size_field):
            if position == 0:
                counts["payload/not_chunked"] += 1
                return payload
            break  # a chunk line spoilt by the cut: keep the chunks before it
        size = int(size_field, 16)
        if size == 0:
            counts["payload/chunked"] += 1
            return b"".join(out)
        chunk = payload[end + 1 : end + 1 + size]
        out.append(chunk)
        if len(chunk) < size:
            break
        position = end + 1 + size
        position += 2 if payload.startswith(b"\r\n", position) else 1
    counts["payload/chunked"] += 1
    counts["payload/cut_short"] += 1
    return b"".join(out)
