"""align-train --uid-half: training reads one uid half, the same split the filter's
cross-fitting uses (filters/scoring.py: uid_half), so a pair's scorer never trained on it."""

import dataclasses

import pytest
import tensorflow as tf

from filters.scoring import scorer_for, uid_half
from pipeline.records import make_uid
from tests.training.synthetic import make_pairs, write_shards
from training.config import UsageError, load_config
from training.data import in_uid_half, make_dataset
from training.tokenize import AlignTokenizer

CONFIG = load_config("small", image_size=32, resize_size=36, max_tokens=8, deterministic=True)
N = 40
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + [str(i) for i in range(N)]


def test_the_graph_split_agrees_with_the_filters_split_on_real_uids():
    uids = [make_uid(f"http://x/{i}.jpg", f"alt {i}") for i in range(500)]
    for half in (0, 1):
        graph = in_uid_half(tf.constant(uids), half).numpy().tolist()
        assert graph == [uid_half(uid) == half for uid in uids]


def texts_read(shards: str, half: int | None) -> list[str]:
    """The captions (a number each, one piece of VOCAB) of the pairs training reads."""
    config = dataclasses.replace(CONFIG, uid_half=half)
    tokenizer = AlignTokenizer(VOCAB, True, 8)
    dataset = make_dataset(shards, config, tokenizer, batch_size=1, training=False)
    return [VOCAB[int(batch["token_ids"][0, 1])] for batch in dataset]


def test_training_on_one_half_reads_exactly_the_pairs_that_the_other_half_model_scores(tmp_path):
    pairs = make_pairs(N, size=32)
    for index, pair in enumerate(pairs):  # captions made unique, to tell the pairs apart
        pair["text"] = str(index)
        pair["uid"] = make_uid(f"http://x/{index}.jpg", pair["text"])
    shards = write_shards(tmp_path / "shards", pairs)
    halves = (0, 1)  # export 0 trained on half 0, export 1 on half 1
    for half in halves:
        read = set(texts_read(shards, half))
        assert read == {p["text"] for p in pairs if uid_half(p["uid"]) == half}
        scored_by_this_model = {
            p["text"] for p in pairs if halves[scorer_for(p["uid"], halves)] == half
        }
        assert read and not read & scored_by_this_model


def test_uid_half_is_0_or_1():
    with pytest.raises(UsageError, match="uid_half"):
        load_config("small", uid_half=2)
