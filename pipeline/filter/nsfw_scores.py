"""The NSFW hook: scores images with a TensorFlow/Keras classifier through Beam's RunInference.

ALIGN drops pornographic images with a classifier it does not publish; this module runs any
classifier that follows one small contract, so a user brings their own model:

- the model is a Keras 3 file (``.keras``/``.h5``) or a TensorFlow SavedModel directory
  (``model.export(...)``, ``tf.saved_model.save``) with one image input and one output;
- input: ``[B, H, W, 3]`` float32 RGB in 0..255 (a model that wants another scaling carries
  its own ``Rescaling`` layer); ``H, W`` are read from the model's input signature unless
  ``image_size`` is given (it must be, for a model with dynamic spatial dimensions);
- output: ``[B]`` or ``[B, 1]``, the probability that the image is NSFW.

Images are decoded with Pillow and resized (squashed, bilinear) to ``H x W`` inside
``run_inference``, once the model is loaded and its input size known, so a batch holds only
encoded bytes until it reaches the model. An image Pillow cannot decode scores NaN (counted
as ``pipeline.nsfw/undecodable``): the caller decides what an unscored image means.

TensorFlow is imported only when a worker loads the model; importing this module (which the
filter job always does) costs nothing more than Beam. Beam's own ``TFModelHandlerNumpy`` is
not used because it needs ``tensorflow_hub`` and loads through ``tf.keras.models.load_model``,
which under Keras 3 cannot open a SavedModel directory.

TensorFlow and Keras come with the 'train' extra, which the curation core (a Dataflow
worker's install from the staged sdist) leaves out: without it, NsfwScores (built by the
driver) and a worker loading the model both say which extra to install.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference
from PIL import Image

from commandline.extras import require

METRICS_NAMESPACE = "pipeline.nsfw"
NEEDED_BY = "the NSFW hook (--nsfw-model)"
KERAS_SUFFIXES = (".keras", ".h5")


@dataclass
class LoadedClassifier:
    """A loaded model with the input size its images are resized to."""

    predict: Any  # callable: float32 [B, H, W, 3] -> array-like [B] or [B, 1]
    height: int
    width: int


def _input_size(shape: Sequence[int | None], model_path: str) -> tuple[int, int]:
    """(H, W) of a [B, H, W, 3] input shape; a clear error when the model does not say."""
    if len(shape) != 4 or shape[-1] not in (3, None):
        raise ValueError(
            f"NSFW model {model_path} must take [batch, height, width, 3] images, "
            f"its input shape is {list(shape)}"
        )
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError(
            f"NSFW model {model_path} has dynamic image dimensions {list(shape)}: "
            "pass image_size to NsfwScores"
        )
    return int(height), int(width)


def load_classifier(model_path: str, image_size: int | None = None) -> LoadedClassifier:
    """Loads a Keras file or a SavedModel directory (importing TensorFlow only here)."""
    require("train", NEEDED_BY)
    import tensorflow as tf  # noqa: PLC0415 - lazy on purpose: only workers that score pay it

    if model_path.endswith(KERAS_SUFFIXES):
        import keras  # noqa: PLC0415

        model = keras.saving.load_model(model_path, compile=False)
        shape = tuple(model.inputs[0].shape)

        def predict(images: np.ndarray):
            # The compiled predict step: ~6x faster on CPU than an eager model(images) call.
            return keras.ops.convert_to_numpy(model.predict_on_batch(images))

    else:
        loaded = tf.saved_model.load(model_path)
        signature = loaded.signatures["serving_default"]
        specs = list(signature.structured_input_signature[1].values())
        if len(specs) != 1:
            raise ValueError(f"NSFW model {model_path} must have one input, has {len(specs)}")
        shape = tuple(specs[0].shape)

        def predict(images: np.ndarray):
            outputs = signature(tf.constant(images))
            if len(outputs) != 1:
                raise ValueError(f"NSFW model {model_path} must have one output")
            return next(iter(outputs.values())).numpy()

    if image_size is not None:
        height = width = int(image_size)
    else:
        height, width = _input_size(shape, model_path)
    return LoadedClassifier(predict=predict, height=height, width=width)


def decode_resized(data: bytes, height: int, width: int) -> np.ndarray | None:
    """Encoded bytes -> float32 [H, W, 3] in 0..255, or None when Pillow cannot decode them."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (width, height))  # JPEG: decode at a reduced scale when it can
            rgb = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def probabilities(outputs: Any, batch_size: int) -> np.ndarray:
    """Model outputs [B] or [B, 1] -> float64 [B]; anything else is a contract error."""
    scores = np.asarray(outputs, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (batch_size,):
        raise ValueError(
            f"NSFW model must output [batch] or [batch, 1] probabilities, got shape "
            f"{list(np.asarray(outputs).shape)} for a batch of {batch_size}"
        )
    return scores


class NsfwModelHandler(ModelHandler[bytes, float, LoadedClassifier]):
    """RunInference handler: a batch of encoded images -> one NSFW probability each."""

    def __init__(self, model_path: str, batch_size: int = 32, image_size: int | None = None):
        # Full batches (min = max): the model sees one batch shape, and throughput is best.
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self.model_path = model_path
        self.batch_size = batch_size
        self.image_size = image_size

    def load_model(self) -> LoadedClassifier:
        return load_classifier(self.model_path, self.image_size)

    def run_inference(
        self,
        batch: Sequence[bytes],
        model: LoadedClassifier,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[float]:
        arrays = [decode_resized(data, model.height, model.width) for data in batch]
        decoded = [array for array in arrays if array is not None]
        Metrics.counter(METRICS_NAMESPACE, "undecodable").inc(len(arrays) - len(decoded))
        scores = iter(())
        if decoded:
            scores = iter(probabilities(model.predict(np.stack(decoded)), len(decoded)))
        return [math.nan if array is None else float(next(scores)) for array in arrays]

    def get_num_bytes(self, batch: Sequence[bytes]) -> int:
        return sum(len(data) for data in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE


def keyed_images(table: pa.Table, key: str = "uid") -> Iterator[tuple[str, bytes]]:
    """(key, image bytes) of each row of a batch that has an image."""
    for name, image in zip(
        table.column(key).to_pylist(), table.column("image").to_pylist(), strict=True
    ):
        if image is not None:
            yield name, image


class NsfwScores(beam.PTransform):
    """pa.Table batches (key, image) -> (key, NSFW probability), scored in model batches; the
    key is the ``key`` column (the uid by default).

    Rows without image bytes are skipped (they have nothing to score).
    """

    def __init__(
        self,
        model_path: str,
        batch_size: int = 32,
        image_size: int | None = None,
        key: str = "uid",
    ):
        super().__init__()
        require("train", NEEDED_BY)  # here on the driver, before any worker starts
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be at least 1, got {image_size}")
        saved_model = FileSystems.join(model_path, "saved_model.pb")  # gs:// has no directories
        if not (FileSystems.exists(model_path) or FileSystems.exists(saved_model)):
            raise FileNotFoundError(f"NSFW model not found: {model_path}")
        self.model_path = model_path
        self.batch_size = batch_size
        self.image_size = image_size
        self.key = key

    def expand(self, tables):
        handler = NsfwModelHandler(self.model_path, self.batch_size, self.image_size)
        return (
            tables
            | "KeyedImages" >> beam.FlatMap(keyed_images, self.key)
            | "RunInference" >> RunInference(KeyedModelHandler(handler))
        )
