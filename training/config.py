"""The trainer's configuration: ALIGN's defaults as data, YAML files that scale them down.

Loaded in the dialect of every command (commandline/flags.py), whose UsageError and exits_cleanly
the trainer's modules import from here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from commandline import flags
from commandline.flags import UsageError, exits_cleanly

__all__ = ["TrainConfig", "UsageError", "exits_cleanly", "load_config"]

CONFIG_DIR = Path(__file__).parent / "configs"


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
    # auto: bf16 on TPU, CPU and GPUs with bf16 units (compute capability 8.0+), else fp16.
    mixed_precision: str = "auto"
    jit_compile: bool = False  # XLA-compile the train step (TPUs compile it whatever this says)
    checkpoint_every: int = 1_000
    keep_checkpoints: int = 3
    log_every: int = 100
    steps_per_execution: int = 1
    seed: int = 0
    # Cross-fitting (align-filter --score-model, twice): train on one uid half only, 0 or 1
    # (filters/scoring.py: uid_half), so the other half's model scores these pairs. None: all.
    uid_half: int | None = None


PRECISIONS = ("auto", "bfloat16", "float16", "float32")
CHOICES = {
    "mixed_precision": PRECISIONS,
    "optimizer": ("lamb", "adamw"),
    "text_pooling": ("cls", "mean"),
}


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
    if config.uid_half not in (None, 0, 1):
        raise UsageError(f"config key 'uid_half' must be 0 or 1, got {config.uid_half}")
    if not 0.0 <= config.label_smoothing < 1.0 or config.temperature_init <= 0:
        raise UsageError("need 0 <= label_smoothing < 1 and temperature_init > 0")
    return config


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Reads a YAML config (a path, or a shipped one by name: "small", "align"; else ALIGN's
    defaults), then applies overrides that are not None.

    An unknown key, a wrong type or an impossible value is a ``UsageError`` naming the key.
    """
    return _validate(flags.load_config(TrainConfig, path, overrides, shipped=CONFIG_DIR))


# What --help says of the keys whose values are not self-explanatory.
FLAG_HELPS = {
    "mixed_precision": (
        "auto, bfloat16, float16 or float32; auto is bfloat16 on TPU, CPU and GPUs with bf16"
        " units (Ampere and later), float16 with loss scaling on older GPUs; the loss, the"
        " L2 normalisation and the temperature stay float32"
    ),
    "jit_compile": "true: compile the train step with XLA (per tower under several replicas)",
}


def add_override_flags(parser) -> None:
    """Adds ``--<key>`` for every config key, so any value can be overridden on the command line."""
    flags.add_config_flags(parser, TrainConfig, FLAG_HELPS)


def overrides_from(args) -> dict[str, Any]:
    return flags.overrides_from(args, TrainConfig)
