"""Encoders.load reads the export layout alone and embeds images and texts in batches."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.training.eval_fixtures import IMAGE_SIZE, solid_jpeg, write_export
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


def test_paths_bytes_and_preprocessed_arrays_embed_alike(encoders, tmp_path):
    paths = [
        str(solid_jpeg(tmp_path / f"{i}.jpg", c))
        for i, c in enumerate([(250, 0, 0), (0, 0, 250), (0, 250, 0)])
    ]
    from_paths = encoders.embed_images(paths)
    from_bytes = encoders.embed_images([open(p, "rb").read() for p in paths])
    from_arrays = encoders.embed_images(encoders.preprocess(paths))
    assert from_paths.shape == (3, 3)
    np.testing.assert_allclose(from_paths, np.eye(3)[[0, 2, 1]], atol=0.02)
    np.testing.assert_allclose(from_paths, from_bytes, atol=1e-6)
    np.testing.assert_allclose(from_paths, from_arrays, atol=1e-6)


def test_empty_inputs_give_empty_embeddings(encoders):
    assert encoders.embed_images([]).shape == (0, 3)
    assert encoders.embed_texts([]).shape == (0, 3)


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
