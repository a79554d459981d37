"""Encoders.load runs an export's own preprocessing and embeds images and texts in batches."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.training.eval_fixtures import (
    IMAGE_SIZE,
    solid_jpeg,
    write_export,
    write_towers_only_export,
)
from training.encoders import Encoders, preprocess_image


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_export(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def encoders(model_dir):
    return Encoders.load(str(model_dir), batch_size=2)


def test_loads_from_model_dir_or_export_dir(model_dir, encoders):
    direct = Encoders.load(str(model_dir / "export"))
    assert (direct.image_size, direct.embed_dim) == (IMAGE_SIZE, 3)
    assert (encoders.image_size, encoders.embed_dim) == (IMAGE_SIZE, 3)


def test_missing_export_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        Encoders.load(str(tmp_path))


def test_incomplete_encoders_json_names_the_missing_key(tmp_path):
    export = write_export(tmp_path) / "export"
    spec = json.loads((export / "encoders.json").read_text())
    del spec["resize_size"]
    (export / "encoders.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="lacks resize_size"):
        Encoders.load(str(tmp_path))


def test_texts_embed_through_the_trainers_tokenizer(encoders):
    texts = ["a photo of a red.", "GREEN", "the blue", "a photo of the Red", "blue."]
    embeddings = encoders.embed_texts(texts)
    expected = np.eye(3)[[0, 1, 2, 0, 2]]
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)


def test_batching_does_not_change_text_embeddings(encoders):
    texts = ["red green", "a blue photo", "red", "green blue blue"]
    together = encoders.embed_texts(texts)
    alone = np.concatenate([encoders.embed_texts([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def _colour_files(folder):
    return [
        str(solid_jpeg(folder / f"{i}.jpg", c))
        for i, c in enumerate([(250, 0, 0), (0, 0, 250), (0, 250, 0)])
    ]


def test_paths_and_bytes_embed_alike(encoders, tmp_path):
    paths = _colour_files(tmp_path)
    from_paths = encoders.embed_images(paths)
    from_bytes = encoders.embed_images([open(p, "rb").read() for p in paths])
    assert from_paths.shape == (3, 3)
    np.testing.assert_allclose(from_paths, np.eye(3)[[0, 2, 1]], atol=0.02)
    np.testing.assert_allclose(from_paths, from_bytes, atol=1e-6)


def test_an_export_without_saved_model_embeds_as_one_with_it(encoders, tmp_path):
    older = Encoders.load(str(write_towers_only_export(tmp_path / "model")), batch_size=2)
    paths = _colour_files(tmp_path / "images")
    texts = ["a photo of a red.", "GREEN", "the blue"]
    np.testing.assert_allclose(older.embed_images(paths), encoders.embed_images(paths), atol=1e-6)
    np.testing.assert_allclose(older.embed_texts(texts), encoders.embed_texts(texts), atol=1e-6)


@pytest.mark.parametrize("layout", [write_export, write_towers_only_export])
def test_cropped_pixels_embed_as_their_files(layout, tmp_path):
    encoders = Encoders.load(str(layout(tmp_path / "model")), batch_size=2)
    paths = _colour_files(tmp_path / "images")
    pixels = encoders.preprocess(paths)
    np.testing.assert_allclose(
        encoders.embed_images(pixels), encoders.embed_images(paths), atol=1e-6
    )


def test_one_undecodable_image_costs_only_its_own_row(encoders, tmp_path):
    paths = _colour_files(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but the rest is not")
    embeddings, errors = encoders.try_embed_images([paths[0], str(broken), paths[1]])
    assert errors[0] is None and errors[2] is None and "broken.png" in errors[1]
    np.testing.assert_allclose(embeddings[[0, 2]], encoders.embed_images(paths[:2]), atol=1e-6)
    assert not embeddings[1].any()


def test_a_decompression_bomb_is_refused_from_its_header(encoders, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # so a 24x16 JPEG counts as a bomb
    path = _colour_files(tmp_path)[0]
    with pytest.raises(ValueError, match="decompression bomb"):
        encoders.embed_images([path])


def test_empty_inputs_give_empty_embeddings(encoders):
    assert encoders.embed_images([]).shape == (0, 3)
    assert encoders.embed_texts([]).shape == (0, 3)


def test_an_rgba_webp_decodes_to_its_colour():
    buffer = __import__("io").BytesIO()
    Image.new("RGBA", (20, 20), (0, 0, 250, 128)).save(buffer, format="WEBP", lossless=True)
    pixels = preprocess_image(buffer.getvalue(), image_size=8, resize_size=10)
    np.testing.assert_allclose(pixels[..., 2], 250, atol=1)
    assert pixels[..., :2].max() <= 1


def test_preprocessing_resizes_the_shorter_side_then_centre_crops():
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    image.paste((255, 255, 255), (20, 0, 40, 20))  # a white band in the middle 20 columns
    buffer = __import__("io").BytesIO()
    image.save(buffer, format="PNG")
    pixels = preprocess_image(buffer.getvalue(), image_size=8, resize_size=10)
    # 60x20 -> 30x10 (band 10..19); the centre 8x8 crop takes columns 11..18, all white.
    assert pixels.shape == (8, 8, 3) and pixels.dtype == np.float32
    assert pixels.min() >= 250


def test_an_undecodable_image_is_an_error_naming_it(encoders, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="broken.jpg"):
        encoders.embed_images([str(broken)])


def test_preprocessed_arrays_of_the_wrong_size_are_refused(encoders):
    with pytest.raises(ValueError, match=r"\[N, 8, 8, 3\]"):
        encoders.embed_images(np.zeros((2, 16, 16, 3), np.uint8))


def test_an_export_on_a_remote_filesystem_writes_and_loads(encoders):
    """ram:// stands in for gs://: every file goes through tf.io.gfile, none via local paths."""
    remote = Encoders.load(write_export("ram://bucket/m"))
    texts = ["a photo of a red.", "GREEN"]
    np.testing.assert_allclose(remote.embed_texts(texts), encoders.embed_texts(texts), atol=1e-6)
