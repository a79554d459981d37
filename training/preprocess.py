"""The one image preprocessing of training, the export and evaluation: decode, resize, crop.

Training (tf.data over the shards) calls ``decode_image`` and ``resize_and_crop``; the export's
``serving_image`` signature, which align-eval and align-embed run, traces the same two through
``crop_encoded_images``. A model is therefore evaluated and served on exactly the pixels it
was trained on: the same decoder (JPEGs with libjpeg's accurate integer IDCT, the one Pillow
uses), the same resize, the same central crop. The parameters travel with the model in
``encoders.json`` (``image_size``, ``resize_size``).
"""

from __future__ import annotations

import tensorflow as tf


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded bytes -> uint8 [H, W, 3]; JPEGs with the accurate IDCT (Pillow's pixels).

    Other formats decode with their own channels, then drop alpha or repeat grey: TensorFlow
    refuses to turn a WebP with alpha into three channels itself, and the web has many.
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: _to_rgb(tf.io.decode_image(encoded, expand_animations=False)),
    )


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 1|2|3|4] -> [H, W, 3]: grey repeated, alpha dropped (not composited)."""
    colour = tf.cond(
        tf.shape(image)[-1] >= 3,
        lambda: image[..., :3],
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
    )
    return tf.ensure_shape(colour, [None, None, 3])


def crop_encoded_images(encoded: tf.Tensor, image_size: int, resize_size: int) -> tf.Tensor:
    """The evaluation transform over a batch of encoded images: string [B] -> float32
    [B, S, S, 3], each decoded, resized and centre-cropped exactly as ``make_dataset`` does."""
    return tf.map_fn(
        lambda one: resize_and_crop(decode_image(one), image_size, resize_size),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )


def resize_shorter_side(image: tf.Tensor, resize_size: int) -> tf.Tensor:
    """Shorter side to ``resize_size``, aspect kept, antialiased bilinear: float32 pixels."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_size / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), resize_size)
    return tf.image.resize(image, new_size, method="bilinear", antialias=True)


def resize_and_crop(
    image: tf.Tensor, image_size: int, resize_size: int, training: bool = False, seed=None
) -> tf.Tensor:
    """Shorter side to ``resize_size``, then a random (train) or central (eval) square crop.

    ALIGN: "resize to 346, random crop 289 for training, central crop 289 for eval". Training
    also flips left-right at random. Randomness is stateless, keyed by ``seed`` (int64 [2]),
    so a deterministic run is repeatable bit for bit. Returns float32 pixels in 0..255.

    An image whose shorter side is already ``resize_size`` (the download stage stores every
    larger one so: pipeline/download) skips the resize, which is then the identity:
    antialiased bilinear at scale 1 weighs each pixel by 1 and its neighbours by 0. Skipping
    it leaves the pixels as they were and the input pipeline 3x faster per core
    (bench/input_pipeline.py, docs/training.md).
    """
    image = tf.cond(
        tf.reduce_min(tf.shape(image)[:2]) == resize_size,
        lambda: tf.cast(image, tf.float32),  # what the resize would return, at a third the cost
        lambda: resize_shorter_side(image, resize_size),
    )
    new_size = tf.shape(image)[:2]
    if training:
        image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed=seed)
        image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    else:
        top = (new_size[0] - image_size) // 2
        left = (new_size[1] - image_size) // 2
        image = image[top : top + image_size, left : left + image_size]
    return tf.clip_by_value(tf.ensure_shape(image, [image_size, image_size, 3]), 0.0, 255.0)


@tf.function(reduce_retracing=True)
def central_crop(image: tf.Tensor, image_size: int, resize_size: int) -> tf.Tensor:
    """The evaluation transform as one traced call per size: uint8 [H, W, 3] -> float32."""
    return resize_and_crop(image, image_size, resize_size, training=False)
