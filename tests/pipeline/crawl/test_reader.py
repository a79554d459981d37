"""Specification of WARC/WAT reading and of what each record yields (pairs or a named reason)."""

import gzip
import io
import json
import random

import pytest

from pipeline.crawl.harvest import HarvestOptions, from_damage, from_warc_record, from_wat_record
from pipeline.crawl.payload import decode_body
from pipeline.warc.reader import Damage, WarcRecord, iter_records, parse_http_response
from tests.pipeline.crawl.warc_write import gzip_member, http_response, page_record, warc_record

OPTIONS = HarvestOptions()


def pages(n: int) -> list[bytes]:
    return [page_record(f"http://site/{i}", f'<img src="{i}.jpg" alt="pic {i}">') for i in range(n)]


def read(data: bytes, **kwargs) -> list:
    return list(iter_records(io.BytesIO(data), **kwargs))


def summary(items: list) -> list:
    return [item.reason if isinstance(item, Damage) else item.target_uri for item in items]


def test_gzipped_and_plain_files_give_the_same_records():
    records = pages(3)
    plain = read(b"".join(records))
    zipped = read(b"".join(gzip_member(r) for r in records))
    assert [r.block for r in plain] == [r.block for r in zipped]
    assert summary(zipped) == ["http://site/0", "http://site/1", "http://site/2"]


def test_record_offsets_point_at_their_gzip_member():
    members = [gzip_member(r) for r in pages(3)]
    offsets = [r.offset for r in read(b"".join(members))]
    assert offsets == [0, len(members[0]), len(members[0]) + len(members[1])]


def damaged(kind: str) -> bytes:
    members = [gzip_member(r) for r in pages(4)]
    if kind == "truncated_middle":
        members[1] = members[1][: len(members[1]) // 2]
    elif kind == "corrupt_middle":
        members[1] = members[1][:12] + b"\x00" * 40 + members[1][52:]
    elif kind == "garbage_between":
        members[1] = b"this is not gzip at all" + members[1]
    return b"".join(members)


@pytest.mark.parametrize(
    "kind, expected",
    [
        (
            "truncated_middle",
            ["http://site/0", "corrupt_gzip_member", "http://site/2", "http://site/3"],
        ),
        (
            "corrupt_middle",
            ["http://site/0", "corrupt_gzip_member", "http://site/2", "http://site/3"],
        ),
        (
            "garbage_between",
            [
                "http://site/0",
                "corrupt_gzip_member",
                "http://site/1",
                "http://site/2",
                "http://site/3",
            ],
        ),
    ],
)
def test_a_damaged_gzip_member_is_named_and_reading_resumes_after_it(kind, expected):
    assert summary(read(damaged(kind))) == expected


def test_a_truncated_last_member_is_named():
    data = b"".join(gzip_member(r) for r in pages(3))
    assert summary(read(data[:-20])) == ["http://site/0", "http://site/1", "truncated_gzip_member"]


def test_a_truncated_plain_record_is_named():
    data = b"".join(pages(2))
    assert summary(read(data[:-30])) == ["http://site/0", "truncated_record"]


def test_a_malformed_record_is_named_and_the_next_one_read():
    bad = b"WARC/1.0\r\nWARC-Type: response\r\nno colon here\r\n\r\nbody\r\n\r\n"
    data = pages(1)[0] + bad + pages(2)[1]
    assert summary(read(data)) == ["http://site/0", "malformed_record", "http://site/1"]


def test_a_record_without_content_length_is_malformed():
    bad = b"WARC/1.0\r\nWARC-Type: response\r\n\r\n"
    assert summary(read(bad + pages(1)[0])) == ["malformed_record", "http://site/0"]


def test_a_block_longer_than_the_cap_is_clipped_and_the_next_record_read():
    big = page_record("http://site/big", b"<p>" + b"x" * 5000)
    records = read(big + pages(1)[0], max_record_bytes=1000)
    assert [len(r.block) for r in records][0] == 1000 and records[0].clipped
    assert summary(records) == ["http://site/big", "http://site/0"]


def test_http_response_is_split_into_status_headers_and_payload():
    response = parse_http_response(b"HTTP/1.1 404 Not Found\r\nContent-Type: a/b\r\n\r\nbody")
    assert (response.status, response.headers, response.payload) == (
        404,
        {"content-type": "a/b"},
        b"body",
    )
    assert parse_http_response(b"GET / HTTP/1.1\r\n\r\n") is None


def test_http_headers_end_at_the_first_empty_line_whatever_its_line_ending():
    # ClueWeb09 writes bare LF headers over bodies that hold CRLF CRLF further on.
    block = b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n<html>\r\n\r\n<p>a: b</p>"
    response = parse_http_response(block)
    assert response.headers == {"content-type": "text/html"}
    assert response.payload == b"<html>\r\n\r\n<p>a: b</p>"


def test_chunked_and_gzip_payloads_are_decoded():
    chunked = {"transfer-encoding": "chunked"}
    assert decode_body(chunked, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").data == b"abcde"
    zipped = decode_body({"content-encoding": "gzip"}, gzip.compress(b"hello"))
    assert zipped.data == b"hello"
    assert decode_body({"content-encoding": "br"}, b"x").reason == "bad_content_encoding"


def record_of(data: bytes) -> WarcRecord:
    (record,) = read(data)
    return record


@pytest.mark.parametrize(
    "data, reason",
    [
        (page_record("http://s/", '<img src="a.jpg" alt="fine">'), None),
        (
            warc_record(b"software: test", "warcinfo", content_type="application/warc-fields"),
            "not_response_record",
        ),
        (warc_record(b"GET / HTTP/1.1\r\n\r\n", "request", "http://s/"), "not_response_record"),
        (warc_record(b"garbage, not http", "response", "http://s/"), "not_http_response"),
        (
            warc_record(http_response(b"\x89PNG...", "image/png"), target_uri="http://s/a.png"),
            "not_html",
        ),
        (
            warc_record(http_response(b"<html>", "text/html", 404), target_uri="http://s/"),
            "http_status_4xx",
        ),
        (page_record("http://s/", "<p>no pictures here</p>"), "no_image_pairs"),
        (page_record("http://s/", '<img src="a.jpg" alt="sniffed">', None), None),
        (
            warc_record(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Content-Encoding: gzip\r\n\r\nnot gz",
                target_uri="http://s/",
            ),
            "bad_content_encoding",
        ),
    ],
)
def test_each_warc_record_is_kept_or_rejected_by_name(data, reason):
    outcome = from_warc_record(record_of(data), "f.warc", OPTIONS)
    assert outcome.reason == reason
    assert bool(outcome.pairs) == (reason is None)


def test_a_kept_record_carries_its_page_and_source():
    outcome = from_warc_record(
        record_of(page_record("http://s/p", '<img src="a.jpg" alt="x">')), "f.warc", OPTIONS
    )
    assert (outcome.page_url, outcome.source, outcome.pairs) == (
        "http://s/p",
        "f.warc@0",
        [("http://s/a.jpg", "x")],
    )


def wat_record(envelope: dict) -> bytes:
    return warc_record(
        json.dumps({"Envelope": envelope}).encode(), "metadata", "http://s/p", "application/json"
    )


def response_envelope(links: list, base: str | None = None, status: str = "200") -> dict:
    head = {"Base": base} if base else {}
    html = {"Head": head, "Links": links}
    return {
        "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": "http://s/dir/p"},
        "Payload-Metadata": {
            "HTTP-Response-Metadata": {
                "Response-Message": {"Status": status},
                "HTML-Metadata": html,
            }
        },
    }


def test_wat_image_links_are_resolved_against_base_and_page():
    links = [
        {"path": "IMG@/src", "url": "a.jpg", "alt": " Fish &amp; chips "},
        {"path": "A@/href", "url": "other.html", "text": "not an image"},
        {"path": "IMG@/src", "url": "b.jpg"},
    ]
    outcome = from_wat_record(
        record_of(wat_record(response_envelope(links, base="/static/"))), "w", OPTIONS
    )
    assert outcome.pairs == [("http://s/static/a.jpg", "Fish & chips")]
    assert outcome.page_url == "http://s/dir/p" and outcome.counts["img/empty_alt"] == 1


@pytest.mark.parametrize(
    "data, reason",
    [
        (warc_record(b"{}", "warcinfo"), "not_metadata_record"),
        (warc_record(b"{not json", "metadata", "http://s/"), "bad_wat_json"),
        (wat_record({"WARC-Header-Metadata": {"WARC-Type": "request"}}), "not_response_metadata"),
        (
            wat_record({"WARC-Header-Metadata": {"WARC-Type": "response"}, "Payload-Metadata": {}}),
            "not_http_response",
        ),
        (wat_record(response_envelope([], status="301")), "http_status_3xx"),
        (wat_record(response_envelope([])), "no_image_pairs"),
    ],
)
def test_each_wat_record_is_kept_or_rejected_by_name(data, reason):
    assert from_wat_record(record_of(data), "w", OPTIONS).reason == reason


DAMAGE = {"truncated_gzip_member", "corrupt_gzip_member", "malformed_record", "truncated_record"}


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_never_crash_the_reader_or_the_extractor(seed):
    rng = random.Random(seed)
    garbage = bytes(rng.randrange(256) for _ in range(20_000))
    records = pages(2)
    for data in (garbage, gzip.compress(garbage), records[0] + garbage + b"\r\n" + records[1]):
        items = read(data)
        for item in items:
            if isinstance(item, Damage):
                assert item.reason in DAMAGE
            else:
                from_warc_record(item, "f", OPTIONS)
    assert summary(items)[0] == "http://site/0" and summary(items)[-1] == "http://site/1"


def test_a_file_without_line_breaks_is_one_damage():
    assert summary(read(b"x" * 300_000)) == ["malformed_record"]


def filler(n: int) -> str:
    return "".join(f"<p>paragraph {i} of the article</p>" for i in range(n))


def clipped(html: str, keep: float) -> list:
    """A good record, then the member of a page cut after ``keep`` of its compressed bytes."""
    member = gzip_member(page_record("http://site/c", html))
    return read(gzip_member(pages(1)[0]) + member[: int(len(member) * keep)])


def salvage(damage: Damage):
    return from_damage(damage, "f.warc.gz", from_warc_record, OPTIONS)


def test_a_clipped_member_keeps_the_page_decoded_up_to_the_cut():
    items = clipped('<img src="a.jpg" alt="before the cut">' + filler(3000), keep=0.6)
    assert summary(items) == ["http://site/0", "truncated_gzip_member"]
    outcome = salvage(items[-1])
    assert (outcome.reason, outcome.pairs) == (None, [("http://site/a.jpg", "before the cut")])
    assert outcome.counts["warc/salvaged"] == 1 and outcome.counts["pages/cut_by_damage"] == 1
    assert outcome.source == "f.warc.gz@" + str(items[-1].offset)


@pytest.mark.parametrize("keep", [0.02, 0.5], ids=["cut_in_the_headers", "cut_before_images"])
def test_a_clipped_member_with_nothing_usable_is_rejected_as_before(keep):
    items = clipped(filler(3000) + '<img src="a.jpg" alt="after the cut">', keep)
    outcome = salvage(items[-1])
    assert (outcome.reason, outcome.pairs) == ("truncated_gzip_member", [])


def test_a_member_with_a_bad_checksum_keeps_its_whole_page():
    member = bytearray(gzip_member(pages(1)[0]))
    member[-8] ^= 0xFF  # the CRC-32 in the trailer
    (damage,) = read(bytes(member))
    assert damage.reason == "corrupt_gzip_member"
    assert salvage(damage).pairs == [("http://site/0.jpg", "pic 0")]


def test_a_truncated_plain_record_keeps_its_page():
    record = page_record("http://site/p", '<img src="a.jpg" alt="kept">' + filler(50))
    (damage,) = read(record[:-200])
    assert damage.reason == "truncated_record" and salvage(damage).pairs == [
        ("http://site/a.jpg", "kept")
    ]
