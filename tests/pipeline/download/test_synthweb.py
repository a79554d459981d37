"""align-download against the synthetic web with every fault mode on: each pair ends with the
status its ground truth predicts, at the size the server serves."""

import pyarrow.parquet as pq
import pytest

from pipeline.download.cli import run
from pipeline.records import PAIR_SCHEMA
from pipeline.shards import read_table, rows_to_table

SHARDS = 3


@pytest.fixture(scope="module")
def downloaded(synthetic_web, tmp_path_factory):
    truth = pq.read_table(synthetic_web.ground_truth).to_pylist()
    pairs = {}
    for row in truth:
        if row["emitted_by_crawl"]:
            pairs[row["uid"]] = {
                **{k: row[k] for k in ("uid", "url", "alt", "page_url")},
                "source": "ground_truth",
            }
    rows = sorted(pairs.values(), key=lambda row: row["uid"])
    root = tmp_path_factory.mktemp("download_synthweb")
    (root / "pairs").mkdir()
    for index in range(SHARDS):
        table = rows_to_table(rows[index::SHARDS], PAIR_SCHEMA)
        pq.write_table(table, root / "pairs" / f"pairs-{index:05d}-of-{SHARDS:05d}.parquet")
    stats = run(
        [
            "--input",
            str(root / "pairs"),
            "--output",
            str(root / "images"),
            "--allow-private-networks",
            "--read-timeout",
            "3",
            "--backoff",
            "0.1",
            "--per-host-rate",
            "0",
            "--direct_num_workers",
            "2",
        ]
    )
    images = read_table(str(root / "images" / "images-*.parquet")).to_pylist()
    return truth, rows, images, stats


def test_every_pair_gets_the_status_its_ground_truth_predicts(downloaded):
    truth, rows, images, _ = downloaded
    expected = {row["uid"]: row["expected_status"] for row in truth if row["emitted_by_crawl"]}
    got = {row["uid"]: row["status"] for row in images}
    assert len(images) == len(rows) == len(got)
    wrong = {uid: (expected[uid], got[uid]) for uid in got if got[uid] != expected[uid]}
    assert wrong == {}


def test_every_fault_mode_was_exercised(downloaded):
    truth, _, _, _ = downloaded
    faults = {row["fault"] for row in truth if row["emitted_by_crawl"]}
    assert {
        "http_404",
        "http_500",
        "http_429",
        "hang",
        "slow",
        "truncated",
        "redirect_loop",
        "x_robots_tag",
        "robots_disallowed",
        "not_an_image",
        "undecodable",
        "wrong_content_type",
        "redirect_other_host",
    } <= faults


def test_original_sizes_are_the_served_sizes(downloaded):
    truth, _, images, _ = downloaded
    served = {row["uid"]: (row["width"], row["height"]) for row in truth if row["width"]}
    ok = [row for row in images if row["status"] == "ok" and row["uid"] in served]
    assert ok
    for row in ok:
        assert (row["original_width"], row["original_height"]) == served[row["uid"]]
        assert min(row["width"], row["height"]) == min(346, *served[row["uid"]])


def test_stats_balance(downloaded):
    _, rows, images, stats = downloaded
    assert stats["balanced"] and stats["in"] == len(rows)
    assert stats["kept"] == sum(row["status"] == "ok" for row in images)
