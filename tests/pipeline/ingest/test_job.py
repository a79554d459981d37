"""align-ingest end to end: every format of one list gives the same pairs, every row is
accounted for, extras ride along, reruns and re-splits give the same bytes."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.ingest import job as ingest_job
from pipeline.ingest.cli import run
from pipeline.records import make_uid
from pipeline.shards import read_table
from tests.pipeline.ingest.lists import EXPECTED, ROWS, WRITERS, write_laion, write_tsv

MULTI = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


def ingest(source: Path, output: Path, *flags: str) -> dict:
    return run(["--input", str(source), "--output", str(output), *flags])


def pairs(output: Path) -> list[dict]:
    return read_table(str(output / "pairs-*.parquet")).to_pylist()


@pytest.fixture(scope="module")
def every_format(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    results = {}
    for name, write in WRITERS.items():
        folder = root / name
        folder.mkdir()
        source = write(folder)
        stats = ingest(source, root / f"{name}-out")
        results[name] = (stats, pairs(root / f"{name}-out"), root / f"{name}-out")
    return results


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_format_gives_the_same_pairs_and_counts(every_format, name):
    stats, rows, _ = every_format[name]
    assert {k: stats[k] for k in EXPECTED} == EXPECTED and stats["balanced"]
    expected = {make_uid(url, " ".join(caption.split())) for caption, url, _ in ROWS[:25]}
    assert {row["uid"] for row in rows} == expected
    assert all(row["uid"] == make_uid(row["url"], row["alt"]) for row in rows)


def test_rows_come_out_sorted_by_uid_in_shards(every_format):
    _, _, output = every_format["tsv"]
    for shard in sorted(output.glob("pairs-*.parquet")):
        uids = read_table(str(shard)).column("uid").to_pylist()
        assert uids == sorted(uids)


def test_every_rejected_row_is_in_rejects_with_its_reasons_and_source(every_format):
    _, _, output = every_format["tsv"]
    rejects = read_table(str(output / "rejects" / "*.parquet")).to_pylist()
    assert sorted(r["reasons"][0] for r in rejects) == ["bad_url", "empty_caption", "no_url"]
    assert all(r["source"].startswith(str(output.parent / "tsv" / "cc3m.tsv@")) for r in rejects)


def test_of_two_equal_pairs_the_one_with_the_smallest_source_is_kept(every_format):
    _, rows, _ = every_format["parquet"]
    (row,) = [row for row in rows if row["url"] == "http://img0.example/3.jpg"]
    # rows 3 and 25 hold the same pair; "...#25" < "...#3" as text, whatever the run
    assert row["source"].endswith("part-00000.parquet#25") and row["similarity"] == 0.5


def test_text_extras_are_text_and_parquet_extras_keep_their_types(every_format):
    _, csv_rows, _ = every_format["csv"]
    assert {row["similarity"] for row in csv_rows} >= {"0.025", "0.9"}  # what the file says
    _, rows, output = every_format["parquet"]
    schema = read_table(str(output / "pairs-*.parquet")).schema
    assert schema.field("similarity").type == pa.float64()
    assert schema.field("input_WIDTH").type == pa.int64()  # WIDTH would shadow a job's width
    assert {row["NSFW"] for row in rows} == {"UNLIKELY"}
    stats = every_format["parquet"][0]
    assert stats["extra_columns"] == {"similarity": "similarity", "input_WIDTH": "WIDTH",
                                      "NSFW": "NSFW"}  # fmt: skip


def test_reruns_on_more_workers_and_finer_splits_give_the_same_bytes(tmp_path, monkeypatch):
    source = write_tsv(
        tmp_path / "big.tsv", ROWS * 1 + [(f"c {i}", f"http://h/{i}", 0) for i in range(3000)]
    )
    first = ingest(source, tmp_path / "one")
    monkeypatch.setattr(ingest_job, "UNIT_BYTES", 4096)  # ~20 units instead of one
    second = ingest(source, tmp_path / "two", *MULTI)
    assert {k: first[k] for k in EXPECTED} == {k: second[k] for k in EXPECTED}
    for folder in ("", "rejects"):
        names = sorted(p.name for p in (tmp_path / "one" / folder).glob("*.parquet"))
        assert (
            names
            and filecmp.cmpfiles(
                tmp_path / "one" / folder, tmp_path / "two" / folder, names, shallow=False
            )[0]
            == names
        )


def test_img2dataset_flag_names_and_a_python_list_of_extras_work(tmp_path):
    source = write_laion(tmp_path / "laion.parquet")
    flags = ["--url_col", "URL", "--caption_col", "TEXT", "--input_format", "parquet"]
    stats = ingest(source, tmp_path / "out", *flags, "--save_additional_columns", '["similarity"]')
    assert stats["extra_columns"] == {"similarity": "similarity"}
    assert set(pairs(tmp_path / "out")[0]) == {
        "uid",
        "url",
        "alt",
        "page_url",
        "source",
        "similarity",
    }


def test_a_folder_is_its_lists_without_hidden_or_underscore_files(tmp_path):
    folder = tmp_path / "laion"
    folder.mkdir()
    write_laion(folder / "part-00000.parquet", ROWS[:10])
    write_laion(folder / "part-00001.parquet", ROWS[10:20])
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.parquet.crc").write_bytes(b"\x00crc")
    stats = ingest(folder, tmp_path / "out")
    assert stats["in"] == 20 and stats["files"] == 2 and stats["balanced"]


def test_default_shards_follow_the_lists_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_job, "SHARD_ROWS", 5)
    stats = ingest(write_laion(tmp_path / "laion.parquet"), tmp_path / "out")
    assert stats["shards"] == 6 == len(list((tmp_path / "out").glob("pairs-*-of-00006.parquet")))


def test_an_opt_out_list_leaves_its_rows_out_counted_by_kind_and_not_in_rejects(tmp_path):
    source = write_tsv(tmp_path / "cc3m.tsv")
    (tmp_path / "opt-out.txt").write_text(
        "domain:img1.example\nurl:http://img0.example/0.jpg\nprefix:http://img2.example/2\n"
    )
    stats = ingest(source, tmp_path / "out", "--opt-out", str(tmp_path / "opt-out.txt"))
    urls = {row["url"] for row in pairs(tmp_path / "out")}
    assert not {url for url in urls if "img1." in url or url.startswith("http://img2.example/2")}
    assert "http://img0.example/0.jpg" not in urls
    listed = {"opt_out_domain": 8, "opt_out_url": 1, "opt_out_prefix": 3}  # 2, 20, 23
    assert {k: v for k, v in stats["rejected"].items() if k.startswith("opt_out")} == listed
    assert stats["kept"] == EXPECTED["kept"] - 12 and stats["balanced"]
    rejects = read_table(str(tmp_path / "out" / "rejects" / "*.parquet")).to_pylist()
    assert not any(reason.startswith("opt_out") for row in rejects for reason in row["reasons"])
