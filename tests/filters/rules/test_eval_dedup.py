from filters.eval_index import EvalMatch
from filters.rules import eval_dedup


def test_a_match_is_rejected_under_its_eval_set_and_no_match_kept():
    match = EvalMatch(3, "imagenet", "cat.jpg")
    verdict = eval_dedup.RULE.check(match)
    assert verdict == ("eval_near_duplicate/imagenet", match.measured())
    assert eval_dedup.RULE.check(None) is None
