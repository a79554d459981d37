"""Writes M/export: both towers as plain Keras models, the vocabulary and encoders.json."""

from __future__ import annotations

import json
import os
import tempfile

import keras
import tensorflow as tf

from training.config import TrainConfig
from training.model import DualEncoder, build_image_encoder, build_text_encoder


def _float32_copy(model: keras.Model, build) -> keras.Model:
    """The same tower rebuilt under float32 with the trained weights.

    Training may run in mixed precision; readers of the export get float32 layers whatever
    the training policy was.
    """
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        copy = build()
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _put(local: str, remote: str) -> None:
    tf.io.gfile.copy(local, remote + ".tmp", overwrite=True)
    tf.io.gfile.rename(remote + ".tmp", remote, overwrite=True)


def export_encoders(
    model: DualEncoder, config: TrainConfig, vocabulary: list[str], model_dir: str
) -> str:
    """Writes the export layout under ``model_dir/export`` (local or gs://); returns its path.

    image_encoder.keras: float32 [B, S, S, 3] pixels 0..255 -> float32 [B, D] unit vectors.
    text_encoder.keras: {"token_ids", "padding_mask"} int32 [B, L] -> float32 [B, D].
    Both are built only from stock Keras / keras-hub layers, so ``keras.saving.load_model``
    reads them without this project. Texts must be tokenised by training.tokenize.AlignTokenizer
    with vocab.txt and encoders.json's ``lowercase`` and ``max_tokens``.
    """
    image = _float32_copy(model.image_encoder, lambda: build_image_encoder(config))
    embed_dim = int(image.output_shape[-1])
    text = _float32_copy(
        model.text_encoder, lambda: build_text_encoder(config, len(vocabulary), embed_dim)
    )
    spec = {
        "image_size": config.image_size,
        "resize_size": config.resize_size,
        "max_tokens": config.max_tokens,
        "lowercase": config.lowercase,
        "embed_dim": embed_dim,
        "temperature": float(keras.ops.convert_to_numpy(model.temperature)),
    }
    target = os.path.join(model_dir, "export")
    tf.io.gfile.makedirs(target)
    with tempfile.TemporaryDirectory() as scratch:
        image.save(os.path.join(scratch, "image_encoder.keras"))
        text.save(os.path.join(scratch, "text_encoder.keras"))
        with open(os.path.join(scratch, "vocab.txt"), "w") as handle:
            handle.write("".join(f"{piece}\n" for piece in vocabulary))
        with open(os.path.join(scratch, "encoders.json"), "w") as handle:
            json.dump(spec, handle, indent=2, sort_keys=True)
        # encoders.json last: its presence marks a complete export.
        for name in ("image_encoder.keras", "text_encoder.keras", "vocab.txt", "encoders.json"):
            _put(os.path.join(scratch, name), os.path.join(target, name))
    return target
