"""ALIGN's contrastive loss against an independent NumPy transcription of the paper's formula."""

import numpy as np
import pytest
import tensorflow as tf

from training.loss import contrastive_loss


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def numpy_align_loss(x, y, sigma, eps):
    """L = -1/N sum_i sum_j q_ij log softmax_j(x_i.y_j / sigma), plus the same text-to-image."""
    n = len(x)
    q = (1 - eps) * np.eye(n) + eps / n

    def one_way(a, b):
        logits = a @ b.T / sigma
        logits -= logits.max(axis=1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -(q * log_softmax).sum() / n

    return one_way(x, y) + one_way(y, x)


@pytest.mark.parametrize("sigma, eps", [(1.0, 0.1), (0.05, 0.1), (0.3, 0.0)])
def test_loss_equals_numpy_reference(sigma, eps):
    rng = np.random.default_rng(0)
    x, y = unit_rows(rng, 12, 8), unit_rows(rng, 12, 8)
    loss, _ = contrastive_loss(tf.constant(x), tf.constant(y), tf.constant(sigma), eps)
    assert float(loss) == pytest.approx(numpy_align_loss(x, y, sigma, eps), rel=1e-5)


def test_loss_is_low_and_accuracy_perfect_when_pairs_align():
    x = np.eye(6, dtype=np.float32)
    loss, metrics = contrastive_loss(tf.constant(x), tf.constant(x), tf.constant(0.01), 0.0)
    assert float(loss) < 1e-3
    assert float(metrics["image_to_text_accuracy"]) == 1.0
    assert float(metrics["text_to_image_accuracy"]) == 1.0


def test_accuracy_counts_rows_whose_best_match_is_their_pair():
    x = np.eye(4, dtype=np.float32)
    y = x[[0, 1, 3, 2]]  # rows 2 and 3 swapped: half the pairs retrieve the wrong text
    _, metrics = contrastive_loss(tf.constant(x), tf.constant(y), tf.constant(1.0), 0.1)
    assert float(metrics["image_to_text_accuracy"]) == 0.5


def test_gradient_reaches_the_temperature():
    rng = np.random.default_rng(1)
    x, y = unit_rows(rng, 8, 4), unit_rows(rng, 8, 4)
    sigma = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss, _ = contrastive_loss(tf.constant(x), tf.constant(y), sigma, 0.1)
    assert float(tape.gradient(loss, sigma)) != 0.0
