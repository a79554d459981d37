"""Alt-text normalisation, n-grams and shuffle keys: the form every text rule sees."""

from filters.text import bigrams, ngrams, normalize, shuffle_key, unigrams


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


def test_shuffle_key_bounds_long_texts_and_keeps_short_ones():
    assert shuffle_key("red dog") == "red dog"
    long_key = shuffle_key("x" * 100_000)
    assert long_key.startswith("#") and len(long_key) == 33
    assert long_key != shuffle_key("x" * 99_999)
