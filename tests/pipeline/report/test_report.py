"""The align-filter --stats report: what it counts, draws and shows, from a run folder."""

from __future__ import annotations

import html
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from commandline.flags import UsageError
from pipeline.report.gather import Frequent, Histogram, gather, read_thumbnails
from pipeline.report.truth import QualityCounter
from pipeline.report.writer import run, write_report
from tests.pipeline.report.report_fixtures import (
    BOILERPLATE,
    REUSED_SHA,
    fact,
    make_records,
    section,
    table_row,
    write_ground_truth,
    write_run,
)

# Slow: real filter runs over the synthetic web; started first (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return make_records()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, records) -> Path:
    return write_run(tmp_path_factory.mktemp("report_run"), records)


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory, records) -> Path:
    return write_ground_truth(tmp_path_factory.mktemp("truth") / "ground_truth.parquet", records)


@pytest.fixture(scope="module")
def report(run_dir, ground_truth) -> Path:
    return Path(write_report(str(run_dir), str(ground_truth), print_summary=False))


def test_report_writes_markdown_html_and_one_png_per_topic(report, run_dir):
    assert report == run_dir / "report" / "report.md"
    names = {path.name for path in report.parent.iterdir()}
    assert {"report.md", "report.html", "removed_per_rule.png", "rule_quality.png"} <= names
    assert {"alt_length.png", "shorter_side.png", "aspect_ratio.png", "languages.png"} <= names
    for name in names - {"report.md", "report.html", "thumbs"}:
        assert Image.open(report.parent / name).format == "PNG"


def test_html_is_self_contained_with_plots_and_thumbnails_embedded(report):
    page = (report.parent / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 6
    assert 'src="data:image/jpeg;base64,' in page
    assert not re.search(r'src="(?!data:)', page)


def test_removed_per_rule_counts_first_and_any_failing_rule(report):
    markdown = section(report.read_text(), "## Records removed per rule")
    # 18 + 4 fail alt_too_short first; image_too_small is first for 16 + 3, failed by 23.
    assert table_row(markdown, "alt_too_short")[1:] == ["22", "8.1%", "22", "8.1%"]
    assert table_row(markdown, "image_too_small")[1:] == ["19", "7.0%", "23", "8.5%"]
    assert table_row(markdown, "eval_near_duplicate/zero_shot")[1] == "5"


def test_summary_gives_the_kept_fraction(report, records):
    kept = sum(record["kept"] for record in records)
    assert fact(report.read_text(), "kept") == f"{kept} ({kept / len(records):.1%})"
    assert fact(report.read_text(), "records in") == f"{len(records)} (read by run/)"


def test_align_rules_are_listed_in_the_order_they_apply_and_download_failures_last(report):
    markdown = section(report.read_text(), "## Records removed per rule")
    listed = re.findall(r"^\| ([a-z0-9_/]+) \|", markdown, flags=re.M)
    assert listed[1:5] == ["alt_too_long", "alt_too_short", "image_too_small", "extreme_aspect"]
    assert listed[-4:] == [
        "eval_near_duplicate/zero_shot", "language", "download_http_404",
        "download_too_many_redirects",
    ]  # fmt: skip


def test_precision_and_recall_of_each_rule_against_the_noise_it_targets(report):
    markdown = section(report.read_text(), "## Rules against the ground truth")
    # alt_too_short flags 22, all labelled; 24 are labelled (2 missed): recall 22/24.
    assert table_row(markdown, "alt_too_short")[1:] == [
        "too_short", "270", "22", "24", "22", "1.00", "1.00", "0.92", "0.92",
    ]  # fmt: skip
    # image rules judge the 264 downloaded images only
    assert table_row(markdown, "image_too_small")[2] == "264"
    # image_too_small flags 4 + 16 + 3 = 23, of which 20 labelled: precision 20/23.
    assert table_row(markdown, "image_too_small")[6:] == ["0.87", "0.87", "1.00", "1.00"]
    assert table_row(markdown, "eval_near_duplicate")[6:] == ["1.00", "1.00", "1.00", "1.00"]
    assert "Joined on (url, alt, page_url): 270 records matched, 0 not in" in markdown


def test_a_rule_is_judged_only_on_records_it_could_measure():
    truth = pa.table({"url": ["a", "b", "c"], "alt": ["x", "y", "z"],
                      "noise_non_english": [True, True, False]})  # fmt: skip
    measured = pa.table({
        "url": ["a", "b", "c"], "alt": ["x", "y", "z"], "kept": [False, False, True],
        "reasons": [["alt_too_short"], ["language"], []], "language": [None, "fr", "en"],
    })  # fmt: skip
    counter = QualityCounter(truth)
    counter.add(measured)
    (language,) = counter.result().rules
    assert (language.judged, language.flagged, language.labelled, language.both) == (2, 1, 1, 1)
    assert (language.recall, language.removed_fraction) == (1.0, 1.0)
    assert counter.result().keys == ["url", "alt"]


def test_noise_no_rule_targets_is_reported_with_how_much_was_kept(report):
    markdown = section(report.read_text(), "## Rules against the ground truth")
    assert table_row(markdown, "noise_mismatched_caption")[1:] == ["6", "6"]
    assert table_row(markdown, "noise_broken_link")[1:] == ["6", "0"]


def test_report_says_when_the_nsfw_rule_was_not_applied(report, tmp_path, records):
    assert "Rule 'nsfw' not applied: it runs only with --nsfw-model" in report.read_text()
    assert "Rule 'nsfw' not applied" in html.unescape((report.parent / "report.html").read_text())
    applied = write_report(str(write_run(tmp_path, records, nsfw=True)), print_summary=False)
    assert "not applied" not in Path(applied).read_text()


def test_a_text_filter_report_has_no_nsfw_banner_it_could_never_apply(tmp_path, records):
    report = Path(write_report(str(write_run(tmp_path, records, mode="text")), print_summary=False))
    assert "nsfw" not in report.read_text().lower()
    assert "nsfw" not in (report.parent / "report.html").read_text().lower()


def test_most_frequent_alt_texts_are_ranked_with_their_kept_count(report):
    markdown = section(report.read_text(), "## Most frequent alt-texts")
    assert table_row(markdown, "1")[1:] == [BOILERPLATE, "30", "0"]
    assert table_row(markdown, "2")[1:] == ["une maison près de la rivière", "15", "0"]
    rows = [line.strip("| ").split(" | ") for line in markdown.splitlines() if line.startswith("|")]
    counts = [int(cells[2]) for cells in rows if cells[0].isdigit()]
    assert 2 <= len(counts) <= 20 and min(counts) >= 2  # an alt-text seen once is not frequent


def test_most_frequent_images_are_grouped_by_content_with_a_thumbnail(report):
    markdown = section(report.read_text(), "## Most frequent images")
    cells = table_row(markdown, "1")
    assert cells[2].startswith(f"sha256 {REUSED_SHA[:12]}") and cells[3:5] == ["25", "0"]
    thumb = re.fullmatch(r"!\[(\w+)\]\(thumbs/(\w+)\.jpg\)", cells[1])
    assert thumb and (report.parent / "thumbs" / f"{thumb.group(2)}.jpg").exists()


def rule_examples(markdown: str, heading: str) -> str:
    return section(markdown, "## Examples per rule").split(f"### {heading}\n", 1)[1].split("###")[0]


def test_without_a_ground_truth_examples_are_the_smallest_uids_of_each_first_reason(
    tmp_path, records
):
    run_dir = write_run(tmp_path, records)
    markdown = Path(write_report(str(run_dir), print_summary=False)).read_text()
    language = rule_examples(markdown, "language")
    expected = sorted(r["uid"] for r in records if r["reasons"][:1] == ["language"])[:4]
    assert re.findall(r"thumbs/(\w+)\.jpg", language) == expected
    assert "une maison" in language and "language=fr" in language


def test_with_a_ground_truth_a_rule_shows_what_it_caught_beside_its_false_positives(
    report, records
):
    small = rule_examples(report.read_text(), "image_too_small")
    caught, mistakes = small.split("**Removed by mistake", 1)
    # 23 flagged: 20 labelled small (4 of them also too short), 3 clean (shorter side 190).
    assert "Caught: labelled small_image (20 of 23 flagged)" in caught
    labelled = [r for r in records if "noise_small_image" in r["labels"]]
    assert re.findall(r"thumbs/(\w+)\.jpg", caught) == sorted(r["uid"] for r in labelled)[:3]
    assert ": clean pairs (3 of 23 flagged)" in mistakes
    clean = [r for r in records if "image_too_small" in r["reasons"] and not r["labels"]]
    assert re.findall(r"thumbs/(\w+)\.jpg", mistakes) == sorted(r["uid"] for r in clean)
    assert "shorter\\_side=190" in mistakes or "shorter_side=190" in mistakes


def test_a_rule_that_removed_no_clean_pair_says_so(report):
    assert "Removed by mistake: no clean pair." in rule_examples(report.read_text(), "alt_too_long")


def test_download_failures_are_one_table_after_the_rules_with_an_example_each(report, records):
    markdown = report.read_text()
    assert "### download_" not in markdown
    failures = section(markdown, "## Images that could not be downloaded")
    failed = sorted(r["uid"] for r in records if r["reasons"][:1] == ["download_http_404"])
    row = table_row(failures, "download_http_404")
    assert row[1] == "3" and row[3] == "HTTP 404"
    assert row[2] == next(r["url"] for r in records if r["uid"] == failed[0])


def test_thumbnails_are_read_for_the_requested_uids_only(run_dir, records):
    wanted = {records[3]["uid"], records[200]["uid"]}
    thumbnails = read_thumbnails(str(run_dir.parent / "images" / "images-*.parquet"), wanted)
    assert set(thumbnails) == wanted
    with Image.open(io.BytesIO(thumbnails[records[3]["uid"]])) as image:
        assert image.format == "JPEG" and max(image.size) <= 128
        assert image.getpixel((5, 5)) == pytest.approx(records[3]["colour"], abs=12)


def test_histograms_hold_every_measured_record_and_the_kept_ones(run_dir, records):
    data = gather(str(run_dir))
    assert data.alt_length.total == len(records)
    assert data.shorter_side.total == data.aspect.total == len(records) - 6  # 6 not downloaded
    assert data.alt_length.kept.sum() == sum(r["kept"] for r in records)
    assert data.alt_length.counts[26] == 10  # 26 unigrams have a bin of their own
    assert data.languages == {"en": len(records) - 15 - 6, "fr": 15}


def test_histogram_puts_values_beyond_the_last_edge_in_the_last_bin():
    histogram = Histogram(np.array([0.0, 1.0, 2.0, 3.0]))
    histogram.add(
        np.array([0.5, 2.5, 7.0, 1e9, np.nan]), np.array([True, False, True, False, True])
    )
    assert histogram.counts.tolist() == [1, 0, 3]
    assert histogram.kept.tolist() == [1, 0, 1]


def test_frequent_counts_in_bounded_memory_and_says_when_approximate():
    frequent = Frequent(capacity=3)
    for batch in range(5):
        alts = ["common"] * 10 + ["often"] * 5 + [f"rare{batch}-{i}" for i in range(4)]
        table = pa.table({"uid": [f"u{batch}{i:03d}" for i in range(len(alts))], "alt": alts,
                          "kept": [False] * len(alts)})  # fmt: skip
        frequent.add(table, "alt")
    assert len(frequent.entries) <= 3
    assert [(e.key, e.count) for e in frequent.top(2)] == [("common", 50), ("often", 25)]
    assert frequent.error == 5  # each of 5 prunings dropped keys seen once


def test_the_same_run_gives_byte_identical_reports(run_dir, ground_truth, report):
    before = {path.name: path.read_bytes() for path in report.parent.glob("*.*")}
    write_report(str(run_dir), str(ground_truth), print_summary=False)
    after = {path.name: path.read_bytes() for path in report.parent.glob("*.*")}
    assert before == after


def test_plots_of_an_earlier_report_do_not_linger(tmp_path, records):
    run = write_run(tmp_path, records)
    (run / "report").mkdir()
    (run / "report" / "rule_quality.png").write_bytes(b"from a run with a ground truth")
    write_report(str(run), print_summary=False)
    assert not (run / "report" / "rule_quality.png").exists()
    assert (run / "report" / "alt_length.png").exists()


def test_text_mode_report_has_no_image_plots_and_keys_images_by_url(tmp_path, records):
    shared = "http://127.0.0.2:8000/img/shared.jpg"
    records = [dict(r, url=shared) for r in records[:3]] + records[3:]
    run = write_run(tmp_path, records, mode="text")
    report = Path(write_report(str(run), print_summary=False))
    names = {path.name for path in report.parent.iterdir()}
    assert "shorter_side.png" not in names and "thumbs" not in names
    assert "alt_length.png" in names
    images = section(report.read_text(), "## Most frequent images")
    assert table_row(images, "#") == ["#", "image key", "records", "kept", "an alt-text"]
    assert table_row(images, "1")[1:4] == [shared, "3", "3"]  # no thumbnail column at all
    assert "no image" not in (report.parent / "report.html").read_text()


def test_the_command_prints_a_summary_of_each_reason_with_precision_and_recall(
    run_dir, ground_truth, capsys
):
    assert run([str(run_dir), "--ground-truth", str(ground_truth)]).endswith("report.md")
    out = capsys.readouterr().out
    assert re.search(r"in 270 +kept 128 \(47\.4%\)", out)
    assert re.search(r"\n  alt_too_short +22 +22\n", out)
    assert re.search(r"\n  alt_too_short +1\.00 +1\.00 +0\.92 +0\.92\n", out)
    assert "Rule 'nsfw' not applied" in out


def test_alt_texts_cannot_break_the_tables_or_inject_html(tmp_path, records):
    hostile = "a | b <script>alert(1)</script> ![x](http://evil/x.png)"
    changed = [dict(records[0], alt=hostile)] + records[1:]
    report = Path(write_report(str(write_run(tmp_path, changed)), print_summary=False))
    assert "<script>" not in report.read_text()
    assert "<script>" not in (report.parent / "report.html").read_text()
    assert "![x](http://evil" not in report.read_text()


def test_the_command_reports_a_missing_run_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run([str(tmp_path / "absent")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m pipeline.report.writer: error:") and "\n" not in err


@pytest.fixture(scope="module")
def real_run(synthetic_web, tmp_path_factory) -> Path:
    """The demo's chain on the synthetic web: crawl, filter --rules text, download, then
    filter --rules all --stats with the web's ground truth."""
    from filters.config import small_config_path
    from pipeline.crawl import cli as crawl
    from pipeline.download import cli as download
    from pipeline.filter import cli as align_filter

    root, config = tmp_path_factory.mktemp("report_real_run"), str(small_config_path())
    crawl.run(["--input", synthetic_web.warc_glob, "--output", str(root / "pairs")])
    align_filter.run(["--input", str(root / "pairs"), "--output", str(root / "text_filter"),
                      "--rules", "text", "--config", config])  # fmt: skip
    download.run(["--input", str(root / "text_filter"), "--output", str(root / "images"),
                  "--allow-private-networks", "--read-timeout", "3", "--backoff", "0.1",
                  "--per-host-rate", "0"])  # fmt: skip
    evals = synthetic_web.eval_zero_shot.parent
    align_filter.run(["--input", str(root / "images"), "--output", str(root / "out"),
                      "--rules", "all", "--config", config, "--stats",
                      "--ground-truth", str(synthetic_web.ground_truth),
                      "--eval-images", f"zero_shot={evals}/zero_shot/*/*.jpg"])  # fmt: skip
    return root


def test_a_real_curation_on_the_synthetic_web_gets_one_report(real_run):
    runs = [
        json.loads((real_run / name / "stats.json").read_text()) for name in ("text_filter", "out")
    ]
    markdown = (real_run / "out" / "report" / "report.md").read_text()
    assert fact(markdown, "records in") == f"{runs[0]['in']:,} (read by text_filter/)"
    assert fact(markdown, "kept").startswith(f"{runs[1]['kept']:,} (")
    removed = section(markdown, "## Records removed per rule")
    rejected = Counter(runs[0]["rejected"]) + Counter(runs[1]["rejected"])
    for reason, count in rejected.items():
        assert table_row(removed, reason)[1] == f"{count:,}", reason
    assert table_row(removed, "alt_too_short")[-1] == "text_filter"
    quality = section(markdown, "## Rules against the ground truth")
    assert f"{runs[0]['in']:,} records matched, 0 not in the ground truth" in quality
    for reason in ("alt_too_short", "alt_shared_by_many_images", "image_too_small"):
        assert float(table_row(quality, reason)[8]) >= 0.9  # recall of rules the web exercises
    page = (real_run / "out" / "report" / "report.html").read_text()
    assert 'src="data:image/jpeg;base64,' in page


def test_a_ground_truth_without_url_and_alt_is_a_one_line_usage_error(run_dir, tmp_path):
    bad = tmp_path / "truth.parquet"
    pq.write_table(pa.table({"link": ["x"], "noise_too_short": [True]}), bad)
    with pytest.raises(UsageError, match="lacks column"):
        write_report(str(run_dir), str(bad), print_summary=False)
