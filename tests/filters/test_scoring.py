"""The score rule's pure parts: its verdict, the keep-fraction cut, the uid halves."""

import numpy as np
import pytest

from filters.rules.image_text_score import LOW_SCORE, check_score
from filters.rules.semantic_dedup import SEMANTIC_DUPLICATE, check_semantic_duplicate
from filters.scoring import (
    histogram,
    hyperplanes,
    keep_fraction_cut,
    lsh_keys,
    near_duplicates,
    scorer_for,
    uid_half,
)


def test_a_score_below_min_score_or_below_the_cut_is_flagged_and_others_kept():
    assert check_score(0.1, min_score=0.2, cut=-1.0)[0] == LOW_SCORE
    assert check_score(0.1, min_score=-1.0, cut=0.15)[0] == LOW_SCORE
    assert check_score(0.3, min_score=0.2, cut=0.25) is None


def test_the_cut_keeps_about_the_keep_fraction_of_the_scores():
    scores = np.random.default_rng(0).normal(0.2, 0.15, 10_000).clip(-1, 1)
    cut = keep_fraction_cut(histogram(scores), 0.3)
    assert abs(np.mean(scores >= cut) - 0.3) < 0.002


def test_keep_fraction_one_or_no_scores_keeps_everything():
    assert keep_fraction_cut(histogram(np.array([0.5, 0.7])), 1.0) == -1.0
    assert keep_fraction_cut(histogram(np.array([])), 0.3) == -1.0


def test_the_cut_of_summed_histograms_is_the_cut_of_all_scores_together():
    rng = np.random.default_rng(1)
    low, high = rng.normal(-0.2, 0.1, 3000), rng.normal(0.5, 0.1, 1000)
    together = keep_fraction_cut(histogram(np.concatenate([low, high])), 0.5)
    summed = keep_fraction_cut(histogram(low) + histogram(high), 0.5)
    assert together == summed
    assert together != keep_fraction_cut(histogram(high), 0.5)


def test_uid_halves_split_hex_uids_evenly_and_by_their_last_digit():
    uids = [f"{i:016x}" for i in range(1000)]
    halves = [uid_half(uid) for uid in uids]
    assert sum(halves) == 500
    assert uid_half("00000000000000a1") == 1 and uid_half("00000000000000fe") == 0


def test_cross_fitting_scores_each_half_with_the_model_trained_on_the_other():
    for halves in ((0, 1), (1, 0)):
        for uid in ("abc0", "abc1", "ffff", "1234"):
            assert halves[scorer_for(uid, halves)] != uid_half(uid)


@pytest.mark.parametrize("halves", [(0, 0), (1, None), (None, None), (0, 1, 1)])
def test_two_models_not_trained_on_the_two_halves_are_refused(halves):
    with pytest.raises(ValueError, match="cross-fitting"):
        scorer_for("abc0", halves)


def test_one_model_scores_every_pair():
    assert {scorer_for(uid, (None,)) for uid in ("a0", "a1")} == {0}


def test_near_duplicates_keep_the_smallest_uid_whatever_the_order():
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0], [1.0, 0.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    uids = ["c", "b", "x", "a"]
    found = {uids[index]: kept for index, _, kept in near_duplicates(uids, vectors, 0.95)}
    assert found == {"b": "a", "c": "a"}
    order = [2, 0, 3, 1]
    again = near_duplicates([uids[i] for i in order], vectors[order], 0.95)
    assert {[uids[i] for i in order][index]: kept for index, _, kept in again} == found


def test_identical_embeddings_share_every_lsh_bucket_and_opposite_ones_none():
    planes = hyperplanes(8)
    vector = np.random.default_rng(2).standard_normal(8)
    keys = lsh_keys(np.stack([vector, vector, -vector]), planes)
    assert keys.shape == (3, planes.shape[0])
    assert (keys[0] == keys[1]).all() and not (keys[0] == keys[2]).any()


def test_a_semantic_duplicate_below_the_threshold_is_kept():
    assert check_semantic_duplicate(0.97, "a", 0.95)[0] == SEMANTIC_DUPLICATE
    assert check_semantic_duplicate(0.90, "a", 0.95) is None
