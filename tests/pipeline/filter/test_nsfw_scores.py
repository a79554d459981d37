"""The NSFW hook scores images through RunInference with a user's Keras/TensorFlow model."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from PIL import Image

from pipeline.filter.nsfw_scores import METRICS_NAMESPACE, NsfwScores, load_classifier

SHARPNESS = 10.0  # the redness model's logit is SHARPNESS * (r - (g + b) / 2) / 255

COLOURS = {
    "red": (230, 20, 20),
    "pink": (200, 120, 120),
    "grey": (128, 128, 128),
    "green": (20, 200, 40),
    "blue": (10, 30, 220),
}


def expected_redness(rgb: tuple[int, int, int]) -> float:
    red, green, blue = rgb
    logit = SHARPNESS * (red - (green + blue) / 2) / 255
    return 1 / (1 + math.exp(-logit))


def redness_model(size: int | None):
    """A real Keras classifier whose 'NSFW' probability is the mean redness of the image."""
    import keras

    inputs = keras.Input(shape=(size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    dense = keras.layers.Dense(1, activation="sigmoid")
    outputs = dense(pooled)
    dense.set_weights([np.array([[SHARPNESS], [-SHARPNESS / 2], [-SHARPNESS / 2]]), np.zeros(1)])
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("nsfw_models")
    fixed = redness_model(16)
    fixed.save(root / "redness.keras")
    fixed.export(str(root / "redness_savedmodel"), verbose=False)
    redness_model(None).save(root / "redness_dynamic.keras")
    return {
        "keras": str(root / "redness.keras"),
        "savedmodel": str(root / "redness_savedmodel"),
        "dynamic": str(root / "redness_dynamic.keras"),
    }


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def image_table(images: dict[str, bytes | None]) -> pa.Table:
    return pa.table(
        {"uid": list(images), "image": list(images.values())},
        schema=pa.schema([("uid", pa.string()), ("image", pa.binary())]),
    )


def score(tables: list[pa.Table], tmp_path, **kwargs) -> tuple[dict[str, float], object]:
    """Runs NsfwScores on the DirectRunner; returns {uid: score} and the pipeline result."""
    output = tmp_path / "scores.jsonl"
    pipeline = beam.Pipeline()
    _ = (
        pipeline
        | beam.Create(tables)
        | NsfwScores(**kwargs)
        | beam.MapTuple(lambda uid, value: json.dumps([uid, value]))
        | beam.io.WriteToText(str(output), shard_name_template="")
    )
    result = pipeline.run()
    result.wait_until_finish()
    lines = output.read_text().splitlines()
    return dict(json.loads(line) for line in lines), result


@pytest.mark.parametrize("model_format", ["keras", "savedmodel"])
def test_scores_are_the_models_probabilities_and_red_scores_high(models, model_format, tmp_path):
    images = {name: png(rgb) for name, rgb in COLOURS.items()}
    scores, _ = score(
        [image_table(images)], tmp_path, model_path=models[model_format], batch_size=2
    )
    assert set(scores) == set(COLOURS)
    for name, rgb in COLOURS.items():
        assert scores[name] == pytest.approx(expected_redness(rgb), abs=1e-4)
    assert scores["red"] > 0.9 > 0.1 > scores["green"]


def test_run_inference_scores_in_batches_of_at_most_batch_size(models, tmp_path):
    images = {f"uid{index:02d}": png((index * 20, 50, 50)) for index in range(10)}
    tables = [
        image_table(dict(list(images.items())[:6])),
        image_table(dict(list(images.items())[6:])),
    ]
    scores, result = score(tables, tmp_path, model_path=models["keras"], batch_size=4)
    assert len(scores) == 10
    sizes = result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name("inference_request_batch_size")
    )["distributions"]
    batches = sizes[0].committed
    assert batches.sum == 10
    assert batches.max == 4
    assert batches.count < 10


def test_images_are_resized_to_the_models_input_size(models, tmp_path):
    classifier = load_classifier(models["savedmodel"])
    assert (classifier.height, classifier.width) == (16, 16)
    small, large = png((230, 20, 20), (5, 7)), png((230, 20, 20), (600, 90))
    scores, _ = score(
        [image_table({"small": small, "large": large})], tmp_path, model_path=models["keras"]
    )
    assert scores["small"] == pytest.approx(scores["large"], abs=1e-4)


def test_a_model_with_dynamic_size_needs_image_size(models, tmp_path):
    with pytest.raises(ValueError, match="pass image_size"):
        load_classifier(models["dynamic"])
    scores, _ = score(
        [image_table({"red": png(COLOURS["red"])})],
        tmp_path,
        model_path=models["dynamic"],
        image_size=8,
    )
    assert scores["red"] == pytest.approx(expected_redness(COLOURS["red"]), abs=1e-4)


def test_undecodable_bytes_score_nan_and_rows_without_image_are_skipped(models, tmp_path):
    table = image_table({"red": png(COLOURS["red"]), "broken": b"not an image", "none": None})
    scores, result = score([table], tmp_path, model_path=models["keras"])
    assert set(scores) == {"red", "broken"}
    assert math.isnan(scores["broken"]) and scores["red"] > 0.9
    counters = result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name("undecodable")
    )["counters"]
    assert sum(counter.committed for counter in counters) == 1


def test_a_missing_model_is_a_clear_error_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="NSFW model not found"):
        NsfwScores(str(tmp_path / "absent.keras"))


def test_importing_the_hook_does_not_import_tensorflow():
    code = (
        "import sys, pipeline.filter.nsfw_scores; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.split() == ["False", "False"]
