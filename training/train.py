"""align-train's work: trains ALIGN's dual encoder on the training shards, resumable, then
exports it. Its command line is training/cli/train.py.

Reads top to bottom: set-up, input, model, loss and step (training.model.DualEncoder and
training.loss), checkpoints, evaluation, the loop, the export.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import tensorflow as tf

from training.config import TrainConfig, UsageError
from training.data import distributed_dataset, list_shards
from training.distribute import choose_strategy, jit_compile_plan, set_precision, split_cpu
from training.encoders import Encoders, EncoderSpec
from training.eval_callback import EvalCallback
from training.evaluate import split_attributes
from training.export import export_encoders
from training.model import DualEncoder, build_dual_encoder
from training.optimizer import make_optimizer
from training.summaries import scalar
from training.tokenize import AlignTokenizer
from training.train_progress import TrainProgress, summary


def read_vocabulary(path: str) -> list[str]:
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"vocabulary not found: {path}")
    with tf.io.gfile.GFile(path) as handle:
        vocabulary = [line.rstrip("\n") for line in handle if line.strip()]
    if "[CLS]" not in vocabulary or "[SEP]" not in vocabulary or "[PAD]" not in vocabulary:
        raise UsageError(f"{path} is not a BERT vocabulary (needs [PAD], [CLS], [SEP])")
    return vocabulary


class Checkpointer(keras.callbacks.Callback):
    """Saves model, optimizer state and step every epoch (= ``checkpoint_every`` steps)."""

    def __init__(self, manager: tf.train.CheckpointManager, step: tf.Variable):
        super().__init__()
        self.manager, self.step = manager, step

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=int(self.step.numpy()))


class Scalars(keras.callbacks.Callback):
    """TensorBoard scalars every ``every`` steps: loss, temperature, lr, accuracy, images/s."""

    def __init__(self, log_dir: str, every: int, batch_size: int, step: tf.Variable):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.every, self.batch_size, self.step = every, batch_size, step
        self.last_step, self.last_time = None, None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.step.numpy())
        if self.last_step is None:
            self.last_step, self.last_time = step, time.perf_counter()  # skip tracing time
            return
        if step // self.every == self.last_step // self.every:
            return
        now = time.perf_counter()
        rate = (step - self.last_step) * self.batch_size / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        learning_rate = self.model.optimizer.learning_rate
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                scalar(name, value)
            scalar("learning_rate", learning_rate)
            scalar("images_per_second", rate)
        self.writer.flush()


def eval_callbacks(args, log_dir: str, encoders_fn) -> list[keras.callbacks.Callback]:
    """The eval helper's periodic zero-shot/retrieval evaluation, when asked and present."""
    if not args.eval_every or not (args.eval_zero_shot or args.eval_retrieval):
        return []
    try:
        callback = EvalCallback(
            args.eval_zero_shot,
            args.eval_retrieval,
            args.eval_every,
            log_dir,
            encoders_fn,
            attributes=split_attributes(args.eval_attributes),
        )
    except ValueError as error:
        raise UsageError(f"--eval-*: {error}") from None
    return [callback]


def live_encoders_fn(model: DualEncoder, tokenizer: AlignTokenizer, config: TrainConfig):
    """Builds the eval helper's Encoders over the live towers (no export round trip)."""

    def encoders():
        spec = EncoderSpec(
            image_size=config.image_size,
            resize_size=config.resize_size,
            max_tokens=config.max_tokens,
            lowercase=config.lowercase,
            embed_dim=int(model.image_encoder.output_shape[-1]),
            temperature=float(keras.ops.convert_to_numpy(model.temperature)),
        )
        return Encoders(model.image_encoder, model.text_encoder, tokenizer, spec)

    return encoders


def set_up(args: argparse.Namespace, config: TrainConfig):
    """Devices, precision, seeds, and the vocabulary's tokeniser: (strategy, policy, vocabulary,
    tokenizer). Fails early on a shard glob that matches nothing or a bad vocabulary."""
    if args.cpu_replicas > 1:
        split_cpu(args.cpu_replicas)
    strategy = choose_strategy(args.tpu, args.cpu_replicas)
    policy = set_precision(config.mixed_precision, strategy)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    list_shards(args.shards)  # fail early, with the glob in the message
    vocabulary = read_vocabulary(args.vocab)
    tokenizer = AlignTokenizer(vocabulary, config.lowercase, config.max_tokens)
    return strategy, policy, vocabulary, tokenizer


def build_or_resume(strategy, config: TrainConfig, vocabulary: list[str], model_dir: str):
    """Model, optimizer and checkpoint manager, restored from the latest checkpoint if one
    exists (automatic resume): (model, manager). The step is the optimizer's iterations."""
    with strategy.scope():
        model = build_dual_encoder(config, len(vocabulary))
        whole_step_xla, tower_xla = jit_compile_plan(config.jit_compile, strategy)
        if tower_xla:
            model.compile_towers_with_xla()
        model.compile(
            optimizer=make_optimizer(config),
            steps_per_execution=config.steps_per_execution,
            jit_compile=whole_step_xla,
        )
        model.optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(model_dir, "checkpoints"), config.keep_checkpoints
        )
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    return model, manager


def fit_to_the_last_step(model, config: TrainConfig, dataset, dataset_from, callbacks) -> dict:
    """Runs ``model.fit`` from the current step to ``config.steps``: one Keras "epoch" per
    checkpoint interval on ``dataset``, then the tail shorter than one interval on
    ``dataset_from(step)``. Each input is reseeded by the step it starts at, so a resumed run
    does not replay old batches. Returns the Keras history of both fits, joined."""
    step = model.optimizer.iterations
    start = int(step.numpy())
    every = config.checkpoint_every
    full = config.steps // every
    verbose = 0  # the progress line, in a log as on a terminal (Keras's bar is tty-only)
    history = {}
    if start < full * every:
        fit = model.fit(
            dataset,
            epochs=full,
            initial_epoch=start // every,
            steps_per_epoch=every,
            callbacks=callbacks,
            verbose=verbose,
        )
        history = fit.history
        start = int(step.numpy())
    if start < config.steps:
        fit = model.fit(
            dataset_from(start),
            epochs=1,
            steps_per_epoch=config.steps - start,
            callbacks=callbacks,
            verbose=verbose,
        )
        history = {k: history.get(k, []) + v for k, v in fit.history.items()}
    return history


def train(args: argparse.Namespace, config: TrainConfig) -> dict:
    """Set-up, model (resumed), the loop with its callbacks, then the export."""
    strategy, policy, vocabulary, tokenizer = set_up(args, config)
    model, manager = build_or_resume(strategy, config, vocabulary, args.model_dir)
    step = model.optimizer.iterations
    start = int(step.numpy())
    xla = ", XLA" if config.jit_compile else ""
    print(f"align-train: {strategy.num_replicas_in_sync} replica(s), {policy}{xla}, step {start}")

    def dataset_from(first_step: int):
        return distributed_dataset(
            strategy, args.shards, config, tokenizer, seed=config.seed + first_step
        )

    dataset = dataset_from(start)
    log_dir = os.path.join(args.model_dir, "tensorboard")
    progress = TrainProgress(config.steps, config.batch_size, step, args.progress_every, args.quiet)
    callbacks = [
        Checkpointer(manager, step),
        Scalars(os.path.join(log_dir, "train"), config.log_every, config.batch_size, step),
        *eval_callbacks(args, log_dir, live_encoders_fn(model, tokenizer, config)),
        progress,
    ]
    history = fit_to_the_last_step(model, config, dataset, dataset_from, callbacks)
    progress.close()

    # The towers, vocabulary and encoders.json for align-eval / align-embed.
    export = export_encoders(model, config, vocabulary, args.model_dir)
    print(summary(progress, export, args.model_dir), flush=True)
    return {"step": int(step.numpy()), "history": history, "export": export, "model": model}
