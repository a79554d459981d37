"""Writes M/export: a SavedModel that takes strings and image bytes, the towers, the vocabulary.

The SavedModel carries the preprocessing (tokeniser, decode, resize, crop) as graph ops, so a
reader needs TensorFlow and tensorflow-text, never this project; align-eval and align-embed
run it too (training.encoders). text_encoder.keras takes strings too, built from stock
keras-hub layers only. image_encoder.keras takes cropped pixels: no stock Keras or keras-hub
layer decodes images (Keras's image layers are Resizing, Rescaling, CenterCrop, on pixels),
and the one stock layer that could carry the decoder, keras.layers.TFSMLayer over
serving_image, is refused by ``keras.saving.load_model`` in its default safe mode (Keras 3.15)
and stores the SavedModel's absolute path. Keras users build that layer themselves instead
(docs/training.md; tests/training/test_export.py checks it).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings

import keras
import tensorflow as tf

from training.config import TrainConfig
from training.model import DualEncoder, build_image_encoder, build_text_encoder
from training.preprocess import crop_encoded_images
from training.tokenize import AlignTokenizer, text_preprocessor

SAVED_MODEL = "saved_model"
FORMAT = 2  # encoders.json "format": 2 = saved_model/ carries the preprocessing; absent = 1


def serving_functions(
    image_tower: keras.Model, text_tower: keras.Model, tokenizer: AlignTokenizer, spec: dict
) -> tuple[tf.types.experimental.PolymorphicFunction, tf.types.experimental.PolymorphicFunction]:
    """(image bytes string [B] -> float32 [B, D], texts string [B] -> float32 [B, D]).

    Both run the trainer's own preprocessing (training.preprocess's decode and central crop,
    AlignTokenizer) in the graph, then the tower; the towers end in UnitNormalization, so the
    embeddings are unit vectors.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def embed_image_bytes(image_bytes):
        pixels = crop_encoded_images(image_bytes, spec["image_size"], spec["resize_size"])
        return image_tower(pixels, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def embed_texts(text):
        return text_tower(tokenizer(text), training=False)

    return embed_image_bytes, embed_texts


def write_saved_model(
    image_tower: keras.Model, text_tower: keras.Model, vocabulary: list[str], spec: dict, path: str
) -> None:
    """``serving_image(image_bytes)`` and ``serving_text(text)``, each -> {"embeddings"}."""
    tokenizer = AlignTokenizer(vocabulary, spec["lowercase"], spec["max_tokens"])
    embed_image_bytes, embed_texts = serving_functions(image_tower, text_tower, tokenizer, spec)
    tokenizer(tf.constant([""]))  # builds its layers: an export tracks built layers only
    archive = keras.export.ExportArchive()
    for trackable in (image_tower, text_tower, tokenizer.preprocessor):
        archive.track(trackable)
    text_spec = [tf.TensorSpec([None], tf.string, name="text")]
    image_spec = [tf.TensorSpec([None], tf.string, name="image_bytes")]
    archive.add_endpoint("serving_text", lambda text: {"embeddings": embed_texts(text)}, text_spec)
    archive.add_endpoint(
        "serving_image",
        lambda image_bytes: {"embeddings": embed_image_bytes(image_bytes)},
        image_spec,
    )
    archive.write_out(path, verbose=False)


def string_text_encoder(text_tower: keras.Model, vocabulary: list[str], spec: dict) -> keras.Model:
    """Strings [B] -> the tower's embeddings: keras-hub's BERT preprocessor, then the tower.

    Left unbuilt on purpose: Keras rebuilds a built model's graph on loading before it reads
    the tokeniser's vocabulary asset, and the tokeniser cannot run without it; an unbuilt
    Sequential builds on its first call, after loading. The preprocessor's boolean mask and
    segment ids are adapted to the tower's int32 inputs by stock ops.
    """
    length = spec["max_tokens"]
    token_ids = keras.Input((length,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((length,), dtype="bool", name="padding_mask")
    segment_ids = keras.Input((length,), dtype="int32", name="segment_ids")
    tokens = {"token_ids": token_ids, "padding_mask": keras.ops.cast(padding_mask, "int32")}
    adapted = keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids},
        text_tower(tokens),
        name="text_tower",
    )
    preprocessor = text_preprocessor(vocabulary, spec["lowercase"], length)
    return keras.Sequential([preprocessor, adapted], name="text_encoder")


def _save_unbuilt(model: keras.Model, path: str) -> None:
    with warnings.catch_warnings():  # "not yet been built": intended, see string_text_encoder
        warnings.filterwarnings("ignore", message=".*has not yet been built.*")
        model.save(path)


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


def _put_tree(local: str, remote: str) -> None:
    """Copies a folder (the SavedModel) file by file; works for gs:// targets too."""
    for folder, _, names in tf.io.gfile.walk(local):
        relative = os.path.relpath(folder, local)
        target = remote if relative == "." else f"{remote}/{relative}"
        tf.io.gfile.makedirs(target)
        for name in names:
            _put(os.path.join(folder, name), f"{target}/{name}")


def write_export(
    image_tower: keras.Model,
    text_tower: keras.Model,
    vocabulary: list[str],
    spec: dict,
    target: str,
) -> str:
    """Writes the export layout (see docs/training.md) under ``target``, local or gs://.

    saved_model/: ``serving_text(text)`` and ``serving_image(image_bytes)``, preprocessing
    inside. text_encoder.keras: strings [B] in. image_encoder.keras: float32 [B, S, S, 3]
    cropped pixels 0..255 in. vocab.txt, and encoders.json (``spec`` plus ``format``), last.
    """
    spec = {**spec, "format": FORMAT}
    tf.io.gfile.makedirs(target)
    with tempfile.TemporaryDirectory() as scratch:
        image_tower.save(os.path.join(scratch, "image_encoder.keras"))
        _save_unbuilt(
            string_text_encoder(text_tower, vocabulary, spec),
            os.path.join(scratch, "text_encoder.keras"),
        )
        with open(os.path.join(scratch, "vocab.txt"), "w") as handle:
            handle.write("".join(f"{piece}\n" for piece in vocabulary))
        with open(os.path.join(scratch, "encoders.json"), "w") as handle:
            json.dump(spec, handle, indent=2, sort_keys=True)
        write_saved_model(
            image_tower, text_tower, vocabulary, spec, os.path.join(scratch, SAVED_MODEL)
        )
        _put_tree(os.path.join(scratch, SAVED_MODEL), os.path.join(target, SAVED_MODEL))
        # encoders.json last: its presence marks a complete export.
        for name in ("image_encoder.keras", "text_encoder.keras", "vocab.txt", "encoders.json"):
            _put(os.path.join(scratch, name), os.path.join(target, name))
    return target


def export_encoders(
    model: DualEncoder, config: TrainConfig, vocabulary: list[str], model_dir: str
) -> str:
    """Writes ``model_dir/export`` from a trained model (float32 towers); returns its path."""
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
        "uid_half": config.uid_half,  # the pairs it trained on: cross-fitting reads it
    }
    return write_export(image, text, vocabulary, spec, os.path.join(model_dir, "export"))
