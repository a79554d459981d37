"""The trainer's progress line and closing summary, drawn by commandline/progress.py.

Keras's own bar redraws in place with backspaces, unreadable in a log; this callback gives
the same facts the jobs' lines give: step / total, steps/s, ETA, the loss and images/s, live
on a terminal and every ``--progress-every`` seconds in a log.
"""

from __future__ import annotations

import time

import keras

from commandline.progress import ProgressLine, duration

LABEL = "align-train"


class TrainProgress(keras.callbacks.Callback):
    """A progress line over the optimizer's step, across the run's one or two ``fit`` calls."""

    def __init__(self, total_steps: int, batch_size: int, step, every: float, quiet: bool):
        super().__init__()
        self.total_steps, self.batch_size, self.step = total_steps, batch_size, step
        self.every, self.quiet = every, quiet
        self.line: ProgressLine | None = None
        self.first_step = self.last_step = int(step.numpy())  # a resumed run: its checkpoint's
        self.started = time.monotonic()
        self.loss: float | None = None

    def on_train_begin(self, logs=None):
        if self.line is None and not self.quiet:  # once, though fit may run twice
            self.line = ProgressLine(
                LABEL, self.total_steps, " steps", initial=self.first_step, every=self.every
            )

    def on_train_batch_end(self, batch, logs=None):
        self.last_step = int(self.step.numpy())
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
        if self.line is not None:
            self.line.update(self.last_step, self.note())

    def note(self) -> str:
        parts = [f"loss {self.loss:.3f}"] if self.loss is not None else []
        return ", ".join(parts + [f"{self.images_per_second():,.0f} images/s"])

    def images_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.last_step - self.first_step) * self.batch_size / elapsed if elapsed else 0.0

    def close(self) -> None:
        if self.line is not None:
            self.line.close()


def summary(progress: TrainProgress, export: str, model_dir: str) -> str:
    """``align-train: step N, exported PATH`` and what the run did, where its logs are."""
    steps = progress.last_step - progress.first_step
    seconds = time.monotonic() - progress.started
    rate = f"{steps / seconds:,.1f} steps/s, " if seconds > 0 and steps else ""
    loss = f", last loss {progress.loss:.3f}" if progress.loss is not None else ""
    tensorboard = f"{model_dir.rstrip('/')}/tensorboard"
    return "\n".join(
        [
            f"{LABEL}: step {progress.last_step}, exported {export}",
            f"  {steps:,} steps in {duration(seconds)} "
            f"({rate}{progress.images_per_second():,.0f} images/s){loss}",
            f"  checkpoints: {model_dir.rstrip('/')}/checkpoints",
            f"  TensorBoard: tensorboard --logdir {tensorboard}",
        ]
    )
