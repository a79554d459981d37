"""The experiment's learning-curve check: would a shorter trial rank the arms as the full one?

Every trial evaluates the held-out zero-shot set during training (``--eval-every``, 500 steps:
TensorBoard scalars under ``<model>/tensorboard/eval``). Reading the same comparisons at an
earlier step tells a reader whether the trial's length decides the answer: if the comparisons
point the same way at half the steps as at the end, the ranking is not an accident of where
training stopped; if they flip, longer trials are needed before believing either.
"""

from __future__ import annotations

from pathlib import Path

from tools.experiment_stats import comparison_table, paired

TOP1_TAG = "zero_shot/top1"


def held_out_curve(model_dir: Path) -> dict[int, float]:
    """{optimizer step: held-out zero-shot top-1} of one trial's evaluations during training."""
    import tensorflow as tf  # noqa: PLC0415 - only when an experiment prints its check

    curve = {}
    for events in sorted((model_dir / "tensorboard" / "eval").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag == TOP1_TAG:
                    curve[int(event.step)] = float(tf.make_ndarray(value.tensor))
    return curve


def top1_at(run: Path, arm_key: str, step: int) -> dict[int, float]:
    """{seed: held-out top-1 at ``step``} of an arm's trials that were evaluated there."""
    found = {}
    for model_dir in sorted((run / "trials" / arm_key).glob("seed*")):
        curve = held_out_curve(model_dir)
        if step in curve:
            found[int(model_dir.name.removeprefix("seed"))] = curve[step]
    return found


def curve_text(run: Path, comparisons, step: int) -> str:
    """The experiment's comparisons ((first, second, label) arm keys) again, on the held-out
    top-1 at ``step`` of training. A comparison whose arms were not evaluated at ``step`` (the
    equal-epochs arm stops sooner) is left out."""
    results = []
    for first, second, label in comparisons:
        values = [top1_at(run, key, step) for key in (first, second)]
        if values[0] and values[1]:
            results.append(paired(label, *values))
    if not results:
        return ""
    return comparison_table(results, f"held-out zero-shot top-1 at step {step}") + (
        f"\n  (learning-curve check: the same comparisons at step {step} of training; where a "
        "difference keeps its sign, the trial's length does not decide it)"
    )
