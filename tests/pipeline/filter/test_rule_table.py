"""A rule is one declaration in filters/rules.py plus its predicate: the filter job, its
stats, its rejects and the report pick up a made-up rule with nothing else changed."""

from __future__ import annotations

import pytest

from filters import rules
from filters.rules import ALL, ALT_TEXT, DISTINCT_COUNT, IMAGE, RECORD, TEXT, Rule
from pipeline.filter.cli import run
from pipeline.report.gather import ordered_reasons
from pipeline.report.gather import rule_of as report_rule_of
from pipeline.shards import read_table
from tests.pipeline.filter.inputs import pair, write_pairs


def check_no_digits(alt: str | None) -> tuple[str, str] | None:
    """A made-up record rule: an alt-text with a digit in it is rejected."""
    digits = sum(character.isdigit() for character in alt or "")
    return ("alt_with_digits", f"digits={digits}") if digits else None


def check_alts_per_url(n_alts: int, limit: int) -> tuple[str, str] | None:
    """A made-up distinct-count rule: an image URL under more than ``limit`` alt-texts."""
    return ("url_with_many_alts", f"alts_per_url>={n_alts}") if n_alts > limit else None


NO_DIGITS = Rule(
    name="no_digits",
    reasons=("alt_with_digits",),
    measures="digits in the alt-text",
    stage=RECORD,
    modes=(TEXT, ALL),
    check=check_no_digits,
    inputs=("alt",),
)
ALTS_PER_URL = Rule(
    name="alts_per_url",
    reasons=("url_with_many_alts",),
    measures="distinct alt-texts of one image URL",
    stage=DISTINCT_COUNT,
    modes=(TEXT, ALL),
    check=check_alts_per_url,
    config_keys=("max_images_per_alt",),  # its limit: 10 by default
    counts=(IMAGE, ALT_TEXT),
)


@pytest.fixture
def made_up_rules(monkeypatch):
    table = list(rules.RULES)
    table.insert(table.index(rules.rule_named("alt_length")) + 1, NO_DIGITS)
    table.insert(table.index(rules.rule_named("rare_tokens")), ALTS_PER_URL)
    monkeypatch.setattr(rules, "RULES", tuple(table))


def test_a_made_up_rule_runs_from_its_declaration_alone(made_up_rules, tmp_path):
    words = "red green blue yellow purple orange white black pink brown grey gold".split()
    rows = [pair("http://127.0.0.2/logo.png", f"a {word} company logo") for word in words]
    rows += [pair("http://127.0.0.2/boat.jpg", "a boat on a calm lake")] * 2
    rows += [pair("http://127.0.0.2/boat2.jpg", "3 boats on a calm lake")]
    stats = run(["--input", str(write_pairs(tmp_path / "in", rows)), "--output",
                 str(tmp_path / "out"), "--rules", "text", "--languages", "all"])  # fmt: skip
    assert stats["rules"] == ["alt_length", "no_digits", "images_per_alt", "alts_per_url",
                              "rare_tokens"]  # fmt: skip
    assert stats["rejected"] == {"url_with_many_alts": 12, "alt_with_digits": 1}
    assert stats["balanced"] and stats["kept"] == 2
    rejects = read_table(str(tmp_path / "out" / "rejects" / "*.parquet")).to_pylist()
    measured = {row["alt"]: (row["reasons"], row["measured"]) for row in rejects}
    assert measured["3 boats on a calm lake"] == (["alt_with_digits"], ["digits=1"])
    assert measured["a red company logo"] == (["url_with_many_alts"], ["alts_per_url>=11"])
    assert report_rule_of("url_with_many_alts") == "alts_per_url"
    assert ordered_reasons(stats) == ["alt_with_digits", "url_with_many_alts"]
