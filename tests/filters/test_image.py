"""Image rules: shorter side > 200 px, aspect < 3, at most 1000 alt-texts per image."""

import pytest

from filters.image import (
    EXTREME_ASPECT,
    IMAGE_MANY_ALTS,
    IMAGE_TOO_SMALL,
    check_alts_per_image,
    check_aspect,
    check_size,
)


@pytest.mark.parametrize(
    ("width", "height", "kept"),
    [(201, 201, True), (200, 600, False), (600, 200, False), (201, 5000, True), (0, 0, False)],
)
def test_shorter_side_must_exceed_200_px(width, height, kept):
    verdict = check_size(width, height)
    assert (verdict is None) == kept
    if verdict:
        assert verdict == (IMAGE_TOO_SMALL, f"shorter_side={min(width, height)}")


@pytest.mark.parametrize(
    ("width", "height", "kept"),
    [(299, 100, True), (300, 100, False), (100, 300, False), (100, 299, True), (250, 250, True)],
)
def test_aspect_ratio_below_three_is_kept(width, height, kept):
    assert (check_aspect(width, height) is None) == kept


def test_aspect_just_below_three_is_kept_exactly_three_is_not():
    assert check_aspect(2990, 1000) is None  # 2.99
    assert check_aspect(3000, 1000) == (EXTREME_ASPECT, "aspect=3.000")


def test_zero_sided_image_is_an_extreme_aspect_not_a_crash():
    assert check_aspect(0, 10)[0] == EXTREME_ASPECT


def test_image_with_1000_alts_kept_1001_dropped():
    assert check_alts_per_image(1000) is None
    assert check_alts_per_image(1001) == (IMAGE_MANY_ALTS, "alts_per_image>=1001")
