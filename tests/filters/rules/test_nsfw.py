import pytest

from filters.rules import nsfw
from tests.filters.rules.defaults import at_defaults


@pytest.mark.parametrize(
    "score, verdict",
    [
        (None, ("nsfw_unscored", "no score from the NSFW model")),
        (0.75, ("nsfw", "nsfw_score=0.7500")),
        (0.5, None),
    ],
)
def test_an_image_above_the_threshold_or_unscored_is_dropped(score, verdict):
    assert at_defaults(nsfw.RULE, score) == verdict
