"""Configs: ALIGN's defaults as data, YAML files and flags on top, bad keys named in one line."""

import pytest

from training.config import TrainConfig, UsageError, load_config


def test_shipped_align_config_equals_the_defaults():
    assert load_config("align") == TrainConfig()


def test_defaults_are_alignment_paper_values():
    config = TrainConfig()
    assert (config.image_size, config.resize_size, config.max_tokens) == (289, 346, 64)
    assert (config.temperature_init, config.label_smoothing) == (1.0, 0.1)
    assert (config.learning_rate, config.warmup_steps, config.weight_decay) == (1e-3, 10_000, 1e-5)
    assert (config.optimizer, config.text_pooling) == ("lamb", "cls")


def test_small_config_is_a_cpu_sized_run():
    config = load_config("small")
    assert config.image_tower == "convnet_tiny" and config.text_tower == "bert_tiny"
    assert (config.text_pooling, config.optimizer) == ("mean", "adamw")  # the measured ablation
    assert config.image_size == 64 and config.batch_size == 64


def test_overrides_win_and_are_coerced_from_strings():
    config = load_config("small", steps="12", learning_rate="0.5", deterministic="true")
    assert (config.steps, config.learning_rate, config.deterministic) == (12, 0.5, True)


def test_unknown_key_in_a_file_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_sise: 3\n")
    with pytest.raises(UsageError, match="unknown config key 'batch_sise'"):
        load_config(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batch_size": "many"}, "'batch_size' wants int"),
        ({"steps": 0}, "'steps' must be positive"),
        ({"image_size": 400}, "'resize_size' must be >= 'image_size'"),
        ({"mixed_precision": "int8"}, "'mixed_precision' must be one of"),
        ({"optimizer": "sgd"}, "'optimizer' must be one of lamb, adamw"),
        ({"text_pooling": "max"}, "'text_pooling' must be one of cls, mean"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_key(overrides, message):
    with pytest.raises(UsageError, match=message):
        load_config(None, **overrides)


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
