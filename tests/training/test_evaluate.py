"""align-eval: datasets, prompt ensembles, streamed evaluation and the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.training.eval_fixtures import (
    COLOURS,
    solid_jpeg,
    write_export,
    write_retrieval,
    write_zero_shot,
)
from training import evaluate
from training.cli import evaluate as align_eval


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(write_export(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def zero_shot_dir(tmp_path_factory):
    return str(write_zero_shot(tmp_path_factory.mktemp("zero_shot")))


@pytest.fixture(scope="module")
def retrieval_dir(tmp_path_factory):
    return str(write_retrieval(tmp_path_factory.mktemp("retrieval")))


class Collapsed:
    """A model that maps everything to one point: it must score nothing, not everything."""

    def embed_images(self, images):
        return np.ones((len(images), 3), np.float32)

    def embed_texts(self, texts):
        return np.ones((len(texts), 3), np.float32)


def test_zero_shot_cli_scores_the_colour_model_perfectly_and_prints_chance(
    model_dir, zero_shot_dir, tmp_path, capsys
):
    output = tmp_path / "out" / "zero_shot.json"
    assert align_eval.main(["--model-dir", model_dir, "--zero-shot", zero_shot_dir,
                         "--output", str(output)]) is None  # fmt: skip
    result = json.loads(output.read_text())
    assert result["top1"] == 1.0 and result["images"] == 6
    assert result["chance"]["top1"] == pytest.approx(1 / 3)
    table = capsys.readouterr().out
    assert "top-1" in table and "100.00%" in table and "33.33%" in table


def test_the_console_script_exits_zero_and_writes_the_json(model_dir, retrieval_dir, tmp_path):
    output = tmp_path / "retrieval.json"
    script = Path(sys.executable).with_name("align-eval")
    done = subprocess.run([str(script), "--model-dir", model_dir, "--retrieval", retrieval_dir,
                           "--output", str(output)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(output.read_text())["image_to_text"]["R@1"] == 1.0
    assert "chance" in done.stdout


def test_retrieval_cli_uses_the_test_split_and_prints_chance(model_dir, retrieval_dir, capsys):
    result = align_eval.run(["--model-dir", model_dir, "--retrieval", retrieval_dir])
    assert (result["images"], result["texts"]) == (3, 6)  # the train-split image is left out
    for direction in ("image_to_text", "text_to_image"):
        assert result[direction]["R@1"] == 1.0
        assert result[direction]["median_rank"] == 1.0
    assert result["text_to_image"]["chance"]["R@1"] == pytest.approx(1 / 3)
    assert "text->image R@1" in capsys.readouterr().out


def test_both_tasks_write_one_json_keyed_by_task(model_dir, zero_shot_dir, retrieval_dir):
    result = align_eval.run(
        ["--model-dir", model_dir, "--zero-shot", zero_shot_dir, "--retrieval", retrieval_dir]
    )
    assert set(result) == {"zero_shot", "retrieval"}


def test_a_collapsed_model_scores_zero_not_perfect(zero_shot_dir, retrieval_dir):
    zero_shot = evaluate.evaluate_zero_shot(Collapsed(), evaluate.load_zero_shot(zero_shot_dir))
    assert zero_shot["top1"] == 0.0
    retrieval = evaluate.evaluate_retrieval(Collapsed(), evaluate.load_retrieval(retrieval_dir))
    assert retrieval["text_to_image"]["R@1"] == 0.0
    assert retrieval["image_to_text"]["mean_rank"] == 5.0  # last among 4 other captions


def test_streamed_chunks_and_memmap_give_the_same_numbers(
    model_dir, retrieval_dir, zero_shot_dir, monkeypatch
):
    encoders = evaluate.Encoders.load(model_dir)
    dataset = evaluate.load_retrieval(retrieval_dir)
    whole = evaluate.evaluate_retrieval(encoders, dataset)
    monkeypatch.setattr(evaluate, "IMAGE_CHUNK", 1)
    monkeypatch.setattr(evaluate, "TEXT_CHUNK", 2)
    monkeypatch.setattr(evaluate, "MEMMAP_BYTES", 0)
    assert evaluate.evaluate_retrieval(encoders, dataset) == whole


def test_class_embeddings_are_renormalised_means_of_the_prompts():
    class Lookup:
        table = {"x cat": [1, 0, 0], "y cat": [0, 1, 0], "x dog": [0, 0, 1], "y dog": [0, 0, 1]}

        def embed_texts(self, texts):
            return np.array([self.table[t] for t in texts], np.float32)

    embedded = evaluate.class_embeddings(Lookup(), ["cat", "dog"], ["x {}", "y {}"])
    np.testing.assert_allclose(embedded, [[2**-0.5, 2**-0.5, 0], [0, 0, 1]], atol=1e-6)


def test_folder_names_become_class_names_without_classes_txt(tmp_path):
    solid_jpeg(tmp_path / "light_red" / "0.jpg", COLOURS["red"])
    solid_jpeg(tmp_path / "blue" / "0.png", COLOURS["blue"])
    (tmp_path / "blue" / "notes.txt").write_text("not an image")
    dataset = evaluate.load_zero_shot(str(tmp_path))
    assert dataset.class_names == ["blue", "light red"]
    assert dataset.labels == [0, 1]
    assert [p.rsplit("/", 2)[-2] for p in dataset.images] == ["blue", "light_red"]


def test_classes_txt_orders_classes_and_keeps_imageless_classes(tmp_path):
    write_zero_shot(tmp_path, per_class=1, classes_txt=False)
    (tmp_path / "classes.txt").write_text("purple\nblue\ngreen\nred\n")
    dataset = evaluate.load_zero_shot(str(tmp_path))
    assert dataset.class_names == ["purple", "blue", "green", "red"]
    assert sorted(dataset.labels) == [1, 2, 3]


def test_csv_of_path_and_label(tmp_path):
    solid_jpeg(tmp_path / "img" / "a.jpg", COLOURS["red"])
    solid_jpeg(tmp_path / "img" / "b.jpg", COLOURS["green"])
    (tmp_path / "set.csv").write_text("path,label\nimg/a.jpg,red\nimg/b.jpg,green\n")
    dataset = evaluate.load_zero_shot(str(tmp_path / "set.csv"))
    assert dataset.class_names == ["green", "red"]
    assert dataset.labels == [1, 0]
    assert dataset.images[0] == str(tmp_path / "img" / "a.jpg")


def test_a_folder_missing_from_classes_txt_is_a_one_line_error(model_dir, tmp_path, capsys):
    write_zero_shot(tmp_path, per_class=1)
    (tmp_path / "classes.txt").write_text("red\ngreen\n")
    with pytest.raises(SystemExit) as exit_info:
        align_eval.run(["--model-dir", model_dir, "--zero-shot", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "align-eval: error: folder 'blue'" in capsys.readouterr().err


def test_an_empty_split_names_the_splits_there_are(model_dir, retrieval_dir, capsys):
    with pytest.raises(SystemExit):
        align_eval.run(["--model-dir", model_dir, "--retrieval", retrieval_dir, "--split", "val"])
    assert "no images in split 'val'" in capsys.readouterr().err


def test_an_undecodable_eval_image_is_a_one_line_error(model_dir, tmp_path, capsys):
    write_zero_shot(tmp_path, per_class=1)
    (tmp_path / "red" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(SystemExit):
        align_eval.run(["--model-dir", model_dir, "--zero-shot", str(tmp_path)])
    assert "cannot decode image" in capsys.readouterr().err


def test_attributes_add_each_words_top1_with_chance(model_dir, zero_shot_dir, capsys):
    result = align_eval.run(
        ["--model-dir", model_dir, "--zero-shot", zero_shot_dir, "--attributes", "colour"]
    )
    assert result["attributes"] == {"colour": {"top1": 1.0, "chance": pytest.approx(1 / 3)}}
    assert "colour top-1" in capsys.readouterr().out


def test_attributes_that_do_not_fit_the_class_names_are_a_one_line_error(
    model_dir, zero_shot_dir, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        align_eval.run(
            ["--model-dir", model_dir, "--zero-shot", zero_shot_dir, "--attributes", "colour,shape"]
        )
    assert exit_info.value.code == 2
    assert "align-eval: error: --attributes: class 'red'" in capsys.readouterr().err


def test_a_task_is_required(model_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        align_eval.run(["--model-dir", model_dir])
    assert exit_info.value.code == 2
    assert "--zero-shot" in capsys.readouterr().err


def test_custom_templates_must_hold_one_placeholder(model_dir, zero_shot_dir, tmp_path, capsys):
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of a {}.\nno placeholder here\n")
    with pytest.raises(SystemExit):
        align_eval.run(
            ["--model-dir", model_dir, "--zero-shot", zero_shot_dir, "--templates", str(templates)]
        )
    assert "no placeholder here" in capsys.readouterr().err


# --- Integration: the synthetic web -> align-filter -> align-vocab -> align-train -> align-eval --


def ok_records(synthetic_web) -> list[dict]:
    """What align-download stores for every pair the server serves cleanly (bytes from site/)."""
    import hashlib
    import io
    from urllib.parse import urlsplit

    from PIL import Image

    from filters.phash import phash

    rows = []
    for row in pq.read_table(synthetic_web.ground_truth).to_pylist():
        if not (
            row["emitted_by_crawl"] and row["expected_status"] == "ok" and row["fault"] == "none"
        ):
            continue
        url = urlsplit(row["url"])
        data = (synthetic_web.site / url.hostname / url.path.lstrip("/")).read_bytes()
        image = Image.open(io.BytesIO(data))
        rows.append({
            **{k: row[k] for k in ("uid", "url", "alt", "page_url")},
            "source": "ground_truth", "status": "ok", "image": data, "mime": "image/jpeg",
            "width": image.width, "height": image.height, "original_width": image.width,
            "original_height": image.height, "sha256": hashlib.sha256(data).hexdigest(),
            "phash": phash(image),
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def trained_on_synthetic_web(synthetic_web, tmp_path_factory):
    """A few real align-train steps on the filtered shards, evaluated live every 2 steps."""
    from filters.config import small_config_path
    from pipeline.filter.cli import run as align_filter
    from pipeline.records import DOWNLOAD_SCHEMA
    from pipeline.shards import rows_to_table
    from training.cli.train import run as align_train
    from training.cli.vocab import run as align_vocab

    root = tmp_path_factory.mktemp("trained")
    (root / "download").mkdir()
    table = rows_to_table(ok_records(synthetic_web), DOWNLOAD_SCHEMA)
    pq.write_table(table, root / "download" / "images-00000-of-00001.parquet")
    evals = synthetic_web.root / "eval"
    align_filter(["--input", str(root / "download"), "--output", str(root / "filter"),
                  "--rules", "all", "--config", str(small_config_path()), "--shards", "2",
                  "--eval-images", f"zero_shot={evals}/zero_shot/*/*.jpg",
                  "--eval-images", f"retrieval={evals}/retrieval/images/*.jpg"])  # fmt: skip
    shards = str(root / "filter" / "shards" / "*.tfrecord")
    # align-vocab reads the texts from the TFRecords themselves (WORKAROUND, see the report:
    # it prefers the Parquet sidecars, whose caption column is "alt", not "text").
    (root / "records").mkdir()
    for shard in (root / "filter" / "shards").glob("*.tfrecord"):
        (root / "records" / shard.name).write_bytes(shard.read_bytes())
    vocab_input = str(root / "records" / "*.tfrecord")
    align_vocab(
        ["--shards", vocab_input, "--output", str(root / "vocab.txt"), "--vocab-size", "400"]
    )
    align_train(["--shards", shards, "--vocab", str(root / "vocab.txt"),
                 "--model-dir", str(root / "model"), "--config", "small", "--steps", "4",
                 "--batch-size", "8", "--image-size", "32", "--resize-size", "38",
                 "--eval-zero-shot", str(synthetic_web.eval_zero_shot),
                 "--eval-retrieval", str(synthetic_web.eval_retrieval),
                 "--eval-every", "2", "--quiet"])  # fmt: skip
    return root / "model"


@pytest.mark.slow
def test_align_eval_on_the_synthetic_web_matches_the_live_eval_and_prints_chance(
    synthetic_web, trained_on_synthetic_web, tmp_path, capsys
):
    """The exported towers, read without training code, score exactly what the live towers
    scored at the last step; the held-out sets are read whole (25 classes; 5 captions each)."""
    output = tmp_path / "eval.json"
    web = synthetic_web
    align_eval.main(["--model-dir", str(trained_on_synthetic_web),
                  "--zero-shot", str(web.eval_zero_shot), "--retrieval", str(web.eval_retrieval),
                  "--output", str(output)])  # fmt: skip
    result = json.loads(output.read_text())
    classes = (synthetic_web.eval_zero_shot / "classes.txt").read_text().split("\n")
    n_classes = len([c for c in classes if c.strip()])
    assert result["zero_shot"]["classes"] == n_classes
    assert result["zero_shot"]["chance"]["top1"] == pytest.approx(1 / n_classes)
    captions = json.loads((synthetic_web.eval_retrieval / "captions.json").read_text())["images"]
    assert result["retrieval"]["images"] == len(captions)
    assert result["retrieval"]["texts"] == sum(len(c["sentences"]) for c in captions)
    live = read_eval_scalars(trained_on_synthetic_web / "tensorboard" / "eval")
    assert sorted(live["zero_shot/top1"]) == [2, 4]
    assert live["zero_shot/top1"][4] == pytest.approx(result["zero_shot"]["top1"])
    assert live["zero_shot/top5"][4] == pytest.approx(result["zero_shot"]["top5"])
    for direction in ("image_to_text", "text_to_image"):
        for key in ("R@1", "R@10", "mean_rank"):
            exported = result["retrieval"][direction][key]
            assert live[f"retrieval/{direction}/{key}"][4] == pytest.approx(exported, rel=1e-5)
    table = capsys.readouterr().out
    assert "chance" in table and f"{100 / n_classes:.2f}%" in table


def read_eval_scalars(log_dir) -> dict:
    import tensorflow as tf

    scalars = {}
    for path in sorted(log_dir.glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars
