"""ALIGN's optimiser: LAMB with decoupled weight decay and a linear warmup then linear decay."""

from __future__ import annotations

import keras
import tensorflow as tf

from training.config import TrainConfig

# Scalars and normalisation/bias parameters are not decayed (BERT's and LAMB's practice); the
# temperature in particular must not be pulled toward zero by weight decay.
NO_DECAY = ["temperature", "bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="align")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = peak * t / warmup for t < warmup, then peak * (total - t) / (total - warmup)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        rising = self.peak * step / warmup
        falling = self.peak * (self.total_steps - step) / decay
        return tf.maximum(tf.where(step < self.warmup_steps, rising, falling), 0.0)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    schedule = WarmupLinearDecay(config.learning_rate, config.warmup_steps, config.steps)
    optimizer = keras.optimizers.Lamb(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
