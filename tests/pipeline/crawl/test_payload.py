"""Specification of payload decoding: declared codings undone, crawler quirks tolerated, counted."""

import gzip
import tracemalloc
import zlib

import pytest

from pipeline.crawl.payload import decode_body, page_body

HTML = b'<html><body><img src="a.jpg" alt="pic"></body></html>'


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    "coding, encode",
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # with the zlib header, as RFC 9110 says
        ("deflate", deflate_raw),  # without, as many servers send it
    ],
)
def test_declared_codings_are_undone(coding, encode):
    body = decode_body({"content-encoding": coding}, encode(HTML))
    assert (body.data, body.reason) == (HTML, None)


def test_brotli_is_undone_when_its_library_is_installed():
    brotli = pytest.importorskip("brotli")
    body = decode_body({"content-encoding": "br"}, brotli.compress(HTML))
    assert (body.data, body.counts["payload/br"]) == (HTML, 1)


def test_zstd_is_undone_when_its_library_is_installed():
    zstandard = pytest.importorskip("zstandard")
    body = decode_body({"content-encoding": "zstd"}, zstandard.ZstdCompressor().compress(HTML))
    assert body.data == HTML


def test_stacked_codings_are_undone_in_reverse_order():
    body = decode_body({"content-encoding": "deflate, gzip"}, gzip.compress(deflate_raw(HTML)))
    assert body.data == HTML


def test_a_decoded_body_under_a_gzip_header_is_used_raw_and_counted():
    body = decode_body({"content-encoding": "gzip"}, b"\n  " + HTML)
    assert (body.data, body.reason) == (b"\n  " + HTML, None)
    assert body.counts["payload/undeclared_identity_body"] == 1


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "compress"])
def test_an_undecodable_body_that_is_not_html_is_rejected(coding):
    assert decode_body({"content-encoding": coding}, b"\x00\x01 binary").reason == (
        "bad_content_encoding"
    )


def test_an_unknown_coding_over_an_html_body_falls_back_to_it():
    body = decode_body({"content-encoding": "sdch"}, HTML)
    assert body.data == HTML and body.counts["payload/undeclared_identity_body"] == 1


def test_chunked_bodies_are_joined():
    chunked = b"5;ext=1\r\n<html\r\n1\r\n>\r\n0\r\nTrailer: x\r\n\r\n"
    body = decode_body({"transfer-encoding": "chunked"}, chunked)
    assert body.data == b"<html>" and body.counts["payload/chunked"] == 1


def test_a_body_declared_chunked_but_stored_whole_is_kept_and_counted():
    body = decode_body({"transfer-encoding": "chunked"}, HTML)
    assert body.data == HTML and body.counts["payload/not_chunked"] == 1


@pytest.mark.parametrize(
    "payload, kept",
    [
        (b"6\r\n<html>\r\n40\r\n<body><im", b"<html><body><im"),  # cut inside a chunk
        (b"6\r\n<html>\r\n4", b"<html>"),  # cut inside a chunk-size line
    ],
)
def test_a_chunked_body_cut_short_keeps_its_chunks(payload, kept):
    body = decode_body({"transfer-encoding": "chunked"}, payload)
    assert body.data == kept and body.counts["payload/cut_short"] == 1


def test_a_gzip_stream_cut_short_keeps_what_decoded():
    stream = gzip.compress(HTML + b"".join(b"<p>%d</p>" % i for i in range(5000)))
    body = decode_body({"content-encoding": "gzip"}, stream[: len(stream) // 2])
    assert body.data.startswith(HTML) and body.counts["payload/cut_short"] == 1


def compressed(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "br":
        return pytest.importorskip("brotli").compress(data, quality=1)
    return pytest.importorskip("zstandard").ZstdCompressor().compress(data)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_decoding_stops_at_the_limit(coding):
    bomb = compressed(coding, b"<html>" + b" " * (50 << 20))
    tracemalloc.start()
    body = decode_body({"content-encoding": coding}, bomb, limit=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(body.data) == (1 << 20) + 1 and body.counts["payload/cut_short"] == 0
    assert peak < 8 << 20  # the 50 MiB never exist


@pytest.mark.parametrize(
    "content_type, payload, reason",
    [
        ("text/html", HTML, None),
        ("text/plain", HTML, None),  # sniffed: starts like a page
        ("text/plain", b"a note that mentions " + HTML, "not_html"),
        (None, HTML, None),
        ("image/png", b"\x89PNG", "not_html"),
    ],
)
def test_the_page_decision_sniffs_only_types_that_say_nothing_useful(content_type, payload, reason):
    headers = {"content-type": content_type} if content_type else {}
    assert page_body(headers, payload, 1 << 20).reason == reason


def test_a_declared_non_html_type_is_not_decoded_at_all():
    body = page_body({"content-type": "image/jpeg", "content-encoding": "gzip"}, b"junk", 100)
    assert body.reason == "not_html" and not body.counts
