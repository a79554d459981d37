"""The trainer's progress reaches a log, not only a terminal, and it ends with a summary."""

from __future__ import annotations

from training.train_progress import TrainProgress, summary


class Step:
    """The optimizer's step counter, as the callback reads it."""

    def __init__(self, value: int):
        self.value = value

    def numpy(self) -> int:
        return self.value


def test_in_a_log_the_trainer_writes_step_total_rate_and_loss(capsys):
    step = Step(100)  # resumed from a checkpoint at step 100
    progress = TrainProgress(1000, batch_size=64, step=step, every=0, quiet=False)
    progress.on_train_begin()
    for value in (110, 120):
        step.value = value
        progress.on_train_batch_end(0, {"loss": 2.5})
    progress.close()
    lines = capsys.readouterr().err.splitlines()  # pytest's stderr is not a terminal
    assert len(lines) == 2
    assert lines[-1].startswith("align-train:  12% 120/1000 [")
    assert "steps/s, loss 2.500, " in lines[-1] and lines[-1].endswith(" images/s]")


def test_quiet_draws_nothing_but_the_summary_still_counts(capsys):
    step = Step(0)
    progress = TrainProgress(10, batch_size=8, step=step, every=0, quiet=True)
    progress.on_train_begin()
    step.value = 10
    progress.on_train_batch_end(0, {"loss": 1.0})
    progress.close()
    assert capsys.readouterr().err == ""
    text = summary(progress, "/m/export", "/m").splitlines()
    assert text[0] == "align-train: step 10, exported /m/export"
    assert text[1].startswith("  10 steps in ") and text[1].endswith(", last loss 1.000")
    assert text[-1] == "  TensorBoard: tensorboard --logdir /m/tensorboard"
