"""One report for the whole curation: the last filter run's report follows its input back to
the text filter's run and shows the rules of both, each record counted once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.report.chain import curation_of, input_folder
from pipeline.report.gather import gather
from pipeline.report.writer import write_report
from tests.pipeline.report.report_fixtures import (
    TEXT_REASONS,
    fact,
    make_records,
    section,
    table_row,
    write_chain,
    write_ground_truth,
)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return make_records()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, records) -> Path:
    return write_chain(tmp_path_factory.mktemp("curation"), records)


@pytest.fixture(scope="module")
def report(chain, records, tmp_path_factory) -> str:
    truth = write_ground_truth(tmp_path_factory.mktemp("truth") / "truth.parquet", records)
    return Path(write_report(str(chain), str(truth), print_summary=False)).read_text()


def first_reason(record: dict) -> str | None:
    return record["reasons"][0] if record["reasons"] else None


def test_the_trail_runs_from_the_last_filter_run_through_the_download_to_the_text_filter(chain):
    curation = curation_of(str(chain))
    assert [run.label for run in curation.runs] == ["text_filter", "images", "filter"]
    assert [run.job for run in curation.filter_runs] == [
        "align-filter --rules text", "align-filter --rules all",
    ]  # fmt: skip
    assert curation.notes == []


def test_the_curation_counts_every_record_once_from_the_first_run_in_to_the_last_kept(
    report, records
):
    kept = sum(record["kept"] for record in records)
    assert fact(report, "records in") == f"{len(records)} (read by text_filter/)"
    assert fact(report, "kept") == f"{kept} ({kept / len(records):.1%})"
    assert fact(report, "balanced") == "yes"


def test_the_text_rules_of_the_upstream_run_are_counted_where_they_ran(report, records):
    removed = section(report, "## Records removed per rule")
    # 18 + 4 too short: the 4 also too small never reach the image rules.
    assert table_row(removed, "alt_too_short")[1::2] == ["22", "22", "text_filter"]
    assert table_row(removed, "image_too_small")[1::2] == ["19", "19", "filter"]
    for reason in {first_reason(record) for record in records} - {None}:
        counted = sum(first_reason(record) == reason for record in records)
        assert table_row(removed, reason)[1] == str(counted), reason


def test_each_run_is_a_row_of_the_curation_with_its_rules(report, records):
    runs = section(report, "## The curation, run by run")
    text = sum(bool(set(r["reasons"]) & TEXT_REASONS) for r in records)
    cells = table_row(runs, "text_filter/")
    assert cells[1:5] == ["align-filter --rules text", str(len(records)), str(len(records) - text),
                          str(text)]  # fmt: skip
    assert "rare_tokens" in cells[-1] and "image_size" not in cells[-1]
    final = table_row(runs, "filter/")
    assert final[5] == "6"  # the download failures, apart from what the rules rejected
    assert "align-download (images/) read" in runs


def test_languages_are_those_the_text_filter_detected_not_one_bar_of_english(chain, records):
    data = gather(str(chain))
    assert data.languages_run.label == "text_filter"
    text_survivors = [r for r in records if not set(r["reasons"]) & TEXT_REASONS]
    assert data.languages == {"en": len(text_survivors), "fr": 15}


def test_histograms_show_the_records_the_text_filter_removed(chain, records):
    data = gather(str(chain))
    assert data.alt_length.total == len(records)
    assert data.alt_length.counts[26] == 10  # the too-long alt-texts, removed upstream


def test_precision_and_recall_cover_the_text_rules_of_the_upstream_run(report):
    quality = section(report, "## Rules against the ground truth")
    assert table_row(quality, "alt_too_short")[1:] == [
        "too_short", "270", "22", "24", "22", "1.00", "1.00", "0.92", "0.92",
    ]  # fmt: skip
    assert table_row(quality, "language")[6] == "1.00"
    assert "270 records matched, 0 not in the ground truth" in quality


def test_a_download_that_does_not_name_its_input_ends_the_trail_with_a_note(tmp_path, records):
    final = write_chain(tmp_path, records)
    stats_path = tmp_path / "images" / "stats.json"
    stats = json.loads(stats_path.read_text())
    del stats["input"]
    stats_path.write_text(json.dumps(stats))
    markdown = Path(write_report(str(final), print_summary=False)).read_text()
    assert re.search(r"images/stats\.json does not name its input", markdown)
    assert "text_filter" not in section(markdown, "## Records removed per rule")


def test_runs_that_do_not_chain_are_named(tmp_path, records):
    final = write_chain(tmp_path, records)
    stats = json.loads((final / "stats.json").read_text())
    stats["in"] += 1
    (final / "stats.json").write_text(json.dumps(stats))
    markdown = Path(write_report(str(final), print_summary=False)).read_text()
    assert "but align-filter --rules text (text_filter/) before it kept" in markdown
    assert fact(markdown, "balanced") == "NO"


@pytest.mark.parametrize(
    ("source", "folder"),
    [
        ("runs/demo/download", "runs/demo/download"),
        ("runs/demo/download/images-*.parquet", "runs/demo/download"),
        ("gs://bucket/run/text_filter/pairs-*.parquet", "gs://bucket/run/text_filter"),
        ("gs://bucket/*/pairs-*.parquet", None),
        (None, None),
    ],
)
def test_a_jobs_input_names_the_folder_of_the_run_before_it(source, folder):
    assert input_folder(source) == folder
