"""align-embed: Parquet indexes of image and text embeddings, and cosine queries over them."""

import pyarrow.parquet as pq
import pytest

from tests.training.eval_fixtures import COLOURS, solid_jpeg, write_export
from training import embed as embed_lib
from training.cli import embed


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(write_export(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    solid_jpeg(root / "b_red.jpg", COLOURS["red"])
    solid_jpeg(root / "a_red.jpg", COLOURS["red"])  # same picture: a tie with b_red
    solid_jpeg(root / "nested" / "green.png", COLOURS["green"])
    solid_jpeg(root / "blue.jpg", (10, 10, 240))
    (root / "broken.jpg").write_bytes(b"not an image")
    (root / "readme.txt").write_text("skipped: not an image file")
    return root


@pytest.fixture(scope="module")
def image_index(model_dir, image_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("index") / "images.parquet"
    embed.main(
        [
            "images",
            "--model-dir",
            model_dir,
            "--input",
            str(image_folder),
            "--output",
            str(output),
            "--batch-size",
            "2",
        ]
    )
    return output


def test_image_index_has_a_row_per_image_file_in_sorted_order(image_index, image_folder):
    table = pq.read_table(image_index)
    names = [p[len(str(image_folder)) + 1 :] for p in table.column("path").to_pylist()]
    assert names == ["a_red.jpg", "b_red.jpg", "blue.jpg", "broken.jpg", "nested/green.png"]
    assert table.schema.metadata[b"align.kind"] == b"images"
    assert len(table.column("embedding")[0].as_py()) == 3


def test_an_undecodable_image_keeps_its_row_with_the_error(image_index):
    table = pq.read_table(image_index).to_pylist()
    broken = [row for row in table if row["path"].endswith("broken.jpg")][0]
    assert broken["embedding"] is None and "cannot decode image" in broken["error"]
    assert all(row["error"] is None for row in table if row is not broken)


def test_text_query_finds_the_matching_images_ties_by_row_order(model_dir, image_index, capsys):
    results = embed.run(
        [
            "query",
            "--model-dir",
            model_dir,
            "--index",
            str(image_index),
            "--text",
            "a photo of a red",
            "--k",
            "3",
        ]
    )
    assert [r["path"].rsplit("/", 1)[-1] for r in results] == ["a_red.jpg", "b_red.jpg", "blue.jpg"]
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert "a_red.jpg" in capsys.readouterr().out


def test_streamed_query_matches_a_single_batch(model_dir, image_index, monkeypatch):
    args = ["query", "--model-dir", model_dir, "--index", str(image_index), "--text", "green"]
    whole = embed.run(args)
    monkeypatch.setattr(embed_lib, "READ_BATCH", 1)
    assert embed.run(args) == whole


def test_text_index_and_image_query(model_dir, image_folder, tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("a red thing\n\n  a green thing  \nblue\n")
    output = tmp_path / "texts.parquet"
    summary = embed.run(
        ["texts", "--model-dir", model_dir, "--input", str(lines), "--output", str(output)]
    )
    assert summary["rows"] == 3
    results = embed.run(
        [
            "query",
            "--model-dir",
            model_dir,
            "--index",
            str(output),
            "--image",
            str(image_folder / "nested" / "green.png"),
            "--k",
            "1",
        ]
    )
    assert results == [{"rank": 1, "score": pytest.approx(1.0, abs=0.02), "text": "a green thing"}]


def test_rewriting_an_index_is_byte_identical(model_dir, image_folder, image_index, tmp_path):
    again = tmp_path / "again.parquet"
    embed.run(
        [
            "images",
            "--model-dir",
            model_dir,
            "--input",
            str(image_folder),
            "--output",
            str(again),
            "--batch-size",
            "2",
        ]
    )
    assert again.read_bytes() == image_index.read_bytes()


def test_a_missing_input_folder_is_a_one_line_error(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        embed.run(
            [
                "images",
                "--model-dir",
                model_dir,
                "--input",
                str(tmp_path / "nope"),
                "--output",
                str(tmp_path / "x.parquet"),
            ]
        )
    assert exit_info.value.code == 2
    assert "align-embed: error:" in capsys.readouterr().err


def test_a_query_needs_text_or_image(model_dir, image_index):
    with pytest.raises(SystemExit) as exit_info:
        embed.run(["query", "--model-dir", model_dir, "--index", str(image_index)])
    assert exit_info.value.code == 2
