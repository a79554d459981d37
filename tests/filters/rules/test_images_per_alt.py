from filters.rules import images_per_alt
from filters.rules.images_per_alt import ALT_SHARED, check_images_per_alt
from tests.filters.rules.defaults import at_defaults


def test_alt_shared_by_ten_images_is_kept_eleven_dropped():
    assert at_defaults(images_per_alt.RULE, 10) is None
    assert at_defaults(images_per_alt.RULE, 11) == (ALT_SHARED, "images_per_alt>=11")
    assert check_images_per_alt(3, max_images=2)[0] == ALT_SHARED
