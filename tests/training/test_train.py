"""align-train end to end on the synthetic web's images: learns, logs, resumes, exports."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.training.train_helpers import synthetic_web_shards
from training.cli import train, vocab

# Slow: real training runs, one killed and resumed; started first (tests/conftest.py).
pytestmark = pytest.mark.slow

BATCH = 32
SMALL = [
    "--config",
    "small",
    "--image-size",
    "32",
    "--resize-size",
    "38",
    "--batch-size",
    str(BATCH),
    "--max-tokens",
    "16",
    "--quiet",
]


@pytest.fixture(scope="module")
def data(synthetic_web, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    shards = synthetic_web_shards(synthetic_web, root)
    vocab.run(["--shards", shards, "--output", str(root / "vocab.txt"), "--vocab-size", "400"])
    return {"shards": shards, "vocab": str(root / "vocab.txt")}


@pytest.fixture(scope="module")
def trained(data, synthetic_web, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    args = [
        "--shards",
        data["shards"],
        "--vocab",
        data["vocab"],
        "--model-dir",
        str(model_dir),
        "--steps",
        "240",
        "--checkpoint-every",
        "60",
        "--log-every",
        "10",
        "--eval-zero-shot",
        str(synthetic_web.eval_zero_shot),
        "--eval-retrieval",
        str(synthetic_web.eval_retrieval),
        "--eval-every",
        "120",
        *SMALL,
    ]
    return {**train.run(args), "model_dir": model_dir}


def test_short_run_lowers_the_loss(trained):
    losses = trained["history"]["loss"]
    assert losses[-1] < losses[0] - 0.2


def test_short_run_lifts_in_batch_retrieval_well_above_chance(trained):
    history = trained["history"]
    last = (history["image_to_text_accuracy"][-1] + history["text_to_image_accuracy"][-1]) / 2
    assert last > 2 / BATCH  # chance is 1 / BATCH; untrained towers stay near it


def test_run_stops_at_the_configured_step_with_a_checkpoint(trained):
    assert trained["step"] == 240
    assert tf.train.latest_checkpoint(str(trained["model_dir"] / "checkpoints")).endswith("-240")


def test_tensorboard_gets_the_training_scalars(trained):
    tags = set()
    for path in (trained["model_dir"] / "tensorboard" / "train").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert {
        "loss",
        "temperature",
        "learning_rate",
        "images_per_second",
        "image_to_text_accuracy",
    } <= tags


def test_eval_callback_logs_zero_shot_and_retrieval_during_training(trained):
    tags = set()
    for path in (trained["model_dir"] / "tensorboard" / "eval").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert {"zero_shot/top1", "retrieval/image_to_text/R@1"} <= tags


def test_export_has_the_contract_layout(trained):
    export = trained["model_dir"] / "export"
    spec = json.loads((export / "encoders.json").read_text())
    assert spec["image_size"] == 32 and spec["resize_size"] == 38 and spec["max_tokens"] == 16
    assert spec["lowercase"] is True and spec["embed_dim"] > 0 and spec["temperature"] > 0
    assert (export / "vocab.txt").read_text() == Path(trained["export"], "vocab.txt").read_text()
    assert spec["format"] == 2 and (export / "saved_model" / "saved_model.pb").is_file()


LOAD_WITHOUT_PROJECT = """
import sys, json, numpy as np, keras
sys.path = [p for p in sys.path if p not in ("", ".")]
assert "training" not in sys.modules
export = sys.argv[1]
image = keras.saving.load_model(export + "/image_encoder.keras")
text = keras.saving.load_model(export + "/text_encoder.keras")
pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
a, b = np.asarray(image(pixels)), np.asarray(text(np.array(["a red circle", "blue"])))
print(json.dumps({"image": a.tolist(), "text": b.tolist(), "dtype": str(a.dtype)}))
"""


def test_exported_towers_load_without_training_code_and_match_the_model(trained, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PROJECT, trained["export"]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    image = np.array(out["image"])
    assert out["dtype"] == "float32"
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-5)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    live = np.asarray(trained["model"].image_encoder(pixels))
    np.testing.assert_allclose(image, live, atol=1e-4)


def test_killed_run_resumes_from_its_last_checkpoint(data, tmp_path):
    command = [
        sys.executable,
        "-m",
        "training.cli.train",
        "--shards",
        data["shards"],
        "--vocab",
        data["vocab"],
        "--model-dir",
        str(tmp_path),
        "--steps",
        "30",
        "--checkpoint-every",
        "5",
        *SMALL,
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    index = tmp_path / "checkpoints" / "checkpoint"
    while not index.exists() and first.poll() is None:
        time.sleep(0.5)
    first.kill()
    first.wait()
    assert index.exists(), "the first run died before its first checkpoint"
    saved = int(tf.train.latest_checkpoint(str(index.parent)).rsplit("-", 1)[1])
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed_at = int(second.stdout.split(", step ")[1].split()[0])
    assert resumed_at >= saved > 0
    assert "align-train: step 30, exported" in second.stdout


def test_unknown_config_key_is_a_one_line_error(data, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("batch_size: 8\nlearning_rat: 0.1\n")
    with pytest.raises(SystemExit) as exit_info:
        train.run(
            [
                "--shards",
                data["shards"],
                "--vocab",
                data["vocab"],
                "--model-dir",
                str(tmp_path),
                "--config",
                str(config),
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error == f"align-train: error: unknown config key 'learning_rat' in {config}"


def test_missing_shards_is_a_one_line_error(data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.run(
            [
                "--shards",
                str(tmp_path / "none-*.tfrecord"),
                "--vocab",
                data["vocab"],
                "--model-dir",
                str(tmp_path),
                *SMALL,
            ]
        )
    assert capsys.readouterr().err.strip().startswith("align-train: error: no training shards")


def test_bf16_xla_run_trains_with_xla_and_bf16_towers(data, tmp_path, capsys):
    import keras

    args = ["--shards", data["shards"], "--vocab", data["vocab"], "--model-dir", str(tmp_path)]
    args += ["--steps", "4", "--checkpoint-every", "2", "--mixed-precision", "bfloat16"]
    try:
        done = train.run([*args, "--jit-compile", "true", *SMALL])
    finally:
        keras.mixed_precision.set_dtype_policy("float32")  # the run set it for this process
    assert "mixed_bfloat16, XLA" in capsys.readouterr().out
    model = done["model"]
    assert model.jit_compile is True  # one replica: Keras compiles the whole step
    assert model.text_encoder.get_layer("bert").compute_dtype == "bfloat16"
    assert all(np.isfinite(done["history"]["loss"]))
