"""The rule table: one module per rule, found by discovery; every config key and reason owned
by one rule; thresholds declared once (the predicates take no defaults); the modes run what
the table says in its order; the docs show the table as it is."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import filters.rules
from filters import rule as kinds
from filters import table
from filters.config import FilterConfig
from filters.eval_index import eval_reason
from filters.rule import (
    ALL,
    EVAL_SETS,
    LANGUAGES,
    NONE,
    NSFW_MODEL,
    SCORE_MODEL,
    SEMANTIC_DEDUP,
    TEXT,
)
from filters.table import RULES, rules_for

EVERYTHING = [EVAL_SETS, NSFW_MODEL, LANGUAGES, SCORE_MODEL, SEMANTIC_DEDUP]


def test_every_module_of_the_rules_package_is_one_rule_of_the_table():
    modules = sorted(name for name in dir(filters.rules) if not name.startswith("_"))
    assert sorted(rule.check.__module__.rsplit(".", 1)[1] for rule in RULES) == modules
    assert [rule.order for rule in RULES] == sorted(rule.order for rule in RULES)


def test_a_module_without_a_rule_is_refused(tmp_path, monkeypatch):
    (tmp_path / "stray.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(filters.rules, "__path__", [*filters.rules.__path__, str(tmp_path)])
    monkeypatch.delitem(__import__("sys").modules, "filters.rules.stray", raising=False)
    with pytest.raises(TypeError, match="declares no RULE"):
        table.discover()


def test_rule_names_are_unique_and_stages_known():
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert all(rule.stage in kinds.STAGES and set(rule.modes) <= set(kinds.MODES) for rule in RULES)


def test_filter_config_is_exactly_the_rules_thresholds_with_their_defaults():
    fields = {field.name: field.default for field in dataclasses.fields(FilterConfig)}
    declared = {t.name: t.default for rule in RULES for t in rule.thresholds}
    assert fields == declared


def test_predicates_take_no_default_so_each_threshold_is_written_once():
    defaulted = [
        f"{rule.name}: {name}"
        for rule in RULES
        for name, parameter in inspect.signature(rule.check).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    ]
    assert defaulted == []


def test_a_record_rule_takes_its_inputs_then_its_thresholds():
    for rule in RULES:
        if rule.stage == kinds.RECORD:
            parameters = inspect.signature(rule.check).parameters
            assert len(parameters) == len(rule.inputs) + len(rule.thresholds), rule.name


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_reason_leads_back_to_the_rule_that_gives_it(rule):
    for reason in rule.reasons:
        example = reason.replace("*", "x")
        assert table.rule_of(example).name == rule.name


def test_eval_reasons_name_their_set_and_lead_to_eval_dedup():
    assert table.rule_of(eval_reason("imagenet")).name == "eval_dedup"


def test_a_reason_no_rule_gives_is_a_key_error():
    with pytest.raises(KeyError):
        table.rule_of("made_up_reason")


def test_the_modes_run_the_table_in_its_order():
    for mode in (TEXT, ALL, NONE):
        chosen = rules_for(mode, EVERYTHING)
        assert chosen == [rule for rule in RULES if mode in rule.modes]
    assert rules_for(NONE, EVERYTHING) == [table.rule_named("download")]
    assert not any(rule.needs_image for rule in rules_for(TEXT, EVERYTHING))
    assert rules_for(ALL, EVERYTHING)[-1].name == "language"  # costliest, on the survivors


def test_a_rule_that_needs_something_is_off_without_it():
    for rule in RULES:
        if rule.needs:
            given = [need for need in EVERYTHING if need != rule.needs]
            assert rule not in rules_for(ALL, given), rule.name


def test_the_report_targets_are_ground_truth_labels_of_the_synthetic_web():
    labels = [label for rule in RULES for label in rule.targets.values()]
    assert len(labels) == len(set(labels)) and all(label.startswith("noise_") for label in labels)


def test_the_architecture_doc_shows_the_table_as_declared():
    document = table.DOCS.read_text()
    assert table.with_table(document) == document, "run python -m filters.table"
    assert table.main(["--check"]) == 0


def test_the_docs_writer_replaces_only_the_block_between_markers(tmp_path):
    docs = tmp_path / "doc.md"
    docs.write_text(f"intro\n{table.BEGIN}\nstale\n{table.END}\noutro\n")
    assert table.main(["--check", "--docs", str(docs)]) == 1
    assert table.main(["--docs", str(docs)]) == 0
    assert docs.read_text() == f"intro\n{table.BEGIN}\n{table.markdown_table()}{table.END}\noutro\n"
