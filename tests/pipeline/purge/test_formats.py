"""align-purge's rewrites of each shard format: the named records go, the others' bytes stay."""

from __future__ import annotations

import io
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.filter.tfrecord import example_of, frame_record, write_tfrecord
from pipeline.filter.webdataset import write_webdataset
from pipeline.purge.formats import example_strings, purge_file
from pipeline.purge.ledger import updated_stats

ROWS = [
    {"uid": f"{i:016x}", "url": f"http://h{i % 2}/{i}.jpg", "alt": f"picture {i}",
     "image": b"\xff\xd8\xff" + bytes([i]) * 10, "mime": "image/jpeg", "width": 4, "height": 4}
    for i in range(5)
]  # fmt: skip
TABLE = pa.Table.from_pylist(ROWS)


def drop_h1(row: dict) -> str | None:
    return "opt_out_domain" if (row.get("url") or "").startswith("http://h1/") else None


def test_a_tfrecord_keeps_the_other_examples_frame_for_frame(tmp_path):
    path = tmp_path / "align-00000-of-00001.tfrecord"
    write_tfrecord(TABLE, str(path))
    result = purge_file(str(path), drop_h1)
    assert result.rows == 5 and [reason for reason, _ in result.removed] == ["opt_out_domain"] * 2
    kept = [row for row in ROWS if row["url"].startswith("http://h0/")]
    assert path.read_bytes() == b"".join(frame_record(example_of(row)) for row in kept)


def test_example_strings_reads_the_uid_and_url_of_an_example():
    assert example_strings(example_of(ROWS[3])) == {"uid": ROWS[3]["uid"], "url": ROWS[3]["url"]}


def test_a_webdataset_tar_is_what_the_writer_writes_for_the_other_records(tmp_path):
    columns = ["uid", "url", "alt"]
    path, expected = tmp_path / "a.tar", tmp_path / "b.tar"
    write_webdataset(TABLE, str(path), columns)
    write_webdataset(TABLE.filter(pa.array([r["url"].startswith("http://h0/") for r in ROWS])),
                     str(expected), columns)  # fmt: skip
    result = purge_file(str(path), drop_h1)
    assert result.rows == 5 and len(result.removed) == 2
    assert path.read_bytes() == expected.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
        assert len(tar.getnames()) == 9


def test_parquet_keeps_its_compression_and_row_groups(tmp_path):
    path = tmp_path / "images-00000-of-00001.parquet"
    table = TABLE.append_column("status", pa.array(["ok", "ok", "http_404", "ok", "ok"]))
    compression = {name: "none" if name == "image" else "zstd" for name in table.column_names}
    pq.write_table(table, path, compression=compression, row_group_size=2)
    result = purge_file(str(path), drop_h1)
    assert sorted(bucket for _, bucket in result.removed) == ["kept", "kept"]
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_rows == 3 and parquet.metadata.row_group(0).num_rows == 2
    group = parquet.metadata.row_group(0)
    codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(6)}
    assert codecs["image"] == "UNCOMPRESSED" and codecs["url"] == "ZSTD"


def test_a_file_without_a_listed_record_is_not_rewritten(tmp_path):
    path = tmp_path / "pairs-00000-of-00001.parquet"
    pq.write_table(TABLE, path)
    stamp = path.stat().st_mtime_ns
    assert purge_file(str(path), lambda row: None).removed == []
    assert path.stat().st_mtime_ns == stamp


def test_stats_move_removed_rows_to_purged_and_still_balance():
    stats = {"job": "align-download", "in": 10, "kept": 7, "rejected": {"http_404": 3},
             "counts": {}, "balanced": True}  # fmt: skip
    removed = [("opt_out_domain", "kept"), ("opt_out_domain", "rejected/http_404"),
               ("opt_out_url", None)]  # fmt: skip
    out = updated_stats(stats, removed, "purge-x.json")
    assert (out["in"], out["kept"], out["rejected"]) == (10, 6, {"http_404": 2, "purged": 2})
    assert out["balanced"] and out["purges"] == ["purge-x.json"]
    assert out["counts"] == {"purged/opt_out_domain": 2, "purged/kept": 1}


def test_a_crawl_moves_pairs_not_pages():
    stats = {"job": "align-crawl", "in": 4, "kept": 3, "rejected": {"not_html": 1},
             "counts": {"pairs/written": 20}, "balanced": True}  # fmt: skip
    out = updated_stats(stats, [("opt_out_page", "kept")] * 5, "purge-x.json")
    assert (out["in"], out["kept"], out["balanced"]) == (4, 3, True)
    assert out["counts"]["pairs/written"] == 15 and out["counts"]["pairs/purged"] == 5
