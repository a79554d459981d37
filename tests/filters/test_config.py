"""The filter config: ALIGN's defaults, YAML overrides, unknown keys refused by name."""

import pytest

from commandline.flags import UsageError
from filters.config import (
    FilterConfig,
    config_from_dict,
    load_config,
    small_config_path,
)


def test_defaults_are_aligns_values():
    config = FilterConfig()
    assert (config.min_unigrams, config.max_unigrams) == (3, 20)
    assert config.max_images_per_alt == 10
    assert config.max_alts_per_image == 1000
    assert config.rare_token_vocab_size == 100_000_000
    assert config.min_shorter_side == 200 and config.max_aspect_ratio == 3.0
    assert config.languages == ("en",)


def test_small_config_ships_and_loads():
    config = load_config(small_config_path())
    assert config.max_alts_per_image == 20
    assert config.rare_token_min_count == 2


def test_yaml_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_unigrams: 30\nlanguages: all\n")
    config = load_config(path)
    assert config.max_unigrams == 30 and config.min_unigrams == 3
    assert config.languages == ()


def test_unknown_key_is_refused_in_one_line_naming_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_unigram: 30\n")
    with pytest.raises(UsageError) as error:
        load_config(path)
    message = str(error.value)
    assert "unknown config key 'max_unigram'" in message and "\n" not in message


@pytest.mark.parametrize(
    "values",
    [
        {"max_unigrams": "many"},
        {"min_unigrams": 5, "max_unigrams": 4},
        {"eval_max_hamming": 64},
        {"language_backend": "cld9"},
        {"max_aspect_ratio": 0},
        {"languages": []},
    ],
)
def test_bad_values_are_config_errors(values):
    with pytest.raises(UsageError):
        config_from_dict(values)


def test_invalid_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_unigrams: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(path)
