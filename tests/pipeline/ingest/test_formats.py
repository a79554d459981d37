"""Reading URL lists: every format, in bounded pieces, each row read once with its source."""

from __future__ import annotations

import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commandline.flags import UsageError
from pipeline.ingest import formats
from pipeline.ingest.columns import choose_layout
from pipeline.ingest.formats import line_blocks, plan_units, read_unit, sniff


def open_local(path, gzip_file=False):
    return gzip.open(path, "rb") if gzip_file else open(path, "rb")


def read_all(path, file_format="auto", unit_bytes=1 << 30, unit_rows=1 << 30, **columns):
    fmt = formats.format_of(str(path), file_format)
    sniffed = sniff(str(path), fmt, "auto", open_local)
    layout = choose_layout("--input", sniffed.names, columns.get("url"), columns.get("caption"),
                           first_row=sniffed.first_row)  # fmt: skip
    size = path.stat().st_size
    rows, bad = [], []
    for unit in plan_units(sniffed, layout, size, unit_bytes, unit_rows):
        for chunk in read_unit(unit, open_local):
            rows += chunk.table.to_pylist()
            bad += chunk.bad
    return rows, bad


@pytest.mark.parametrize("seed", range(5))
def test_byte_ranges_hold_every_line_exactly_once(seed):
    rng = random.Random(seed)
    lines = [b"x" * rng.randint(0, 30) for _ in range(200)]
    data = b"\n".join(lines) + (b"\n" if seed % 2 else b"")
    edges = sorted({0, *rng.sample(range(1, len(data)), 12)}) + [None]
    got = []
    for start, stop in zip(edges, edges[1:], strict=False):
        for offset, block in line_blocks(io.BytesIO(data), start, stop, block_bytes=7):
            for line in block.split(b"\n")[:-1]:
                assert data[offset : offset + len(line)] == line
                got.append(line)
                offset += len(line) + 1
    assert got == lines


def test_tsv_without_header_crlf_and_bom_gives_rows_with_their_byte_offsets(tmp_path):
    path = tmp_path / "cc3m.tsv"
    path.write_bytes(b"\xef\xbb\xbfa dog\thttp://a/1.jpg\r\n\r\na cat\thttp://a/2.jpg\r\n")
    rows, bad = read_all(path)
    assert bad == []
    assert [(r["caption"], r["url"], r["source"]) for r in rows] == [
        ("a dog", "http://a/1.jpg", f"{path}@3"),  # after the BOM
        ("a cat", "http://a/2.jpg", f"{path}@27"),  # after the BOM and a blank line,
    ]


def test_a_tsv_split_into_ranges_reads_like_a_whole_one(tmp_path):
    path = tmp_path / "list.tsv"
    path.write_text("url\tcaption\tscore\n" + "".join(
        f"http://a/{i}.jpg\tcaption {i}\t{i / 7:.3f}\n" for i in range(500)
    ))  # fmt: skip
    whole, _ = read_all(path)
    split, _ = read_all(path, unit_bytes=97)
    assert len(whole) == 500 and split == whole and whole[3]["score"] == "0.429"


def test_bad_tsv_rows_and_non_utf8_rows_are_named_not_lost(tmp_path):
    path = tmp_path / "list.tsv"
    path.write_bytes(b"a\thttp://a/1.jpg\nthree\tfields\there\n\xff\xfe\thttp://a/3.jpg\n")
    rows, bad = read_all(path)
    assert [r["caption"] for r in rows] == ["a"]
    assert [(s, reason) for s, reason, _ in bad] == [
        (f"{path}@35", "not_utf8"), (f"{path}@17", "bad_row")
    ]  # fmt: skip


def test_csv_with_quoted_newlines_and_a_short_row(tmp_path):
    path = tmp_path / "list.csv.gz"
    text = 'url,caption,note\nhttp://a/1.jpg,"two\nlines, one caption",x\nhttp://a/2.jpg\n'
    path.write_bytes(gzip.compress(text.encode()))
    rows, bad = read_all(path)
    assert [(r["caption"], r["note"], r["source"]) for r in rows] == [
        ("two\nlines, one caption", "x", f"{path}#0")
    ]
    assert [reason for _, reason, _ in bad] == ["bad_row"]


def test_json_lines_keep_non_text_extras_as_json_and_name_bad_lines(tmp_path):
    path = tmp_path / "list.jsonl"
    records = [{"url": "http://a/1.jpg", "caption": "a", "meta": {"w": 3}, "s": 0.5}, [1], "{"]
    path.write_text("\n".join(json.dumps(r) if i < 2 else r for i, r in enumerate(records)))
    rows, bad = read_all(path)
    assert [(r["meta"], r["s"]) for r in rows] == [('{"w": 3}', "0.5")]
    assert [reason for _, reason, _ in bad] == ["bad_row", "bad_row"]


def test_a_json_array_streams_in_small_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "BLOCK_BYTES", 64)
    monkeypatch.setattr(formats, "BATCH_ROWS", 3)
    records = [{"url": f"http://a/{i}.jpg", "text": f"caption {i} \u00e9"} for i in range(20)]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False))
    rows, bad = read_all(path)
    assert [r["caption"] for r in rows] == [r["text"] for r in records] and bad == []
    assert rows[19]["source"] == f"{path}#19"


def test_a_json_array_broken_midway_keeps_what_came_before_and_names_the_rest(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('[{"url": "http://a/1.jpg", "caption": "a"}, {"url": oops}, {"url": 1}]')
    rows, bad = read_all(path)
    assert len(rows) == 1 and [(s, r) for s, r, _ in bad] == [(f"{path}#1", "bad_row")]


def test_parquet_units_are_runs_of_row_groups_and_sources_count_rows(tmp_path):
    path = tmp_path / "part-0.parquet"
    table = pa.table({"URL": [f"http://a/{i}" for i in range(10)], "TEXT": ["t"] * 10,
                      "similarity": [i / 10 for i in range(10)]})  # fmt: skip
    pq.write_table(table, path, row_group_size=3)
    rows, _ = read_all(path, unit_rows=4)
    assert [r["source"] for r in rows] == [f"{path}#{i}" for i in range(10)]
    assert [r["similarity"] for r in rows] == table.column("similarity").to_pylist()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("list.tsv", b"", "is empty"),
        ("list.tsv", b"\x00\x01garbage", "not tsv text"),
        ("list.tsv", bytes(range(128, 256)) * 4, "not UTF-8 tsv text"),
        ("list.parquet", b"not parquet at all", "not a Parquet file"),
        ("list.csv", b"PAR1....", "is a Parquet file"),
        ("list.json", b"plain words", "not JSON lines or a JSON array"),
        ("list.txt", b"http://a/1.jpg\n", "without captions"),
        ("list.bin", b"url,caption\n", "cannot tell its format"),
    ],
)
def test_unreadable_lists_are_refused_in_one_line_before_any_work(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as error:
        sniff(str(path), formats.format_of(str(path), "auto"), "auto", open_local)
    assert "\n" not in str(error.value)


def test_arrows_tsv_parser_and_the_line_splitter_read_alike(tmp_path, monkeypatch):
    path = tmp_path / "list.tsv"
    lines = [f'"quoted" caption {i} \u00e9\u202e\thttp://a/{i}.jpg\t{i}\r\n' for i in range(50)]
    path.write_text("caption\turl\tn\r\n" + "".join(lines), newline="")
    fast, _ = read_all(path)
    monkeypatch.setattr(formats, "_tsv_fast", lambda *args: None)
    slow, _ = read_all(path)
    assert fast == slow and len(fast) == 50 and fast[7]["caption"].startswith('"quoted" caption 7')
