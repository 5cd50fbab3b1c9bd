"""The one place where the hardware and precision of training are chosen: CPU, GPU(s) or TPU,
on the Keras backend `KERAS_BACKEND` names (tensorflow by default, or jax)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from comp.errors import CompError

BACKENDS = ("tensorflow", "jax")


@dataclass
class Hardware:
    backend: str
    strategy: Any  # TensorFlow: a tf.distribute strategy; JAX: None (keras.distribution)
    policy: str  # keras mixed-precision policy name
    description: str
    replicas: int

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Where models are built: the strategy's scope on TensorFlow."""
        if self.strategy is None:
            yield
        else:
            with self.strategy.scope():
                yield


def backend() -> str:
    """The Keras backend, or one line when it is one comp does not train on."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise CompError(f"KERAS_BACKEND={name}: comp trains and predicts on "
                        f"{' or '.join(BACKENDS)}; set KERAS_BACKEND to one of them")
    return name


def on_accelerator() -> bool:
    """Whether the backend sees a GPU or TPU (prediction batches are larger there)."""
    if backend() == "jax":
        import jax

        return jax.default_backend() != "cpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def accelerator_present() -> bool:
    """Whether this machine may have a GPU or TPU, told without importing a backend (the
    device files their drivers make, a TPU's environment): where a cached ONNX graph would
    otherwise run without Keras, Keras predicts there instead (`on_accelerator` decides
    once a backend is loaded)."""
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/accel[0-9]*")
                or os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"))


def choose_hardware(*, tpu: bool = False, tpu_name: str | None = None) -> Hardware:
    """The one place where CPU, GPU(s) or TPU is decided.

    `--tpu` (or `--tpu-name NAME`): a TPU in bfloat16; on TensorFlow through TPUStrategy (the
    local TPU VM first, then TPU_NAME / Colab's discovery), on JAX the TPU devices JAX sees.
    Several GPUs (or several logical CPUs): data parallel (MirroredStrategy; JAX:
    keras.distribution.DataParallel). One GPU: mixed float16. Otherwise the CPU in float32.
    """
    tpu = tpu or tpu_name is not None
    if backend() == "jax":
        return _jax_hardware(tpu=tpu, tpu_name=tpu_name)
    import tensorflow as tf

    if tpu:
        strategy = tf.distribute.TPUStrategy(connect_tpu(tpu_name))
        return Hardware("tensorflow", strategy, "mixed_bfloat16",
                        f"TPU ({strategy.num_replicas_in_sync} cores)",
                        strategy.num_replicas_in_sync)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return Hardware("tensorflow", strategy, "mixed_float16",
                        f"{len(gpus)} GPUs (MirroredStrategy)", len(gpus))
    if len(gpus) == 1:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return Hardware("tensorflow", tf.distribute.get_strategy(), "mixed_float16",
                        f"1 GPU ({name})", 1)
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
        return Hardware("tensorflow", strategy, "float32",
                        f"{len(cpus)} logical CPUs (MirroredStrategy)", len(cpus))
    return Hardware("tensorflow", tf.distribute.get_strategy(), "float32",
                    f"CPU ({os.cpu_count()} cores)", 1)


def tpu_candidates(tpu_name: str | None) -> list[str | None]:
    """Where to look for a TPU, in order: the named one; else the TPU VM this process runs on
    ("local": Kaggle, Colab's TPU VMs, Cloud TPU VMs), then TensorFlow's own discovery
    (None: the TPU_NAME variable, a Colab TPU node)."""
    return [tpu_name] if tpu_name else ["local", None]


def connect_tpu(tpu_name: str | None) -> Any:
    """A connected, initialised TPUClusterResolver, or one line saying where comp looked."""
    import tensorflow as tf

    tried = []
    for where in tpu_candidates(tpu_name):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=where)
            if where != "local":  # a TPU VM's chips are this host's own
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return resolver
        except Exception as exc:  # noqa: BLE001 - any failure to reach a TPU means "not here"
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            label = {"local": "this TPU VM", None: "TPU_NAME / Colab"}.get(where, where)
            tried.append(f"{label}: {reason}")
    hint = ("check the name and that this machine can reach it" if tpu_name else
            "run on a TPU VM (Kaggle, Colab, Cloud), set TPU_NAME, or pass --tpu-name NAME")
    raise CompError(f"--tpu: no TPU found ({'; '.join(tried)}); {hint}, or drop --tpu to "
                    "train on the GPU or CPU")


def _jax_hardware(*, tpu: bool, tpu_name: str | None) -> Hardware:
    import jax
    import keras

    if tpu_name is not None:
        raise CompError("--tpu-name: JAX uses the TPU chips of the machine it runs on; pass "
                        "--tpu on the TPU VM, or train with KERAS_BACKEND=tensorflow")
    devices = jax.devices()
    kind = devices[0].platform  # cpu, gpu or tpu
    if tpu and kind != "tpu":
        raise CompError(f"--tpu: no TPU found (JAX sees {len(devices)} {kind} device(s)); run "
                        "on a TPU VM with jax[tpu] installed, or drop --tpu")
    if len(devices) > 1:  # the batch is split across the devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    policy = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(kind, "float32")
    if kind == "cpu":
        what = f"CPU ({os.cpu_count()} cores" + (
            f", {len(devices)} devices, data parallel)" if len(devices) > 1 else ")")
    else:
        name = getattr(devices[0], "device_kind", kind)
        what = f"{len(devices)} x {name}" if len(devices) > 1 else f"1 {kind.upper()} ({name})"
    return Hardware("jax", None, policy, f"{what} on JAX", len(devices))
