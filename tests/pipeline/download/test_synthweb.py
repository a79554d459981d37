"""align-download against the synthetic web with every fault mode on: each pair ends with the
status its ground truth predicts, at the size the server serves."""

import json
from collections import Counter
from pathlib import Path

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


def test_each_image_hosts_policy_files_are_fetched_once_and_recorded(downloaded, synthetic_web):
    """Once per host and run, by the list that owns the host; a host that another host
    redirects to is also read by that host's list (docs/dataflow.md: the known gap)."""
    truth, _, _, stats = downloaded
    folder = str(Path(stats["input"]).parent / "images" / "policies" / "*.parquet")
    fetched = Counter(
        (row["origin"].split("/")[2].split(":")[0], row["file"])
        for row in read_table(folder).to_pylist()
    )
    routes = json.loads((synthetic_web.site / "routes.json").read_text())["routes"]
    targets = {
        route["target_host"]
        for host_routes in routes.values()
        for route in host_routes.values()
        if route.get("fault") == "redirect_other_host"
    }
    hosts = {row["url"].split("/")[2].split(":")[0] for row in truth if row["emitted_by_crawl"]}
    for host in (host for host in hosts if host.startswith("127.0.0.")):
        for file in ("robots.txt", "ai.txt", "tdmrep.json"):
            assert fetched[(host, file)] == 1 or host in targets, (host, file)
    assert targets and not targets - hosts


def test_every_reservation_of_an_image_host_is_honoured_under_its_name(downloaded):
    truth, _, images, stats = downloaded
    for reason in ("ai_txt", "tdmrep_json", "tdm_reservation"):
        labelled = {
            row["uid"] for row in truth if row["consent"] == reason and row["emitted_by_crawl"]
        }
        assert stats["rejected"][reason] == len(labelled) > 0
        assert all(row["image"] is None for row in images if row["uid"] in labelled)
