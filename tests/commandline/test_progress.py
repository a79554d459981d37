"""The progress line every command draws: live on a terminal, occasional plain lines in a log."""

from __future__ import annotations

import io

from commandline.progress import ProgressLine, top_reasons


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_line_comes_only_when_its_interval_has_passed():
    log = io.StringIO()
    quiet = ProgressLine("align-x", 100, every=3600, stream=log)
    quiet.update(50, "kept 50.0%")
    assert log.getvalue() == ""
    chatty = ProgressLine("align-x", 100, every=0, stream=log)
    chatty.update(50, "kept 50.0%")
    chatty.update(60, "kept 55.0%")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue()
    assert lines[1].startswith("align-x:  60% 60/100 [") and lines[1].endswith(", kept 55.0%]")


def test_without_a_total_a_log_line_has_no_percentage_or_eta():
    log = io.StringIO()
    line = ProgressLine("align-x", None, every=0, stream=log)
    line.update(7)
    assert log.getvalue().startswith("align-x: 7 [") and "%" not in log.getvalue()


def test_on_a_terminal_the_line_is_redrawn_in_place():
    terminal = Terminal()
    line = ProgressLine("align-x", 100, stream=terminal)
    line.update(100, "kept 90.0%")
    line.close()
    drawn = terminal.getvalue()
    assert "\r" in drawn and "100/100" in drawn and "kept 90.0%" in drawn


def test_the_line_never_goes_back():
    log = io.StringIO()
    line = ProgressLine("align-x", 100, every=0, stream=log)
    line.update(40)
    line.update(30)  # a late, smaller report
    assert log.getvalue().splitlines()[-1].startswith("align-x:  40% 40/100")


def test_top_reasons_are_the_largest_first_and_count_the_rest():
    assert (
        top_reasons({"a": 1, "b": 5, "c": 3, "d": 2}, 20, limit=2) == "b 25.0%, c 15.0% (+2 more)"
    )
