"""align-purge on gs://: the same removals, atomic rewrites and records as on local disk."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.filter.tfrecord import read_records, write_tfrecord
from pipeline.filter.webdataset import write_webdataset
from pipeline.purge.cli import run as purge
from pipeline.purge.formats import example_strings
from pipeline.records import PAIR_SCHEMA, make_uid
from pipeline.shards import WriteShards, read_table, rows_to_table
from pipeline.stats import WriteStats, read_stats


def rows(n: int) -> list[dict]:
    out = []
    for i in range(n):
        url, alt = f"http://h{i % 4}.example/{i}.jpg", f"alt {i}"
        out.append({"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": "p",
                    "source": "s", "image": b"\xff\xd8\xff" + bytes([i]), "mime": "image/jpeg",
                    "width": 1, "height": 1})  # fmt: skip
    return out


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as handle:
        return handle.read()


def test_a_purge_on_gcs_rewrites_only_the_shards_that_held_a_listed_record(gcs_dir, tmp_path):
    records = rows(40)
    with beam.Pipeline() as pipeline:
        tables = pipeline | beam.Create([rows_to_table(records, PAIR_SCHEMA)])
        tables | WriteShards(gcs_dir, "pairs", PAIR_SCHEMA, 4)
        tally = {"in": 40, "kept": 40}
        pipeline | "Tally" >> beam.Create([tally]) | WriteStats(gcs_dir, {"job": "t"})
    table = pa.Table.from_pylist(records)
    write_tfrecord(table, f"{gcs_dir}/shards/align-00000-of-00001.tfrecord")
    write_webdataset(table, f"{gcs_dir}/shards/align-00000-of-00001.tar", ["uid", "url", "alt"])
    listed = "url:http://h1.example/5.jpg\n"  # in one pair shard, the tfrecord and the tar
    (tmp_path / "list.txt").write_text(listed)
    paths = [m.path for m in FileSystems.match([f"{gcs_dir}/**"])[0].metadata_list]
    before = {path: read_bytes(path) for path in paths}

    purge(["--list", str(tmp_path / "list.txt"), gcs_dir])

    uid = make_uid("http://h1.example/5.jpg", "alt 5")
    assert uid not in read_table(f"{gcs_dir}/pairs-*.parquet").column("uid").to_pylist()
    frames = read_records(read_bytes(f"{gcs_dir}/shards/align-00000-of-00001.tfrecord"))
    assert len(frames) == 39 and uid not in {example_strings(f)["uid"] for f in frames}
    changed = {path for path, data in before.items() if read_bytes(path) != data}
    assert len(changed) == 4  # one pair shard, the tfrecord, the tar, stats.json
    stats = read_stats(gcs_dir)
    assert (stats["kept"], stats["rejected"], stats["balanced"]) == (39, {"purged": 1}, True)
    assert len(FileSystems.match([f"{gcs_dir}/purge-*.json"])[0].metadata_list) == 1
