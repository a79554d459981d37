"""TensorBoard scalars written with core TensorFlow, for the trainer and its evaluations."""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

# TensorBoard's scalar plugin tag, written with core TF so the trainer needs no tensorboard
# package (tf.summary.scalar needs it installed; TensorBoard reads these events the same way).
SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def scalar(name: str, value) -> None:
    """One scalar at the default writer's step."""
    tf.summary.write(name, tf.cast(value, tf.float32), metadata=SCALAR_METADATA)
