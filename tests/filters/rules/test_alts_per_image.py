from filters.rules import alts_per_image
from filters.rules.alts_per_image import IMAGE_MANY_ALTS
from tests.filters.rules.defaults import at_defaults


def test_image_with_1000_alts_kept_1001_dropped():
    assert at_defaults(alts_per_image.RULE, 1000) is None
    assert at_defaults(alts_per_image.RULE, 1001) == (IMAGE_MANY_ALTS, "alts_per_image>=1001")
