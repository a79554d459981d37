"""The tf.data input: contract shapes, crops, determinism, per-host sharding."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from tests.training.synthetic import make_pairs, write_shards
from training.config import load_config
from training.data import make_dataset
from training.tokenize import AlignTokenizer

PIECES = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "red", "circle", "photo", "of"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("data_shards"), make_pairs(48, 40, seed=1), 4)


@pytest.fixture(scope="module")
def config():
    return load_config(
        "small", image_size=32, resize_size=36, max_tokens=8, deterministic=True, shuffle_buffer=16
    )


@pytest.fixture(scope="module")
def tokenizer(config):
    return AlignTokenizer(PIECES, config.lowercase, config.max_tokens)


def fingerprints(dataset, batches):
    out = []
    for batch in dataset.take(batches):
        for image in batch["images"].numpy():
            out.append(hashlib.sha256(image.tobytes()).hexdigest())
    return out


def test_training_batches_follow_the_contract(shards, config, tokenizer):
    batch = next(iter(make_dataset(shards, config, tokenizer, batch_size=8)))
    assert batch["images"].shape == (8, 32, 32, 3) and batch["images"].dtype == tf.float32
    assert (
        0 <= float(tf.reduce_min(batch["images"])) <= float(tf.reduce_max(batch["images"])) <= 255
    )
    assert batch["token_ids"].shape == (8, 8) and batch["token_ids"].dtype == tf.int32
    assert batch["padding_mask"].shape == (8, 8)
    assert np.all(batch["token_ids"].numpy()[:, 0] == 1)


def test_training_input_repeats_forever(shards, config, tokenizer):
    assert len(fingerprints(make_dataset(shards, config, tokenizer, batch_size=16), 10)) == 160


def test_deterministic_mode_gives_identical_batches(shards, config, tokenizer):
    first = fingerprints(make_dataset(shards, config, tokenizer, batch_size=8), 4)
    second = fingerprints(make_dataset(shards, config, tokenizer, batch_size=8), 4)
    assert first == second


def test_another_seed_gives_another_order(shards, config, tokenizer):
    first = fingerprints(make_dataset(shards, config, tokenizer, batch_size=8), 4)
    other = fingerprints(make_dataset(shards, config, tokenizer, batch_size=8, seed=7), 4)
    assert first != other


def test_evaluation_is_one_pass_dropping_the_remainder(shards, config, tokenizer):
    dataset = make_dataset(shards, config, tokenizer, batch_size=10, training=False)
    assert len(fingerprints(dataset, 100)) == 40  # 48 records, batches of 10


def test_each_host_reads_its_own_part_of_the_data(shards, config, tokenizer):
    parts = []
    for host in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=host)
        dataset = make_dataset(shards, config, tokenizer, 1, training=False, input_context=context)
        parts.append(set(fingerprints(dataset, 100)))
    everything = set(fingerprints(make_dataset(shards, config, tokenizer, 1, training=False), 100))
    assert not parts[0] & parts[1] and parts[0] | parts[1] == everything
