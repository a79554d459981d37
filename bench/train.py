"""Trainer throughput on CPU: Keras fit vs a bare tf.function loop, and the input pipeline's rate.

    .venv/bin/python bench/train.py [--steps 30] [--batch-size 64] [--image-size 64]

Rows: the tf.data input alone; the same model, loss and optimizer stepped by a bare
tf.function over one cached batch (the floor); align-train's Keras loop over that cached batch
(its overhead ratio, target <= 1.1x); and align-train's loop over the real input (which must
run at the cached rate if the input is not the bottleneck).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.training.synthetic import make_pairs, write_shards  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data import make_dataset  # noqa: E402
from training.model import build_dual_encoder  # noqa: E402
from training.optimizer import make_optimizer  # noqa: E402
from training.tokenize import AlignTokenizer  # noqa: E402
from training.vocab import learn_vocabulary, text_files  # noqa: E402


def rate(batches: int, batch_size: int, seconds: float) -> float:
    return batches * batch_size / seconds


def time_input(dataset, steps: int) -> float:
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
    batch["images"].numpy()
    return time.perf_counter() - start


def time_bare(model, batch, steps: int) -> float:
    @tf.function
    def step(batch):
        loss, gradients, _ = model.loss_and_gradients(batch)
        model.optimizer.apply(gradients, model.trainable_variables)
        return loss

    step(batch).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(batch)
    loss.numpy()
    return time.perf_counter() - start


def time_fit(model, dataset, steps: int) -> float:
    model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)  # trace outside the clock
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=2048)
    parser.add_argument("--steps-per-execution", type=int, default=None, help="config override")
    parser.add_argument("--precision", default="float32", help="float32, bfloat16 or float16")
    args = parser.parse_args(argv)
    resize = round(args.image_size * 346 / 289)
    config = load_config(
        "small",
        image_size=args.image_size,
        resize_size=resize,
        batch_size=args.batch_size,
        mixed_precision=args.precision,
    )
    policy = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    keras.mixed_precision.set_dtype_policy(policy.get(args.precision, "float32"))
    with tempfile.TemporaryDirectory() as scratch:
        shards = write_shards(scratch, make_pairs(args.pairs, 96, seed=0), num_shards=8)
        vocabulary = learn_vocabulary(text_files(shards), 1000)
        tokenizer = AlignTokenizer(vocabulary, config.lowercase, config.max_tokens)
        dataset = make_dataset(shards, config, tokenizer, config.batch_size)
        model = build_dual_encoder(config, len(vocabulary))
        model.compile(
            optimizer=make_optimizer(config), steps_per_execution=config.steps_per_execution
        )
        batch = next(iter(dataset))
        cached = tf.data.Dataset.from_tensors(batch).repeat()

        runs = {
            "input pipeline alone (tf.data)": lambda: time_input(dataset, args.steps),
            "bare tf.function loop, cached batch": lambda: time_bare(model, batch, args.steps),
            "align-train loop (Keras fit), cached batch": lambda: time_fit(
                model, cached, args.steps
            ),
            "align-train loop (Keras fit), real input": lambda: time_fit(
                model, dataset, args.steps
            ),
        }
        # Each twice, interleaved, best kept: the first rounds also warm oneDNN's caches.
        seconds = {name: float("inf") for name in runs}
        for _ in range(2):
            for name, measure in runs.items():
                seconds[name] = min(seconds[name], measure())
    rates = {name: rate(args.steps, args.batch_size, s) for name, s in seconds.items()}
    names = list(rates)
    print(
        f"\ntraining throughput, {args.image_size}px, batch {args.batch_size}, "
        f"{args.precision}, {config.image_tower} + {config.text_tower}, {args.steps} steps"
    )
    print(f"{'':46s} {'images/s':>10s} {'steps/s':>8s}")
    for name in names:
        print(f"{name:46s} {rates[name]:10.1f} {rates[name] / args.batch_size:8.2f}")
    overhead = rates[names[1]] / rates[names[2]]
    headroom = rates[names[0]] / rates[names[3]]
    print(f"trainer overhead (bare / Keras fit, cached): {overhead:.3f}x   (target <= 1.1x)")
    print(f"input headroom (input alone / trainer consumption): {headroom:.2f}x   (want > 1)")
    print(f"real input vs cached batch: {rates[names[3]] / rates[names[2]]:.3f}x")


if __name__ == "__main__":
    main()
