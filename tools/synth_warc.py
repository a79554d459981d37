"""WARC and WAT files of the synthetic web, laid out as Common Crawl's, written with warcio.

Record ids and dates derive from the seed and the record's position, and gzip members carry
no timestamp, so the same web always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

EPOCH = dt.datetime(2021, 3, 1, tzinfo=dt.UTC)
USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"


@dataclass
class Capture:
    """One fetched URL: the HTTP response a crawler stored."""

    url: str
    status: int
    content_type: str
    body: bytes
    links: list[dict] | None = None  # for HTML pages: the WAT's Links
    head: dict | None = None  # for HTML pages: the WAT's Head
    revisit: bool = False
    headers: tuple = ()  # extra response headers: (name, value), a name may repeat


class _Ids:
    def __init__(self, seed: int, name: str) -> None:
        self.seed, self.name, self.n = seed, name, 0

    def next(self) -> tuple[str, str]:
        """A WARC-Record-ID and a WARC-Date, both from the seed and the record's position."""
        self.n += 1
        digest = hashlib.sha1(f"{self.seed}:{self.name}:{self.n}".encode()).digest()
        record_id = f"<urn:uuid:{uuid.UUID(bytes=digest[:16])}>"
        date = EPOCH + dt.timedelta(seconds=int.from_bytes(digest[:3], "big") % 86400 + self.n)
        return record_id, date.strftime("%Y-%m-%dT%H:%M:%SZ")


def _warcinfo(writer: WARCWriter, ids: _Ids, filename: str, description: str) -> None:
    record_id, date = ids.next()
    fields = (
        f"software: align-recipe synthweb\r\nformat: WARC File Format 1.0\r\n"
        f"description: {description}\r\nrobots: checked via crawler-commons\r\n"
    ).encode()
    record = writer.create_warc_record(
        None,
        "warcinfo",
        payload=io.BytesIO(fields),
        length=len(fields),
        warc_content_type="application/warc-fields",
        warc_headers_dict={
            "WARC-Record-ID": record_id,
            "WARC-Date": date,
            "WARC-Filename": filename,
        },
    )
    writer.write_record(record)


def _http_headers(capture: Capture) -> StatusAndHeaders:
    reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}.get(capture.status, "OK")
    headers = [
        ("Content-Type", capture.content_type),
        ("Content-Length", str(len(capture.body))),
        ("Server", "synthweb/1.0"),
        ("Connection", "close"),
        *capture.headers,
    ]
    return StatusAndHeaders(f"{capture.status} {reason}", headers, protocol="HTTP/1.1")


def write_warc(path: str, captures: Iterable[Capture], seed: int) -> list[dict]:
    """Writes one gzip WARC (warcinfo, then request/response/metadata per capture) and returns
    the WAT envelopes of its records, in order."""
    name = path.rsplit("/", 1)[-1]
    ids = _Ids(seed, name)
    envelopes: list[dict] = []
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="WARC/1.0")
        _warcinfo(writer, ids, name, "synthetic web crawl")
        for capture in captures:
            envelopes += _write_capture(writer, ids, name, capture)
    return envelopes


def _write_capture(writer: WARCWriter, ids: _Ids, name: str, capture: Capture) -> list[dict]:
    out = []
    request_id, date = ids.next()
    host = capture.url.split("/", 3)[2]
    path = "/" + capture.url.split("/", 3)[3] if capture.url.count("/") >= 3 else "/"
    request_headers = StatusAndHeaders(
        f"GET {path} HTTP/1.1",
        [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "text/html,*/*")],
        is_http_request=True,
    )
    request = writer.create_warc_record(
        capture.url,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        http_headers=request_headers,
        warc_headers_dict={"WARC-Record-ID": request_id, "WARC-Date": date},
    )
    writer.write_record(request)
    out.append(_envelope(name, "request", capture, request_id, date))
    response_id, _ = ids.next()
    record_type = "revisit" if capture.revisit else "response"
    headers = {
        "WARC-Record-ID": response_id,
        "WARC-Date": date,
        "WARC-Concurrent-To": request_id,
        "WARC-IP-Address": host.split(":")[0],
    }
    if capture.revisit:
        headers["WARC-Profile"] = "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"
        headers["WARC-Refers-To-Target-URI"] = capture.url
    response = writer.create_warc_record(
        capture.url,
        record_type,
        payload=io.BytesIO(b"" if capture.revisit else capture.body),
        length=0 if capture.revisit else len(capture.body),
        http_headers=_http_headers(capture),
        warc_headers_dict=headers,
    )
    writer.write_record(response)
    out.append(_envelope(name, record_type, capture, response_id, date))
    metadata_id, _ = ids.next()
    fields = b"fetchTimeMs: 112\r\ncharset-detected: UTF-8\r\n"
    metadata = writer.create_warc_record(
        capture.url,
        "metadata",
        payload=io.BytesIO(fields),
        length=len(fields),
        warc_content_type="application/warc-fields",
        warc_headers_dict={
            "WARC-Record-ID": metadata_id,
            "WARC-Date": date,
            "WARC-Concurrent-To": response_id,
        },
    )
    writer.write_record(metadata)
    out.append(_envelope(name, "metadata", capture, metadata_id, date))
    return out


def _envelope(filename: str, record_type: str, capture: Capture, record_id: str, date: str) -> dict:
    """Common Crawl's WAT JSON for one WARC record (the fields a WAT reader looks at)."""
    envelope: dict = {
        "Format": "WARC",
        "WARC-Header-Length": "0",
        "Block-Digest": "sha1:" + hashlib.sha1(capture.body).hexdigest(),
        "WARC-Header-Metadata": {
            "WARC-Type": record_type,
            "WARC-Target-URI": capture.url,
            "WARC-Date": date,
            "WARC-Record-ID": record_id,
        },
        "Payload-Metadata": {},
    }
    if record_type == "response":
        response: dict = {
            "Response-Message": {"Version": "HTTP/1.1", "Status": str(capture.status)},
            "Headers": {
                "Content-Type": capture.content_type,
                "Content-Length": str(len(capture.body)),
            },
        }
        for name, value in capture.headers:  # a repeated header: its values as a list
            held = response["Headers"].get(name)
            if held is None:
                response["Headers"][name] = value
            else:
                response["Headers"][name] = [*(held if isinstance(held, list) else [held]), value]
        if capture.links is not None:
            response["HTML-Metadata"] = {"Head": capture.head or {}, "Links": capture.links}
        envelope["Payload-Metadata"] = {
            "Actual-Content-Type": "application/http; msgtype=response",
            "HTTP-Response-Metadata": response,
        }
    elif record_type == "request":
        envelope["Payload-Metadata"] = {
            "Actual-Content-Type": "application/http; msgtype=request",
            "HTTP-Request-Metadata": {"Request-Message": {"Method": "GET"}},
        }
    return {
        "Container": {"Filename": filename, "Compressed": True, "Gzip-Metadata": {}},
        "Envelope": envelope,
    }


def write_wat(path: str, envelopes: list[dict], seed: int) -> None:
    """Writes the WAT of a WARC: a warcinfo, then one metadata record per source record."""
    name = path.rsplit("/", 1)[-1]
    ids = _Ids(seed, name)
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="WARC/1.0")
        _warcinfo(writer, ids, name, "synthetic web metadata (WAT)")
        for envelope in envelopes:
            record_id, date = ids.next()
            payload = json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
            header = envelope["Envelope"]["WARC-Header-Metadata"]
            record = writer.create_warc_record(
                header["WARC-Target-URI"],
                "metadata",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="application/json",
                warc_headers_dict={
                    "WARC-Record-ID": record_id,
                    "WARC-Date": date,
                    "WARC-Refers-To": header["WARC-Record-ID"],
                },
            )
            writer.write_record(record)
