"""A rule's predicate at its declared defaults (the thresholds are written only in its RULE)."""

from filters.rule import Rule


def at_defaults(rule: Rule, *values):
    """The predicate on ``values`` and the rule's default thresholds, in its order."""
    return rule.check(*values, *(threshold.default for threshold in rule.thresholds))
