"""A URL list from list to training shards on the synthetic web, the way a user brings one:
a CC3M-style TSV (caption<TAB>url, no header) and a LAION-style Parquet (URL, TEXT,
similarity, WIDTH, NSFW), each through ingest -> filter text -> download -> filter all.

The lists hold every <img> of the web's ground truth, so they carry what lists in the wild
carry: repeated pairs, ftp: and data: URLs, empty captions, dead and hostile images."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.config import small_config_path
from pipeline.download import cli as download
from pipeline.filter import cli as filter_job
from pipeline.ingest import cli as ingest
from pipeline.shards import read_table
from tests.integration.chain import FETCH

pytestmark = pytest.mark.slow
CONFIG = ["--config", str(small_config_path())]
EXTRAS = {"similarity", "input_WIDTH", "NSFW"}


def write_lists(truth: list[dict], folder) -> dict:
    folder.mkdir()
    tsv = folder / "cc3m.tsv"
    tsv.write_text("".join(f"{row['alt']}\t{row['url']}\n" for row in truth))
    laion = folder / "laion.parquet"
    pq.write_table(
        pa.table(
            {
                "URL": [row["url"] for row in truth],
                "TEXT": [row["alt"] for row in truth],
                "similarity": [round(0.2 + row["position"] / 100, 3) for row in truth],
                "WIDTH": [row["width"] for row in truth],
                "NSFW": ["UNLIKELY"] * len(truth),
            }
        ),  # fmt: skip
        laion,
        row_group_size=100,
    )
    return {"tsv": tsv, "parquet": laion}


def run_chain(source, root, eval_glob) -> dict:
    """ingest -> text -> download -> all; returns each stage's stats."""
    out = {stage: root / stage for stage in ("ingest", "text", "download", "all")}
    return {
        "ingest": ingest.run(["--input", str(source), "--output", str(out["ingest"])]),
        "text": filter_job.run(["--input", str(out["ingest"]), "--output", str(out["text"]),
                                "--rules", "text", *CONFIG]),
        "download": download.run(["--input", str(out["text"]), "--output",
                                  str(out["download"]), *FETCH]),
        "all": filter_job.run(["--input", str(out["download"]), "--output", str(out["all"]),
                               "--rules", "all", "--eval-images", f"test={eval_glob}", *CONFIG,
                               "--output-format", "tfrecord,webdataset"]),
    }  # fmt: skip


@pytest.fixture(scope="module")
def chains(synthetic_web, tmp_path_factory):
    root = tmp_path_factory.mktemp("url_lists")
    truth = pq.read_table(synthetic_web.ground_truth).to_pylist()
    # Not the <img> tags of pages that reserve themselves: no list made with their owners'
    # consent holds them, and a list cannot tell (that is --opt-out's job).
    truth = [row for row in truth if row["emitted_by_crawl"] or not row["consent"]]
    lists = write_lists(truth, root / "lists")
    eval_glob = f"{synthetic_web.eval_zero_shot}/*/*.jpg"
    results = {
        name: (run_chain(path, root / name, eval_glob), root / name) for name, path in lists.items()
    }
    return truth, results


@pytest.mark.parametrize("name", ["tsv", "parquet"])
def test_every_row_of_the_list_is_accounted_for_at_every_stage(chains, name):
    truth, results = chains
    stats, _ = results[name]
    assert all(stage["balanced"] for stage in stats.values())
    ingested = stats["ingest"]
    emitted = [row for row in truth if row["emitted_by_crawl"]]
    assert ingested["in"] == len(truth)
    assert ingested["kept"] == len(emitted) - sum(row["duplicate"] for row in emitted)
    assert ingested["rejected"]["duplicate"] == sum(row["duplicate"] for row in emitted)
    assert set(ingested["rejected"]) == {"duplicate", "bad_url", "empty_caption"}
    assert stats["text"]["in"] == ingested["kept"]
    assert stats["download"]["in"] == stats["text"]["kept"]
    assert stats["all"]["in"] == stats["download"]["in"]


@pytest.mark.parametrize("name", ["tsv", "parquet"])
def test_the_ingested_pairs_are_the_crawls_pairs_uid_for_uid(chains, name):
    truth, results = chains
    _, root = results[name]
    uids = set(read_table(str(root / "ingest" / "pairs-*.parquet")).column("uid").to_pylist())
    assert uids == {row["uid"] for row in truth if row["emitted_by_crawl"]}


@pytest.mark.parametrize("name", ["tsv", "parquet"])
def test_downloads_end_as_the_ground_truth_predicts(chains, name):
    truth, results = chains
    _, root = results[name]
    expected = {row["uid"]: row["expected_status"] for row in truth if row["emitted_by_crawl"]}
    images = read_table(str(root / "download" / "images-*.parquet"), ["uid", "status"])
    got = dict(
        zip(images.column("uid").to_pylist(), images.column("status").to_pylist(), strict=True)
    )
    assert {
        uid: (expected[uid], status) for uid, status in got.items() if status != expected[uid]
    } == {}


def test_the_lists_extras_reach_the_final_sidecars_and_webdataset_json(chains):
    truth, results = chains
    stats, root = results["parquet"]
    sidecar = read_table(str(root / "all" / "shards" / "align-*.parquet"))
    assert EXTRAS <= set(sidecar.column_names) and sidecar.num_rows == stats["all"]["kept"] > 0
    assert sidecar.schema.field("similarity").type == pa.float64()
    width = {row["uid"]: row["width"] for row in truth if row["uid"]}
    for row in sidecar.to_pylist():
        assert row["input_WIDTH"] == width[row["uid"]] and row["NSFW"] == "UNLIKELY"
    import webdataset as wds

    tars = sorted(str(p) for p in (root / "all" / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))
    assert len(samples) == sidecar.num_rows
    assert all(EXTRAS <= set(json.loads(s["json"])) for s in samples)


def test_both_lists_end_in_the_same_training_pairs(chains):
    _, results = chains
    kept = {
        name: set(
            read_table(str(root / "all" / "shards" / "align-*.parquet")).column("uid").to_pylist()
        )
        for name, (_, root) in results.items()
    }
    assert kept["tsv"] == kept["parquet"]
