"""Strategy choice, precision policy, and two replicas computing exactly what one device does."""

import json
import subprocess
import sys
import textwrap

import pytest

from training.distribute import choose_strategy, precision_policy

# Slow: a two-replica run in a subprocess; started first (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "setting, kind, policy",
    [
        ("auto", "tpu", "mixed_bfloat16"),
        ("auto", "cpu", "mixed_bfloat16"),
        ("auto", "gpu", "mixed_float16"),
        ("auto", "gpu-bf16", "mixed_bfloat16"),
        ("float32", "gpu", "float32"),
        ("bfloat16", "gpu", "mixed_bfloat16"),
        ("float16", "cpu", "mixed_float16"),
    ],
)
def test_precision_policy_follows_setting_and_device(setting, kind, policy):
    assert precision_policy(setting, kind) == policy


def test_one_cpu_without_flags_gets_the_default_strategy():
    assert choose_strategy().num_replicas_in_sync == 1


# Runs in a fresh interpreter: logical devices must be configured before TensorFlow starts.
TWO_REPLICAS = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf, keras
    from training.distribute import split_cpu, choose_strategy
    split_cpu(2)
    from training.config import load_config
    from training.model import build_dual_encoder

    config = load_config("small", image_size=32, resize_size=36, max_tokens=8, batch_size=8,
                         temperature_init=0.2, warmup_steps=0, steps=10)

    def model_under(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_dual_encoder(config, 50)
            for layer in model.image_encoder.layers[1].layers:  # per-replica BN statistics
                if isinstance(layer, keras.layers.BatchNormalization):  # would differ anyway
                    layer.trainable = False
            # SGD: an update linear in the gradient, so the comparison is not blurred by
            # Adam-style normalisation of float noise in near-zero gradients.
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model

    rng = np.random.default_rng(0)
    batch = {
        "images": rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32"),
        "token_ids": rng.integers(5, 50, (8, 8)).astype("int32"),
        "padding_mask": np.ones((8, 8), "int32"),
    }
    one = model_under(tf.distribute.get_strategy())
    mirrored = choose_strategy(cpu_replicas=2)
    two = model_under(mirrored)
    two.set_weights(one.get_weights())

    loss1, grads1, _ = one.loss_and_gradients(batch)
    halves = lambda ctx: {k: v[4 * ctx.replica_id_in_sync_group:][:4] for k, v in batch.items()}
    per_replica = mirrored.experimental_distribute_values_from_function(halves)
    loss2, grads2, _ = mirrored.run(two.loss_and_gradients, args=(per_replica,))
    loss2 = mirrored.reduce("SUM", loss2, axis=None)
    dense = lambda grads: [tf.convert_to_tensor(g).numpy() for g in grads]  # embeddings: slices
    grads1, grads2 = dense(grads1), dense([mirrored.reduce("SUM", g, axis=None) for g in grads2])
    grad_error = max(float(np.max(np.abs(a - b))) for a, b in zip(grads1, grads2))
    grad_scale = max(float(np.max(np.abs(a))) for a in grads1)

    # A whole Keras step (optimizer included) over the same global batch.
    data = tf.data.Dataset.from_tensors(batch)
    one.fit(data, epochs=1, verbose=0)
    two.fit(data, epochs=1, verbose=0)
    step_error = max(float(np.max(np.abs(a - b))) for a, b in
                     zip(one.get_weights(), two.get_weights()))
    print("RESULT", json.dumps({
        "replicas": mirrored.num_replicas_in_sync, "loss1": float(loss1), "loss2": float(loss2),
        "grad_error": grad_error, "grad_scale": grad_scale, "step_error": step_error,
    }))
    """
)


@pytest.fixture(scope="module")
def two_replica_result():
    done = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[0][len("RESULT ") :])


def test_two_replicas_give_the_one_device_loss(two_replica_result):
    assert two_replica_result["replicas"] == 2
    assert two_replica_result["loss2"] == pytest.approx(two_replica_result["loss1"], rel=1e-5)


def test_two_replicas_give_the_one_device_gradients(two_replica_result):
    assert two_replica_result["grad_scale"] > 0
    assert two_replica_result["grad_error"] <= 1e-5 * two_replica_result["grad_scale"] + 1e-7


def test_two_replica_keras_step_updates_weights_like_one_device(two_replica_result):
    assert two_replica_result["step_error"] < 1e-5
