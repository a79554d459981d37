import pytest

from filters.rules import alt_length
from filters.rules.alt_length import ALT_TOO_LONG, ALT_TOO_SHORT
from tests.filters.rules.defaults import at_defaults


@pytest.mark.parametrize(
    ("count", "expected"),
    [(2, ALT_TOO_SHORT), (3, None), (20, None), (21, ALT_TOO_LONG), (0, ALT_TOO_SHORT)],
)
def test_length_keeps_three_to_twenty_unigrams(count, expected):
    verdict = at_defaults(alt_length.RULE, count)
    assert (verdict[0] if verdict else None) == expected
    if verdict:
        assert verdict[1] == f"n_unigrams={count}"
