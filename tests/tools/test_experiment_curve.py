"""The learning-curve check reads each trial's held-out evaluations at an earlier step."""

import tensorflow as tf

from tools import experiment_curve
from training.summaries import scalar


def write_curve(model_dir, points: dict[int, float]) -> None:
    writer = tf.summary.create_file_writer(str(model_dir / "tensorboard" / "eval"))
    with writer.as_default():
        for step, top1 in points.items():
            with writer.as_default(step=step):
                scalar(experiment_curve.TOP1_TAG, top1)
                scalar("zero_shot/top5", 1.0)  # other scalars are not the curve
    writer.flush()


def test_a_trials_curve_is_its_held_out_top1_per_step(tmp_path):
    write_curve(tmp_path, {500: 0.5, 1000: 0.75})
    assert experiment_curve.held_out_curve(tmp_path) == {500: 0.5, 1000: 0.75}


def test_the_comparisons_are_repeated_at_the_step_and_arms_not_evaluated_there_left_out(
    tmp_path,
):
    for seed, (better, worse) in enumerate([(0.75, 0.5), (0.875, 0.625), (0.5, 0.375)]):
        write_curve(tmp_path / "trials" / "all_rules" / f"seed{seed}", {500: better, 1000: 1})
        write_curve(tmp_path / "trials" / "eval_dedup" / f"seed{seed}", {500: worse, 1000: 1})
        write_curve(tmp_path / "trials" / "eval_dedup_epochs" / f"seed{seed}", {330: worse})
    comparisons = [
        ("all_rules", "eval_dedup", "(c) vs (b)"),
        ("all_rules", "eval_dedup_epochs", "(c) vs (b) at equal epochs"),
    ]
    text = experiment_curve.curve_text(tmp_path, comparisons, step=500)
    row = next(line for line in text.splitlines() if "(c) vs (b)" in line)
    assert row.split()[3:5] == ["3", "+20.8"]  # 3 paired seeds, mean difference in points
    assert "equal epochs" not in text and "at step 500" in text
