"""Writes WARC records (one gzip member each, like Common Crawl) for tests, benchmarks and tools."""

from __future__ import annotations

import gzip
import hashlib


def http_response(body: bytes, content_type: str | None = "text/html", status: int = 200) -> bytes:
    """An HTTP/1.1 response message as a crawler stores it in a response record's block."""
    head = f"HTTP/1.1 {status} X\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


def warc_record(
    block: bytes,
    record_type: str = "response",
    target_uri: str | None = None,
    content_type: str = "application/http; msgtype=response",
) -> bytes:
    """One uncompressed WARC/1.0 record; its id is derived from its content (deterministic)."""
    record_id = hashlib.sha1(record_type.encode() + (target_uri or "").encode() + block)
    lines = [
        "WARC/1.0",
        f"WARC-Type: {record_type}",
        f"WARC-Record-ID: <urn:uuid:{record_id.hexdigest()[:32]}>",
        "WARC-Date: 2024-01-01T00:00:00Z",
    ]
    if target_uri is not None:
        lines.append(f"WARC-Target-URI: {target_uri}")
    lines += [f"Content-Type: {content_type}", f"Content-Length: {len(block)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def gzip_member(record: bytes, level: int = 6) -> bytes:
    """A record as its own gzip member, with a fixed mtime so files are reproducible."""
    return gzip.compress(record, compresslevel=level, mtime=0)


def page_record(uri: str, html: bytes | str, content_type: str | None = "text/html") -> bytes:
    """A response record holding an HTML page fetched from ``uri``."""
    body = html.encode() if isinstance(html, str) else html
    return warc_record(http_response(body, content_type), target_uri=uri)
