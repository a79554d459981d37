"""The rule table: every rule declared once, every config key and reason owned by one rule,
the modes running what ALIGN's recipe runs, and the docs showing the table as it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from filters import eval_index, image, language, rules, text
from filters.config import FilterConfig
from filters.rules import ALL, EVAL_SETS, LANGUAGES, NONE, NSFW_MODEL, RULES, TEXT, rules_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def names(mode: str, given=()) -> list[str]:
    return [rule.name for rule in rules_for(mode, given)]


def test_rule_names_are_unique_and_stages_known():
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert all(rule.stage in rules.STAGES and set(rule.modes) <= set(rules.MODES) for rule in RULES)


def test_every_config_key_belongs_to_exactly_one_rule():
    claimed = [key for rule in RULES for key in rule.config_keys]
    assert sorted(claimed) == sorted(field.name for field in dataclasses.fields(FilterConfig))


@pytest.mark.parametrize(
    "reason, rule",
    [
        (text.ALT_TOO_SHORT, "alt_length"),
        (text.ALT_TOO_LONG, "alt_length"),
        (text.ALT_SHARED, "images_per_alt"),
        (text.RARE_TOKEN, "rare_tokens"),
        (image.IMAGE_TOO_SMALL, "image_size"),
        (image.EXTREME_ASPECT, "aspect"),
        (image.IMAGE_MANY_ALTS, "alts_per_image"),
        (image.NSFW_UNSCORED, "nsfw"),
        ("download_http_404", "download"),
        (eval_index.eval_reason("imagenet"), "eval_dedup"),
        (language.LANGUAGE, "language"),
    ],
)
def test_every_reason_leads_back_to_the_rule_that_gives_it(reason, rule):
    assert rules.rule_of(reason).name == rule


def test_a_reason_no_rule_gives_is_a_key_error():
    with pytest.raises(KeyError):
        rules.rule_of("made_up_reason")


def test_the_modes_run_the_recipe_in_its_order():
    assert names(TEXT) == ["alt_length", "images_per_alt", "rare_tokens"]
    assert names(TEXT, [LANGUAGES]) == names(TEXT) + ["language"]
    assert names(ALL, [EVAL_SETS, NSFW_MODEL, LANGUAGES]) == [
        "download", "alt_length", "image_size", "aspect", "images_per_alt", "alts_per_image",
        "rare_tokens", "eval_dedup", "nsfw", "language",
    ]  # fmt: skip
    assert names(NONE, [EVAL_SETS, NSFW_MODEL, LANGUAGES]) == ["download"]


@pytest.mark.parametrize(
    "rule, values, verdict",
    [
        ("download", ("http_404", "404 for x"), ("download_http_404", "404 for x")),
        ("download", ("ok", None), None),
        ("alt_length", (2, 3, 20), ("alt_too_short", "n_unigrams=2")),
        ("image_size", (640, 200, 200), ("image_too_small", "shorter_side=200")),
        ("aspect", (900, 300, 3.0), ("extreme_aspect", "aspect=3.000")),
        ("nsfw", (None, 0.5), ("nsfw_unscored", "no score from the NSFW model")),
        ("nsfw", (0.75, 0.5), ("nsfw", "nsfw_score=0.7500")),
        ("nsfw", (0.5, 0.5), None),
    ],
)
def test_each_predicate_is_called_as_its_stage_says(rule, values, verdict):
    assert rules.rule_named(rule).check(*values) == verdict


def test_the_architecture_doc_shows_the_table_as_declared():
    assert rules.markdown_table() in DOCS.read_text()
