"""One preprocessing: the trainer's input and the evaluation path give the same pixels."""

import hashlib
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.training.synthetic import write_shards
from training.config import load_config
from training.data import make_dataset
from training.encoders import preprocess_image
from training.preprocess import resize_and_crop, resize_shorter_side
from training.tokenize import AlignTokenizer

PIECES = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "picture"]


def textured(width: int, height: int, fmt: str, seed: int) -> bytes:
    """A noisy picture with sharp edges: any change of decoder, resize or crop shows in it."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[height // 3 : height // 2, :] = (230, 20, 20)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_evaluation_sees_exactly_the_pixels_of_the_trainers_input(fmt, tmp_path):
    config = load_config("small", image_size=24, resize_size=29, max_tokens=8)
    images = [textured(51, 37, fmt, 0), textured(30, 44, fmt, 1)]
    pairs = [
        {
            "uid": str(i),
            "url": f"http://x/{i}",
            "text": "a picture",
            "image": data,
            "width": 0,
            "height": 0,
        }
        for i, data in enumerate(images)
    ]
    shards = write_shards(tmp_path, pairs, num_shards=1)
    tokenizer = AlignTokenizer(PIECES, config.lowercase, config.max_tokens)
    dataset = make_dataset(shards, config, tokenizer, batch_size=1, training=False)
    trained_on = [batch["images"].numpy()[0] for batch in dataset]
    evaluated_on = [
        preprocess_image(data, config.image_size, config.resize_size) for data in images
    ]
    assert len(trained_on) == 2
    for ours, theirs in zip(trained_on, evaluated_on, strict=True):
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)


def test_central_crop_takes_the_middle_of_the_shorter_side_resize():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 38:42] = 255  # a white stripe in the middle column
    out = resize_and_crop(tf.constant(image), 32, 36, training=False).numpy()
    assert out.shape == (32, 32, 3)
    assert out[:, 15:17].mean() > 200 and out[:, :8].mean() < 5 and out[:, -8:].mean() < 5


def test_random_crop_and_flip_vary_with_the_seed():
    image = tf.random.stateless_uniform((50, 70, 3), [0, 0], 0, 255)
    crops = {
        hashlib.sha256(
            resize_and_crop(image, 32, 36, True, tf.constant([0, s], tf.int64)).numpy().tobytes()
        ).hexdigest()
        for s in range(6)
    }
    assert len(crops) > 1


@pytest.mark.parametrize("shape", [(29, 40), (52, 29), (29, 29)])
@pytest.mark.parametrize("training", [True, False])
def test_an_image_stored_at_the_resize_size_gets_the_pixels_the_resize_would_give(shape, training):
    """The skipped resize (the download stage's images) changes no pixel, crops nor flips."""
    pixels = tf.image.decode_jpeg(textured(shape[1], shape[0], "JPEG", 3))
    for index in range(8):
        seed = tf.constant([5, index], tf.int64)
        resized = resize_shorter_side(pixels, 29)  # the general path, forced
        expected = resize_and_crop(resized, 24, 29, training=training, seed=seed)
        actual = resize_and_crop(pixels, 24, 29, training=training, seed=seed)
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
