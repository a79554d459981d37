"""The align-filter --stats report: what it counts, draws and shows, from a run folder."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from filters.cli import UsageError
from pipeline.filter.apply import MEASUREMENT_SCHEMA, REJECT_OUTPUT_SCHEMA
from pipeline.records import make_uid
from tools.report import run, write_report
from tools.report_data import Frequent, Histogram, QualityCounter, gather, read_thumbnails

# The filter's rule names, in its order (filters.rules.rules_for("all", ...) without nsfw).
RULES = ["download", "alt_length", "image_size", "aspect", "images_per_alt", "alts_per_image"]
RULES += ["rare_tokens", "eval_dedup", "language"]
WORDS = "red blue green house river mountain dog cat child garden city street tree bird".split()
BOILERPLATE = "click here to enlarge"
REUSED_SHA = "f" * 64


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_records(seed: int = 7) -> list[dict]:
    """A run's records: every rule fires, some records fail two rules, labels are imperfect."""
    rng = np.random.default_rng(seed)
    records = []

    def add(
        alt, reasons=(), measured=(), labels=(), width=400, height=300, language="en", sha=None
    ):
        index = len(records)
        url = f"http://127.0.0.2:8000/img/{index:04d}.jpg"
        records.append(
            {
                "uid": make_uid(url, alt),
                "url": url,
                "alt": alt,
                "page_url": f"http://127.0.0.1:8000/page/{index // 3}.html",
                "kept": not reasons,
                "reasons": list(reasons),
                "measured": list(measured),
                "n_unigrams": len(alt.split()),
                "language": language,
                "original_width": width,
                "original_height": height,
                "sha256": sha or hashlib.sha256(url.encode()).hexdigest(),
                "labels": set(labels),
                "colour": tuple(int(c) for c in rng.integers(0, 255, 3)),
            }
        )

    def sentence(n):
        return " ".join(rng.choice(WORDS, n))

    for _ in range(120):
        add(sentence(int(rng.integers(3, 15))), width=int(rng.integers(220, 1200)))
    for _ in range(30):
        add(
            BOILERPLATE,
            ["alt_shared_by_many_images"],
            ["images_per_alt>=30"],
            ["noise_boilerplate_alt"],
        )
    for _ in range(18):
        add(sentence(2), ["alt_too_short"], ["n_unigrams=2"], ["noise_too_short"])
    for _ in range(4):  # too short and too small: first failing rule is the text one
        add(sentence(1), ["alt_too_short", "image_too_small"], ["n_unigrams=1", "shorter_side=50"],
            ["noise_too_short", "noise_small_image"], width=80, height=50)  # fmt: skip
    for _ in range(2):  # labelled too short but the rule missed them (recall < 1)
        add(sentence(3), labels=["noise_too_short"])
    for _ in range(10):
        add(sentence(26), ["alt_too_long"], ["n_unigrams=26"], ["noise_too_long"])
    for _ in range(15):
        add("une maison près de la rivière", ["language"], ["language=fr"], ["noise_non_english"],
            language="fr")  # fmt: skip
    for _ in range(16):
        add(sentence(5), ["image_too_small"], ["shorter_side=120"], ["noise_small_image"],
            width=150, height=120)  # fmt: skip
    for _ in range(3):  # small but not labelled so (precision < 1)
        add(sentence(5), ["image_too_small"], ["shorter_side=190"], width=260, height=190)
    for _ in range(10):
        add(sentence(6), ["extreme_aspect"], ["aspect=5.000"], ["noise_extreme_aspect"],
            width=1500, height=300)  # fmt: skip
    for _ in range(25):
        add(sentence(6), ["image_with_many_alts"], ["alts_per_image>=25"], ["noise_reused_image"],
            sha=REUSED_SHA)  # fmt: skip
    for _ in range(5):
        add(sentence(4), ["eval_near_duplicate/zero_shot"], ["hamming=2"],
            ["noise_eval_near_duplicate"])  # fmt: skip
    for _ in range(6):  # kept, but their caption does not describe the image: no rule for that
        add(sentence(5), labels=["noise_mismatched_caption"])
    return records


def stats_of(records: list[dict], input_dir: str, mode: str = "all", nsfw: bool = False) -> dict:
    first, any_counts = {}, {}
    for record in records:
        if record["reasons"]:
            first[record["reasons"][0]] = first.get(record["reasons"][0], 0) + 1
        for reason in record["reasons"]:
            any_counts[f"any/{reason}"] = any_counts.get(f"any/{reason}", 0) + 1
    kept = sum(record["kept"] for record in records)
    return {
        "in": len(records),
        "kept": kept,
        "rejected": first,
        "counts": any_counts,
        "balanced": len(records) == kept + sum(first.values()),
        "mode": mode,
        "rules": RULES[:-1] + (["nsfw"] if nsfw else []) + RULES[-1:],
        "config": {
            "min_unigrams": 3,
            "max_unigrams": 20,
            "min_shorter_side": 200,
            "max_aspect_ratio": 3.0,
            "languages": ["en"],
        },
        "input": input_dir,
        "nsfw_applied": nsfw,
        "eval_sets": {"zero_shot": 40},
    }


def write_run(root: Path, records: list[dict], mode: str = "all", nsfw: bool = False) -> Path:
    """A finished align-filter run folder exactly as the filter job's contract describes it."""
    run, images = root / "run", root / "images"
    (run / "measurements").mkdir(parents=True)
    (run / "rejects").mkdir()
    rows = [{name: r.get(name) for name in MEASUREMENT_SCHEMA.names} for r in records]
    if mode == "text":
        for row in rows:
            row.update(original_width=None, original_height=None, sha256=None)
    for index, part in enumerate((rows[::2], rows[1::2])):
        table = pa.Table.from_pylist(part, schema=MEASUREMENT_SCHEMA)
        pq.write_table(table, run / "measurements" / f"measurements-{index:05d}-of-00002.parquet")
    rejects = [{name: r.get(name) for name in REJECT_OUTPUT_SCHEMA.names} for r in records]
    rejects = pa.Table.from_pylist(
        [r for r in rejects if r["reasons"]], schema=REJECT_OUTPUT_SCHEMA
    )
    pq.write_table(rejects, run / "rejects" / "rejects-00000-of-00001.parquet")
    if mode != "text":
        images.mkdir()
        table = pa.table(
            {
                "uid": [r["uid"] for r in records],
                "status": ["ok"] * len(records),
                "image": [jpeg(r["colour"]) for r in records],
            }
        )
        half = table.num_rows // 2
        for index, part in enumerate((table.slice(0, half), table.slice(half))):
            path = images / f"images-{index:05d}-of-00002.parquet"
            pq.write_table(part, path, row_group_size=40)
    stats = stats_of(records, str(images) if mode != "text" else str(root / "pairs"), mode, nsfw)
    (run / "stats.json").write_text(json.dumps(stats, indent=2))
    return run


def write_ground_truth(path: Path, records: list[dict]) -> Path:
    labels = sorted(
        {label for r in records for label in r["labels"]}
        | {"noise_boilerplate_alt", "noise_broken_link"}
    )
    rows = [
        {"url": r["url"], "alt": r["alt"], "page_url": r["page_url"],
         **{label: label in r["labels"] for label in labels}}
        for r in records
    ]  # fmt: skip
    # The first pair again on another page, where it is clean: labels belong to occurrences.
    rows += [
        dict(rows[0], page_url="http://127.0.0.1:8000/other.html", **dict.fromkeys(labels, False))
    ]
    rows += [{"url": "http://127.0.0.3:8000/never-crawled.jpg", "alt": "x", "page_url": "p",
              **dict.fromkeys(labels, True)}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


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


def table_row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def section(markdown: str, heading: str) -> str:
    return markdown.split(heading, 1)[1].split("\n## ", 1)[0]


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
    assert table_row(markdown, "alt_too_short")[1:] == ["22", "8.3%", "22", "8.3%"]
    assert table_row(markdown, "image_too_small")[1:] == ["19", "7.2%", "23", "8.7%"]
    assert table_row(markdown, "eval_near_duplicate/zero_shot")[1] == "5"


def test_summary_gives_the_kept_fraction(report, records):
    kept = sum(record["kept"] for record in records)
    cells = table_row(report.read_text(), "kept")
    assert cells[1] == f"{kept} ({kept / len(records):.1%})"


def test_rules_are_listed_in_the_order_they_were_applied(report):
    markdown = section(report.read_text(), "## Records removed per rule")
    listed = re.findall(r"^\| ([a-z_/]+) \|", markdown, flags=re.M)
    assert listed[1:5] == ["alt_too_long", "alt_too_short", "image_too_small", "extreme_aspect"]
    assert listed[-2:] == ["eval_near_duplicate/zero_shot", "language"]


def test_precision_and_recall_of_each_rule_against_the_noise_it_targets(report):
    markdown = section(report.read_text(), "## Rules against the ground truth")
    # alt_too_short flags 22, all labelled; 24 are labelled (2 missed): recall 22/24.
    assert table_row(markdown, "alt_too_short")[1:] == [
        "noise_too_short", "264", "22", "24", "22", "1.00", "1.00", "0.92", "0.92",
    ]  # fmt: skip
    # image_too_small flags 4 + 16 + 3 = 23, of which 20 labelled: precision 20/23.
    assert table_row(markdown, "image_too_small")[6:] == ["0.87", "0.87", "1.00", "1.00"]
    assert table_row(markdown, "eval_near_duplicate")[6:] == ["1.00", "1.00", "1.00", "1.00"]
    assert "Joined on (url, alt, page_url): 264 records matched, 0 not in" in markdown


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
    assert table_row(markdown, "noise_broken_link")[1:] == ["0", "0"]


def test_report_says_when_the_nsfw_rule_was_not_applied(report, tmp_path, records):
    assert "NSFW rule not applied" in report.read_text()
    assert "NSFW rule not applied" in (report.parent / "report.html").read_text()
    applied = write_report(str(write_run(tmp_path, records, nsfw=True)), print_summary=False)
    assert "NSFW rule not applied" not in Path(applied).read_text()


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


def test_rejected_examples_are_the_smallest_uids_of_each_first_reason(report, records):
    markdown = section(report.read_text(), "## Rejected examples per rule")
    language = markdown.split("### language", 1)[1].split("###", 1)[0]
    expected = sorted(r["uid"] for r in records if r["reasons"][:1] == ["language"])[:4]
    assert re.findall(r"thumbs/(\w+)\.jpg", language) == expected
    assert "une maison" in language and "language=fr" in language


def test_thumbnails_are_read_for_the_requested_uids_only(run_dir, records):
    wanted = {records[3]["uid"], records[200]["uid"]}
    thumbnails = read_thumbnails(str(run_dir.parent / "images" / "images-*.parquet"), wanted)
    assert set(thumbnails) == wanted
    with Image.open(io.BytesIO(thumbnails[records[3]["uid"]])) as image:
        assert image.format == "JPEG" and max(image.size) <= 128
        assert image.getpixel((5, 5)) == pytest.approx(records[3]["colour"], abs=12)


def test_histograms_hold_every_measured_record_and_the_kept_ones(run_dir, records):
    data = gather(str(run_dir))
    assert data.alt_length.total == data.shorter_side.total == data.aspect.total == len(records)
    assert data.alt_length.kept.sum() == sum(r["kept"] for r in records)
    assert data.alt_length.counts[26] == 10  # 26 unigrams have a bin of their own
    assert data.languages == {"en": len(records) - 15, "fr": 15}


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
    cells = table_row(section(report.read_text(), "## Most frequent images"), "1")
    assert cells[1:5] == ["", shared, "3", "3"]  # no thumbnail: nothing is downloaded


def test_the_command_prints_a_summary_of_each_reason_with_precision_and_recall(
    run_dir, ground_truth, capsys
):
    assert run([str(run_dir), "--ground-truth", str(ground_truth)]).endswith("report.md")
    out = capsys.readouterr().out
    assert re.search(r"in 264 +kept 128 \(48\.5%\)", out)
    assert re.search(r"\n  alt_too_short +22 +22\n", out)
    assert re.search(r"\n  alt_too_short +1\.00 +1\.00 +0\.92 +0\.92\n", out)
    assert "NSFW rule not applied" in out


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
    assert err.startswith("python -m tools.report: error:") and "\n" not in err


@pytest.fixture(scope="module")
def real_run(synthetic_web, tmp_path_factory) -> Path:
    """The whole chain on the synthetic web: crawl, download, filter --stats with its truth."""
    from filters.config import small_config_path
    from pipeline.crawl import job as crawl
    from pipeline.download import job as download
    from pipeline.filter import job as align_filter

    root = tmp_path_factory.mktemp("report_real_run")
    crawl.run(["--input", synthetic_web.warc_glob, "--output", str(root / "pairs")])
    download.run(["--input", str(root / "pairs"), "--output", str(root / "images"),
                  "--allow-private-networks", "--read-timeout", "3", "--backoff", "0.1",
                  "--per-host-rate", "0"])  # fmt: skip
    evals = synthetic_web.eval_zero_shot.parent
    align_filter.run(["--input", str(root / "images"), "--output", str(root / "out"),
                      "--rules", "all", "--config", str(small_config_path()), "--stats",
                      "--ground-truth", str(synthetic_web.ground_truth),
                      "--eval-images", f"zero_shot={evals}/zero_shot/*/*.jpg"])  # fmt: skip
    return root / "out"


def test_a_real_filter_run_on_the_synthetic_web_gets_its_report(real_run):
    stats = json.loads((real_run / "stats.json").read_text())
    markdown = (real_run / "report" / "report.md").read_text()
    assert table_row(markdown, "records in")[1] == f"{stats['in']:,}"
    for reason, count in stats["rejected"].items():
        assert (
            table_row(section(markdown, "## Records removed per rule"), reason)[1] == f"{count:,}"
        )
    quality = section(markdown, "## Rules against the ground truth")
    assert f"{stats['in']:,} records matched, 0 not in the ground truth" in quality
    for reason in ("alt_too_short", "alt_shared_by_many_images", "image_too_small"):
        assert float(table_row(quality, reason)[8]) >= 0.9  # recall of rules the web exercises
    assert 'src="data:image/jpeg;base64,' in (real_run / "report" / "report.html").read_text()


def test_a_ground_truth_without_url_and_alt_is_a_one_line_usage_error(run_dir, tmp_path):
    bad = tmp_path / "truth.parquet"
    pq.write_table(pa.table({"link": ["x"], "noise_too_short": [True]}), bad)
    with pytest.raises(UsageError, match="lacks column"):
        write_report(str(run_dir), str(bad), print_summary=False)
