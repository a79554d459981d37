"""The install's parts: the core is what the curation jobs (and a Dataflow worker) need, every
other part is an extra, pinned like the rest, and a command used without its extra says which
one to install: one line, exit 2, no traceback.

Missing extras are played by an import blocker in a fresh interpreter (tests/blocked_imports.py),
so the suite needs no second environment; bench/install.py checks the same in real ones.
"""

from __future__ import annotations

import pickle
import re
import tomllib
from pathlib import Path

import pytest

from commandline.extras import EXTRAS, MissingExtra
from pipeline.records import DOWNLOAD_SCHEMA, make_uid
from pipeline.shards import rows_to_table, write_parquet
from tests.blocked_imports import TRAIN, run_command_without, run_without

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OPTIONAL = PROJECT["optional-dependencies"]
TRAINING_DISTRIBUTIONS = {"tensorflow", "tensorflow-text", "keras", "keras-hub", "tensorboard"}


def name_of(requirement: str) -> str:
    """The normalised distribution name of a requirement (``Keras_Hub>=1`` -> ``keras-hub``)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name_of(name)] = version
    return pins


def one_line_error(outcome, prog: str, extra: str) -> bool:
    lines = outcome.stderr.strip().splitlines()
    return (
        outcome.returncode == 2
        and len(lines) == 1
        and lines[0].startswith(f"{prog}: error: ")
        and f"pip install 'align-recipe[{extra}]'" in lines[0]
    )


# --- the parts and their pins ------------------------------------------------------------------


def test_the_core_install_has_nothing_of_the_training_stack_the_plots_or_the_photographs():
    core = {name_of(requirement) for requirement in PROJECT["dependencies"]}
    assert not core & (TRAINING_DISTRIBUTIONS | {"matplotlib", "scikit-image", "torch"})
    assert {"apache-beam", "pyarrow", "pillow", "opencv-python-headless"} <= core


def test_the_training_stack_is_the_train_extra_and_its_gpu_variant_adds_cuda():
    assert {name_of(r) for r in OPTIONAL["train"]} == TRAINING_DISTRIBUTIONS
    assert "tensorflow[and-cuda]" in " ".join(OPTIONAL["train-gpu"])
    assert "align-recipe[train]" in OPTIONAL["train-gpu"]


def test_every_extra_the_code_checks_for_is_declared():
    assert set(EXTRAS) <= set(OPTIONAL)


def test_every_requirement_of_every_part_is_pinned_in_constraints():
    requirements = PROJECT["dependencies"] + [r for part in OPTIONAL.values() for r in part]
    names = {name_of(r) for r in requirements} - {"align-recipe"}
    assert sorted(names - set(pinned())) == []


def test_a_missing_extra_survives_the_trip_from_a_worker_process():
    error = pickle.loads(pickle.dumps(MissingExtra("train", "tensorflow", "the NSFW hook")))
    assert isinstance(error, ImportError) and error.name == "tensorflow"
    assert "pip install 'align-recipe[train]'" in str(error)


# --- commands without their extra --------------------------------------------------------------


@pytest.mark.parametrize("command", ["align-train", "align-vocab", "align-eval", "align-embed"])
def test_a_training_command_without_the_train_extra_names_it_in_one_line(command, tmp_path):
    outcome = run_command_without(TRAIN, command, [], tmp_path)
    assert one_line_error(outcome, command, "train"), outcome.stderr
    assert "tensorflow" in outcome.attempted


def test_importing_the_trainer_without_its_extra_is_an_import_error_naming_it(tmp_path):
    code = (
        "try:\n    import training.train\n"
        "except ImportError as error:\n    print(type(error).__name__, error)\n"
    )
    outcome = run_without(TRAIN, code, tmp_path)
    assert outcome.returncode == 0
    assert outcome.stdout.startswith("MissingExtra the trainer needs the 'train' extra")


def image_shard(folder: Path) -> None:
    url, alt = "http://images.example/0.jpg", "a photo of a thing"
    row = {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": "p", "source": "s"}
    row |= {"status": "ok", "image": b"\xff\xd8", "width": 9, "height": 9, "mime": "image/jpeg"}
    row |= {"original_width": 9, "original_height": 9, "sha256": "0" * 64, "phash": "0" * 16}
    write_parquet(rows_to_table([row], DOWNLOAD_SCHEMA), str(folder / "images-00000.parquet"))


def test_the_nsfw_hook_without_the_train_extra_names_it_before_any_worker_starts(tmp_path):
    image_shard(tmp_path)
    model = tmp_path / "nsfw.keras"
    model.write_bytes(b"a model")
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--rules", "all"]
    outcome = run_command_without(
        TRAIN, "align-filter", argv + ["--nsfw-model", str(model)], tmp_path
    )
    assert one_line_error(outcome, "align-filter", "train"), outcome.stderr
    assert "NSFW" in outcome.stderr


def test_a_worker_loading_the_nsfw_model_without_tensorflow_names_the_extra(tmp_path):
    code = (
        "from pipeline.filter.nsfw_scores import load_classifier\n"
        "try:\n    load_classifier('nsfw.keras')\n"
        "except ImportError as error:\n    print(error)\n"
    )
    outcome = run_without(TRAIN, code, tmp_path)
    assert "NSFW hook" in outcome.stdout
    assert "pip install 'align-recipe[train]'" in outcome.stdout


def test_the_synthetic_web_without_its_photographs_names_the_extra(tmp_path):
    argv = ["--output", str(tmp_path / "web"), "--pairs", "60"]
    outcome = run_command_without(["skimage"], "align-synthweb", argv, tmp_path)
    assert one_line_error(outcome, "align-synthweb", "synthweb"), outcome.stderr
    assert not (tmp_path / "web").exists()


def test_the_demo_without_the_training_stack_names_the_extra_before_touching_its_run(tmp_path):
    small = ["--pairs", "60", "--steps", "1", "--skip-unfiltered"]  # quick, should it run
    argv = ["--run-dir", str(tmp_path / "run")] + small
    outcome = run_command_without(TRAIN, "align-demo", argv, tmp_path)
    assert one_line_error(outcome, "align-demo", "demo"), outcome.stderr
    assert not (tmp_path / "run").exists()
