"""Zero-shot and retrieval on a held-out set every N training steps, logged to TensorBoard."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from training.evaluate import (
    DEFAULT_TEMPLATES,
    ImageTextEncoders,
    evaluate_retrieval,
    evaluate_zero_shot,
    load_retrieval,
    load_zero_shot,
)
from training.metrics import class_attributes
from training.summaries import scalar

ZERO_SHOT_SCALARS = ("top1", "top5", "mean_per_class_top1")
RETRIEVAL_SCALARS = ("R@1", "R@5", "R@10", "mean_rank", "median_rank")
CACHE_BYTES = 1 << 30  # decoded crops kept between evaluations up to this size per set


class EvalCallback(keras.callbacks.Callback):
    """Every ``every_n_steps`` optimizer steps, evaluates ``encoders_fn()`` on the held-out sets.

    The sets are read when the callback is made (a bad path fails before training starts)
    and their images decoded and cropped once, on the first evaluation, at the encoders'
    image size; later evaluations only run the towers. Scalars go to ``log_dir/eval`` as
    ``zero_shot/top1``, ``retrieval/image_to_text/R@1``, ... at the optimizer step, and every
    result is kept in ``self.history`` as ``(step, {"zero_shot": ..., "retrieval": ...})``.
    Steps are read from the optimizer, so ``steps_per_execution`` > 1 and resumed runs count
    right; the end of training is evaluated too unless that step already was.
    """

    def __init__(
        self,
        zero_shot_dir: str | None,
        retrieval_dir: str | None,
        every_n_steps: int,
        log_dir: str,
        encoders_fn: Callable[[], ImageTextEncoders],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        split: str = "test",
        evaluate_at_end: bool = True,
        attributes: Sequence[str] = (),
    ):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be positive, got {every_n_steps}")
        if not (zero_shot_dir or retrieval_dir):
            raise ValueError("EvalCallback needs a zero-shot set, a retrieval set or both")
        self.zero_shot_dir = zero_shot_dir
        self.retrieval_dir = retrieval_dir
        self.every_n_steps = every_n_steps
        self.log_dir = log_dir
        self.encoders_fn = encoders_fn
        self.templates = list(templates)
        self.split = split
        self.evaluate_at_end = evaluate_at_end
        self.attributes = list(attributes)
        self.zero_shot = load_zero_shot(zero_shot_dir) if zero_shot_dir else None
        self.retrieval = load_retrieval(retrieval_dir, split) if retrieval_dir else None
        if self.attributes and self.zero_shot is not None:
            class_attributes(self.zero_shot.class_names, self.attributes)  # fail before training
        self.history: list[tuple[int, dict]] = []
        self._pixels: dict[tuple, np.ndarray] = {}
        self._writer = None
        self._batches = 0
        self._last_step: int | None = None

    def _step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None) if self.model is not None else None
        if optimizer is not None:
            return int(keras.ops.convert_to_numpy(optimizer.iterations))
        return self._batches

    def on_train_begin(self, logs=None):
        self._last_step = self._step()

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        step = self._step()
        if self._last_step is None:
            self._last_step = step
        if step // self.every_n_steps > self._last_step // self.every_n_steps:
            self.evaluate(step)
        self._last_step = step

    def on_train_end(self, logs=None):
        step = self._step()
        evaluated = self.history and self.history[-1][0] == step
        if self.evaluate_at_end and not evaluated and step > 0:
            self.evaluate(step)

    def evaluate(self, step: int) -> dict:
        """Runs both sets with the current encoders, logs the scalars, returns the metrics."""
        encoders = self.encoders_fn()
        result = {}
        if self.zero_shot is not None:
            images = self._preprocessed(encoders, "zero_shot", self.zero_shot.images)
            result["zero_shot"] = evaluate_zero_shot(
                encoders, self.zero_shot, self.templates, images=images, attributes=self.attributes
            )
        if self.retrieval is not None:
            images = self._preprocessed(encoders, "retrieval", self.retrieval.images)
            result["retrieval"] = evaluate_retrieval(encoders, self.retrieval, images=images)
        self._log(step, result)
        self.history.append((step, result))
        return result

    def _preprocessed(self, encoders, name: str, paths: list[str]):
        """Float32 crops cached per (set, image size); paths if the set is large or the
        encoders cannot preprocess."""
        preprocess = getattr(encoders, "preprocess", None)
        size = getattr(encoders, "image_size", None)
        if preprocess is None or size is None or len(paths) * size * size * 3 * 4 > CACHE_BYTES:
            return None
        key = (name, size, getattr(encoders, "resize_size", None))
        if key not in self._pixels:
            self._pixels[key] = preprocess(paths)
        return self._pixels[key]

    def _log(self, step: int, result: dict) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(f"{self.log_dir.rstrip('/')}/eval")
        with self._writer.as_default(step=step):
            for name in ZERO_SHOT_SCALARS:
                if "zero_shot" in result:
                    scalar(f"zero_shot/{name}", result["zero_shot"][name])
            for name, part in result.get("zero_shot", {}).get("attributes", {}).items():
                scalar(f"zero_shot/{name}_top1", part["top1"])
            for direction in ("image_to_text", "text_to_image"):
                for name in RETRIEVAL_SCALARS:
                    if "retrieval" in result:
                        scalar(
                            f"retrieval/{direction}/{name}", result["retrieval"][direction][name]
                        )
        self._writer.flush()
