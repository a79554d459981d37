"""Text rules: normalisation, n-grams, the 3..20 unigram window, the rare-token cut."""

import pytest

from filters.text import (
    ALT_SHARED,
    ALT_TOO_LONG,
    ALT_TOO_SHORT,
    RARE_TOKEN,
    bigrams,
    check_images_per_alt,
    check_length,
    check_rare_tokens,
    ngrams,
    normalize,
    rare_cut_count,
    shuffle_key,
    unigrams,
)


def test_normalize_folds_case_and_collapses_whitespace():
    assert normalize("  A  Photo\tOF\n a DOG ") == "a photo of a dog"


def test_normalize_removes_controls_zero_width_and_bidi_overrides():
    assert normalize("red\x00dog\u200b\u202eand\ufeffcat") == "red dog and cat"


def test_unigrams_keep_inner_apostrophes_and_drop_punctuation():
    assert unigrams("The dog's ball, (red)!") == ["the", "dog's", "ball", "red"]


def test_unigrams_of_non_latin_scripts_are_words():
    assert unigrams("кошка на диване") == ["кошка", "на", "диване"]
    assert unigrams("قطة على الأريكة") == ["قطة", "على", "الأريكة"]


def test_bigrams_are_adjacent_pairs():
    assert bigrams(["a", "red", "dog"]) == ["a red", "red dog"]
    assert ngrams(["a", "dog"]) == ["a", "dog", "a dog"]
    assert bigrams(["one"]) == []


@pytest.mark.parametrize(
    ("count", "expected"),
    [(2, ALT_TOO_SHORT), (3, None), (20, None), (21, ALT_TOO_LONG), (0, ALT_TOO_SHORT)],
)
def test_length_keeps_three_to_twenty_unigrams(count, expected):
    verdict = check_length(count)
    assert (verdict[0] if verdict else None) == expected
    if verdict:
        assert verdict[1] == f"n_unigrams={count}"


def test_alt_shared_by_ten_images_is_kept_eleven_dropped():
    assert check_images_per_alt(10) is None
    assert check_images_per_alt(11) == (ALT_SHARED, "images_per_alt>=11")
    assert check_images_per_alt(3, max_images=2)[0] == ALT_SHARED


def test_rare_tokens_reject_and_name_the_tokens():
    assert check_rare_tokens([]) is None
    reason, measured = check_rare_tokens(["zxqv:1"])
    assert reason == RARE_TOKEN and "zxqv" in measured


def test_rare_cut_is_the_count_of_the_vth_most_frequent_token():
    histogram = {100: 1, 50: 2, 7: 3, 1: 10}  # counts 100, 50, 50, 7, 7, 7, 1 x10
    assert rare_cut_count(histogram, vocab_size=1) == 100
    assert rare_cut_count(histogram, vocab_size=3) == 50
    assert rare_cut_count(histogram, vocab_size=4) == 7


def test_rare_cut_keeps_every_token_tied_at_the_cut():
    # V=2 falls inside the tie of two tokens with count 50: both stay frequent.
    assert rare_cut_count({100: 1, 50: 2, 1: 5}, vocab_size=2) == 50


def test_rare_cut_with_fewer_tokens_than_v_applies_only_min_count():
    assert rare_cut_count({5: 3, 1: 4}, vocab_size=100) == 1
    assert rare_cut_count({5: 3, 1: 4}, vocab_size=100, min_count=3) == 3
    assert rare_cut_count({}, vocab_size=10) == 1


def test_shuffle_key_bounds_long_texts_and_keeps_short_ones():
    assert shuffle_key("red dog") == "red dog"
    long_key = shuffle_key("x" * 100_000)
    assert long_key.startswith("#") and len(long_key) == 33
    assert long_key != shuffle_key("x" * 99_999)
