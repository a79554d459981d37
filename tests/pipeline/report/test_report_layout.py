"""The HTML report in a real browser: nothing wider than the page at 1000 and 1400 px.

Headless Chromium lays the page out and a script measures it (tests/tools/browser.py). The
records are hostile on purpose: an alt-text of one 300-character word, a URL with a long
path, long measured values, so a table that cannot wrap them would show here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.report.writer import write_report
from tests.pipeline.report.report_fixtures import make_records, write_chain, write_ground_truth
from tests.tools.browser import find_browser, measure_layout

WIDTHS = (1000, 1400)
# .ci/run installs Chromium and sets this, so CI cannot pass by skipping these tests.
REQUIRED = os.environ.get("ALIGN_REQUIRE_BROWSER") == "1"


def browser_or_skip() -> str:
    browser = find_browser()
    if browser is None:
        message = "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
        if REQUIRED:
            pytest.fail(f"ALIGN_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)
    return browser


def hostile_records() -> list[dict]:
    records = make_records()
    long_path = "http://127.0.0.2:8000/" + "segment-of-a-long-path/" * 8 + "x" * 90 + ".jpg"
    records[0] = dict(records[0], alt="y" * 300)  # kept: in the most frequent alt-texts? once
    records[120] = dict(records[120], url=long_path)  # a boilerplate one: an example
    for index in (121, 122):  # a frequent alt-text of one long word, rejected as boilerplate
        records[index] = dict(records[index], alt="z" * 200)
    records[170] = dict(records[170], alt=" ".join(["word"] * 60))  # a too-long one
    return records


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    records = hostile_records()
    truth = write_ground_truth(root / "truth.parquet", records)
    report = write_report(str(write_chain(root, records)), str(truth), print_summary=False)
    return Path(report).with_name("report.html")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_fits_the_window_with_nothing_past_its_column(page, width):
    layout = measure_layout(browser_or_skip(), page, width)
    assert layout["viewportWidth"] == width
    assert layout["scrollWidth"] <= width, layout
    assert layout["overflowing"] == [], layout
