"""The dual encoder: both towers (training.towers), the temperature, ALIGN's train step."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from training.config import TrainConfig
from training.loss import contrastive_loss
from training.towers import build_image_encoder, build_text_encoder

__all__ = ["DualEncoder", "build_dual_encoder", "build_image_encoder", "build_text_encoder"]


@keras.saving.register_keras_serializable(package="align")
class DualEncoder(keras.Model):
    """Both towers and the learnable temperature, trained with ALIGN's contrastive loss.

    ``train_step`` gathers embeddings from every replica (see training.loss), so the negatives
    of each step are the whole global batch, and leaves gradient summation and loss scaling to
    Keras's optimizer as for any Keras model.
    """

    def __init__(
        self,
        image_encoder: keras.Model,
        text_encoder: keras.Model,
        temperature_init: float = 1.0,
        label_smoothing: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.temperature_init = temperature_init
        self.label_smoothing = label_smoothing
        # Learned as its logarithm (CLIP's logit scale): steps are relative to the value, it
        # stays positive, and no learning rate can push it through zero.
        self.log_temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(temperature_init)),
            dtype="float32",
            name="log_temperature",
        )
        # Set by ``compile_towers_with_xla``: XLA-compiled tower calls (not saved with the model).
        self.xla_towers: dict | None = None
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "image_to_text_accuracy", "text_to_image_accuracy")
        }

    @property
    def temperature(self) -> tf.Tensor:
        return tf.exp(tf.convert_to_tensor(self.log_temperature))

    def compile_towers_with_xla(self) -> None:
        """Runs each tower's forward pass (and so its gradient) as one XLA-compiled function.

        ``--jit-compile`` under a multi-replica ``tf.distribute`` strategy: Keras's own
        ``jit_compile=True`` compiles the whole step, ``strategy.run`` included, into one XLA
        cluster, which cannot reach variables mirrored on other devices ("Trying to access
        resource ... located in device CPU:1 from device CPU:0"). Compiling per replica,
        tower by tower, leaves the gather, the loss and the optimizer to TensorFlow.
        """

        def compiled(encoder):
            return tf.function(lambda x, training: encoder(x, training=training), jit_compile=True)

        self.xla_towers = {
            "image": compiled(self.image_encoder),
            "text": compiled(self.text_encoder),
        }

    def call(self, inputs: dict, training: bool = False):
        towers = self.xla_towers or {"image": self.image_encoder, "text": self.text_encoder}
        images = towers["image"](inputs["images"], training=training)
        texts = towers["text"](
            {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]},
            training=training,
        )
        return images, texts

    def loss_and_gradients(self, batch: dict):
        """This replica's loss share, its gradients (before any cross-replica sum), metrics."""
        with tf.GradientTape() as tape:
            images, texts = self(batch, training=True)
            loss, metrics = contrastive_loss(images, texts, self.temperature, self.label_smoothing)
            scaled = self.optimizer.scale_loss(loss) if self.optimizer is not None else loss
        gradients = tape.gradient(scaled, self.trainable_variables)
        return loss, gradients, metrics

    def train_step(self, data):
        loss, gradients, metrics = self.loss_and_gradients(data)
        self.optimizer.apply(gradients, self.trainable_variables)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # Each replica's share times R estimates the global loss; the Mean over replicas is it.
        self.trackers["loss"].update_state(loss * replicas)
        for name, value in metrics.items():
            self.trackers[name].update_state(value)
        return {
            **{name: tracker.result() for name, tracker in self.trackers.items()},
            "temperature": self.temperature,
        }

    @property
    def metrics(self):
        return list(self.trackers.values())

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "temperature_init": self.temperature_init,
            "label_smoothing": self.label_smoothing,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("image_encoder", "text_encoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_dual_encoder(config: TrainConfig, vocabulary_size: int) -> DualEncoder:
    """The full model for a config: the text projection matches the image tower's width."""
    image_encoder = build_image_encoder(config)
    text_encoder = build_text_encoder(config, vocabulary_size, image_encoder.output_shape[-1])
    return DualEncoder(
        image_encoder,
        text_encoder,
        temperature_init=config.temperature_init,
        label_smoothing=config.label_smoothing,
        name="dual_encoder",
    )
