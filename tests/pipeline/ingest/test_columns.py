"""Choosing a list's url, caption and extra columns, or refusing in one line naming the flag."""

import pytest

from commandline.flags import UsageError
from pipeline.ingest.columns import choose_layout, is_header

WHERE = "--input list.tsv"


def test_usual_names_are_found_whatever_their_case():
    layout = choose_layout(WHERE, ["SAMPLE_ID", "URL", "TEXT", "similarity"], None, None)
    assert (layout.url, layout.caption) == ("URL", "TEXT")
    assert layout.extras == (("SAMPLE_ID", "SAMPLE_ID"), ("similarity", "similarity"))


def test_a_headerless_pair_of_columns_needs_no_flag():
    layout = choose_layout(WHERE, ["0", "1"], None, None, first_row=["a dog", "http://a/x.jpg"])
    assert (layout.url, layout.caption, layout.extras) == ("1", "0", ())


def test_columns_are_named_by_name_or_position():
    names = ["link", "words", "score"]
    assert choose_layout(WHERE, names, "link", "words").caption == "words"
    assert choose_layout(WHERE, names, "0", "1").extras == (("score", "score"),)


def test_a_missing_caption_column_names_the_flag_and_the_columns():
    with pytest.raises(
        UsageError, match=r"no caption column \(columns: url, label\): use --caption-col"
    ):
        choose_layout(WHERE, ["url", "label"], None, None)


def test_a_column_that_is_not_there_is_refused_with_the_flag():
    with pytest.raises(UsageError, match="no column 'caption' for --caption-col"):
        choose_layout(WHERE, ["url", "text"], None, "caption")


def test_two_candidate_columns_ask_to_choose():
    with pytest.raises(UsageError, match="several caption columns .*--caption-col"):
        choose_layout(WHERE, ["url", "caption", "text"], None, None)


def test_extras_that_would_shadow_a_jobs_column_are_renamed():
    layout = choose_layout(
        WHERE, ["url", "caption", "WIDTH", "status", "_x", "input_WIDTH"], None, None
    )
    assert [output for _, output in layout.extras] == [
        "input_WIDTH", "input_status", "input__x", "input_input_WIDTH"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "extras, kept", [("all", ["a", "b"]), ("none", []), ("b", ["b"]), ("b,a,b", ["b", "a"])]
)
def test_extra_cols_keeps_what_it_names(extras, kept):
    layout = choose_layout(WHERE, ["url", "caption", "a", "b"], None, None, extras)
    assert [name for name, _ in layout.extras] == kept


def test_a_first_row_with_a_url_is_data_not_a_header():
    assert is_header(["url", "caption"]) and not is_header(["a cat", " HTTPS://x/y.jpg"])
