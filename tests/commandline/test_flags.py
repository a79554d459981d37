"""The one command-line and config dialect: typed values, keys named, one-line errors."""

from dataclasses import dataclass

import pytest

from commandline import flags
from commandline.flags import UsageError


@dataclass(frozen=True)
class Toy:
    steps: int = 10
    rate: float = 0.5
    name: str | None = None
    fast: bool = False
    codes: tuple[str, ...] = ("en",)


def test_text_from_a_flag_becomes_the_fields_type():
    config = flags.build_config(Toy, {"steps": "12", "rate": "2", "fast": "yes", "codes": "a,b"})
    assert config == Toy(steps=12, rate=2.0, fast=True, codes=("a", "b"))


@pytest.mark.parametrize("values", [{"steps": "many"}, {"steps": 1.5}, {"fast": "maybe"}])
def test_a_value_of_the_wrong_kind_names_its_key(values):
    key = next(iter(values))
    with pytest.raises(UsageError, match=f"config key '{key}' wants"):
        flags.build_config(Toy, values)


def test_an_unknown_key_is_named_with_the_file_it_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stepz: 3\n")
    with pytest.raises(UsageError, match=r"unknown config key 'stepz' in .*c\.yaml"):
        flags.load_config(Toy, path, shipped=tmp_path / "none")


def test_a_shipped_config_is_found_by_its_name(tmp_path):
    (tmp_path / "small.yaml").write_text("steps: 3\n")
    assert flags.load_config(Toy, "small", shipped=tmp_path).steps == 3


def test_flags_override_the_file_and_unset_flags_do_not(tmp_path):
    import argparse

    (tmp_path / "c.yaml").write_text("steps: 3\nrate: 0.25\n")
    parser = argparse.ArgumentParser()
    flags.add_config_flags(parser, Toy)
    args = parser.parse_args(["--steps", "7"])
    config = flags.load_config(
        Toy, tmp_path / "c.yaml", flags.overrides_from(args, Toy), shipped=tmp_path
    )
    assert (config.steps, config.rate) == (7, 0.25)


def test_a_file_elsewhere_is_read_by_the_callers_reader(tmp_path):
    files = {"gs://bucket/c.yaml": "steps: 4\n"}
    config = flags.load_config(Toy, "gs://bucket/c.yaml", shipped=tmp_path, read_text=files.get)
    assert config.steps == 4


def test_exits_cleanly_turns_a_usage_error_into_one_line_and_exit_2(capsys):
    @flags.exits_cleanly("align-toy")
    def run(argv=None):
        raise UsageError("--steps must be at least 1")

    with pytest.raises(SystemExit) as exit_info:
        run([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "align-toy: error: --steps must be at least 1\n"
