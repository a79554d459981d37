"""Retrieval and zero-shot metrics on hand-made similarity matrices with known answers."""

from math import comb

import numpy as np
import pytest

from training import metrics


def ranks_from_similarity(similarity, text_image, **blocks):
    """Embeds a hand-made [images, texts] similarity matrix exactly: S @ I.T == S."""
    similarity = np.asarray(similarity, dtype=np.float32)
    return metrics.retrieval_ranks(
        similarity, np.eye(similarity.shape[1], dtype=np.float32), text_image, **blocks
    )


# 3 images, 5 captions: image 0 owns captions 0 and 1, image 1 owns 2 and 3, image 2 owns 4.
TEXT_IMAGE = [0, 0, 1, 1, 2]
SIMILARITY = [
    # c0   c1   c2   c3   c4
    [0.9, 0.1, 0.5, 0.2, 0.3],  # image 0: best own caption c0 is first       -> rank 1
    [0.8, 0.7, 0.1, 0.6, 0.4],  # image 1: best own caption c3 behind c0, c1  -> rank 3
    [0.2, 0.3, 0.1, 0.5, 0.0],  # image 2: own caption c4 is last of five     -> rank 5
]


def test_image_to_text_rank_is_best_rank_among_its_captions():
    i2t, _ = ranks_from_similarity(SIMILARITY, TEXT_IMAGE)
    assert i2t.tolist() == [1, 3, 5]


def test_text_to_image_rank_is_rank_of_own_image():
    # columns: c0 -> [0.9, 0.8, 0.2] own image 0 first; c1 -> [0.1, 0.7, 0.3] own image 0 last;
    # c2 -> [0.5, 0.1, 0.1] own image 1 ties image 2 below image 0 -> 3 (pessimistic);
    # c3 -> [0.2, 0.6, 0.5] own image 1 first; c4 -> [0.3, 0.4, 0.0] own image 2 last.
    _, t2i = ranks_from_similarity(SIMILARITY, TEXT_IMAGE)
    assert t2i.tolist() == [1, 3, 3, 1, 3]


def test_other_captions_of_the_same_image_never_push_a_caption_down():
    # Image 0's captions c0, c1 outscore everything; c1 being second must not matter.
    i2t, _ = ranks_from_similarity([[0.9, 0.8, 0.1], [0.1, 0.2, 0.9]], [0, 0, 1])
    assert i2t.tolist() == [1, 1]


def test_ties_with_negatives_count_against_the_model():
    constant = np.full((4, 4), 0.5)
    i2t, t2i = ranks_from_similarity(constant, [0, 1, 2, 3])
    assert i2t.tolist() == [4, 4, 4, 4]
    assert t2i.tolist() == [4, 4, 4, 4]


def test_ties_between_own_captions_do_not_count():
    i2t, _ = ranks_from_similarity([[0.7, 0.7, 0.1], [0.0, 0.0, 0.9]], [0, 0, 1])
    assert i2t.tolist() == [1, 1]


def test_recall_at_k_and_rank_summary_on_known_ranks():
    ranks = np.array([1, 3, 5, 12])
    assert metrics.recall_at_k(ranks, (1, 5, 10)) == {"R@1": 0.25, "R@5": 0.75, "R@10": 0.75}
    assert metrics.rank_summary(ranks) == {"mean_rank": 5.25, "median_rank": 4.0}


@pytest.mark.parametrize(
    "blocks", [{"query_block": 3, "candidate_block": 7}, {"query_block": 1, "candidate_block": 1}]
)
def test_blocked_ranks_match_a_full_sort(blocks):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(23, 8)).astype(np.float32)
    texts = rng.normal(size=(50, 8)).astype(np.float32)
    text_image = rng.integers(0, 23, size=50)
    text_image[:23] = np.arange(23)  # every image has a caption
    i2t, t2i = metrics.retrieval_ranks(images, texts, text_image, **blocks)
    scores = images @ texts.T
    order = np.argsort(-scores, axis=1)
    expected_i2t = [
        1 + min(np.where(np.isin(order[i], np.flatnonzero(text_image == i)))[0]) for i in range(23)
    ]
    expected_t2i = [
        1 + np.where(np.argsort(-scores[:, t]) == text_image[t])[0][0] for t in range(50)
    ]
    assert i2t.tolist() == expected_i2t
    assert t2i.tolist() == expected_t2i


def test_a_query_without_positives_is_an_error():
    with pytest.raises(ValueError, match="query 1 has no positive"):
        ranks_from_similarity(SIMILARITY, [0, 0, 2, 2, 2])


def test_hit_chance_is_the_exact_hypergeometric_miss_complement():
    for m, c, k in [(10, 1, 1), (10, 1, 5), (25, 5, 10), (7, 3, 5), (4, 2, 10)]:
        expected = 1 - comb(m - c, min(k, m)) / comb(m, min(k, m))
        assert metrics.hit_chance(m, c, k) == pytest.approx(expected)


def test_retrieval_metrics_report_chance_beside_each_figure():
    result = metrics.retrieval_metrics(
        np.asarray(SIMILARITY, np.float32), np.eye(5, dtype=np.float32), TEXT_IMAGE
    )
    assert result["image_to_text"]["R@1"] == pytest.approx(1 / 3)
    assert result["text_to_image"]["R@1"] == pytest.approx(2 / 5)
    assert result["text_to_image"]["chance"]["R@1"] == pytest.approx(1 / 3)
    assert result["text_to_image"]["chance"]["mean_rank"] == pytest.approx(2.0)
    # image->text R@1 chance: 2/5, 2/5, 1/5 averaged
    assert result["image_to_text"]["chance"]["R@1"] == pytest.approx(1 / 3)


CLASSES = ["cat", "dog", "car"]
CLASS_EMB = np.eye(3, dtype=np.float32)


def test_zero_shot_top1_top5_per_class_and_confusions_on_known_embeddings():
    images = np.array(
        [
            [0.9, 0.1, 0.0],  # cat, right
            [0.2, 0.8, 0.0],  # cat, predicted dog
            [0.1, 0.7, 0.0],  # cat, predicted dog
            [0.0, 1.0, 0.0],  # dog, right
            [0.0, 0.3, 0.6],  # car, right
        ],
        dtype=np.float32,
    )
    acc = metrics.ZeroShotAccumulator(CLASS_EMB, CLASSES)
    acc.update(images[:2], [0, 0])  # streamed in two batches
    acc.update(images[2:], [0, 1, 2])
    result = acc.result(ks=(1, 2))
    assert result["top1"] == pytest.approx(3 / 5)
    assert result["top2"] == pytest.approx(1.0)
    assert result["per_class"]["cat"] == {"images": 3, "top1": pytest.approx(1 / 3)}
    assert result["per_class"]["dog"]["top1"] == 1.0
    assert result["mean_per_class_top1"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert result["chance"] == {"top1": 1 / 3, "top2": 2 / 3, "mean_per_class_top1": 1 / 3}
    assert result["confusions"] == [
        {"true": "cat", "predicted": "dog", "count": 2, "fraction_of_true": pytest.approx(2 / 3)}
    ]


def test_zero_shot_tie_with_another_class_is_a_miss_and_predicts_the_rival():
    acc = metrics.ZeroShotAccumulator(CLASS_EMB, CLASSES)
    acc.update(np.array([[0.5, 0.0, 0.5]], np.float32), [0])
    result = acc.result(ks=(1, 2))
    assert result["top1"] == 0.0
    assert result["top2"] == 1.0
    assert result["confusions"][0]["predicted"] == "car"


def test_attribute_accuracy_credits_the_right_word_of_a_wrong_class():
    names = ["red circle", "red square", "blue circle", "blue square"]
    labels = np.array([0, 0, 1, 3])
    predictions = np.array([0, 2, 0, 0])  # right; right shape only; right colour only; neither
    result = metrics.attribute_accuracy(labels, predictions, names, ["colour", "shape"])
    assert result["colour"] == {"top1": pytest.approx(2 / 4), "chance": pytest.approx(1 / 2)}
    assert result["shape"] == {"top1": pytest.approx(2 / 4), "chance": pytest.approx(1 / 2)}


def test_attribute_chance_is_the_share_of_classes_with_the_true_value():
    names = ["red circle", "red square", "red star", "blue circle"]
    labels = np.array([0, 3])  # red (3 of 4 classes), blue (1 of 4)
    result = metrics.attribute_accuracy(labels, labels, names, ["colour", "shape"])
    assert result["colour"] == {"top1": 1.0, "chance": pytest.approx((3 / 4 + 1 / 4) / 2)}


def test_a_class_name_without_one_word_per_attribute_is_an_error():
    with pytest.raises(ValueError, match="'dark red circle'"):
        metrics.class_attributes(["red circle", "dark red circle"], ["colour", "shape"])
