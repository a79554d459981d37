"""align-purge's command line: a bad list or folder is one line, before anything is touched."""

from __future__ import annotations

import pytest

from pipeline.purge.cli import run


@pytest.mark.parametrize(
    ("list_text", "folder", "message"),
    [
        (None, "out", "no such file"),
        ("url:http://h/a.jpg\nhost:h\n", "out", "line 2: expected one of"),
        ("url:http://h/a.jpg\n", "nowhere", "not a job's output"),
    ],
)
def test_a_bad_list_or_folder_is_a_one_line_error(tmp_path, capsys, list_text, folder, message):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stats.json").write_text("{}")
    if list_text is not None:
        (tmp_path / "list.txt").write_text(list_text)
    with pytest.raises(SystemExit) as exit_info:
        run(["--list", str(tmp_path / "list.txt"), str(tmp_path / folder)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("align-purge: error:") and message in error and "\n" not in error
