"""Images and texts -> unit embeddings, through the export's own preprocessing.

``Encoders.load`` runs an export's SavedModel (strings and image bytes in). The trainer's live
evaluation runs the functions that SavedModel was traced from (AlignTokenizer and
training.preprocess.crop_encoded_images), then Keras's predict on its towers, which follows
the training strategy's devices. Either way an image is decoded, resized and cropped, and a
text tokenised, by the same ops as the trainer's input.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401 - registers the ops of the SavedModel's tokeniser
from PIL import Image

from training.export import SAVED_MODEL
from training.preprocess import crop_encoded_images
from training.tokenize import AlignTokenizer

ImageItem = str | bytes
DEFAULT_BATCH_SIZE = 64
EmbedFn = Callable[[tf.Tensor], np.ndarray]  # string [B] -> float32 [B, D]


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


def _too_large(data: bytes) -> str | None:
    """Pillow's decompression-bomb verdict from the header alone, before TensorFlow decodes
    (and allocates) the pixels; None when the header is fine or Pillow does not know it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.open(io.BytesIO(data)).close()
    except Image.DecompressionBombError as error:
        return str(error)
    except Exception:  # noqa: BLE001 - not Pillow's to judge: TensorFlow decodes or refuses
        return None
    return None


_crop = tf.function(crop_encoded_images, reduce_retracing=True)  # one trace per size


def preprocess_image(item: str | bytes, image_size: int, resize_size: int) -> np.ndarray:
    """One file or encoded image -> float32 [S, S, 3] pixels 0..255, by the export's ops.

    ALIGN's eval transform (resize the shorter side to 346, centre crop 289), scaled by
    encoders.json: exactly the pixels tf.data gives the trainer (training.preprocess).
    """
    name = item if isinstance(item, str) else "<bytes>"
    data = read_bytes(item) if isinstance(item, str) else item
    problem = _too_large(data)
    if problem is None:
        try:
            return _crop(tf.constant([data]), image_size, resize_size).numpy()[0]
        except tf.errors.InvalidArgumentError as error:
            problem = _first_line(error.message)
    raise ImageDecodeError(f"cannot decode image {name}: {problem}")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalises rows (idempotent for the exported towers, which end in a unit norm)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


_POOL: ThreadPoolExecutor | None = None


def _read_pool() -> ThreadPoolExecutor:
    """One shared pool of reading threads (files may sit on gs://)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1))
    return _POOL


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_item(item: ImageItem) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, why) for a file that cannot be read."""
    if isinstance(item, bytes):
        return item, None
    try:
        return read_bytes(item), None
    except (FileNotFoundError, tf.errors.OpError) as error:
        return None, f"cannot read image {item}: {error}"


def _structured(function) -> EmbedFn:
    """A SavedModel endpoint returns {"embeddings": ...}; evaluation wants the array."""
    return lambda inputs: function(inputs)["embeddings"].numpy()


class Encoders:
    """Image and text embedding in batches, with the export's preprocessing built in.

    ``Encoders(image_tower, text_tower, tokenizer, spec)`` wraps live towers (the trainer's
    evaluation); ``Encoders.load(path)`` reads an export. Images are paths or encoded bytes,
    or float32 [N, S, S, 3] pixels already cropped by ``preprocess`` (the eval callback's
    cache), which go straight to the image tower.
    """

    def __init__(
        self,
        image_model: keras.Model,
        text_model: keras.Model,
        tokenizer: AlignTokenizer,
        spec: EncoderSpec,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        crop = [spec.image_size, spec.resize_size]
        self._setup(
            lambda images: _run_padded(image_model, _crop(images, *crop).numpy(), batch_size),
            lambda texts: _run_padded(text_model, tokenizer(texts), batch_size),
            spec,
            batch_size,
            image_model,
        )

    def _setup(self, embed_image_bytes, embed_texts, spec, batch_size, pixel_model) -> None:
        self.embed_image_bytes: EmbedFn = embed_image_bytes
        self.embed_strings: EmbedFn = embed_texts
        self.spec = spec
        self.batch_size = batch_size
        self._pixel_model = pixel_model
        self._pixel_model_path: str | None = None

    @property
    def pixel_model(self) -> keras.Model:
        """The image tower alone, for pixels cropped by ``preprocess``; an export's is read
        from image_encoder.keras on first use (align-eval never needs it)."""
        if self._pixel_model is None:
            self._pixel_model = keras.saving.load_model(self._pixel_model_path)
        return self._pixel_model

    @classmethod
    def load(cls, path: str, batch_size: int = DEFAULT_BATCH_SIZE) -> Encoders:
        """Loads ``path/export`` (or ``path`` itself) without any training code.

        An export with saved_model/ runs it as it is. An older one (towers without their
        preprocessing) is wrapped here in the functions saved_model/ is traced from.
        """
        folder = export_dir(path)
        config = os.path.join(folder, "encoders.json")
        try:
            values = json.loads(read_bytes(config))
        except json.JSONDecodeError as error:
            raise ExportError(f"{config} is not JSON: {error}") from None
        spec = EncoderSpec.from_dict(values, config)
        saved = os.path.join(folder, SAVED_MODEL)
        if not tf.io.gfile.exists(os.path.join(saved, "saved_model.pb")):
            return cls._from_towers(folder, spec, batch_size)
        model = tf.saved_model.load(saved)
        encoders = cls.__new__(cls)
        encoders._setup(
            _structured(model.serving_image),
            _structured(model.serving_text),
            spec,
            batch_size,
            None,
        )
        encoders._saved_model = model  # keeps the functions' variables alive
        encoders._pixel_model_path = os.path.join(folder, "image_encoder.keras")
        return encoders

    @classmethod
    def _from_towers(cls, folder: str, spec: EncoderSpec, batch_size: int) -> Encoders:
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

    def preprocess(self, items: Sequence[ImageItem]) -> np.ndarray:
        """float32 [N, S, S, 3] crops of files or encoded bytes, in parallel, order kept."""
        crop = [self.image_size, self.resize_size]
        arrays = list(_read_pool().map(lambda item: preprocess_image(item, *crop), items))
        empty = np.zeros((0, self.image_size, self.image_size, 3), np.float32)
        return np.stack(arrays) if arrays else empty

    def try_embed_images(self, items: Sequence[ImageItem]) -> tuple[np.ndarray, list[str | None]]:
        """[N, D] embeddings (zero rows where an image failed) and each item's error or None.

        One batch through the export at a time; a batch that fails to decode is retried item
        by item, so one bad file costs its own row only.
        """
        embeddings = np.zeros((len(items), self.embed_dim), np.float32)
        errors: list[str | None] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            out, batch_errors = self._embed_batch(batch)
            embeddings[start : start + len(batch)] = out
            errors += batch_errors
        return embeddings, errors

    def _embed_batch(self, items: Sequence[ImageItem]) -> tuple[np.ndarray, list[str | None]]:
        read = list(_read_pool().map(_read_item, items))
        datas = [data for data, _ in read]
        errors = [error for _, error in read]
        for index, data in enumerate(datas):
            problem = None if data is None else _too_large(data)
            if problem:
                errors[index] = f"cannot decode image {_name(items[index])}: {problem}"
        out = np.zeros((len(items), self.embed_dim), np.float32)
        good = [i for i, error in enumerate(errors) if error is None]
        try:
            if good:
                out[good] = self._run_bytes([datas[i] for i in good])
            return out, errors
        except tf.errors.InvalidArgumentError:
            pass
        for i in good:  # find the image(s) that broke the batch
            try:
                out[i] = self._run_bytes([datas[i]])[0]
            except tf.errors.InvalidArgumentError as error:
                errors[i] = f"cannot decode image {_name(items[i])}: {_first_line(error.message)}"
        return out, errors

    def _run_bytes(self, datas: list[bytes]) -> np.ndarray:
        return normalise(self.embed_image_bytes(tf.constant(datas, tf.string)))

    def iter_image_embeddings(self, items) -> Iterator[np.ndarray]:
        """Yields [batch, D] embeddings in order; an image that fails is an ImageDecodeError."""
        if isinstance(items, np.ndarray):
            self._check_preprocessed(items)
            for batch in _chunks(items, self.batch_size):
                yield _run_padded(self.pixel_model, batch, self.batch_size)
            return
        for batch in _chunks(list(items), self.batch_size):
            embeddings, errors = self._embed_batch(batch)
            failed = next((error for error in errors if error), None)
            if failed:
                raise ImageDecodeError(failed)
            yield embeddings

    def embed_images(self, images) -> np.ndarray:
        """A list of paths / encoded bytes, or [N, S, S, 3] pixels cropped by ``preprocess``."""
        return _concat(self.iter_image_embeddings(images), self.embed_dim)

    def embed_texts(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        out = [
            normalise(self.embed_strings(tf.constant(batch, tf.string)))
            for batch in _chunks(texts, self.batch_size)
        ]
        return _concat(out, self.embed_dim)

    def _check_preprocessed(self, images: np.ndarray) -> None:
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"preprocessed images must be [N, {', '.join(map(str, expected))}], "
                f"got {list(images.shape)}"
            )


def _run_padded(model: keras.Model, inputs, batch_size: int) -> np.ndarray:
    """Runs a batch (an array or a dict of them) padded to ``batch_size``, so the predict
    function is traced once."""

    def padded(array):
        array = np.asarray(array)
        if len(array) >= batch_size:
            return array
        return np.concatenate(
            [array, np.zeros((batch_size - len(array), *array.shape[1:]), array.dtype)]
        )

    count = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    inputs = (
        {k: padded(v) for k, v in inputs.items()} if isinstance(inputs, dict) else padded(inputs)
    )
    return normalise(np.asarray(model.predict_on_batch(inputs))[:count])


def _name(item: ImageItem) -> str:
    return item if isinstance(item, str) else "<bytes>"


def _concat(batches: Iterable[np.ndarray], dim: int) -> np.ndarray:
    batches = list(batches)
    return np.concatenate(batches) if batches else np.zeros((0, dim), np.float32)


def _read_vocabulary(path: str) -> list[str]:
    """Lines read exactly as keras-hub reads a local vocabulary file, from any filesystem."""
    with io.TextIOWrapper(io.BytesIO(read_bytes(path)), encoding="utf-8") as lines:
        return [line.rstrip() for line in lines]
