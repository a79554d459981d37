"""The curation experiment: arm (b) is eval dedup alone, and the table reports mean ± spread."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.filter.cli import run as align_filter
from pipeline.records import DOWNLOAD_SCHEMA
from pipeline.shards import read_table, rows_to_table
from tests.pipeline.filter.test_synthweb import downloaded_from_ground_truth
from tools import demo_cli, experiment


def test_eval_dedup_only_config_removes_nothing_but_failed_downloads_and_eval_duplicates(
    synthetic_web, tmp_path
):
    truth = pq.read_table(synthetic_web.ground_truth).to_pylist()
    records = downloaded_from_ground_truth(truth)
    (tmp_path / "in").mkdir()
    pq.write_table(rows_to_table(records, DOWNLOAD_SCHEMA), tmp_path / "in" / "images-0.parquet")
    config = tmp_path / "eval_dedup_only.yaml"
    config.write_text(yaml.safe_dump(experiment.EVAL_DEDUP_ONLY))
    evals = synthetic_web.root / "eval"
    align_filter(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                  "--rules", "all", "--config", str(config), "--shards", "2",
                  "--eval-images", f"zero_shot={evals}/zero_shot/*/*.jpg",
                  "--eval-images", f"retrieval={evals}/retrieval/images/*.jpg"])  # fmt: skip
    measured = read_table(str(tmp_path / "out" / "measurements" / "*.parquet")).to_pylist()
    reasons = {reason.split("/")[0] for row in measured for reason in row["reasons"]}
    assert "eval_near_duplicate" in reasons  # the web plants them and the rule is on
    assert {r for r in reasons if not r.startswith("download_")} == {"eval_near_duplicate"}
    ok = sum(record["status"] == "ok" for record in records)
    dropped = sum(
        [reason.split("/")[0] for reason in row["reasons"]] == ["eval_near_duplicate"]
        for row in measured
    )
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["kept"] == ok - dropped


def trial(top1: float, colour: float, shape: float, i2t: float, t2i: float) -> dict:
    return {
        "zero_shot": {
            "top1": top1,
            "chance": {"top1": 0.04},
            "attributes": {
                "colour": {"top1": colour, "chance": 0.2},
                "shape": {"top1": shape, "chance": 0.2},
            },
        },
        "retrieval": {
            "image_to_text": {"R@1": i2t, "chance": {"R@1": 0.05}},
            "text_to_image": {"R@1": t2i, "chance": {"R@1": 0.01}},
        },
    }


def test_the_table_gives_each_arm_mean_and_spread_over_seeds_with_chance(tmp_path):
    arms = experiment.arms_of(tmp_path, scale=3)
    for seed, top1 in enumerate([0.5, 0.6, 0.7]):
        folder = tmp_path / "trials" / "all_rules" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(trial(top1, 0.9, 0.55, 0.3, 0.2)))
    table = experiment.experiment_table(tmp_path, arms, {"all_rules": 3390})
    row = next(line for line in table.splitlines() if "(c) all ALIGN rules" in line)
    assert "3,390" in row and "60.0 ± 10.0" in row and "90.0 ±  0.0" in row
    chance = next(line for line in table.splitlines() if line.strip().startswith("chance"))
    assert chance.split()[1:] == ["[4.0]", "[20.0]", "[20.0]", "[5.0]", "[1.0]"]
    missing = next(line for line in table.splitlines() if "(b) eval dedup only" in line)
    assert "n/a" in missing


@pytest.mark.parametrize("values, expected", [([0.5], " 50.0 (1 seed)"), ([], "n/a")])
def test_mean_spread_of_one_seed_or_none(values, expected):
    assert experiment.mean_spread(values) == expected


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 2 webs, 6 filter jobs, 8 trainings, 6 evaluations (~11 min busy)
def test_the_experiment_runs_every_arm_end_to_end(tmp_path, capsys):
    """A tiny experiment through every real stage: each arm trained and scored. One seed keeps
    it to a few minutes; the mean and spread over seeds are the table's test above."""
    argv = ["--experiment", "--run-dir", str(tmp_path / "run"), "--pairs", "300", "--scale", "2"]
    argv += ["--seeds", "1", "--steps", "2", "--batch-size", "8", "--eval-every", "0"]
    argv += ["--score-steps", "2", "--min-score", "-1"]  # 2-step scorers: plumbing, no cut
    manifest = demo_cli.run([*argv, "--workers", "1", "--vocab-size", "300"])
    printed = capsys.readouterr().out
    assert set(manifest["trials"]) == {arm.key for arm in experiment.arms_of(tmp_path, 2)}
    assert all(len(trials) == 1 for trials in manifest["trials"].values())
    assert all(count > 0 for count in manifest["pairs"].values())
    labels = ["(b) eval dedup only", "(c) all ALIGN rules", "(d) uncurated"]
    for label in labels + ["(e) ALIGN rules + score", "(b) at (d)'s epochs"]:
        row = next(line for line in printed.splitlines() if label in line)
        assert row.count("(1 seed)") == len(experiment.METRICS) and "n/a" not in row
    chance = next(line for line in printed.splitlines() if line.strip().startswith("chance"))
    assert chance.split()[1:4] == ["[4.0]", "[20.0]", "[20.0]"]
    for _, _, label in experiment.COMPARISONS:
        assert label in printed  # one seed each: printed with p n/a, never left out
    assert manifest["score_rule"]["seed0"]["judged"] > 0
    assert "Score rule, cross-fitted, over 1 seeds" in printed


def test_the_equal_epochs_arm_trains_for_the_large_arms_epochs(tmp_path):
    from tools import demo

    args = demo.build_parser().parse_args(["--experiment", "--steps", "900", "--seeds", "4"])
    arms = {arm.key: arm for arm in experiment.arms_of(tmp_path, scale=3)}
    pairs = {"eval_dedup": 1000, "eval_dedup_epochs": 1000, "uncurated_large": 3000}
    assert experiment.steps_of(args, arms["eval_dedup_epochs"], pairs) == 300
    assert experiment.steps_of(args, arms["eval_dedup"], pairs) == 900
    assert experiment.seeds_of(args) == [0, 1, 2, 3]


def test_each_seed_of_the_score_arm_trains_on_its_own_scorers_cut(tmp_path):
    from tools import demo

    args = demo.build_parser().parse_args(["--experiment", "--seeds", "3", "--run-dir", "r"])
    args.steps, args.run_dir_path = 1000, tmp_path
    score = next(arm for arm in experiment.arms_of(tmp_path, 3) if arm.key == "score")
    stages = experiment.score_arm_stages(args, tmp_path, tmp_path / "web")
    filters = [stage for stage in stages if stage.name.startswith("filter all + score")]
    assert [stage.output for stage in filters] == [score.shards_for(seed) for seed in (0, 1, 2)]
    trainers = [stage.command for stage in stages if stage.name.startswith("train half")]
    seeds = [int(command[command.index("--seed") + 1]) for command in trainers]
    assert len(set(seeds)) == 6  # no two scorers share a training seed
    for seed, stage in zip((0, 1, 2), filters, strict=True):
        models = [part for part in stage.command if part.endswith("export")]
        assert all(f"seed{seed}" in model for model in models) and len(models) == 2
    trial = experiment.trial_stages(args, tmp_path, score, tmp_path / "web", seed=2)[0].command
    assert str(score.shards_for(2) / "shards") in " ".join(trial)


def test_the_score_rule_is_reported_as_mean_and_spread_over_the_seeds_that_scored():
    def quality(recall: float, any_noise: float) -> dict:
        return {"recall": recall, "precision_any_noise": any_noise, "precision": 0.375}

    text = experiment.score_rule_text({0: quality(0.8, 0.9), 1: quality(0.9, 1.0), 2: None})
    assert "over 2 seeds" in text
    assert "recall on mismatched captions 85.0 ± 7.1%" in text
    assert "precision, any noise 95.0 ± 7.1%" in text and "alone 37.5 ± 0.0%" in text
    assert experiment.score_rule_text({0: None}) == ""
