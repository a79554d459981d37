"""EvalCallback: held-out zero-shot and retrieval every N optimizer steps of a real Keras fit."""

import glob
from collections import defaultdict

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.eval_fixtures import write_export, write_retrieval, write_zero_shot
from training.encoders import Encoders
from training.eval_callback import EvalCallback


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    return Encoders.load(str(write_export(tmp_path_factory.mktemp("model"))))


@pytest.fixture(scope="module")
def eval_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return str(write_zero_shot(root / "zero_shot")), str(write_retrieval(root / "retrieval"))


class Counting:
    """Wraps Encoders and counts how often images are decoded."""

    def __init__(self, encoders):
        self.inner, self.preprocessed = encoders, 0
        self.image_size, self.resize_size = encoders.image_size, encoders.resize_size

    def preprocess(self, paths):
        self.preprocessed += 1
        return self.inner.preprocess(paths)

    def embed_images(self, images):
        return self.inner.embed_images(images)

    def embed_texts(self, texts):
        return self.inner.embed_texts(texts)


def fit(callback, steps, steps_per_execution=1):
    """A real (tiny) Keras fit of ``steps`` optimizer steps."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    x = np.zeros((steps * 4, 2), np.float32)
    model.fit(x, np.zeros((steps * 4, 1)), batch_size=4, epochs=1, callbacks=[callback], verbose=0)


def read_scalars(log_dir):
    scalars = defaultdict(dict)
    for path in glob.glob(f"{log_dir}/eval/events.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


def test_evaluates_every_n_steps_and_logs_tensorboard_scalars(encoders, eval_sets, tmp_path):
    counting = Counting(encoders)
    callback = EvalCallback(
        *eval_sets, every_n_steps=2, log_dir=str(tmp_path), encoders_fn=lambda: counting
    )
    fit(callback, steps=6)
    assert [step for step, _ in callback.history] == [2, 4, 6]
    scalars = read_scalars(tmp_path)
    assert scalars["zero_shot/top1"] == {2: 1.0, 4: 1.0, 6: 1.0}
    assert scalars["retrieval/text_to_image/R@1"][6] == 1.0
    assert scalars["retrieval/image_to_text/median_rank"][6] == 1.0
    assert counting.preprocessed == 2  # each set decoded once, not once per evaluation


def test_counts_optimizer_steps_with_several_steps_per_execution(encoders, eval_sets, tmp_path):
    callback = EvalCallback(
        *eval_sets, every_n_steps=3, log_dir=str(tmp_path), encoders_fn=lambda: encoders
    )
    fit(callback, steps=6, steps_per_execution=2)
    assert [step for step, _ in callback.history] == [4, 6]  # crossed 3 at step 4, then 6


def test_the_last_step_is_evaluated_at_the_end(encoders, eval_sets, tmp_path):
    zero_shot, _ = eval_sets
    callback = EvalCallback(
        zero_shot, None, every_n_steps=2, log_dir=str(tmp_path), encoders_fn=lambda: encoders
    )
    fit(callback, steps=5)
    assert [step for step, _ in callback.history] == [2, 4, 5]
    assert set(callback.history[-1][1]) == {"zero_shot"}


def test_a_bad_eval_path_fails_before_training(encoders, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        EvalCallback(
            str(tmp_path / "nowhere"),
            None,
            every_n_steps=1,
            log_dir=str(tmp_path),
            encoders_fn=lambda: encoders,
        )
