"""The export carries its preprocessing: strings and image bytes in, read without this project.

A fresh interpreter that cannot import this project loads the export's SavedModel (TensorFlow
and tensorflow-text only) and its Keras towers, and must give the embeddings the trainer's
own input pipeline (make_dataset's decode, resize, crop and AlignTokenizer) and towers give.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.synthetic import write_shards
from training.config import load_config
from training.data import make_dataset
from training.export import export_encoders
from training.model import build_dual_encoder
from training.tokenize import AlignTokenizer

CONFIG = load_config("small", image_size=32, resize_size=36, max_tokens=8)
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "red", "blue", "circle", "##s"]
TOKENS = ("token_ids", "padding_mask")
REPO = str(Path(__file__).resolve().parents[2])
# Float32 rounding only: the same ops on the same weights, batched differently (tf.data's
# batches of one vs the signature's batch). Measured: images equal, texts within 2.3e-8; one
# channel of one pixel one level up moves this tower's embedding 7.5e-5, one token 7e-2.
TOLERANCE = 1e-5


def encoded(width: int, height: int, fmt: str, seed: int, mode: str = "RGB") -> bytes:
    """Noise with a band: any change of decoder, resize or crop shows in the embedding."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[height // 3 : height // 2] = (230, 20, 20)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


IMAGES = [
    encoded(51, 37, "JPEG", 0),
    encoded(30, 44, "PNG", 1),
    encoded(40, 40, "WEBP", 2, mode="RGBA"),  # TensorFlow needs help with alpha in WebP
    encoded(33, 70, "GIF", 3, mode="P"),
    encoded(64, 31, "BMP", 4, mode="L"),
]
TEXTS = ["a red circle", "Blue CIRCLES", "", "a red circle a blue circle a red one", "émoji ☺"]

IN_A_FRESH_INTERPRETER = """
import sys
repo = sys.argv[1]
sys.path = [p for p in sys.path if p not in ("", ".", repo)]
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
try:
    import training
    sys.exit("the project is importable: " + training.__file__)
except ModuleNotFoundError:
    pass
import json, numpy as np, tensorflow as tf, tensorflow_text
export, inputs = sys.argv[2], np.load(sys.argv[3])
serving = tf.saved_model.load(export + "/saved_model")
out = {
    "text": serving.serving_text(tf.constant(json.loads(str(inputs["texts"]))))["embeddings"],
    "image": serving.serving_image(tf.constant(
        [open(f"image{i}", "rb").read() for i in range(int(inputs["images"]))]))["embeddings"],
    "keras_hub_imported": "keras_hub" in sys.modules,
}
import keras
image_tower = keras.saving.load_model(export + "/image_encoder.keras")
text_encoder = keras.saving.load_model(export + "/text_encoder.keras")
out["image_tower"] = image_tower(inputs["pixels"])
out["text_encoder"] = text_encoder(tf.constant(json.loads(str(inputs["texts"]))))
image_layer = keras.layers.TFSMLayer(export + "/saved_model", call_endpoint="serving_image")
out["image_layer"] = image_layer(tf.constant(
    [open(f"image{i}", "rb").read() for i in range(int(inputs["images"]))]))["embeddings"]
np.savez(sys.argv[4], **{k: np.asarray(v) for k, v in out.items()})
"""


@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """A tiny dual encoder (random weights: equality needs no training) and its export."""
    root = tmp_path_factory.mktemp("export")
    model = build_dual_encoder(CONFIG, len(VOCAB))
    export = export_encoders(model, CONFIG, VOCAB, str(root / "model"))
    return model, export, root


@pytest.fixture(scope="module")
def trainers_view(trained_like):
    """What training's own input pipeline and towers make of IMAGES and TEXTS."""
    model, _, root = trained_like
    pairs = [
        {"uid": str(i), "url": f"http://x/{i}", "text": t, "image": im, "width": 0, "height": 0}
        for i, (im, t) in enumerate(zip(IMAGES, TEXTS, strict=True))
    ]
    shards = write_shards(root / "shards", pairs, num_shards=1)
    tokenizer = AlignTokenizer(VOCAB, CONFIG.lowercase, CONFIG.max_tokens)
    batches = list(make_dataset(shards, CONFIG, tokenizer, batch_size=1, training=False))
    pixels = np.concatenate([b["images"].numpy() for b in batches])
    tokens = {k: np.concatenate([b[k].numpy() for b in batches]) for k in TOKENS}
    return {
        "pixels": pixels,
        "image": np.asarray(model.image_encoder(pixels)),
        "text": np.asarray(model.text_encoder(tokens)),
    }


@pytest.fixture(scope="module")
def fresh(trained_like, trainers_view, tmp_path_factory):
    """The export's outputs computed in a subprocess that cannot import this project."""
    _, export, _ = trained_like
    scratch = tmp_path_factory.mktemp("fresh")
    for i, image in enumerate(IMAGES):
        (scratch / f"image{i}").write_bytes(image)
    np.savez(
        scratch / "inputs.npz",
        texts=json.dumps(TEXTS),
        images=len(IMAGES),
        pixels=trainers_view["pixels"],
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-I", "-c", IN_A_FRESH_INTERPRETER, REPO, export]
    done = subprocess.run(
        [*command, str(scratch / "inputs.npz"), str(scratch / "out.npz")],
        capture_output=True,
        text=True,
        cwd=scratch,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(scratch / "out.npz"))


def test_text_signature_takes_strings_and_matches_the_trainers_tokeniser_and_tower(
    fresh, trainers_view
):
    assert fresh["text"].shape == (len(TEXTS), trainers_view["text"].shape[1])
    np.testing.assert_allclose(fresh["text"], trainers_view["text"], atol=TOLERANCE)


def test_image_signature_takes_bytes_and_matches_the_trainers_input_pipeline(fresh, trainers_view):
    assert fresh["image"].shape == (len(IMAGES), trainers_view["image"].shape[1])
    np.testing.assert_allclose(fresh["image"], trainers_view["image"], atol=TOLERANCE)


def test_embeddings_are_unit_vectors(fresh):
    for name in ("text", "image"):
        np.testing.assert_allclose(np.linalg.norm(fresh[name], axis=1), 1.0, atol=1e-5)


def test_the_saved_model_needs_neither_the_project_nor_keras_hub(fresh):
    assert not fresh["keras_hub_imported"]


def test_text_encoder_keras_takes_strings_without_the_project(fresh, trainers_view):
    np.testing.assert_allclose(fresh["text_encoder"], trainers_view["text"], atol=TOLERANCE)


def test_image_encoder_keras_takes_the_trainers_crops_without_the_project(fresh, trainers_view):
    np.testing.assert_allclose(fresh["image_tower"], trainers_view["image"], atol=TOLERANCE)


def test_keras_takes_image_bytes_through_the_saved_model_as_a_stock_layer(fresh, trainers_view):
    """No stock Keras layer decodes images, and Keras 3 refuses to deserialise a TFSMLayer
    from a .keras file in safe mode, so Keras users wrap serving_image themselves."""
    np.testing.assert_allclose(fresh["image_layer"], trainers_view["image"], atol=TOLERANCE)


def test_encoders_json_marks_the_format_and_the_preprocessing(trained_like):
    _, export, _ = trained_like
    spec = json.loads(Path(export, "encoders.json").read_text())
    assert spec["format"] == 2
    assert (spec["image_size"], spec["resize_size"], spec["max_tokens"]) == (32, 36, 8)
