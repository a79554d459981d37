"""ALIGN's rules as one table, found by importing every module of filters/rules/.

Each module there declares one ``RULE`` (filters/rule.py): its predicate, reasons, stage,
modes, thresholds and ground-truth targets. The filter job (pipeline/filter) builds its steps
from this table, FilterConfig (filters/config.py) its fields, align-filter its config flags,
the report (pipeline/report) orders and judges reasons by it, and docs/architecture.md holds
``markdown_table()`` between markers (``python -m filters.table`` rewrites it; a test checks
it). Adding a rule of an existing stage is one module in filters/rules/ and its test.

The order of RULES (each rule's ``order``) is the order a record's reasons are listed and a
rejected record is counted under: cheap per-record rules first, the joins next, the models,
the language detector last (it is the costliest per record and runs only on what every other
rule kept).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import filters.rules
from filters.rule import GIVEN_BY, MODES, STAGES, Rule, Threshold


def discover(package=filters.rules) -> tuple[Rule, ...]:
    """The RULE of every module in the package's folders, in table order."""
    found = []
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        rule = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "RULE", None)
        if not isinstance(rule, Rule):
            raise TypeError(f"{package.__name__}.{module.name} declares no RULE")
        found.append(rule)
    return checked(sorted(found, key=lambda rule: rule.order))


def checked(rules: list[Rule]) -> tuple[Rule, ...]:
    """Names, orders and config keys are unique; stages and modes are known ones."""
    for what, values in (
        ("rule name", [rule.name for rule in rules]),
        ("rule order", [rule.order for rule in rules]),
        ("config key", [key for rule in rules for key in rule.config_keys]),
    ):
        twice = sorted({value for value in values if values.count(value) > 1})
        if twice:
            raise ValueError(f"{what} declared twice: {twice}")
    for rule in rules:
        if rule.stage not in STAGES or not set(rule.modes) <= set(MODES):
            raise ValueError(f"rule {rule.name}: unknown stage or mode")
    return tuple(rules)


RULES: tuple[Rule, ...] = discover()


def thresholds(rules: Iterable[Rule] | None = None) -> list[Threshold]:
    """Every rule's thresholds, in table order: FilterConfig's fields."""
    return [threshold for rule in (RULES if rules is None else rules) for threshold in
            rule.thresholds]  # fmt: skip


def rule_named(name: str, rules: Iterable[Rule] | None = None) -> Rule:
    for rule in RULES if rules is None else rules:
        if rule.name == name:
            return rule
    raise KeyError(name)


def rule_of(reason: str, rules: Iterable[Rule] | None = None) -> Rule:
    """The rule that gives a reject reason; a KeyError for a reason no rule gives."""
    for rule in RULES if rules is None else rules:
        if rule.gives(reason):
            return rule
    raise KeyError(reason)


def rules_for(mode: str, given: Iterable[str] = (), rules: Iterable[Rule] | None = None) -> list:
    """The rules a mode runs, in table order; ``given`` says which of EVAL_SETS, NSFW_MODEL,
    SCORE_MODEL and LANGUAGES the run has (a rule that needs one of them is off without it)."""
    given = set(given)
    return [
        rule
        for rule in (RULES if rules is None else rules)
        if mode in rule.modes and (rule.needs is None or rule.needs in given)
    ]


def config_help() -> dict[str, str]:
    """A config key -> the rule that reads it and what the key is (--help)."""
    return {t.name: f"{rule.name}: {t.about}" for rule in RULES for t in rule.thresholds}


def markdown_table(rules: Iterable[Rule] | None = None) -> str:
    """The table as docs/architecture.md shows it."""
    lines = [
        "| rule | rejects as | measures | stage | modes | thresholds (default) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in RULES if rules is None else rules:
        cells = [
            f"`{rule.name}`",
            ", ".join(f"`{reason}`" for reason in rule.reasons),
            rule.measures + (f" (only with {GIVEN_BY[rule.needs]})" if rule.needs else ""),
            rule.stage,
            ", ".join(rule.modes),
            ", ".join(f"`{t.name}` ({_shown(t)})" for t in rule.thresholds),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _shown(threshold: Threshold) -> str:
    value = threshold.show(threshold.default) if threshold.show else threshold.default
    return ",".join(value) if isinstance(value, list) else str(value)


# The docs block between these markers is markdown_table(); nothing else is written.
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
BEGIN = "<!-- rule table: written by `python -m filters.table` from filters/rules/ -->"
END = "<!-- end of rule table -->"


def with_table(document: str) -> str:
    """The document with the block between BEGIN and END replaced by the current table."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are not both in the document")
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m filters.table``: rewrites the docs' rule table; --check only compares."""
    parser = argparse.ArgumentParser(prog="python -m filters.table", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the docs are stale")
    parser.add_argument("--docs", default=str(DOCS), help="the Markdown file holding the table")
    args = parser.parse_args(argv)
    path = Path(args.docs)
    document = path.read_text()
    wanted = with_table(document)
    if wanted == document:
        return 0
    if args.check:
        print(f"{path}: the rule table is stale; run python -m filters.table", file=sys.stderr)
        return 1
    path.write_text(wanted)
    print(f"{path}: rule table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
