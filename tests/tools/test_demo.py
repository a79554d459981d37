"""The main job end to end, reduced: a small web and few steps through every real stage."""

import json

import pytest

from tools import demo

DATA_STAGES = ["crawl", "filter text", "download", "filter all"]
BASELINE_STAGES = ["download unfiltered", "shards unfiltered"]
ARM_STAGES = ["vocab", "train", "eval zero-shot", "eval retrieval"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    argv = ["--run-dir", str(run_dir), "--pairs", "400", "--steps", "20", "--batch-size", "16"]
    argv += ["--eval-every", "10", "--with-unfiltered"]
    manifest = demo.run([*argv, "--workers", "1", "--vocab-size", "300"])
    return run_dir, manifest


def test_demo_runs_every_stage_in_order(finished_run):
    _, manifest = finished_run
    arms = [f"{stage} ({arm})" for arm in ("filtered", "unfiltered") for stage in ARM_STAGES]
    assert [s["name"] for s in manifest["stages"]] == DATA_STAGES + BASELINE_STAGES + arms


def test_every_beam_stage_of_the_demo_loses_nothing(finished_run):
    _, manifest = finished_run
    for stage in manifest["stages"]:
        if stage["name"] in DATA_STAGES + BASELINE_STAGES:
            stats = stage["stats"]
            assert stats["in"] == stats["kept"] + sum(stats["rejected"].values()), stage["name"]
            assert stats["kept"] > 0, stage["name"]


def test_the_text_filter_feeds_the_download(finished_run):
    _, manifest = finished_run
    stats = {s["name"]: s["stats"] for s in manifest["stages"] if s["stats"]}
    assert stats["download"]["in"] == stats["filter text"]["kept"]
    assert stats["download unfiltered"]["in"] == stats["filter text"]["in"]


def test_both_arms_are_evaluated_with_chance_beside_each_figure(finished_run):
    _, manifest = finished_run
    for arm in ("filtered", "unfiltered"):
        zero_shot = manifest["metrics"][arm]["zero_shot"]
        assert zero_shot["chance"]["top1"] == pytest.approx(1 / 25)
        retrieval = manifest["metrics"][arm]["retrieval"]
        assert 0 < retrieval["text_to_image"]["chance"]["R@1"] < 1


def test_the_manifest_records_versions_timings_and_the_report(finished_run):
    run_dir, _ = finished_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["versions"]["apache-beam"] != "not installed"
    assert all(stage["seconds"] > 0 for stage in manifest["stages"])
    assert (run_dir / "filter" / "report" / "report.html").exists()
    assert (run_dir / "filtered" / "model" / "export" / "encoders.json").exists()


def test_the_summary_prints_chance_beside_each_figure(finished_run):
    run_dir, _ = finished_run
    summary = demo.summary_table(run_dir, [], ["filtered", "unfiltered"])
    filtered = next(line for line in summary.splitlines() if line.strip().startswith("filtered"))
    # top-1 [4%], colour and shape [20%] each, both R@1: text->image [1%] (image->text's
    # chance depends on the captions per image)
    assert filtered.count("[4.0%]") == 1 and filtered.count("[20.0%]") == 2
    assert filtered.count("[1.0%]") >= 1


def test_a_single_seed_comparison_is_labelled_as_such(finished_run):
    run_dir, _ = finished_run
    summary = demo.summary_table(run_dir, [], ["filtered", "unfiltered"])
    assert "unfiltered (1 seed)" in summary and "--experiment" in summary


def test_training_logs_held_out_learning_curves(finished_run):
    run_dir, _ = finished_run
    events = list((run_dir / "filtered" / "model" / "tensorboard" / "eval").glob("events.*"))
    assert events and events[0].stat().st_size > 0


def test_by_default_only_the_curated_model_is_trained(tmp_path):
    args = demo.build_parser().parse_args(["--run-dir", str(tmp_path)])
    assert not args.with_unfiltered
    stages = [stage.name for stage in demo.data_stages(args, tmp_path, tmp_path / "web")]
    assert stages == DATA_STAGES
