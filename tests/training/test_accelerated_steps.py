"""bf16 mixed precision and XLA (``--mixed-precision bfloat16``, ``--jit-compile true``) track
float32 eager training, and two replicas under XLA still compute what one device does.

Tolerances. bfloat16 keeps 8 significant bits: each rounding is off by up to 2^-9 (0.2%)
relative, and an activation passes ~10 rounded layers in these towers, so the unit
embeddings move by ~1%, and the logits (cosine / temperature 0.2) by a few hundredths. The
loss is 2-Lipschitz in each direction's logits (|d CE| <= ||p - q||_1 max |d logit|), and
three AdamW steps compound the difference (measured: 0.02% after the first step, 0.3% eager
and 0.7% under XLA after the third), so a bf16 loss within 2% of float32's at every step is
what rounding explains, while the reference loss falls by ~30%: a wrong cast (a float16
overflow, a bf16 temperature, a dropped gradient) moves it by far more. XLA in float32 only
fuses and reorders float32 arithmetic (2^-24 relative per operation): losses within 1e-5
relative of eager. Its weights differ by float noise that AdamW's lr * m / sqrt(v) step
amplifies where a gradient is near zero (measured 5e-6): the bound 1e-4 is a thirtieth of
what one flipped step would move a weight (lr * steps = 3e-3).
"""

import json
import subprocess
import sys
import textwrap

import pytest

from training.distribute import jit_compile_plan

# Slow: five short training runs in a fresh interpreter; started first (tests/conftest.py).
pytestmark = pytest.mark.slow

STEPS, LEARNING_RATE = 3, 1e-3  # AdamW, the small config's optimizer: the loss falls ~30%

# A fresh interpreter: the CPU is split into two logical devices before TensorFlow starts.
SCRIPT = textwrap.dedent(
    """
    import json, sys, numpy as np, tensorflow as tf, keras
    from training.distribute import split_cpu, choose_strategy, jit_compile_plan
    split_cpu(2)
    from training.config import load_config
    from training.model import build_dual_encoder
    from training.distribute import precision_policy

    STEPS, LR = int(sys.argv[1]), float(sys.argv[2])
    config = load_config("small", image_size=32, resize_size=36, max_tokens=8, batch_size=8,
                         temperature_init=0.2, warmup_steps=0, steps=100)
    rng = np.random.default_rng(0)
    batch = {
        "images": rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32"),
        "token_ids": rng.integers(5, 50, (8, 8)).astype("int32"),
        "padding_mask": np.ones((8, 8), "int32"),
    }
    keras.utils.set_random_seed(0)
    start = build_dual_encoder(config, 50).get_weights()

    def train(precision, jit_compile, strategy):
        keras.mixed_precision.set_dtype_policy(precision_policy(precision, "cpu"))
        whole_step, towers = jit_compile_plan(jit_compile, strategy)
        with strategy.scope():
            model = build_dual_encoder(config, 50)
            for layer in model.image_encoder.layers[1].layers:  # per-replica BN statistics
                if isinstance(layer, keras.layers.BatchNormalization):  # would differ anyway
                    layer.trainable = False
            if towers:
                model.compile_towers_with_xla()
            model.compile(optimizer=keras.optimizers.AdamW(LR), jit_compile=whole_step)
        model.set_weights(start)
        data = tf.data.Dataset.from_tensors(batch).repeat()
        losses = model.fit(data, epochs=STEPS, steps_per_epoch=1, verbose=0).history["loss"]
        images, texts = model(batch, training=False)
        dtypes = {
            "conv": model.image_encoder.layers[1].layers[2].compute_dtype,
            "bert": model.text_encoder.get_layer("bert").compute_dtype,
            "image_embeddings": images.dtype.name, "text_embeddings": texts.dtype.name,
            "temperature": model.log_temperature.dtype,
        }
        keras.mixed_precision.set_dtype_policy("float32")
        return {"losses": losses, "weights": model.get_weights(), "dtypes": dtypes,
                "whole_step": whole_step, "towers": towers}

    one = tf.distribute.get_strategy()
    two = choose_strategy(cpu_replicas=2)
    runs = {
        "float32": train("float32", False, one),
        "bfloat16": train("bfloat16", False, one),
        "float32_xla": train("float32", True, one),
        "bfloat16_xla": train("bfloat16", True, one),
        "float32_xla_two_replicas": train("float32", True, two),
    }
    reference = runs["float32"]["weights"]
    for run in runs.values():
        weights = run.pop("weights")
        run["weight_error"] = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, reference))
    print("RESULT", json.dumps(runs))
    """
)


@pytest.fixture(scope="module")
def runs():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(STEPS), str(LEARNING_RATE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[0][len("RESULT ") :])


def close(losses, reference, rel):
    return all(abs(a - b) <= rel * abs(b) for a, b in zip(losses, reference, strict=True))


def test_the_reference_run_learns_more_than_the_bf16_tolerance(runs):
    losses = runs["float32"]["losses"]
    assert losses[0] - losses[-1] > 0.02 * losses[0]  # so "tracks within 2%" can fail


def test_bf16_computes_the_towers_in_bf16_and_the_embeddings_and_temperature_in_float32(runs):
    assert runs["bfloat16"]["dtypes"] == {
        "conv": "bfloat16",
        "bert": "bfloat16",
        "image_embeddings": "float32",
        "text_embeddings": "float32",
        "temperature": "float32",
    }
    assert runs["float32"]["dtypes"]["conv"] == "float32"


def test_bf16_steps_track_float32_eager(runs):
    assert close(runs["bfloat16"]["losses"], runs["float32"]["losses"], rel=0.02)


def test_xla_steps_track_float32_eager(runs):
    assert runs["float32_xla"]["whole_step"]
    assert close(runs["float32_xla"]["losses"], runs["float32"]["losses"], rel=1e-5)
    assert runs["float32_xla"]["weight_error"] < 1e-4


def test_bf16_xla_steps_track_float32_eager(runs):
    assert close(runs["bfloat16_xla"]["losses"], runs["float32"]["losses"], rel=0.02)


def test_two_replicas_under_xla_compile_each_tower(runs):
    two = runs["float32_xla_two_replicas"]
    assert (two["whole_step"], two["towers"]) == (False, True)


def test_two_replicas_under_xla_train_like_one_device(runs):
    two = runs["float32_xla_two_replicas"]
    assert close(two["losses"], runs["float32_xla"]["losses"], rel=1e-5)
    assert two["weight_error"] < 1e-4


def test_no_jit_compile_leaves_keras_and_towers_uncompiled():
    import tensorflow as tf

    assert jit_compile_plan(False, tf.distribute.get_strategy()) == (False, False)
