"""gs:// for real: the shared shard and stats transforms write to and read from a GCS server."""

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import PAIR_SCHEMA, make_uid
from pipeline.shards import ReadTables, WriteShards, read_table, rows_to_table
from pipeline.stats import WriteStats, read_stats


def pairs(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        url, alt = f"http://h/{i}.jpg", f"alt {i}"
        rows.append(
            {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": "p", "source": "s"}
        )
    return rows


def write(output_dir: str, rows: list[dict]) -> None:
    with beam.Pipeline() as pipeline:
        tables = pipeline | "Pairs" >> beam.Create([rows_to_table(rows, PAIR_SCHEMA)])
        tables | WriteShards(output_dir, "pairs", PAIR_SCHEMA, 3)
        tally = {"in": len(rows), "kept": len(rows)}
        pipeline | "Tally" >> beam.Create([tally]) | WriteStats(output_dir, {"job": "gcs"})


def test_shards_and_stats_land_in_the_bucket_and_nothing_else(gcs_emulator, gcs_dir):
    write(gcs_dir, pairs(40))
    names = [name.rsplit("/", 1)[1] for name in gcs_emulator.blob_names(gcs_dir)]
    assert names == [f"pairs-0000{i}-of-00003.parquet" for i in range(3)] + ["stats.json"]
    stats = read_stats(gcs_dir)
    assert stats["in"] == stats["kept"] == 40 and stats["balanced"]


def test_shards_written_to_gcs_match_local_ones_byte_for_byte(gcs_dir, tmp_path):
    rows = pairs(40)
    write(gcs_dir, rows)
    write(str(tmp_path), rows)
    for path in sorted(tmp_path.glob("pairs-*.parquet")):
        with FileSystems.open(f"{gcs_dir}/{path.name}") as handle:
            assert handle.read() == path.read_bytes()


def test_a_pipeline_reads_every_row_back_from_gcs(gcs_dir):
    rows = pairs(40)
    write(gcs_dir, rows)
    with beam.Pipeline() as pipeline:
        uids = (
            pipeline
            | ReadTables(f"{gcs_dir}/pairs-*.parquet")
            | beam.FlatMap(lambda table: table.column("uid").to_pylist())
        )
        assert_that(uids, equal_to([row["uid"] for row in rows]))
    assert read_table(f"{gcs_dir}/pairs-*.parquet").num_rows == 40


def test_a_rerun_replaces_the_shards_in_place(gcs_emulator, gcs_dir):
    write(gcs_dir, pairs(40))
    write(gcs_dir, pairs(25))
    assert read_table(f"{gcs_dir}/pairs-*.parquet").num_rows == 25
    assert not [name for name in gcs_emulator.blob_names(gcs_dir) if name.endswith(".tmp")]
    with FileSystems.open(f"{gcs_dir}/pairs-00000-of-00003.parquet") as handle:
        assert pq.read_table(handle).schema.equals(PAIR_SCHEMA)
