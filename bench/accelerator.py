"""Training throughput and model FLOPs utilisation (MFU) of ALIGN's towers on one accelerator.

    python bench/accelerator.py [--smoke] [--output FILE.json]

Runs a fixed number of training steps (forward, ALIGN's contrastive loss, backward, LAMB
update; bf16 mixed precision) on synthetic inputs with Keras 3's JAX backend, on the first
device JAX finds (a GPU or TPU, else the CPU), for two configs: ``align`` (EfficientNet-B7 +
BERT-Large at 289 px and 64 tokens, training/configs/align.yaml) and ``mid`` (EfficientNet-B3
+ BERT-Base at 224 px). ``--smoke`` runs the small CPU towers at 32 px for a few steps (what
the test suite checks; also what a bare run does on a machine without an accelerator).
Writes, per config: examples_per_second, step_seconds, the device's
bf16 dense peak from PEAK_TFLOPS, the model FLOPs per step and mfu.

Model FLOPs are counted by XLA: the cost analysis of the compiled *forward* pass of both towers
and the loss (a multiply-add is 2 FLOPs; elementwise ops count too, a few percent here), times
3 for forward + backward (the backward pass costs twice the forward: a gradient for the
activations and one for the weights). That is MFU's usual convention (PaLM, appendix B): the
optimizer update and any recomputation are not model FLOPs. The cost analysis of the whole
compiled step is reported beside it (step_flops_xla) for comparison.

Needs no TensorFlow: the towers (training/towers.py) and the loss (training/loss.py) are Keras 3
and keras.ops, so a GPU machine with JAX but no TensorFlow runs it with keras and keras-hub on
PYTHONPATH (docs/training.md, "Accelerator check", says how to build that folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# bf16 dense tensor throughput without sparsity, TFLOP/s, from the vendors' data sheets; the
# first name found in JAX's device_kind wins (so "H100 PCIe" before "H100").
PEAK_TFLOPS = {
    "H200": 989.0,  # same GPU die as the H100 SXM
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "TPU v6": 918.0,
    "TPU v5p": 459.0,
    "TPU v5 lite": 197.0,  # v5e
    "TPU v4": 275.0,
    "TPU v3": 123.0,
}

# name: (config overrides, global batch). align: the paper's towers and input at a batch that
# fits one 80 GB GPU in bf16 (halved until it fits); mid: a config a single GPU trains fast.
CONFIGS = {
    "align": ({}, 128),
    "mid": (dict(image_tower="efficientnet_b3", text_tower="bert_base", image_size=224), 256),
}
SMOKE = {
    "small": (
        dict(image_tower="convnet_tiny", text_tower="bert_tiny", image_size=32, max_tokens=16),
        8,
    ),
}
VOCABULARY_SIZE = 30_522  # BERT's uncased WordPiece


def peak_tflops(device_kind: str) -> float | None:
    """The bf16 dense peak of a device from PEAK_TFLOPS, None where the table has none."""
    for name, peak in PEAK_TFLOPS.items():
        if name.lower() in device_kind.lower():
            return peak
    return None


def synthetic_batch(config, batch_size: int, seed: int = 0) -> dict:
    """Random pixels 0..255 and token ids, every token real: the towers' full work."""
    import numpy as np  # noqa: PLC0415 - after KERAS_BACKEND is set, with the frameworks

    rng = np.random.default_rng(seed)
    size, tokens = config.image_size, config.max_tokens
    return {
        "images": rng.uniform(0, 255, (batch_size, size, size, 3)).astype("float32"),
        "token_ids": rng.integers(1000, VOCABULARY_SIZE, (batch_size, tokens)).astype("int32"),
        "padding_mask": np.ones((batch_size, tokens), "int32"),
    }


def build(config):
    """Both towers as one Keras model (batch -> two embeddings), the log-temperature, LAMB."""
    import keras  # noqa: PLC0415

    from training.towers import build_image_encoder, build_text_encoder  # noqa: PLC0415

    image_encoder = build_image_encoder(config)
    text_encoder = build_text_encoder(config, VOCABULARY_SIZE, image_encoder.output_shape[-1])
    inputs = {
        "images": keras.Input(image_encoder.input_shape[1:], name="images"),
        "token_ids": keras.Input((config.max_tokens,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((config.max_tokens,), dtype="int32", name="padding_mask"),
    }
    texts = {key: inputs[key] for key in ("token_ids", "padding_mask")}
    model = keras.Model(inputs, [image_encoder(inputs["images"]), text_encoder(texts)])
    log_temperature = keras.Variable(0.0, dtype="float32", name="log_temperature")
    # Keras's LAMB (the trainer's subclass only changes which variables get a trust ratio).
    optimizer = keras.optimizers.Lamb(learning_rate=1e-3, weight_decay=config.weight_decay)
    optimizer.build([*model.trainable_variables, log_temperature])
    return model, log_temperature, optimizer


def make_step(model, optimizer, label_smoothing: float):
    """The jitted train step over (trainable, non-trainable, optimizer) state, and the forward
    pass (both towers and the loss) whose cost analysis gives the model FLOPs."""
    import jax  # noqa: PLC0415
    from keras import ops  # noqa: PLC0415

    from training.loss import contrastive_loss  # noqa: PLC0415

    def forward(trainable, non_trainable, batch, training):
        *weights, log_temperature = trainable
        (images, texts), non_trainable = model.stateless_call(
            weights, non_trainable, batch, training=training
        )
        loss, _ = contrastive_loss(images, texts, ops.exp(log_temperature), label_smoothing)
        return loss, non_trainable

    gradient = jax.value_and_grad(lambda *a: forward(*a, training=True), has_aux=True)

    def step(state, batch):
        trainable, non_trainable, optimizer_variables = state
        (loss, non_trainable), grads = gradient(trainable, non_trainable, batch)
        trainable, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, grads, trainable
        )
        return (trainable, non_trainable, optimizer_variables), loss

    forward_only = jax.jit(lambda t, n, b: forward(t, n, b, training=False)[0])
    return jax.jit(step, donate_argnums=0), forward_only


def xla_flops(jitted, *args) -> float:
    """FLOPs of one call as XLA's cost analysis of the compiled function counts them."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, list | tuple):  # older JAX: one dict per computation
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0))


def measure(name: str, overrides: dict, batch_size: int, steps: int, peak: float | None) -> dict:
    """Builds, compiles (outside the clock), runs ``steps`` steps; returns the figures."""
    import jax  # noqa: PLC0415

    from training.config import TrainConfig  # noqa: PLC0415

    config = dataclasses.replace(TrainConfig(), **overrides)
    model, log_temperature, optimizer = build(config)
    step, forward = make_step(model, optimizer, config.label_smoothing)
    trainable = [v.value for v in model.trainable_variables] + [log_temperature.value]
    non_trainable = [v.value for v in model.non_trainable_variables]
    state = (trainable, non_trainable, [v.value for v in optimizer.variables])
    batch = jax.device_put(synthetic_batch(config, batch_size))
    model_flops = 3 * xla_flops(forward, trainable, non_trainable, batch)
    step_flops = xla_flops(step, state, batch)

    started = time.perf_counter()
    state, loss = step(state, batch)  # the first call: buffers donated, caches warmed
    jax.block_until_ready(loss)
    first_step_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        state, loss = step(state, batch)
    jax.block_until_ready(loss)
    seconds = (time.perf_counter() - started) / steps
    achieved = model_flops / seconds
    return {
        "config": name,
        "image_tower": config.image_tower,
        "text_tower": config.text_tower,
        "image_size": config.image_size,
        "max_tokens": config.max_tokens,
        "batch_size": batch_size,
        "steps": steps,
        "step_seconds": seconds,
        "examples_per_second": batch_size / seconds,
        "first_step_seconds": first_step_seconds,
        "model_flops_per_step": model_flops,
        "step_flops_xla": step_flops,
        "achieved_tflops": achieved / 1e12,
        "mfu": achieved / (peak * 1e12) if peak else None,
        "last_loss": float(loss),
    }


def out_of_memory(error: Exception) -> bool:
    return "RESOURCE_EXHAUSTED" in str(error) or "out of memory" in str(error).lower()


def measure_fitting(name, overrides, batch_size, steps, peak) -> dict:
    """``measure`` at the largest batch, from ``batch_size`` down by halves, that fits."""
    while True:
        try:
            return measure(name, overrides, batch_size, steps, peak)
        except Exception as error:  # XlaRuntimeError, whose module path moves between versions
            if not out_of_memory(error) or batch_size == 1:
                raise
            print(f"{name}: batch {batch_size} does not fit, trying {batch_size // 2}")
            batch_size //= 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small towers, 32 px, 3 steps")
    parser.add_argument("--output", help="write the figures to this JSON file")
    parser.add_argument("--steps", type=int, help="timed steps per config (default 20; smoke 3)")
    parser.add_argument("--configs", help="comma-separated subset of align,mid")
    parser.add_argument("--batch-size", type=int, help="global batch for every config")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, if not in the table")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"  # before Keras's first import: this bench is JAX's
    import jax  # noqa: PLC0415
    import keras  # noqa: PLC0415

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    device = jax.devices()[0]
    peak = args.peak_tflops or peak_tflops(device.device_kind)
    configs = SMOKE if args.smoke else CONFIGS
    if device.platform == "cpu" and not (args.smoke or args.configs):
        # `make bench` runs every script bare: B7 + BERT-Large would take hours on a CPU.
        print("no accelerator found: running the smoke configs (--configs align,mid to insist)")
        configs = SMOKE
    if args.configs:
        configs = {name: CONFIGS[name] for name in args.configs.split(",")}
    steps = args.steps or (3 if args.smoke else 20)
    report = {
        "device": device.device_kind,
        "platform": device.platform,
        "backend": f"keras {keras.__version__} on jax {jax.__version__}",
        "precision": "mixed_bfloat16",
        "peak_tflops": peak,
        "peak_source": "--peak-tflops" if args.peak_tflops else "PEAK_TFLOPS (bf16 dense)",
        "results": [],
    }
    for name, (overrides, batch_size) in configs.items():
        result = measure_fitting(name, overrides, args.batch_size or batch_size, steps, peak)
        report["results"].append(result)
        mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "n/a (no peak known)"
        print(
            f"{name}: {result['examples_per_second']:.1f} examples/s, batch "
            f"{result['batch_size']}, {result['step_seconds'] * 1000:.1f} ms/step, "
            f"{result['achieved_tflops']:.2f} TFLOP/s, MFU {mfu} on {device.device_kind}",
            flush=True,
        )
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
