"""Specification of ARC reading: versions 1 and 2, gzipped per record or not, known by content."""

import io

import pytest

from pipeline.crawl.cli import run
from pipeline.crawl.harvest import HarvestOptions, from_warc_record
from pipeline.stats import read_stats
from pipeline.warc.reader import Damage, iter_records
from tests.pipeline.crawl.warc_write import gzip_member, http_response

V1_SPEC = b"URL IP-address Archive-date Content-type Archive-length"
V2_SPEC = (
    b"URL IP-address Archive-date Content-type Result-code Checksum Location Offset Filename "
    b"Archive-length"
)


def arc_record(
    url: str, block: bytes, mime: str = "text/html", version: int = 1, end: bytes = b"\n"
) -> bytes:
    """One ARC record: its header line, its content, the separating newline (``end``)."""
    fields = [url, "10.0.0.1", "20080430204826", mime]
    if version == 2:
        fields += ["200", "sha1:ABC", "-", "0", "test.arc"]
    return " ".join(fields + [str(len(block))]).encode() + b"\n" + block + end


def arc_file(version: int, pages: list[tuple[str, str]], gzipped: bool = False) -> bytes:
    """A filedesc record, a DNS record, then one response record per (url, html)."""
    spec = V1_SPEC if version == 1 else V2_SPEC
    records = [
        arc_record(
            "filedesc://test.arc",
            f"{version} 0 Test\n".encode() + spec + b"\n\n",
            "text/plain",
            version,
        ),
        arc_record(
            "dns:site.example",
            b"20080430204825\nsite.example. 60 IN A 10.0.0.1\n",
            "text/dns",
            version,
        ),  # fmt: skip
    ]
    records += [
        arc_record(url, http_response(html.encode()), version=version) for url, html in pages
    ]
    return b"".join(gzip_member(r) if gzipped else r for r in records)


PAGES = [
    ("http://site.example/a", '<img src="/one.jpg" alt="first">'),
    ("http://site.example/b", '<p>none</p><img src="two.jpg" alt="second">'),
]


def read(data: bytes) -> list:
    return list(iter_records(io.BytesIO(data)))


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("version", [1, 2])
def test_arc_records_read_as_warc_records(version, gzipped):
    records = read(arc_file(version, PAGES, gzipped))
    assert [(r.format, r.type, r.target_uri) for r in records] == [
        ("arc", "warcinfo", "filedesc://test.arc"),
        ("arc", "resource", "dns:site.example"),
        ("arc", "response", "http://site.example/a"),
        ("arc", "response", "http://site.example/b"),
    ]
    pairs = [from_warc_record(r, "t.arc", HarvestOptions()).pairs for r in records[2:]]
    assert pairs == [
        [("http://site.example/one.jpg", "first")],
        [("http://site.example/two.jpg", "second")],
    ]


def test_gzipped_arc_offsets_point_at_their_members():
    data = arc_file(1, PAGES, gzipped=True)
    offsets = [r.offset for r in read(data)]
    assert offsets[0] == 0 and all(data[o : o + 2] == b"\x1f\x8b" for o in offsets)
    assert len(set(offsets)) == 4


@pytest.mark.parametrize("version", [1, 2])
def test_an_arc_url_with_spaces_keeps_them(version):
    url = "http://s.example/a b.html"
    data = arc_file(version, []) + arc_record(url, http_response(b"<p>x"), version=version)
    assert (read(data)[-1].target_uri, read(data)[-1].headers["content-type"]) == (url, "text/html")


def test_a_version_2_line_is_recognised_without_a_filedesc_record():
    data = arc_record("http://s.example/", http_response(b"<p>x"), version=2)
    (record,) = read(data)
    assert (record.format, record.headers["content-type"]) == ("arc", "text/html")


def test_records_without_the_separating_newline_are_still_read():
    data = b"".join(arc_record(url, http_response(html.encode()), end=b"") for url, html in PAGES)
    assert [r.target_uri for r in read(data)] == [url for url, _ in PAGES]


def test_the_format_is_chosen_by_content_and_holds_for_the_file():
    warc = b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
    items = read(arc_file(1, PAGES[:1]) + warc)
    assert [type(item).__name__ for item in items][-1] == "Damage"
    assert items[-1].reason == "malformed_record"


def test_a_truncated_arc_record_is_named_and_keeps_what_was_read():
    data = arc_file(1, PAGES)
    *_, damage = read(data[:-10])
    assert isinstance(damage, Damage) and damage.reason == "truncated_record"
    assert damage.record.target_uri == "http://site.example/b" and damage.record.truncated


def test_the_job_reads_arc_files_with_exact_accounting(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "old.arc.gz").write_bytes(arc_file(1, PAGES, gzipped=True))
    (tmp_path / "in" / "named-as-warc.warc").write_bytes(arc_file(2, PAGES[1:]))
    run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    stats = read_stats(str(tmp_path / "out"))
    assert stats["balanced"] and (stats["in"], stats["kept"]) == (7, 3)
    assert stats["rejected"] == {"not_response_record": 4}
    counts = stats["counts"]
    assert (counts["arc/response"], counts["arc/warcinfo"], counts["pairs/written"]) == (3, 2, 2)
