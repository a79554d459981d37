"""The filter configuration: ALIGN's thresholds as defaults, YAML and flags checked by name.

Loading follows the dialect of every command (commandline/flags.py): ``--config small`` names the
shipped config, a path (local, or any file system the caller's reader knows) a file of one's
own, and each key can be overridden by a typed flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commandline import flags
from commandline.flags import UsageError
from filters.language import BACKENDS, DEFAULT_BACKEND

SHIPPED = Path(__file__).parent / "configs"


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
    # 3": applied as long/short < 3 (filters/image.py, check_aspect), the stricter reading.
    max_aspect_ratio: float = 3.0
    # English alt-text in the paper; "all" (an empty tuple) turns the rule off.
    languages: tuple[str, ...] = ("en",)
    # Not in the paper: which detector (fastText's lid.176, or langdetect), and langdetect's
    # seed (it is randomised; fastText is deterministic).
    language_backend: str = DEFAULT_BACKEND
    language_seed: int = 0
    # "remove duplicates and near-duplicates of test images": pHash within this Hamming
    # distance (ours; 8 separates resized/recompressed/cropped copies from other photos).
    eval_max_hamming: int = 8
    # NSFW classifier score above which an image is dropped (when --nsfw-model is given).
    nsfw_threshold: float = 0.5
    # Not ALIGN's (DataComp's CLIP-score filter, with this project's own export; only with
    # --score-model): pairs whose image-text cosine is below min_score, or outside the top
    # keep_fraction of the job's scored pairs, are dropped. -1 and 1 turn each part off.
    min_score: float = -1.0
    keep_fraction: float = 1.0
    # Not ALIGN's (SemDeDup; only with --semantic-dedup): images whose embeddings lie at cosine
    # >= this from one of a smaller uid are near-duplicates; the smallest uid stays.
    semantic_dup_cosine: float = 0.95

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["languages"] = list(self.languages) or "all"
        return values

    def replace(self, **changes) -> FilterConfig:
        return dataclasses.replace(self, **changes)


def parse_languages(value) -> tuple[str, ...]:
    """'en', 'en,fr', ['en', 'fr'] or 'all' (no language rule)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"languages must be a list of codes or 'all', got {value!r}")
    if not value:
        raise UsageError("languages is empty: give codes such as 'en' or 'all'")
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
            raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if config.max_unigrams < config.min_unigrams:
        raise UsageError("max_unigrams must be >= min_unigrams")
    if config.eval_max_hamming > 63:
        raise UsageError(f"eval_max_hamming must be at most 63, got {config.eval_max_hamming}")
    for name in ("max_aspect_ratio", "nsfw_threshold"):
        value = getattr(config, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise UsageError(f"{name} must be a positive number, got {value!r}")
    if not isinstance(config.min_score, int | float) or not -1.0 <= config.min_score <= 1.0:
        raise UsageError(f"min_score must be a cosine in [-1, 1], got {config.min_score!r}")
    if not isinstance(config.semantic_dup_cosine, int | float) or not (
        -1.0 < config.semantic_dup_cosine <= 1.0
    ):
        raise UsageError(
            f"semantic_dup_cosine must be a cosine in (-1, 1], got {config.semantic_dup_cosine!r}"
        )
    if not isinstance(config.keep_fraction, int | float) or not 0 < config.keep_fraction <= 1:
        raise UsageError(f"keep_fraction must be in (0, 1], got {config.keep_fraction!r}")
    if config.language_backend not in BACKENDS:
        raise UsageError(
            f"language_backend must be one of {', '.join(BACKENDS)}, "
            f"got {config.language_backend!r}"
        )


PARSERS = {"languages": parse_languages}


def config_from_dict(values: Mapping[str, Any] | None, source: str = "") -> FilterConfig:
    """Overrides the defaults with ``values``; an unknown key is an error naming it."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise UsageError(f"{source or 'config'}: expected a mapping of settings")
    return flags.build_config(FilterConfig, values, source, PARSERS)


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_text: Callable[[str], str] = flags.local_text,
) -> FilterConfig:
    """ALIGN's defaults, then a YAML file (a path, or ``small``), then the overrides.

    ``read_text`` reads the file: the local disk by default; the Beam jobs pass a reader
    for gs:// (pipeline.options.read_text), so this module never imports Beam.
    """
    return flags.load_config(
        FilterConfig, path, overrides, shipped=SHIPPED, read_text=read_text, parsers=PARSERS
    )


def small_config_path() -> Path:
    """The shipped config for runs of a few hundred to ~20k pairs."""
    return SHIPPED / "small.yaml"
