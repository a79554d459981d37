"""Tiny exported towers with known behaviour, and solid-colour eval sets, for the eval tests.

The towers are wired by hand so the right answers are known, and written by the trainer's own
exporter (training.export): an image embeds as its mean RGB colour, a text as the mean of its
colour words' directions. "red" things therefore match red images.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from training.export import write_export as write_export_files

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "the", ".", *COLOURS]
IMAGE_SIZE, RESIZE_SIZE, MAX_TOKENS = 8, 10, 12


def _image_tower() -> keras.Model:
    pixels = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(pixels)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model(pixels, x, name="image_encoder")


def _text_tower() -> keras.Model:
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    table = np.zeros((len(VOCAB), 3), np.float32)
    for channel, word in enumerate(COLOURS):
        table[VOCAB.index(word), channel] = 1.0
    table[VOCAB.index("[UNK]")] = 0.01  # unknown words point nowhere in particular
    embed = keras.layers.Embedding(len(VOCAB), 3, trainable=False, name="embed")
    x = embed(token_ids)
    embed.set_weights([table])
    mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, "float32"), -1)
    x = keras.layers.Multiply()([x, mask])
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.UnitNormalization()(x)
    return keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, x)


SPEC = {
    "image_size": IMAGE_SIZE,
    "resize_size": RESIZE_SIZE,
    "max_tokens": MAX_TOKENS,
    "lowercase": True,
    "embed_dim": 3,
    "temperature": 0.05,
}


def write_export(model_dir: Path | str) -> Path | str:
    """Writes model_dir/export (any tf.io.gfile path) with the trainer's exporter; returns
    model_dir."""
    write_export_files(_image_tower(), _text_tower(), VOCAB, SPEC, f"{model_dir}/export")
    return model_dir


def write_towers_only_export(model_dir: Path) -> Path:
    """An export from before the SavedModel: the towers, vocab.txt and encoders.json."""
    export = model_dir / "export"
    export.mkdir(parents=True, exist_ok=True)
    _image_tower().save(export / "image_encoder.keras")
    _text_tower().save(export / "text_encoder.keras")
    (export / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (export / "encoders.json").write_text(json.dumps(SPEC))
    return model_dir


def solid_jpeg(path: Path, colour: tuple[int, int, int], size=(24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)
    return path


def write_zero_shot(root: Path, per_class: int = 2, classes_txt: bool = True) -> Path:
    for name, colour in COLOURS.items():
        for i in range(per_class):
            solid_jpeg(root / name / f"{i}.jpg", colour)
    if classes_txt:
        (root / "classes.txt").write_text("\n".join(COLOURS) + "\n")
    return root


def write_retrieval(root: Path) -> Path:
    """Three images, two captions each, plus a train-split image that must be ignored."""
    images = []
    for name, colour in COLOURS.items():
        solid_jpeg(root / "images" / f"{name}.jpg", colour)
        images.append(
            {
                "filename": f"{name}.jpg",
                "split": "test",
                "sentences": [{"raw": f"a {name} photo."}, {"raw": f"the {name}"}],
            }
        )
    solid_jpeg(root / "images" / "extra.jpg", (9, 9, 9))
    images.append({"filename": "extra.jpg", "split": "train", "sentences": [{"raw": "a photo"}]})
    (root / "captions.json").write_text(json.dumps({"images": images}))
    return root
