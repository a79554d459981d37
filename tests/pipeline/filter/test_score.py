"""The image-text score rule in align-filter: its accounting, the job-wide cut, cross-fitting
and one model load per worker process. Exports are tiny random-weight dual encoders: the
rule's plumbing needs no trained model, and the expected scores are recomputed here."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from filters.rules.image_text_score import LOW_SCORE
from filters.rules.semantic_dedup import SEMANTIC_DUPLICATE
from filters.scoring import histogram, keep_fraction_cut, uid_half
from pipeline.filter import score as score_module
from pipeline.filter.cli import run
from pipeline.filter.score import (
    SCORES_SCHEMA,
    FlagScores,
    ScoreRule,
    self_grading_warning,
    settings_for,
)
from pipeline.shards import read_table
from pipeline.stats import read_stats
from tests.pipeline.filter.inputs import downloaded, noise_image, write_images

tf = pytest.importorskip("tensorflow")
from training.config import load_config  # noqa: E402
from training.export import export_encoders  # noqa: E402
from training.model import build_dual_encoder  # noqa: E402

CONFIG = load_config("small", image_size=32, resize_size=36, max_tokens=8)
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "red", "blue", "circle", "##s"]
ALTS = ["a red circle", "blue circles", "a blue circle", "red red circle a"]


def tiny_export(folder, uid_half=None) -> str:
    config = dataclasses.replace(CONFIG, uid_half=uid_half)
    return export_encoders(build_dual_encoder(config, len(VOCAB)), config, VOCAB, str(folder))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {
        name: tiny_export(root / name, half) for name, half in (("all", None), ("h0", 0), ("h1", 1))
    }


@pytest.fixture(scope="module")
def records():
    rows = [
        downloaded(f"http://127.0.0.2/{i}.jpg", ALTS[i % 4] + f" {i}", image=noise_image(i))
        for i in range(24)
    ]
    rows.append(downloaded("http://127.0.0.2/gone.jpg", "a red circle gone", status="http_404"))
    return rows


def cosines(export: str, rows: list[dict]) -> dict[str, float]:
    """What the export says of each downloaded pair, computed here without the rule."""
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(export + "/saved_model")
    image = model.serving_image(tf.constant([r["image"] for r in rows]))["embeddings"].numpy()
    text = model.serving_text(tf.constant([r["alt"] for r in rows]))["embeddings"].numpy()
    return {r["uid"]: float(s) for r, s in zip(rows, np.sum(image * text, 1), strict=True)}


def filter_run(tmp_path, records, *flags) -> tuple[dict, list[dict]]:
    source = write_images(tmp_path / "in", records)
    run(["--input", str(source), "--output", str(tmp_path / "out"), "--languages", "all",
         "--min-unigrams", "1", *flags])  # fmt: skip
    return read_stats(str(tmp_path / "out")), read_table(
        str(tmp_path / "out/measurements/*")
    ).to_pylist()


def test_the_rule_flags_exactly_the_pairs_outside_the_job_wide_top_fraction(
    exports, records, tmp_path
):
    stats, measured = filter_run(
        tmp_path, records, "--score-model", exports["all"], "--keep-fraction", "0.5"
    )
    ok = [r for r in records if r["status"] == "ok"]
    scores = cosines(exports["all"], ok)
    cut = keep_fraction_cut(histogram(np.array(list(scores.values()))), 0.5)
    expected = {uid for uid, s in scores.items() if s < cut}
    flagged = {r["uid"] for r in measured if LOW_SCORE in r["reasons"]}
    assert flagged == expected and 0 < len(flagged) < len(ok)
    assert "image_text_score" in stats["rules"] and stats["score_models"] == [exports["all"]]
    assert stats["rejected"][LOW_SCORE] == len(expected)
    assert stats["kept"] + sum(stats["rejected"].values()) == stats["in"] == len(records)


def test_min_score_flags_every_pair_below_it(exports, records, tmp_path):
    ok = [r for r in records if r["status"] == "ok"]
    scores = cosines(exports["all"], ok)
    floor = float(np.median(list(scores.values())))
    _, measured = filter_run(
        tmp_path, records, "--score-model", exports["all"], "--min-score", str(floor)
    )
    flagged = {r["uid"] for r in measured if LOW_SCORE in r["reasons"]}
    assert flagged == {uid for uid, s in scores.items() if s < floor}


def test_without_a_score_model_the_rule_does_not_run(records, tmp_path):
    stats, _ = filter_run(tmp_path, records, "--keep-fraction", "0.5")
    assert "image_text_score" not in stats["rules"] and LOW_SCORE not in stats["rejected"]


def test_cross_fitting_scores_each_pair_with_the_model_of_the_other_half(
    exports, records, tmp_path
):
    _, measured = filter_run(
        tmp_path, records, "--score-model", exports["h1"], "--score-model", exports["h0"],
        "--min-score", "1.0",
    )  # fmt: skip
    ok = [r for r in records if r["status"] == "ok"]
    by_model = {half: cosines(exports[f"h{half}"], ok) for half in (0, 1)}
    assert {uid_half(r["uid"]) for r in ok} == {0, 1}
    for row in measured:
        if row["uid"] in by_model[0]:
            # min_score 1 flags every pair, so each measured score is the one its scorer gave.
            score = float(row["measured"][row["reasons"].index(LOW_SCORE)].split("=")[1].split()[0])
            other = 1 - uid_half(row["uid"])
            assert score == pytest.approx(by_model[other][row["uid"]], abs=1e-4)
            assert score != pytest.approx(by_model[1 - other][row["uid"]], abs=1e-4)


def test_two_exports_of_the_same_half_are_refused_before_the_job_runs(exports):
    with pytest.raises(ValueError, match="cross-fitting"):
        settings_for([exports["h0"], exports["h0"]])


@pytest.mark.parametrize("halves", [(None,), (0,), (1,)])
def test_one_export_scoring_every_pair_is_warned_of_grading_its_own_homework(halves):
    assert "own homework" in self_grading_warning(halves)


def test_cross_fitted_exports_are_not_warned_of():
    assert self_grading_warning((0, 1)) is None


def score_table(bid: str, scores: list[float]) -> pa.Table:
    rows = pa.array(range(len(scores)), pa.uint32())
    return pa.table({"bid": [bid] * len(scores), "row": rows, "score": scores}, SCORES_SCHEMA)


def test_bundles_with_different_score_distributions_share_one_cut():
    low = score_table("low", list(np.linspace(-0.5, 0.0, 30)))
    high = score_table("high", list(np.linspace(0.5, 0.9, 30)))
    with beam.Pipeline() as pipeline:
        flagged = (
            pipeline
            | beam.Create([low, high], reshuffle=False)
            | FlagScores(min_score=-1.0, keep_fraction=0.5)
            | beam.MapTuple(lambda bid, table: (bid, table.num_rows))
        )
        # Per bundle, half of each would go; over the job, the low bundle is the lower half.
        assert_that(flagged, equal_to([("low", 30)]))


def test_the_export_is_loaded_once_per_worker_process_across_bundles(exports, records):
    table = pa.Table.from_pylist(
        [{"uid": r["uid"], "image": r["image"], "alt": r["alt"]} for r in records[:8]]
    )
    tables = [
        table.slice(i, 2)
        .append_column("bid", pa.array([f"b{i}"] * 2))
        .append_column("row", pa.array([0, 1], pa.uint32()))
        for i in range(0, 8, 2)
    ]
    exports_used = (exports["h0"], exports["h1"])
    loads_before = score_module.LOADS.count(exports_used)
    pipeline = beam.Pipeline()
    settings = settings_for(list(exports_used), batch_size=3)
    pairs = pipeline | beam.Create(tables) | beam.Reshuffle()
    # Two steps scoring with the same exports: two DoFn instances in this one process.
    for label in ("First", "Second"):
        _ = pairs | label >> ScoreRule(settings, -1.0, 1.0)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(
        MetricsFilter().with_namespace(score_module.METRICS_NAMESPACE)
    )
    assert sum(c.committed for c in counters["counters"] if c.key.metric.name == "scored") == 16
    assert score_module.LOADS.count(exports_used) - loads_before == 1


def test_semantic_dedup_flags_copies_of_an_image_and_keeps_the_smallest_uid(
    exports, records, tmp_path
):
    copies = [
        downloaded(f"http://127.0.0.3/copy{i}.jpg", f"a red circle copy {i}", image=noise_image(0))
        for i in range(3)
    ]
    stats, measured = filter_run(
        tmp_path, records + copies, "--score-model", exports["all"], "--semantic-dedup",
        "--semantic-dup-cosine", "0.9999",
    )  # fmt: skip
    group = sorted([records[0]["uid"]] + [c["uid"] for c in copies])  # records[0]: same image
    flagged = {
        r["uid"]: r["measured"][r["reasons"].index(SEMANTIC_DUPLICATE)]
        for r in measured
        if SEMANTIC_DUPLICATE in r["reasons"]
    }
    assert set(flagged) == set(group[1:])
    assert all(value.endswith(f"to {group[0]}") for value in flagged.values())
    assert stats["rejected"][SEMANTIC_DUPLICATE] == 3 and "semantic_dedup" in stats["rules"]
    assert stats["kept"] + sum(stats["rejected"].values()) == stats["in"]
