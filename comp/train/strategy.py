"""The one place where the hardware and precision of training are chosen: CPU, GPU(s) or TPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from comp.errors import CompError


@dataclass
class Hardware:
    strategy: Any
    policy: str  # keras mixed-precision policy name
    description: str
    replicas: int


def choose_strategy(tpu: str | None) -> Hardware:
    """The one place where CPU, GPU(s) or TPU is decided.

    `--tpu [NAME]`: TPUStrategy through TPUClusterResolver, bfloat16 compute (augmentation stays
    float32 in the input pipeline). Several GPUs (or several logical CPUs): MirroredStrategy.
    One GPU: mixed float16. Otherwise the CPU in float32.
    """
    import tensorflow as tf

    if tpu is not None:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=None if tpu in ("", "auto") else tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        except Exception as exc:  # noqa: BLE001 - any failure to find a TPU means "no TPU"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CompError(f"--tpu: no TPU found ({reason}); run on a TPU host or drop --tpu "
                            "to train on the GPU or CPU") from None
        return Hardware(strategy, "mixed_bfloat16",
                        f"TPU ({strategy.num_replicas_in_sync} cores)",
                        strategy.num_replicas_in_sync)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return Hardware(strategy, "mixed_float16", f"{len(gpus)} GPUs (MirroredStrategy)",
                        len(gpus))
    if len(gpus) == 1:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return Hardware(tf.distribute.get_strategy(), "mixed_float16", f"1 GPU ({name})", 1)
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
        return Hardware(strategy, "float32", f"{len(cpus)} logical CPUs (MirroredStrategy)",
                        len(cpus))
    return Hardware(tf.distribute.get_strategy(), "float32",
                    f"CPU ({os.cpu_count()} cores)", 1)
