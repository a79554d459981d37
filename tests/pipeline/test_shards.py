"""Specification of deterministic shard output and job accounting."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet  # noqa: F401

from pipeline.records import PAIR_SCHEMA, make_uid, shard_of
from pipeline.shards import (
    WriteShards,
    read_parts,
    read_table,
    rows_to_table,
    shard_indices,
    split_by_column,
    split_by_index,
    write_parts,
)
from pipeline.stats import WriteStats, read_stats, rejected


def pair(i: int) -> dict:
    url, alt = f"http://h/{i}.jpg", f"alt {i}"
    return {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": "p", "source": "s"}


def write(tmp_path, batches, num_shards=3):
    with beam.Pipeline() as pipeline:
        tables = pipeline | beam.Create([rows_to_table(b, PAIR_SCHEMA) for b in batches])
        tables | WriteShards(str(tmp_path), "pairs", PAIR_SCHEMA, num_shards)
    return sorted(p.name for p in tmp_path.iterdir())


def test_every_shard_is_written_even_when_empty(tmp_path):
    names = write(tmp_path, [[pair(0)]], num_shards=3)
    assert names == [f"pairs-0000{i}-of-00003.parquet" for i in range(3)]


def test_shards_are_byte_identical_whatever_the_batching(tmp_path):
    rows = [pair(i) for i in range(50)]
    write(tmp_path / "a", [rows])
    write(tmp_path / "b", [rows[30:], rows[:7], rows[7:30]])
    for name in write(tmp_path / "c", [rows]):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_shards_hold_every_row_once_sorted_by_uid(tmp_path):
    rows = [pair(i) for i in range(50)]
    write(tmp_path, [rows])
    table = read_table(str(tmp_path / "*.parquet"))
    assert sorted(table.column("uid").to_pylist()) == sorted(r["uid"] for r in rows)
    for path in tmp_path.iterdir():
        uids = pa.parquet.read_table(path).column("uid").to_pylist()
        assert uids == sorted(uids)


def test_stats_json_sums_tallies_and_checks_the_balance(tmp_path):
    tallies = [{"in": 5, "kept": 3, rejected("too_short"): 2}, {"in": 2, rejected("x"): 1}]
    with beam.Pipeline() as pipeline:
        pipeline | beam.Create(tallies) | WriteStats(str(tmp_path), {"job": "t"})
    stats = read_stats(str(tmp_path))
    assert stats["in"] == 7 and stats["kept"] == 3
    assert stats["rejected"] == {"too_short": 2, "x": 1}
    assert stats["balanced"] is False and stats["job"] == "t"


def test_shard_indices_of_a_column_agree_with_shard_of_row_by_row():
    uids = [pair(i)["uid"] for i in range(500)] + ["ABCDEF01-upper-case", "1234abcd"]
    column = pa.chunked_array([pa.array(uids[:7]), pa.array(uids[7:])])
    for num_shards in (1, 3, 4):
        expected = [shard_of(uid, num_shards) for uid in uids]
        assert shard_indices(column, num_shards).tolist() == expected
        assert shard_indices(pa.array(uids).slice(5), num_shards).tolist() == expected[5:]


def test_parts_written_to_one_file_read_back_in_the_order_asked(tmp_path):
    parts = [(key, pa.table({"x": list(range(key, key + 3))})) for key in (7, 1, 4)]
    refs = write_parts(parts, str(tmp_path / "parts.arrow"))
    assert [key for key, _ in refs] == [7, 1, 4]
    backwards = [ref for _, ref in reversed(refs)]
    assert read_parts(backwards) == [table for _, table in reversed(parts)]


def test_a_part_of_many_chunks_reads_back_as_one_part(tmp_path):
    chunked = pa.concat_tables([pa.table({"x": [1, 2]}), pa.table({"x": [3]})])
    [(_, ref)] = write_parts([("k", chunked)], str(tmp_path / "parts.arrow"))
    assert read_parts([ref])[0].column("x").to_pylist() == [1, 2, 3]


def test_no_parts_write_no_file(tmp_path):
    assert write_parts([], str(tmp_path / "parts.arrow")) == []
    assert not (tmp_path / "parts.arrow").exists()


def test_split_by_index_keeps_every_row_once_in_its_order():
    table = pa.table({"x": [10, 11, 12, 13, 14]})
    parts = dict(split_by_index(table, np.array([2, 0, 2, 1, 0])))
    assert {k: t["x"].to_pylist() for k, t in parts.items()} == {0: [11, 14], 1: [13], 2: [10, 12]}


def test_split_by_column_groups_rows_by_value_without_the_column():
    table = pa.concat_tables([pa.table({"bid": ["b", "a"], "x": [1, 2]}),
                              pa.table({"bid": ["b"], "x": [3]})])  # fmt: skip
    parts = {bid: part for bid, part in split_by_column(table, "bid")}
    assert {bid: part.to_pydict() for bid, part in parts.items()} == {
        "a": {"x": [2]},
        "b": {"x": [1, 3]},
    }
