"""Specification of the align-crawl job on hand-made WARC and WAT files."""

import json

import apache_beam as beam
import pytest

from pipeline.crawl import job as crawl
from pipeline.crawl.cli import run
from pipeline.crawl.harvest import HarvestOptions
from pipeline.crawl.job import DedupPairs, HarvestFile
from pipeline.pairs import keep_first_per_uid
from pipeline.records import CRAWL_PAIR_SCHEMA, PAIR_SCHEMA, make_uid
from pipeline.shards import read_table, rows_to_table
from pipeline.stats import read_stats
from tests.pipeline.crawl.warc_write import gzip_member, http_response, page_record, warc_record


def img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{alt}">'


def write_warc(path, records: list[bytes], damage_last: bool = False) -> None:
    members = [gzip_member(record) for record in records]
    if damage_last:
        members[-1] = members[-1][:-25]
    path.write_bytes(b"".join(members))


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """Two WARC files: shared pairs across them, skipped records, one truncated member."""
    root = tmp_path_factory.mktemp("crawl")
    (root / "in").mkdir()
    shared = img("http://img.example/shared.jpg", "A shared picture")
    write_warc(
        root / "in" / "a.warc.gz",
        [
            warc_record(b"software: t", "warcinfo", content_type="application/warc-fields"),
            warc_record(b"GET / HTTP/1.1\r\n\r\n", "request", "http://b.example/p1"),
            page_record("http://b.example/p1", shared + img("one.jpg", "First &amp; only")),
            page_record("http://b.example/p2", "<p>no images</p>"),
            warc_record(
                http_response(b"\x89PNG", "image/png"), target_uri="http://b.example/x.png"
            ),
            page_record("http://b.example/p3", img("three.jpg", "lost")),
        ],
        damage_last=True,
    )
    (root / "in" / "b.warc").write_bytes(
        page_record("http://a.example/p0", shared + shared + img("//cdn.example/z.jpg", "Zed"))
    )
    out = root / "out"
    run(["--input", str(root / "in" / "*"), "--output", str(out), "--shards", "2"])
    return root, out


def test_every_record_is_kept_or_rejected_by_name(crawled):
    stats = read_stats(str(crawled[1]))
    assert stats["balanced"] and stats["in"] == 7 and stats["kept"] == 2
    assert stats["rejected"] == {
        "not_response_record": 2,
        "no_image_pairs": 1,
        "not_html": 1,
        "truncated_gzip_member": 1,
    }


def test_a_finished_crawl_ends_with_its_summary(tmp_path, capsys):
    (tmp_path / "a.warc").write_bytes(page_record("http://a.example/", img("x.jpg", "An x")))
    run(["--input", str(tmp_path / "a.warc"), "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("align-crawl: 1 records in ") and "1 kept (100.0%)" in out[0]
    assert out[1] == f"  output: {tmp_path / 'out'}: 4 shards pairs-*.parquet (1 unique pairs)"


def test_a_missing_input_is_one_line_and_makes_no_output_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "nonexistent"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err
        == f"align-crawl: error: --input {tmp_path}/nonexistent: no files match\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_empty_warc_file_is_one_line_and_makes_no_output_folder(tmp_path, capsys):
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "empty.warc.gz"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the file is empty (0 bytes)" in error
    assert not (tmp_path / "out").exists()


def test_a_text_file_named_like_a_warc_is_an_error_not_empty_shards(tmp_path, capsys):
    (tmp_path / "x.warc.gz").write_text("hello, this is not a WARC file\n")
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "x.warc.gz"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error == (
        f"align-crawl: error: --input {tmp_path}/x.warc.gz: no WARC, ARC or WAT record in any file "
        "(1 not WARC/ARC/WAT)\n"
    )


def test_an_empty_file_beside_a_good_one_is_a_warning(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc").write_bytes(page_record("http://a.example/", img("x.jpg", "An x")))
    (tmp_path / "in" / "b.warc.gz").write_bytes(b"")
    stats = run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert stats["kept"] == 1 and stats["counts"]["files/empty"] == 1
    warning = "align-crawl: warning: 1 of 2 input files held no WARC, ARC or WAT record (1 empty)"
    assert capsys.readouterr().out.splitlines()[-1] == warning


def test_no_scratch_folder_is_left_in_the_output(crawled):
    assert sorted(path.name for path in crawled[1].iterdir() if path.name.startswith("_")) == []


def test_pair_counts_add_up(crawled):
    counts = read_stats(str(crawled[1]))["counts"]
    assert counts["pairs/extracted"] == 5
    assert counts["pairs/duplicates"] == 2 and counts["pairs/written"] == 3
    assert counts["warc/response"] == 4 and counts["warc/damaged"] == 1


def test_pairs_are_unique_and_the_survivor_is_the_smallest_page(crawled):
    table = read_table(str(crawled[1] / "pairs-*.parquet")).sort_by("url")
    assert table.schema == CRAWL_PAIR_SCHEMA  # the pair contract and the page's capture date
    assert set(table.column("page_date").to_pylist()) == {"2024-01-01T00:00:00Z"}
    rows = [(r["url"], r["alt"], r["page_url"]) for r in table.to_pylist()]
    assert rows == [
        ("http://b.example/one.jpg", "First & only", "http://b.example/p1"),
        ("http://cdn.example/z.jpg", "Zed", "http://a.example/p0"),
        ("http://img.example/shared.jpg", "A shared picture", "http://a.example/p0"),
    ]
    assert all(r["uid"] == make_uid(r["url"], r["alt"]) for r in table.to_pylist())


def test_source_points_at_the_record(crawled):
    table = read_table(str(crawled[1] / "pairs-*.parquet"))
    sources = {r["url"]: r["source"] for r in table.to_pylist()}
    assert sources["http://cdn.example/z.jpg"].endswith("b.warc@0")
    path, offset = sources["http://b.example/one.jpg"].rsplit("@", 1)
    assert path.endswith("a.warc.gz") and int(offset) > 0


def test_rerunning_gives_byte_identical_shards(crawled, tmp_path):
    root, out = crawled
    run(
        ["--input", str(root / "in"), "--output", str(tmp_path), "--num-shards", "2"]
        + ["--direct_num_workers", "2", "--dedup-buckets", "3"]
    )
    for shard in sorted(out.glob("pairs-*.parquet")):
        assert (tmp_path / shard.name).read_bytes() == shard.read_bytes()


def wat_metadata(page: str, links: list[dict]) -> bytes:
    envelope = {
        "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": page},
        "Payload-Metadata": {
            "HTTP-Response-Metadata": {
                "Response-Message": {"Status": "200"},
                "HTML-Metadata": {"Head": {}, "Links": links},
            }
        },
    }
    return warc_record(
        json.dumps({"Envelope": envelope}).encode(), "metadata", page, "application/json"
    )


def test_wat_files_give_their_image_links(tmp_path):
    links = [
        {"path": "IMG@/src", "url": "/a.jpg", "alt": "An apple"},
        {"path": "IMG@/src", "url": "b.jpg"},
    ]
    write_warc(
        tmp_path / "x.warc.wat.gz",
        [warc_record(b"{}", "warcinfo"), wat_metadata("http://w.example/d/p", links)],
    )
    run(["--input", str(tmp_path / "*.wat.gz"), "--output", str(tmp_path / "out")])
    pairs = read_table(str(tmp_path / "out" / "pairs-*.parquet")).to_pylist()
    assert [(p["url"], p["alt"]) for p in pairs] == [("http://w.example/a.jpg", "An apple")]
    stats = read_stats(str(tmp_path / "out"))
    assert stats["balanced"] and stats["rejected"] == {"not_metadata_record": 1}
    assert stats["counts"]["img/empty_alt"] == 1
    assert stats["shards"] == 4  # no --shards: a small input gets the minimum
    assert len(list((tmp_path / "out").glob("pairs-*-of-00004.parquet"))) == 4


def test_keep_first_per_uid_keeps_the_smallest_page_then_source():
    rows = [
        {"uid": "b", "url": "u", "alt": "a", "page_url": "p2", "source": "s1"},
        {"uid": "a", "url": "u", "alt": "a", "page_url": "p9", "source": "s1"},
        {"uid": "b", "url": "u", "alt": "a", "page_url": "p1", "source": "s9"},
        {"uid": "b", "url": "u", "alt": "a", "page_url": "p1", "source": "s2"},
    ]
    kept = keep_first_per_uid(rows_to_table(rows, PAIR_SCHEMA)).to_pylist()
    assert [(r["uid"], r["page_url"], r["source"]) for r in kept] == [
        ("a", "p9", "s1"),
        ("b", "p1", "s2"),
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output", "o"], "one of the arguments --input --page-urls is required"),
        (["--input", "/nonexistent/*.warc.gz", "--output", "o"], "no files match"),
        (["--input", "x", "--output", "o", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
        (["--input", "x", "--output", "o", "--shards", "0"], "--shards must be at least 1"),
        (["--page-urls", "/nonexistent.txt", "--output", "o"], "no such file"),
    ],
)
def test_bad_command_lines_get_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("align-crawl: error:") and message in error


def test_an_unreadable_file_is_one_reject(tmp_path):
    harvest = HarvestFile("warc", HarvestOptions())
    (outcome,) = harvest.outcomes(str(tmp_path / "vanished.warc.gz"))
    assert outcome.reason == "unreadable_file"


def test_dedup_pairs_keeps_one_row_per_uid_across_tables(tmp_path):
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    def pair(url: str, page: str) -> dict:
        return {
            "uid": make_uid(url, "alt"),
            "url": url,
            "alt": "alt",
            "page_url": page,
            "source": "s",
        }

    first = rows_to_table([pair("http://a/1", "p2"), pair("http://a/2", "p1")], PAIR_SCHEMA)
    second = rows_to_table([pair("http://a/1", "p1"), pair("http://a/3", "p3")], PAIR_SCHEMA)
    with TestPipeline() as pipeline:
        tables = pipeline | beam.Create([first, second], reshuffle=False)
        unique = tables | DedupPairs(num_buckets=2, scratch=str(tmp_path))
        rows = unique.pairs | beam.FlatMap(
            lambda t: [(r["url"], r["page_url"]) for r in t.to_pylist()]
        )
        assert_that(
            rows, equal_to([("http://a/1", "p1"), ("http://a/2", "p1"), ("http://a/3", "p3")])
        )
        duplicates = unique.tallies | beam.Map(lambda tally: tally["pairs/duplicates"])
        assert_that(duplicates | beam.CombineGlobally(sum), equal_to([1]), label="OneDuplicate")


def test_default_shard_count_weighs_warc_and_wat_bytes(tmp_path, monkeypatch):
    (tmp_path / "a.warc.gz").write_bytes(b"x" * 300)
    (tmp_path / "b.warc.wat.gz").write_bytes(b"x" * 300)
    monkeypatch.setitem(crawl.SHARD_INPUT_BYTES, "warc", 100)
    monkeypatch.setitem(crawl.SHARD_INPUT_BYTES, "wat", 10)
    files = crawl.sized_inputs(str(tmp_path / "*"))
    assert crawl.default_num_shards(files, None) == 3 + 30


def test_default_shard_count_of_a_page_list_follows_its_urls(tmp_path, monkeypatch):
    (tmp_path / "pages.txt").write_text("# pages\n" + "http://a.example/\n" * 12)
    monkeypatch.setattr(crawl, "SHARD_PAGE_URLS", 2)
    urls = crawl.read_page_urls(str(tmp_path / "pages.txt"))
    assert crawl.default_num_shards(None, urls) == 6


@pytest.mark.parametrize("warc_bytes, buckets", [(30, 16), (150, 24), (10**6, 256)])
def test_default_dedup_buckets_follow_the_input_within_bounds(
    tmp_path, monkeypatch, warc_bytes, buckets
):
    (tmp_path / "a.warc.gz").write_bytes(b"x" * warc_bytes)
    monkeypatch.setitem(crawl.SHARD_INPUT_BYTES, "warc", 100)
    files = crawl.crawl_inputs(str(tmp_path / "*"))
    assert crawl.default_dedup_buckets(files, None) == buckets


def test_a_page_clipped_after_its_images_is_salvaged_with_exact_accounting(tmp_path):
    (tmp_path / "in").mkdir()
    filler = "".join(f"<p>paragraph {i}</p>" for i in range(3000))
    pages = [
        page_record("http://c.example/whole", img("w.jpg", "Whole")),
        page_record("http://c.example/clipped", img("c.jpg", "Clipped") + filler),
    ]
    members = [gzip_member(record) for record in pages]
    (tmp_path / "in" / "c.warc.gz").write_bytes(members[0] + members[1][: len(members[1]) // 2])
    run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    stats = read_stats(str(tmp_path / "out"))
    assert stats["balanced"] and (stats["in"], stats["kept"], stats["rejected"]) == (2, 2, {})
    counts = stats["counts"]
    assert (counts["warc/damaged"], counts["warc/salvaged"], counts["pairs/written"]) == (1, 1, 2)


def test_a_file_whose_only_member_is_clipped_but_salvaged_is_not_an_empty_input(tmp_path):
    # As chatnoir-resiliparse's clipped.warc.gz: one member, cut short, a whole page inside.
    (tmp_path / "in").mkdir()
    filler = "".join(f"<p>paragraph {i}</p>" for i in range(3000))
    member = gzip_member(page_record("http://c.example/p", img("c.jpg", "Clipped") + filler))
    (tmp_path / "in" / "c.warc.gz").write_bytes(member[: len(member) // 2])
    stats = run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert (stats["in"], stats["kept"]) == (1, 1) and stats["counts"]["warc/salvaged"] == 1
    assert "files/without_records" not in stats["counts"]
