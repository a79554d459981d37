"""Where training runs: TPU, several GPUs, several workers or one device; and its precision."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from training.config import UsageError


def split_cpu(replicas: int) -> None:
    """Splits the host CPU into ``replicas`` logical devices (before TensorFlow starts them).

    Lets a laptop or CI run the real multi-replica code path (gather, all-reduce) on CPU.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


def _multi_worker() -> bool:
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return sum(len(tasks) for name, tasks in cluster.items() if name != "ps") > 1


def choose_strategy(tpu: str | None = None, cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """TPUStrategy for ``--tpu``, MultiWorkerMirrored when TF_CONFIG names several workers,
    Mirrored over several GPUs (or ``cpu_replicas`` logical CPUs), else the single device."""
    if tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if _multi_worker():
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    if cpu_replicas > 1:
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        if len(cpus) < cpu_replicas:
            raise UsageError(f"asked for {cpu_replicas} CPU replicas, {len(cpus)} logical CPUs")
        return tf.distribute.MirroredStrategy(cpus[:cpu_replicas])
    return tf.distribute.get_strategy()


def device_kind(strategy: tf.distribute.Strategy) -> str:
    """ "tpu", "gpu" or "cpu": what the strategy's replicas run on."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def precision_policy(setting: str, kind: str) -> str:
    """The Keras dtype policy for a config's ``mixed_precision`` on a device kind.

    "auto" follows ALIGN's hardware habits: bfloat16 on TPU (and CPU, whose recent cores have
    bf16 units), float16 on GPU, where Keras wraps the optimizer in a LossScaleOptimizer.
    """
    if setting == "auto":
        setting = "float16" if kind == "gpu" else "bfloat16"
    return {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}.get(setting, "float32")


def set_precision(setting: str, strategy: tf.distribute.Strategy) -> str:
    """Sets the global Keras dtype policy before any layer is built; returns its name."""
    policy = precision_policy(setting, device_kind(strategy))
    keras.mixed_precision.set_dtype_policy(policy)
    return policy
