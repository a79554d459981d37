"""The main job end to end, reduced: a small web and few steps through every real stage."""

import json
import math
from pathlib import Path

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

from commandline.flags import UsageError
from tests.pipeline.report.report_fixtures import section, table_row
from tests.pipeline.report.test_report_layout import WIDTHS, browser_or_skip
from tests.tools.browser import measure_layout
from tools import demo, demo_cli

# Slow: the demo runs once for the module, every stage; started first (tests/conftest.py).
pytestmark = pytest.mark.slow

DATA_STAGES = ["crawl", "filter text", "download", "filter all"]
BASELINE_STAGES = ["download unfiltered", "shards unfiltered"]
ARM_STAGES = ["vocab", "train", "eval zero-shot", "eval retrieval"]
SCORE_STAGES = ["train half 0 (score)", "train half 1 (score)", "filter all + score"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    argv = ["--run-dir", str(run_dir), "--pairs", "400", "--steps", "20", "--batch-size", "16"]
    argv += ["--eval-every", "10", "--with-unfiltered", "--score-steps", "10"]
    manifest = demo_cli.run([*argv, "--workers", "1", "--vocab-size", "300"])
    return run_dir, manifest


def test_demo_runs_every_stage_in_order(finished_run):
    _, manifest = finished_run
    arms = [f"{stage} ({arm})" for arm in ("filtered", "unfiltered") for stage in ARM_STAGES]
    expected = DATA_STAGES + BASELINE_STAGES + arms + SCORE_STAGES
    assert [s["name"] for s in manifest["stages"]] == expected


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


def test_the_score_rule_is_cross_fitted_and_judged_in_the_same_report(finished_run):
    run_dir, manifest = finished_run
    stats = json.loads((run_dir / "score_filter" / "stats.json").read_text())
    assert "image_text_score" in stats["rules"] and stats["score_trained_halves"] == [0, 1]
    quality = section(
        (run_dir / "score_filter" / "report" / "report.md").read_text(),
        "## Rules against the ground truth",
    )
    assert table_row(quality, "low_image_text_score")  # beside ALIGN's rules, same table
    assert manifest["score_rule"]["judged"] > 0
    assert stats["in"] == stats["kept"] + sum(stats["rejected"].values())


def test_by_default_only_the_curated_model_is_trained(tmp_path):
    args = demo.build_parser().parse_args(["--run-dir", str(tmp_path)])
    assert not args.with_unfiltered
    stages = [stage.name for stage in demo.data_stages(args, tmp_path, tmp_path / "web")]
    assert stages == DATA_STAGES


def test_the_report_covers_the_whole_curation_against_the_webs_ground_truth(finished_run):
    run_dir, _ = finished_run
    markdown = (run_dir / "filter" / "report" / "report.md").read_text()
    removed = section(markdown, "## Records removed per rule")
    assert table_row(removed, "alt_too_short")[-1] == "text_filter"
    quality = section(markdown, "## Rules against the ground truth")
    for rule in ("alt_too_short", "rare_token", "image_too_small", "image_with_many_alts"):
        assert float(table_row(quality, rule)[8]) > 0.5, rule  # recall, text and image rules
    examples = section(markdown, "## Examples per rule")
    caught = examples.count("**Caught: labelled")
    # beside what each rule caught, the clean pairs it removed (or a line saying there were none)
    assert caught >= 6 and examples.count("Removed by mistake") == caught


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demos_report_fits_a_browser_window(finished_run, width):
    run_dir, _ = finished_run
    page = run_dir / "filter" / "report" / "report.html"
    layout = measure_layout(browser_or_skip(), page, width)
    assert layout["scrollWidth"] <= width and layout["overflowing"] == [], layout


def test_the_demo_reads_the_trainers_step_from_its_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "align-train: 1 replica(s), float32, step 0\n"
        "align-train:  12% 120/1000 [00:10<01:30, 12.00 steps/s, loss 2.500, 768 images/s]\n"
    )
    assert demo.training_step(log) == "step 120"
    log.write_text(log.read_text() + "align-train: step 1000, exported /m/export\n")
    assert demo.training_step(log) == "step 1,000"


def tensorboard_scalars(logdir) -> dict:
    """{run: {tag: [(step, value)]}} as TensorBoard's own scalars dashboard reads them."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    read = provider.read_scalars(
        context.RequestContext(), experiment_id="", plugin_name="scalars", downsample=10_000
    )
    return {
        run: {tag: [(point.step, point.value) for point in points] for tag, points in tags.items()}
        for run, tags in read.items()
    }


def test_tensorboard_shows_each_models_training_scalars(finished_run):
    run_dir, _ = finished_run
    scalars = tensorboard_scalars(run_dir)  # what `make tensorboard` serves
    expected = {"loss", "temperature", "learning_rate", "images_per_second"}
    for arm in ("filtered", "unfiltered"):
        tags = scalars[f"{arm}/model/tensorboard/train"]
        assert expected <= set(tags)
        for points in (tags[tag] for tag in expected):
            assert points and all(step > 0 and math.isfinite(value) for step, value in points)


def test_log_names_are_shell_friendly():
    stage = demo.Stage("train (filtered)", [])
    assert demo.log_path_of(Path("logs"), stage) == Path("logs/train_filtered.log")
    stage = demo.Stage("eval zero-shot (filtered)", [])
    assert demo.log_path_of(Path("logs"), stage).name == "eval_zero_shot_filtered.log"


def test_a_folder_that_is_not_an_earlier_run_is_refused_unless_forced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="--force"):
        demo.clear_run_dir(tmp_path, force=False)
    assert (tmp_path / "notes.txt").exists()
    demo.clear_run_dir(tmp_path, force=True)
    assert not tmp_path.exists()


def test_an_earlier_run_is_replaced(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    demo.clear_run_dir(tmp_path, force=False)
    assert not tmp_path.exists()


def test_counts_per_stage_do_not_count_failed_downloads_again_as_rejections(tmp_path):
    stats = {"in": 10, "kept": 5, "rejected": {"download_timeout": 3, "image_too_small": 2}}
    stage = demo.Stage("filter all", [], stats=stats)
    row = next(
        line
        for line in demo.summary_table(tmp_path, [stage], []).splitlines()
        if "filter all" in line
    )
    assert row.split()[2:6] == ["pairs", "10", "5", "2"] and "+3 not downloaded" in row
