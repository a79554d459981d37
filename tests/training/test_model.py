"""The towers: unit-norm embeddings of one size, serializable, loadable without training code."""

import keras
import numpy as np
import pytest

from training.config import UsageError, load_config
from training.model import (
    DualEncoder,
    build_dual_encoder,
    build_image_encoder,
    build_text_encoder,
)

# Slow: builds ALIGN's EfficientNet-B7 tower; started first (tests/conftest.py).
pytestmark = pytest.mark.slow

CONFIG = load_config("small", image_size=32, resize_size=36, max_tokens=8)


@pytest.fixture(scope="module")
def model():
    return build_dual_encoder(CONFIG, 40)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return {
        "images": rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32"),
        "token_ids": rng.integers(5, 40, (3, 8)).astype("int32"),
        "padding_mask": np.array([[1] * 8, [1] * 4 + [0] * 4, [1] * 2 + [0] * 6], "int32"),
    }


def test_both_towers_give_unit_vectors_of_the_image_width(model, batch):
    images, texts = (np.asarray(x) for x in model(batch))
    assert images.shape == texts.shape == (3, model.image_encoder.output_shape[-1])
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_temperature_starts_at_the_configured_value(model):
    assert float(np.asarray(model.temperature)) == pytest.approx(CONFIG.temperature_init)


def test_padding_is_ignored_by_the_text_tower(model, batch):
    tokens = {"token_ids": batch["token_ids"].copy(), "padding_mask": batch["padding_mask"]}
    before = np.asarray(model.text_encoder(tokens))
    tokens["token_ids"][1, 4:] = 7  # change only padded positions
    np.testing.assert_allclose(np.asarray(model.text_encoder(tokens)), before, atol=1e-5)


def test_dual_encoder_config_round_trip_rebuilds_the_same_architecture(model):
    clone = DualEncoder.from_config(model.get_config())
    assert clone.temperature_init == model.temperature_init
    assert clone.label_smoothing == model.label_smoothing
    assert clone.image_encoder.count_params() == model.image_encoder.count_params()
    assert clone.text_encoder.count_params() == model.text_encoder.count_params()


def test_saved_dual_encoder_reloads_with_its_weights(model, batch, tmp_path):
    model.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    for ours, theirs in zip(model(batch), again(batch), strict=True):
        np.testing.assert_allclose(np.asarray(theirs), np.asarray(ours), atol=1e-5)


@pytest.mark.parametrize("key, value", [("image_tower", "resnet"), ("text_tower", "gpt")])
def test_unknown_tower_is_a_usage_error(key, value):
    with pytest.raises(UsageError, match=value):
        build_dual_encoder(load_config("small", image_size=32, resize_size=36, **{key: value}), 9)


@pytest.fixture(scope="module")
def align_towers():
    """The paper's towers (B7, BERT-Large); the layer graph does not depend on the input size."""
    config = load_config("align", image_size=64, resize_size=77)
    image = build_image_encoder(config)
    text = build_text_encoder(config, vocabulary_size=64, embed_dim=image.output_shape[-1])
    return image, text


def test_align_image_embedding_is_the_pooled_output_of_the_last_mbconv_block(align_towers):
    image, _ = align_towers
    assert [layer.name for layer in image.layers] == [
        "images",
        "efficientnet_b7",
        "global_pool",
        "l2_normalise",
    ]
    tower = image.get_layer("efficientnet_b7")
    assert not [layer.name for layer in tower.layers if layer.name.startswith("top_")]
    assert tower.output is tower.get_layer("block7d_add").output  # B7's last MBConv block
    assert isinstance(image.get_layer("global_pool"), keras.layers.GlobalAveragePooling2D)
    assert image.output_shape == (None, 640)


def test_align_text_embedding_is_cls_through_a_linear_layer_to_the_image_width(align_towers):
    _, text = align_towers
    bert = text.get_layer("bert")
    assert (bert.num_layers, bert.hidden_dim) == (24, 1024)  # BERT-Large
    projection = text.get_layer("projection")
    assert projection.input is text.get_layer("cls").output
    assert projection.units == 640 and projection.activation is keras.activations.linear
    assert text.output_shape == (None, 640)


@pytest.mark.parametrize("tower, width", [("convnet_tiny", 128), ("efficientnet_tiny", 80)])
def test_small_towers_embed_the_pooled_output_of_their_last_stage(tower, width):
    image = build_image_encoder(
        load_config("small", image_size=32, resize_size=36, image_tower=tower)
    )
    assert [layer.name for layer in image.layers] == [
        "images",
        tower,
        "global_pool",
        "l2_normalise",
    ]
    assert image.output_shape == (None, width)


def test_the_conv_tower_takes_raw_pixels_and_scales_them_itself():
    tower = build_image_encoder(CONFIG).get_layer(CONFIG.image_tower)
    rescale = tower.get_layer("rescale")
    assert (rescale.scale, rescale.offset) == (1 / 127.5, -1.0)  # 0..255 -> -1..1
    assert tower.output is tower.layers[-1].output and tower.layers[-1].name == "stage4b_relu"
