"""stats.json: every record in is kept, rejected or deferred, and the document says so."""

from pipeline.monitor import summary
from pipeline.stats import deferred, rejected, stats_document


def test_deferred_records_balance_beside_kept_and_rejected():
    tally = {"in": 10, "kept": 5, rejected("http_404"): 2, deferred("host_url_budget"): 3}
    document = stats_document(tally)
    assert document["deferred"] == {"host_url_budget": 3} and document["balanced"]
    assert not stats_document({**tally, "in": 11})["balanced"]


def test_a_job_that_defers_nothing_has_no_deferred_section():
    assert "deferred" not in stats_document({"in": 1, "kept": 1})


def test_the_summary_names_deferred_records_and_why():
    document = stats_document({"in": 4, "kept": 1, deferred("host_time_budget"): 3})
    text = summary("align-download", document, 2.0, ["out"], unit="pairs")
    assert "1 kept (25.0%), 0 rejected, 3 deferred" in text
    assert "  deferred: host_time_budget 3 (75.0%)" in text
