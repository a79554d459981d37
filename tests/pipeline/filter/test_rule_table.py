"""A rule is one module of filters/rules/: a throwaway rule, written as one file outside the
package and found by the same discovery, runs through the text job, its stats, rejects and
report with nothing else changed."""

from __future__ import annotations

import sys
import textwrap

import pytest

import filters.rules
from filters import table
from pipeline.filter.cli import run
from pipeline.report.gather import ordered_reasons
from pipeline.report.gather import rule_of as report_rule_of
from pipeline.shards import read_table
from tests.pipeline.filter.inputs import pair, write_pairs

NO_DIGITS = '''
"""A throwaway record rule: an alt-text with a digit in it is rejected."""

from filters.rule import ALL, RECORD, TEXT, Rule


def check_no_digits(alt):
    digits = sum(character.isdigit() for character in alt or "")
    return ("alt_with_digits", f"digits={digits}") if digits else None


RULE = Rule(name="no_digits", order=25, reasons=("alt_with_digits",),
            measures="digits in the alt-text", stage=RECORD, modes=(TEXT, ALL),
            check=check_no_digits, inputs=("alt",))
'''


@pytest.fixture
def throwaway_rules(tmp_path, monkeypatch):
    """A rule file in a folder of its own, made part of filters.rules' path (a rule with a
    threshold of its own needs FilterConfig built after it, as importing filters.config does
    for the modules of filters/rules/: the test below runs one in a fresh interpreter)."""
    folder = tmp_path / "more_rules"
    folder.mkdir()
    (folder / "no_digits.py").write_text(textwrap.dedent(NO_DIGITS))
    monkeypatch.setattr(filters.rules, "__path__", [*filters.rules.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, "filters.rules.no_digits", raising=False)
    monkeypatch.setattr(table, "RULES", table.discover())
    yield
    sys.modules.pop("filters.rules.no_digits", None)


def test_a_throwaway_rule_file_runs_through_the_job_stats_and_report(throwaway_rules, tmp_path):
    words = "red green blue yellow purple orange white black pink brown grey gold".split()
    rows = [pair(f"http://127.0.0.2/{word}.png", "a company logo") for word in words]
    rows += [pair("http://127.0.0.2/boat.jpg", "a boat on a calm lake")] * 2
    rows += [pair("http://127.0.0.2/boat2.jpg", "3 boats on a calm lake")]
    out = tmp_path / "out"
    stats = run(["--input", str(write_pairs(tmp_path / "in", rows)), "--output", str(out),
                 "--rules", "text", "--languages", "all", "--stats"])  # fmt: skip
    assert stats["rules"] == ["alt_length", "no_digits", "images_per_alt", "rare_tokens"]
    assert stats["rejected"] == {"alt_shared_by_many_images": 12, "alt_with_digits": 1}
    assert stats["balanced"] and stats["kept"] == 2
    rejects = read_table(str(out / "rejects" / "*.parquet")).to_pylist()
    measured = {row["alt"]: (row["reasons"], row["measured"]) for row in rejects}
    assert measured["3 boats on a calm lake"] == (["alt_with_digits"], ["digits=1"])
    assert report_rule_of("alt_with_digits") == "no_digits"
    assert ordered_reasons(stats) == ["alt_with_digits", "alt_shared_by_many_images"]
    report = (out / "report" / "report.md").read_text()
    assert "| alt_with_digits | 1 | 6.7% | 1 | 6.7% |" in report  # first and any failing


MAX_DIGITS = '''
"""A throwaway record rule with a threshold of its own: at most max_digits digits."""

from filters.rule import ALL, RECORD, TEXT, Rule, Threshold, integer


def check_digits(alt, max_digits):
    digits = sum(character.isdigit() for character in alt or "")
    return ("alt_too_many_digits", f"digits={digits}") if digits > max_digits else None


RULE = Rule(name="max_digits", order=25, reasons=("alt_too_many_digits",),
            measures="digits in the alt-text", stage=RECORD, modes=(TEXT, ALL),
            check=check_digits, inputs=("alt",),
            thresholds=(Threshold("max_digits", 0, "digits an alt-text may hold", integer(0)),))
'''

# A fresh interpreter, as a user's next command is: the rule folder joins filters.rules' path
# before anything of the filter is imported, as a file added to filters/rules/ would be found.
# The job runs in this process (one worker, threads): worker processes would import filters.rules
# without the test's extra folder, where a real rule file in filters/rules/ is found by all.
RUN_WITH_RULE_FOLDER = """
import json, sys
import filters.rules
filters.rules.__path__.append(sys.argv[1])
from filters import table
from filters.config import FilterConfig
from pipeline.filter.cli import run
stats = run(sys.argv[2:])
print(json.dumps({"stats": stats, "table": table.markdown_table(),
                  "default": FilterConfig().max_digits}))
"""


def test_a_throwaway_rules_threshold_becomes_a_config_key_a_flag_and_a_docs_row(tmp_path):
    import json
    import subprocess

    folder = tmp_path / "more_rules"
    folder.mkdir()
    (folder / "max_digits.py").write_text(textwrap.dedent(MAX_DIGITS))
    rows = [pair(f"http://127.0.0.2/boat{n}.jpg", alt) for n, alt in enumerate(
        ["a boat on a calm lake", "3 boats on a calm lake", "12 boats on a calm lake"]
    )]  # fmt: skip
    out = tmp_path / "out"
    argv = ["--input", str(write_pairs(tmp_path / "in", rows)), "--output", str(out),
            "--rules", "text", "--languages", "all", "--max-digits", "1",
            "--workers", "1"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITH_RULE_FOLDER, str(folder), *argv],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["default"] == 0  # declared once, in the rule file
    assert result["stats"]["config"]["max_digits"] == 1  # the flag reached the config
    assert result["stats"]["rejected"] == {"alt_too_many_digits": 1}  # 12 boats, not 3
    assert "max_digits" in result["stats"]["rules"]
    assert "`max_digits`" in result["table"] or "max_digits" in result["table"]
