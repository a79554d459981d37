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


# NVIDIA GPUs with bfloat16 tensor cores: Ampere (compute capability 8.0) and later.
BF16_COMPUTE_CAPABILITY = (8, 0)


def device_kind(strategy: tf.distribute.Strategy) -> str:
    """ "tpu", "gpu", "gpu-bf16" (a GPU with bf16 units) or "cpu": where the replicas run."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "cpu"
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    capabilities = [tuple(d.get("compute_capability") or (0, 0)) for d in details]
    return "gpu-bf16" if min(capabilities) >= BF16_COMPUTE_CAPABILITY else "gpu"


def precision_policy(setting: str, kind: str) -> str:
    """The Keras dtype policy for a config's ``mixed_precision`` on a device kind.

    "auto" prefers bfloat16 wherever the hardware has it: TPUs (ALIGN's), GPUs from Ampere on
    (A100, H100) and CPUs (recent cores have bf16 units). bfloat16 keeps float32's exponent
    range, so gradients neither underflow nor need loss scaling. Only older GPUs get float16,
    where Keras wraps the optimizer in a LossScaleOptimizer. Under either policy variables,
    the L2 normalisation, the temperature and the loss stay float32 (training.model).
    """
    if setting == "auto":
        setting = "float16" if kind == "gpu" else "bfloat16"
    return {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}.get(setting, "float32")


def set_precision(setting: str, strategy: tf.distribute.Strategy) -> str:
    """Sets the global Keras dtype policy before any layer is built; returns its name."""
    policy = precision_policy(setting, device_kind(strategy))
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def jit_compile_plan(jit_compile: bool, strategy: tf.distribute.Strategy) -> tuple[bool, bool]:
    """(Keras's whole-step ``jit_compile``, XLA per tower) for ``--jit-compile``.

    One replica: Keras compiles the whole step (towers, loss, optimizer) with XLA. Several
    replicas (MirroredStrategy, multi-worker): Keras's whole-step XLA fails on variables
    mirrored on other devices, so each tower is compiled instead (DualEncoder.
    compile_towers_with_xla). TPUStrategy compiles everything with XLA by itself.
    """
    if not jit_compile or isinstance(strategy, tf.distribute.TPUStrategy):
        return False, False
    if strategy.num_replicas_in_sync == 1:
        return True, False
    return False, True
