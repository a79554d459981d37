"""ALIGN's optimiser: LAMB with decoupled weight decay and a linear warmup then linear decay."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

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


@keras.saving.register_keras_serializable(package="align")
class Lamb(keras.optimizers.Lamb):
    """LAMB (You et al. 2020) whose trust ratio skips the variables weight decay skips.

    Keras's Lamb scales every variable's Adam step by ||w|| / ||step||. For a bias, a norm's
    scale or the temperature that is wrong: LAMB's reference code and BERT's exclude them from
    layer adaptation as from weight decay (``exclude_from_layer_adaptation`` defaults to the
    weight-decay list), so they take plain Adam steps. On a scalar the trust ratio turns every
    step into a fixed fraction of the value itself, whatever the gradient says.
    """

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        m_hat = ops.divide(m, 1.0 - ops.power(ops.cast(self.beta_1, variable.dtype), step))
        v_hat = ops.divide(v, 1.0 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        update = ops.divide(m_hat, ops.add(ops.sqrt(v_hat), self.epsilon))
        if self._use_weight_decay(variable):  # layer adaptation: the trust ratio
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            u_norm = ops.sqrt(ops.sum(ops.square(update)))
            usable = ops.logical_and(ops.greater(w_norm, 0), ops.greater(u_norm, 0))
            update = update * ops.where(usable, w_norm / ops.maximum(u_norm, 1e-30), 1.0)
        self.assign_sub(variable, lr * update)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    schedule = WarmupLinearDecay(config.learning_rate, config.warmup_steps, config.steps)
    kind = Lamb if config.optimizer == "lamb" else keras.optimizers.AdamW
    optimizer = kind(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
