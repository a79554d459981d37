import pytest

from filters.rules import image_size
from filters.rules.image_size import IMAGE_TOO_SMALL
from tests.filters.rules.defaults import at_defaults


@pytest.mark.parametrize(
    ("width", "height", "kept"),
    [(201, 201, True), (200, 600, False), (600, 200, False), (201, 5000, True), (0, 0, False)],
)
def test_shorter_side_must_exceed_200_px(width, height, kept):
    verdict = at_defaults(image_size.RULE, width, height)
    assert (verdict is None) == kept
    if verdict:
        assert verdict == (IMAGE_TOO_SMALL, f"shorter_side={min(width, height)}")
