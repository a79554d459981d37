import pytest

from filters.rules import aspect
from filters.rules.aspect import EXTREME_ASPECT
from tests.filters.rules.defaults import at_defaults


@pytest.mark.parametrize(
    ("width", "height", "kept"),
    [(299, 100, True), (300, 100, False), (100, 300, False), (100, 299, True), (250, 250, True)],
)
def test_aspect_ratio_below_three_is_kept(width, height, kept):
    assert (at_defaults(aspect.RULE, width, height) is None) == kept


def test_aspect_just_below_three_is_kept_exactly_three_is_not():
    assert at_defaults(aspect.RULE, 2990, 1000) is None  # 2.99
    assert at_defaults(aspect.RULE, 3000, 1000) == (EXTREME_ASPECT, "aspect=3.000")


def test_zero_sided_image_is_an_extreme_aspect_not_a_crash():
    assert at_defaults(aspect.RULE, 0, 10)[0] == EXTREME_ASPECT
