"""The experiment's seed-paired comparisons: p-value, interval and the verdict drawn."""

import math

import pytest

from tools.experiment_stats import comparison_table, paired


def test_a_consistent_gain_over_seeds_is_significant_with_an_interval_around_it():
    first = {0: 0.80, 1: 0.85, 2: 0.78, 3: 0.83}
    second = {0: 0.60, 1: 0.66, 2: 0.61, 3: 0.62}
    result = paired("(c) vs (b)", first, second)
    assert result.seeds == 4 and result.mean == pytest.approx(0.1925)
    assert result.low < result.mean < result.high and result.low > 0
    assert result.p < 0.01 and result.verdict == "significant"


def test_pairs_are_formed_by_seed_not_by_position():
    # Seed 1 of the first arm is 0.9, of the second 0.8: paired, every difference is +0.1.
    result = paired("x", {0: 0.5, 1: 0.9, 2: 0.7}, {2: 0.6, 0: 0.4, 1: 0.8, 9: 0.0})
    assert result.seeds == 3 and result.mean == pytest.approx(0.1)


def test_a_small_noisy_difference_with_a_narrow_interval_is_a_null_result():
    first = {s: 0.70 + d for s, d in enumerate([0.004, -0.003, 0.002, -0.001, 0.003, -0.004])}
    second = {s: 0.70 for s in range(6)}
    result = paired("x", first, second)
    assert result.p > 0.05 and result.verdict == "null (narrow interval)"


def test_a_wide_interval_without_significance_is_inconclusive():
    result = paired("x", {0: 0.9, 1: 0.5, 2: 0.8}, {0: 0.6, 1: 0.7, 2: 0.6})
    assert result.p > 0.05 and result.verdict == "inconclusive"


def test_one_seed_has_no_p_value():
    result = paired("x", {0: 0.7}, {0: 0.6})
    assert result.p is None and result.verdict == "inconclusive"
    assert math.isnan(paired("x", {}, {0: 0.6}).mean)


def test_the_table_prints_each_comparison_with_its_interval_and_p():
    result = paired("(e) vs (c)", {0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.75})
    table = comparison_table([result], "zero-shot top-1")
    row = next(line for line in table.splitlines() if "(e) vs (c)" in line)
    assert "+12.5" in row and "[" in row and f"{result.p:.3f}" in row
