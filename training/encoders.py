"""The exported towers as two functions, images -> embeddings and texts -> embeddings."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from training.preprocess import central_crop
from training.tokenize import AlignTokenizer

ImageItem = str | bytes | np.ndarray
DEFAULT_BATCH_SIZE = 64


class ExportError(ValueError):
    """An export that does not follow the layout (e.g. an incomplete encoders.json)."""


class ImageDecodeError(ValueError):
    """An image that does not decode; names the file."""


@dataclass(frozen=True)
class EncoderSpec:
    """``encoders.json``: what a reader of the export needs to feed the towers."""

    image_size: int
    resize_size: int
    max_tokens: int
    lowercase: bool
    embed_dim: int
    temperature: float

    @classmethod
    def from_dict(cls, values: dict, source: str = "encoders.json") -> EncoderSpec:
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in values]
        if missing:
            raise ExportError(f"{source} lacks {', '.join(missing)}")
        spec = cls(**{name: values[name] for name in names})
        if spec.resize_size < spec.image_size:
            raise ExportError(
                f"{source}: resize_size {spec.resize_size} < image_size {spec.image_size}"
            )
        return spec


def export_dir(path: str) -> str:
    """The folder holding encoders.json: ``path/export`` for a model dir, else ``path``."""
    nested = os.path.join(path, "export")
    if tf.io.gfile.exists(os.path.join(nested, "encoders.json")):
        return nested
    if tf.io.gfile.exists(os.path.join(path, "encoders.json")):
        return path
    raise FileNotFoundError(f"no encoders.json in {path} or {nested} (is it an align-train model?)")


def read_bytes(path: str) -> bytes:
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            return handle.read()
    except tf.errors.NotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None


def decode_file(item: str | bytes) -> np.ndarray:
    """A file or encoded bytes -> uint8 [H, W, 3] RGB, by Pillow (any format it opens).

    A file that does not decode is an error naming it: an evaluation set must not shrink
    silently. JPEGs decode to the same pixels as the trainer's tf.data input (see
    training.preprocess).
    """
    name = item if isinstance(item, str) else "<bytes>"
    try:
        data = read_bytes(item) if isinstance(item, str) else item
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        detail = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "its bytes", str(error))  # no addresses
        raise ImageDecodeError(f"cannot decode image {name}: {detail}") from error


def preprocess_image(item: str | bytes, image_size: int, resize_size: int) -> np.ndarray:
    """Decodes, resizes the shorter side to ``resize_size``, centre-crops ``image_size``.

    ALIGN's eval transform (resize 346, centre crop 289), scaled by encoders.json, computed by
    the trainer's own function: float32 [S, S, 3] pixels 0..255, exactly what tf.data gives.
    """
    return central_crop(tf.constant(decode_file(item)), image_size, resize_size).numpy()


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalises rows (idempotent for the exported towers; needed for a live model)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


_POOL: ThreadPoolExecutor | None = None


def _decode_pool() -> ThreadPoolExecutor:
    """One shared pool of decoding threads (Pillow releases the GIL while decoding)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1))
    return _POOL


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_padded(model: keras.Model, inputs, count: int, batch_size: int) -> np.ndarray:
    """Runs a batch padded to ``batch_size`` so the predict function is traced once."""
    pad = batch_size - count

    def padded(array):
        array = np.asarray(array)
        if pad <= 0:
            return array
        return np.concatenate([array, np.zeros((pad, *array.shape[1:]), array.dtype)])

    inputs = (
        {k: padded(v) for k, v in inputs.items()} if isinstance(inputs, dict) else padded(inputs)
    )
    return normalise(np.asarray(model.predict_on_batch(inputs))[:count])


class Encoders:
    """Image and text towers from an export, batched, with the eval preprocessing built in."""

    def __init__(
        self,
        image_model: keras.Model,
        text_model: keras.Model,
        tokenizer: AlignTokenizer,
        spec: EncoderSpec,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.image_model = image_model
        self.text_model = text_model
        self.tokenizer = tokenizer
        self.spec = spec
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str, batch_size: int = DEFAULT_BATCH_SIZE) -> Encoders:
        """Loads ``path/export`` (or ``path`` itself) without any training code."""
        folder = export_dir(path)
        config = os.path.join(folder, "encoders.json")
        try:
            values = json.loads(read_bytes(config))
        except json.JSONDecodeError as error:
            raise ExportError(f"{config} is not JSON: {error}") from None
        spec = EncoderSpec.from_dict(values, config)
        tokenizer = AlignTokenizer(
            _read_vocabulary(os.path.join(folder, "vocab.txt")), spec.lowercase, spec.max_tokens
        )
        image_model = keras.saving.load_model(os.path.join(folder, "image_encoder.keras"))
        text_model = keras.saving.load_model(os.path.join(folder, "text_encoder.keras"))
        return cls(image_model, text_model, tokenizer, spec, batch_size)

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    @property
    def resize_size(self) -> int:
        return self.spec.resize_size

    @property
    def embed_dim(self) -> int:
        return self.spec.embed_dim

    def preprocess(self, items: Sequence[str | bytes]) -> np.ndarray:
        """Decodes and crops files or encoded bytes in parallel threads, order kept."""
        crop = [self.image_size, self.resize_size]
        arrays = list(_decode_pool().map(lambda item: preprocess_image(item, *crop), items))
        empty = np.zeros((0, self.image_size, self.image_size, 3), np.float32)
        return np.stack(arrays) if arrays else empty

    def iter_image_embeddings(self, items: Sequence[ImageItem]) -> Iterator[np.ndarray]:
        """Yields [batch, D] embeddings in order; decodes the next batch while one runs."""
        if isinstance(items, np.ndarray):
            self._check_preprocessed(items)
            for batch in _chunks(items, self.batch_size):
                yield _run_padded(self.image_model, batch, len(batch), self.batch_size)
            return
        batches = list(_chunks(list(items), self.batch_size))
        with ThreadPoolExecutor(max_workers=1) as lookahead:  # decodes batch i+1 during batch i
            pending = lookahead.submit(self.preprocess, batches[0]) if batches else None
            for index in range(len(batches)):
                pixels = pending.result()
                if index + 1 < len(batches):
                    pending = lookahead.submit(self.preprocess, batches[index + 1])
                yield _run_padded(self.image_model, pixels, len(pixels), self.batch_size)

    def embed_images(self, images: Sequence[ImageItem]) -> np.ndarray:
        """[N, S, S, 3] pixels already preprocessed, or a list of paths / encoded bytes."""
        return _concat(self.iter_image_embeddings(images), self.embed_dim)

    def embed_texts(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        out = []
        for batch in _chunks(texts, self.batch_size):
            tokens = {k: v.numpy() for k, v in self.tokenizer(tf.constant(batch)).items()}
            out.append(_run_padded(self.text_model, tokens, len(batch), self.batch_size))
        return _concat(out, self.embed_dim)

    def _check_preprocessed(self, images: np.ndarray) -> None:
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"preprocessed images must be [N, {', '.join(map(str, expected))}], "
                f"got {list(images.shape)}"
            )


def _concat(batches: Iterable[np.ndarray], dim: int) -> np.ndarray:
    batches = list(batches)
    return np.concatenate(batches) if batches else np.zeros((0, dim), np.float32)


def _read_vocabulary(path: str) -> list[str]:
    """Lines read exactly as keras-hub reads a local vocabulary file, from any filesystem."""
    with io.TextIOWrapper(io.BytesIO(read_bytes(path)), encoding="utf-8") as lines:
        return [line.rstrip() for line in lines]
