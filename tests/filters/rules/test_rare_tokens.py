from filters.rules.rare_tokens import RARE_TOKEN, check_rare_tokens, rare_cut_count


def test_rare_tokens_reject_and_name_the_tokens():
    assert check_rare_tokens([]) is None
    reason, measured = check_rare_tokens(["zxqv:1"])
    assert reason == RARE_TOKEN and "zxqv" in measured


def test_rare_cut_is_the_count_of_the_vth_most_frequent_token():
    histogram = {100: 1, 50: 2, 7: 3, 1: 10}  # counts 100, 50, 50, 7, 7, 7, 1 x10
    assert rare_cut_count(histogram, vocab_size=1, min_count=1) == 100
    assert rare_cut_count(histogram, vocab_size=3, min_count=1) == 50
    assert rare_cut_count(histogram, vocab_size=4, min_count=1) == 7


def test_rare_cut_keeps_every_token_tied_at_the_cut():
    # V=2 falls inside the tie of two tokens with count 50: both stay frequent.
    assert rare_cut_count({100: 1, 50: 2, 1: 5}, vocab_size=2, min_count=1) == 50


def test_rare_cut_with_fewer_tokens_than_v_applies_only_min_count():
    assert rare_cut_count({5: 3, 1: 4}, vocab_size=100, min_count=1) == 1
    assert rare_cut_count({5: 3, 1: 4}, vocab_size=100, min_count=3) == 3
    assert rare_cut_count({}, vocab_size=10, min_count=1) == 1
