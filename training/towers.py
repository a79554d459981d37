"""The dual encoder's two towers, in Keras 3 alone: EfficientNet for images, BERT for text.

Imports neither TensorFlow nor this project's training loop, so the same towers build under
any Keras backend: TensorFlow for align-train, JAX for bench/accelerator.py on a GPU machine
that has no TensorFlow.
"""

from __future__ import annotations

import keras
import keras_hub
from keras.src.applications.efficientnet import EfficientNet

from training.config import TrainConfig, UsageError

# Stock EfficientNets (Tan & Le 2019), built without their classification head.
IMAGE_TOWERS = {
    f"efficientnet_b{i}": getattr(keras.applications, f"EfficientNetB{i}") for i in range(8)
}
# Same family, tiny width/depth multipliers: what a CPU demo can train in minutes at ~64 px.
TINY_TOWERS = {
    "efficientnet_tiny": dict(width_coefficient=0.25, depth_coefficient=0.2),
    "efficientnet_small": dict(width_coefficient=0.5, depth_coefficient=0.4),
}
# Plain VGG-style conv nets (two 3x3 conv + BN + ReLU per stage, the second with stride 2):
# channels per stage. Not ALIGN's tower: a CPU-scale stand-in that learns shape from scratch in a
# few hundred steps where a tiny EfficientNet does not (measured, see training/configs/small.yaml).
CONV_TOWERS = {
    "convnet_tiny": (16, 32, 64, 128),
    "convnet_small": (32, 64, 128, 256),
}
# BERT sizes (Turc et al. 2019 "well-read students" naming; base and large from Devlin et al.):
# (layers, heads, hidden, intermediate).
TEXT_TOWERS = {
    "bert_tiny": (2, 2, 128, 512),
    "bert_mini": (4, 4, 256, 1024),
    "bert_small": (4, 8, 512, 2048),
    "bert_medium": (8, 8, 512, 2048),
    "bert_base": (12, 12, 768, 3072),
    "bert_large": (24, 16, 1024, 4096),
}


def build_image_encoder(config: TrainConfig) -> keras.Model:
    """Images [B, S, S, 3] float 0..255 -> unit vectors [B, D] float32.

    ALIGN's image embedding: EfficientNet "with global pooling (without training the 1x1 conv
    layer in classification head)", i.e. the global average of the last MBConv block's output
    (D = its channels: 640 for B7). Keras's ``include_top=False`` keeps the head's 1x1
    ``top_conv`` + BN + swish (1280-d for B0, non-negative after swish's floor); the tower
    is cut before it. The stock towers rescale and normalise inside, so callers feed raw pixel
    values. ``image_weights`` is None (from scratch, as ALIGN), "imagenet" (Keras downloads
    them) or a local weights file.
    """
    size = config.image_size
    if config.image_tower in CONV_TOWERS:
        return _pooled_unit_embeddings(conv_tower(config.image_tower, size), size)
    common = dict(include_top=False, weights=config.image_weights, input_shape=(size, size, 3))
    if config.image_tower in IMAGE_TOWERS:
        backbone = IMAGE_TOWERS[config.image_tower](**common)
    elif config.image_tower in TINY_TOWERS:
        backbone = EfficientNet(
            **TINY_TOWERS[config.image_tower],
            default_size=size,
            dropout_rate=0.0,
            drop_connect_rate=0.0,
            name=config.image_tower,
            **common,
        )
    else:
        known = ", ".join([*IMAGE_TOWERS, *TINY_TOWERS, *CONV_TOWERS])
        raise UsageError(f"unknown image_tower {config.image_tower!r} (known: {known})")
    last_block = backbone.get_layer("top_conv").input  # the head starts here
    tower = keras.Model(backbone.input, last_block, name=config.image_tower)
    return _pooled_unit_embeddings(tower, size)


def _pooled_unit_embeddings(tower: keras.Model, size: int) -> keras.Model:
    """The global average of a tower's last feature map, L2-normalised."""
    images = keras.Input((size, size, 3), dtype="float32", name="images")
    features = keras.layers.GlobalAveragePooling2D(name="global_pool")(tower(images))
    embeddings = keras.layers.UnitNormalization(dtype="float32", name="l2_normalise")(features)
    return keras.Model(images, embeddings, name="image_encoder")


def conv_tower(name: str, size: int) -> keras.Model:
    """A plain conv net over raw 0..255 pixels (scaled to -1..1 inside, like the stock towers):
    per stage a 3x3 conv, then a 3x3 conv with stride 2, each with BatchNorm and ReLU."""
    images = keras.Input((size, size, 3), dtype="float32", name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(images)
    for stage, width in enumerate(CONV_TOWERS[name], start=1):
        for conv, stride in (("a", 1), ("b", 2)):
            prefix = f"stage{stage}{conv}"
            x = keras.layers.Conv2D(
                width, 3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv"
            )(x)
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
    return keras.Model(images, x, name=name)


def build_text_encoder(config: TrainConfig, vocabulary_size: int, embed_dim: int) -> keras.Model:
    """{"token_ids", "padding_mask"} int32 [B, L] -> unit vectors [B, embed_dim] float32.

    ALIGN takes BERT's [CLS] token and adds "a fully-connected layer with linear activation"
    to match the image tower's embedding size.
    """
    if config.text_tower not in TEXT_TOWERS:
        known = ", ".join(TEXT_TOWERS)
        raise UsageError(f"unknown text_tower {config.text_tower!r} (known: {known})")
    layers, heads, hidden, intermediate = TEXT_TOWERS[config.text_tower]
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=intermediate,
        dropout=config.text_dropout,
        max_sequence_length=config.max_tokens,
        num_segments=1,
        name="bert",
    )
    backbone.get_layer("pooled_dense").trainable = False  # ALIGN reads [CLS] itself, unpooled
    token_ids = keras.Input((config.max_tokens,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((config.max_tokens,), dtype="int32", name="padding_mask")
    # One segment only: token_ids * 0 is the segment id of every token, built from stock layers
    # so the exported model loads without this project's code.
    segment_ids = keras.layers.Rescaling(0.0, dtype="int32", name="segment_ids")(token_ids)
    sequence = backbone(
        {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
    )["sequence_output"]
    if config.text_pooling == "cls":
        pooled = keras.layers.Cropping1D((0, config.max_tokens - 1), name="cls_token")(sequence)
        pooled = keras.layers.Flatten(name="cls")(pooled)
    else:  # the mean over the real tokens ([CLS] and [SEP] included, padding not)
        pooled = keras.layers.GlobalAveragePooling1D(name="mean_tokens")(
            sequence, mask=padding_mask
        )
    projected = keras.layers.Dense(embed_dim, name="projection")(pooled)
    embeddings = keras.layers.UnitNormalization(dtype="float32", name="l2_normalise")(projected)
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask}, embeddings, name="text_encoder"
    )
