"""The filter configuration: ALIGN's thresholds as defaults, YAML overrides checked by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from filters.language import BACKENDS


class ConfigError(ValueError):
    """A config file with an unknown key or a value of the wrong kind (one-line message)."""


@dataclass(frozen=True)
class FilterConfig:
    """Defaults are Jia et al. 2021 (ALIGN), section 3, unless marked otherwise."""

    # "alt-texts ... with less than 3 unigrams or more than 20 unigrams" are dropped.
    min_unigrams: int = 3
    max_unigrams: int = 20
    # "alt-texts that are shared by more than 10 images" are dropped.
    max_images_per_alt: int = 10
    # "images associated with more than 1000 alt-texts" are dropped.
    max_alts_per_image: int = 1000
    # "alt-texts that contain any rare token (outside of 100 million most frequent unigrams
    # and bigrams from the raw dataset)" are dropped. min_count is ours, for small data.
    rare_token_vocab_size: int = 100_000_000
    rare_token_min_count: int = 1
    # "only keep images where both dimensions are larger than 200 pixels": shorter side > 200.
    min_shorter_side: int = 200
    # "and the ratio of the larger of width and height to the smaller one is no larger than
    # 3": the issue and DESIGN.md state it as long/short < 3, which is what is applied.
    max_aspect_ratio: float = 3.0
    # English alt-text in the paper; "all" (an empty tuple) turns the rule off.
    languages: tuple[str, ...] = ("en",)
    # Not in the paper: which detector, and its seed (langdetect is randomised).
    language_backend: str = "langdetect"
    language_seed: int = 0
    # "remove duplicates and near-duplicates of test images": pHash within this Hamming
    # distance (ours; 8 separates resized/recompressed/cropped copies from other photos).
    eval_max_hamming: int = 8
    # NSFW classifier score above which an image is dropped (when --nsfw-model is given).
    nsfw_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["languages"] = list(self.languages) or "all"
        return values

    def replace(self, **changes) -> FilterConfig:
        return dataclasses.replace(self, **changes)


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(FilterConfig)}


def parse_languages(value) -> tuple[str, ...]:
    """'en', 'en,fr', ['en', 'fr'] or 'all' (no language rule)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"languages must be a list of codes or 'all', got {value!r}")
    if not value:
        raise ConfigError("languages is empty: give codes such as 'en' or 'all'")
    return () if "all" in value else tuple(value)


def _check(config: FilterConfig) -> None:
    ints = {
        "min_unigrams": 0,
        "max_unigrams": 0,
        "max_images_per_alt": 1,
        "max_alts_per_image": 1,
        "rare_token_vocab_size": 1,
        "rare_token_min_count": 1,
        "min_shorter_side": 0,
        "language_seed": 0,
        "eval_max_hamming": 0,
    }
    for name, minimum in ints.items():
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if config.max_unigrams < config.min_unigrams:
        raise ConfigError("max_unigrams must be >= min_unigrams")
    if config.eval_max_hamming > 63:
        raise ConfigError(f"eval_max_hamming must be at most 63, got {config.eval_max_hamming}")
    for name in ("max_aspect_ratio", "nsfw_threshold"):
        value = getattr(config, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    if config.language_backend not in BACKENDS:
        raise ConfigError(
            f"language_backend must be one of {', '.join(BACKENDS)}, "
            f"got {config.language_backend!r}"
        )


def config_from_dict(values: dict, source: str = "config") -> FilterConfig:
    """Overrides the defaults with ``values``; an unknown key is an error naming it."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
    known = _fields()
    for key in values:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    values = dict(values)
    if "languages" in values:
        values["languages"] = parse_languages(values["languages"])
    if isinstance(values.get("max_aspect_ratio"), int):
        values["max_aspect_ratio"] = float(values["max_aspect_ratio"])
    try:
        return FilterConfig(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(path: str | Path | None) -> FilterConfig:
    """ALIGN's defaults overridden by a YAML file (local path or gs:// through Beam)."""
    if path is None:
        return FilterConfig()
    text = _read_text(str(path))
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return config_from_dict(values, str(path))


def small_config_path() -> Path:
    """The shipped config for runs of a few hundred to ~20k pairs."""
    return Path(str(resources.files("filters") / "configs" / "small.yaml"))


def _read_text(path: str) -> str:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as handle:
            return handle.read().decode("utf-8")
    return Path(path).read_text(encoding="utf-8")
