"""align-filter --rules text on hand-made pairs: exact boundaries, nothing lost, reruns equal."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from filters.config import load_config, small_config_path
from filters.rule import TEXT
from filters.table import rules_for
from pipeline.filter import cli as filter_cli
from pipeline.filter import job as filter_job
from pipeline.filter.cli import run
from pipeline.options import MIN_SHARDS
from pipeline.shards import read_table
from pipeline.stats import read_stats
from tests.pipeline.filter.inputs import names, pair, write_pairs

CONFIG = "rare_token_min_count: 2\nlanguages: all\n"
TWENTY = " ".join(["one two three four five"] * 4)
HOSTILE = {
    "controls": "red\x00dog \x07on\x1b[31m a \x7fmat",
    "rtl": "\u202eقطة على الأريكة الحمراء\u202c",
    "huge": "word " * 20_000,
    "empty": "",
    "whitespace": " \t\n ",
    "replacement_chars": "broken \ufffd\ufffd text \U0001f600 here",
}


def _rows() -> list[dict]:
    rows = []
    for i in range(10):
        rows.append(pair(f"http://127.0.0.2/ten/{i}.jpg", "ten images share this caption"))
    for i in range(11):
        rows.append(pair(f"http://127.0.0.2/eleven/{i}.jpg", "eleven images share this caption"))
    for page in range(15):  # one image on fifteen pages: still one image
        rows.append(pair("http://127.0.0.2/one.jpg", "one image on many pages", f"p{page}"))
    for i in range(2):
        rows.append(pair(f"http://127.0.0.3/two/{i}.jpg", "two words"))
        rows.append(pair(f"http://127.0.0.3/three/{i}.jpg", "three words here"))
        rows.append(pair(f"http://127.0.0.3/twenty/{i}.jpg", TWENTY))
        rows.append(pair(f"http://127.0.0.3/twentyone/{i}.jpg", TWENTY + " six"))
    rows.append(pair("http://127.0.0.3/rare.jpg", "zyzzyva images share this caption"))
    rows.append(pair("http://127.0.0.3/short-rare.jpg", "quokka"))
    for name, alt in HOSTILE.items():
        rows.append(pair(f"http://127.0.0.4/{name}.jpg", alt))
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("filter_text")
    source = write_pairs(root / "in", _rows())
    config = root / "config.yaml"
    config.write_text(CONFIG)
    outputs = []
    for name, extra in [
        ("out", []),
        # Rerun on two worker processes with other batches: the same bytes must come out.
        ("rerun", ["--batch-rows", "5", "--key-buckets", "3", "--workers", "2"]),
    ]:  # fmt: skip
        run(["--input", str(source), "--output", str(root / name), "--rules", "text",
             "--config", str(config), "--shards", "2", "--batch-rows", "7", *extra])  # fmt: skip
        outputs.append(root / name)
    return source, outputs[0], outputs[1]


@pytest.fixture(scope="module")
def verdicts(runs) -> dict[str, list[list[str]]]:
    table = read_table(str(runs[1] / "measurements" / "*.parquet")).to_pylist()
    by_url: dict[str, list[list[str]]] = {}
    for row in table:
        by_url.setdefault(row["url"], []).append(row["reasons"])
    return by_url


def test_alt_shared_by_ten_images_kept_eleven_dropped(verdicts):
    assert verdicts["http://127.0.0.2/ten/0.jpg"] == [[]]
    assert verdicts["http://127.0.0.2/eleven/0.jpg"] == [["alt_shared_by_many_images"]]


def test_one_image_url_on_many_pages_counts_once(verdicts):
    assert verdicts["http://127.0.0.2/one.jpg"] == [[]] * 15


@pytest.mark.parametrize(
    ("name", "expected"),
    [("two", ["alt_too_short"]), ("three", []), ("twenty", []), ("twentyone", ["alt_too_long"])],
)
def test_unigram_window_boundaries(verdicts, name, expected):
    assert verdicts[f"http://127.0.0.3/{name}/0.jpg"] == [expected]


def test_rare_token_rejects_and_every_failing_rule_is_listed_first_first(verdicts):
    assert verdicts["http://127.0.0.3/rare.jpg"] == [["rare_token"]]
    assert verdicts["http://127.0.0.3/short-rare.jpg"] == [["alt_too_short", "rare_token"]]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_alt_texts_end_kept_or_with_a_named_reason(verdicts, name):
    (reasons,) = verdicts[f"http://127.0.0.4/{name}.jpg"]
    assert all(isinstance(reason, str) and reason for reason in reasons)


def test_huge_and_empty_alts_get_the_length_reasons(verdicts):
    assert verdicts["http://127.0.0.4/huge.jpg"][0][0] == "alt_too_long"
    assert verdicts["http://127.0.0.4/empty.jpg"][0][0] == "alt_too_short"


def test_stats_balance_and_match_the_written_files(runs):
    source, out, _ = runs
    stats = read_stats(str(out))
    assert stats["balanced"] and stats["in"] == len(_rows())
    kept = read_table(str(out / "pairs-*.parquet"))
    rejects = read_table(str(out / "rejects" / "rejects-*.parquet"))
    assert kept.num_rows == stats["kept"]
    assert rejects.num_rows == sum(stats["rejected"].values())
    assert stats["counts"]["any/rare_token"] == 2 + stats["rejected"]["rare_token"] - 1
    assert stats["mode"] == "text" and stats["rules"] == names(rules_for(TEXT))
    assert stats["nsfw_applied"] is False


def test_kept_pairs_keep_the_pair_schema_for_align_download(runs):
    kept = read_table(str(runs[1] / "pairs-*.parquet"))
    assert kept.column_names == ["uid", "url", "alt", "page_url", "source"]
    assert sorted(Path(runs[1]).glob("pairs-*")) == [
        runs[1] / "pairs-00000-of-00002.parquet",
        runs[1] / "pairs-00001-of-00002.parquet",
    ]


def test_no_scratch_folder_is_left_in_the_output(runs):
    for out in runs[1:]:
        assert not [p for p in Path(out).rglob("_*")], "batches or shard pieces left behind"


def test_rerun_with_other_workers_and_batches_gives_byte_identical_outputs(runs):
    _, out, rerun = runs
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(rerun) for p in rerun.rglob("*") if p.is_file())
    for name in files:
        if name.name != "stats.json":
            assert filecmp.cmp(out / name, rerun / name, shallow=False), name
    stats, again = read_stats(str(out)), read_stats(str(rerun))
    assert {k: v for k, v in stats.items() if k != "input"} == {
        k: v for k, v in again.items() if k != "input"
    }


def test_language_rule_runs_on_survivors_and_names_the_language(tmp_path):
    english = "a brown dog running on the beach at sunset"
    french = "un chien brun qui court sur la plage au coucher du soleil"
    rows = [
        pair(f"http://127.0.0.2/{i}.jpg", alt) for i, alt in enumerate([english, french, "dog"])
    ]
    run(["--input", str(write_pairs(tmp_path / "in", rows)), "--output", str(tmp_path / "out"),
         "--rules", "text", "--languages", "en"])  # fmt: skip
    measured = {r["alt"]: r for r in read_table(str(tmp_path / "out/measurements/*")).to_pylist()}
    assert measured[english]["kept"] and measured[english]["language"] == "en"
    assert measured[french]["reasons"] == ["language"] and measured[french]["language"] == "fr"
    assert measured["dog"]["language"] is None  # already rejected: not measured
    assert read_stats(str(tmp_path / "out"))["rules"][-1] == "language"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output", "o", "--bogus"], "unrecognized arguments: --bogus"),
        (
            ["--input", "/nonexistent", "--output", "o"],
            "no image shards match /nonexistent (looked for /nonexistent/images-*.parquet",
        ),
        (["--input", "x", "--output", "o", "--eval-images", "nameonly"], "NAME=GLOB"),
        (["--input", "x", "--output", "o", "--shards", "0"], "--shards must be at least 1"),
    ],
)
def test_bad_command_lines_get_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_config_key_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("max_unigram: 4\n")
    source = write_pairs(tmp_path / "in", [pair("http://127.0.0.2/a.jpg", "a b c")])
    with pytest.raises(SystemExit):
        run(["--input", str(source), "--output", str(tmp_path / "o"), "--config", str(config)])
    err = capsys.readouterr().err.strip()
    assert err.startswith("align-filter: error:") and "max_unigram" in err and "\n" not in err


def test_default_shard_count_follows_the_input_bytes(tmp_path, monkeypatch):
    pattern = str(write_pairs(tmp_path / "in", _rows()) / "pairs-*.parquet")
    size = sum(path.stat().st_size for path in (tmp_path / "in").iterdir())
    monkeypatch.setitem(filter_job.SHARD_INPUT_BYTES, "text", 100)
    assert filter_job.default_shards(pattern, "text") == -(-size // 100) > 4
    monkeypatch.setitem(filter_job.SHARD_INPUT_BYTES, "text", 1 << 40)
    assert filter_job.default_shards(pattern, "text") == MIN_SHARDS


def test_a_small_input_without_shards_gets_the_minimum_of_four(tmp_path):
    source = write_pairs(tmp_path / "in", _rows()[:5])
    run(["--input", str(source), "--output", str(tmp_path / "out"), "--rules", "text"])
    assert read_stats(str(tmp_path / "out"))["shards"] == 4
    assert len(list((tmp_path / "out").glob("pairs-*-of-00004.parquet"))) == 4


def test_config_small_names_the_shipped_small_config_as_for_the_trainer():
    args = filter_cli.build_parser().parse_args(["--config", "small"])
    assert filter_job.effective_config(args) == load_config(small_config_path())


def test_a_config_key_given_as_a_flag_overrides_the_config_file():
    argv = ["--config", "small", "--max-unigrams", "7", "--languages", "en,fr"]
    config = filter_job.effective_config(filter_cli.build_parser().parse_args(argv))
    assert (config.max_unigrams, config.languages) == (7, ("en", "fr"))
    assert config.max_alts_per_image == load_config(small_config_path()).max_alts_per_image
