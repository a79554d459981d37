"""The trainer's configuration: ALIGN's defaults as data, YAML files that scale them down."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


class UsageError(ValueError):
    """A bad flag, path or config value: reported in one line, never as a traceback."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; defaults are ALIGN's (Jia et al. 2021, section 5)."""

    # Input: "resize to 346, random crop 289 for training, central crop 289 for eval".
    image_size: int = 289
    resize_size: int = 346
    max_tokens: int = 64  # "maximum of 64 tokens"
    lowercase: bool = True
    shuffle_buffer: int = 10_000
    deterministic: bool = False
    # Model: EfficientNet with global pooling; BERT [CLS] projected to the image embedding size.
    # ALIGN's flagship pairs EfficientNet-L2 with BERT-Large; B7 is the largest stock EfficientNet.
    image_tower: str = "efficientnet_b7"
    image_weights: str | None = None  # None, "imagenet" or a local weights file
    text_tower: str = "bert_large"
    text_dropout: float = 0.1  # BERT's own default
    text_pooling: str = "cls"  # cls (ALIGN: the [CLS] token) or mean (over the real tokens)
    # Loss: "normalized softmax", learnable temperature "initialized to 1.0", label smoothing 0.1.
    temperature_init: float = 1.0
    label_smoothing: float = 0.1
    # Optimisation: LAMB, weight decay 1e-5, lr 1e-3 warmed up linearly over 10k steps then
    # decayed linearly to zero; global batch 16384 for 1.2M steps.
    optimizer: str = "lamb"  # lamb (ALIGN) or adamw
    batch_size: int = 16_384
    steps: int = 1_200_000
    learning_rate: float = 1e-3
    warmup_steps: int = 10_000
    weight_decay: float = 1e-5
    # Operations.
    mixed_precision: str = "auto"  # auto (bf16 on TPU/CPU, fp16 on GPU), bfloat16, float16, float32
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3
    log_every: int = 100
    steps_per_execution: int = 1
    seed: int = 0


FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}
PRECISIONS = ("auto", "bfloat16", "float16", "float32")
CHOICES = {
    "mixed_precision": PRECISIONS,
    "optimizer": ("lamb", "adamw"),
    "text_pooling": ("cls", "mean"),
}


def _coerce(name: str, value: Any) -> Any:
    """Checks one value against its field's type; YAML and flags both arrive here."""
    kind = FIELDS[name].type
    if value is None:
        if "None" in kind:
            return None
        raise UsageError(f"config key {name!r} must not be empty")
    base = kind.split("|")[0].strip()
    try:
        if base == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if base == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if base == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"config key {name!r} wants {kind}, got {value!r}") from None


def _validate(config: TrainConfig) -> TrainConfig:
    positive = ("image_size", "resize_size", "max_tokens", "batch_size", "steps", "log_every")
    for name in positive + ("checkpoint_every", "steps_per_execution", "keep_checkpoints"):
        if getattr(config, name) <= 0:
            raise UsageError(f"config key {name!r} must be positive, got {getattr(config, name)}")
    if config.resize_size < config.image_size:
        raise UsageError("config key 'resize_size' must be >= 'image_size'")
    if config.max_tokens < 3:
        raise UsageError("config key 'max_tokens' must leave room for [CLS], a piece and [SEP]")
    for name, allowed in CHOICES.items():
        if getattr(config, name) not in allowed:
            raise UsageError(f"config key {name!r} must be one of {', '.join(allowed)}")
    if not 0.0 <= config.label_smoothing < 1.0 or config.temperature_init <= 0:
        raise UsageError("need 0 <= label_smoothing < 1 and temperature_init > 0")
    return config


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Reads a YAML config (or ALIGN's defaults), then applies overrides that are not None.

    An unknown key, a wrong type or an impossible value is a ``UsageError`` naming the key.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
            path = CONFIG_DIR / f"{path}.yaml"  # a shipped config by name: "small", "align"
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise UsageError(f"config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise UsageError(
                f"config file {path} is not valid YAML: {error}".split("\n")[0]
            ) from None
        if not isinstance(values, dict):
            raise UsageError(f"config file {path} must hold a mapping of keys to values")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise UsageError(f"unknown config key {unknown[0]!r} in {path}")
    values.update({key: value for key, value in overrides.items() if value is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown config key {unknown[0]!r}")
    return _validate(TrainConfig(**{key: _coerce(key, value) for key, value in values.items()}))


def add_override_flags(parser) -> None:
    """Adds ``--<key>`` for every config key, so any value can be overridden on the command line."""
    for name in FIELDS:
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, metavar="V", help="config"
        )


def overrides_from(args) -> dict[str, Any]:
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


def exits_cleanly(prog: str) -> Callable:
    """Turns UsageError (and a missing input) into ``prog: error: message`` and exit 2.

    The trainer's own copy of pipeline.options.exits_cleanly: training never imports Beam.
    """

    def decorate(run: Callable) -> Callable:
        @functools.wraps(run)
        def wrapper(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except (UsageError, FileNotFoundError) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                raise SystemExit(2) from None

        return wrapper

    return decorate
