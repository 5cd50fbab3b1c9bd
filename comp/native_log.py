"""TensorFlow's C++ start-up lines (absl warnings, "Could not find cuda drivers", cuInit
errors) are written straight to file descriptor 2 while TensorFlow loads, before any Python
logging setting can reach them. `load_keras` loads it with that descriptor pointed at
/dev/null, so a user's terminal shows comp's own lines only; `comp ... --verbose` (or
COMP_VERBOSE=1) lets them through."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "COMP_VERBOSE"


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (Python's own sys.stderr too)."""
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_keras() -> str:
    """Import Keras and its backend (`KERAS_BACKEND`: tensorflow by default, or jax) without
    TensorFlow's C++ start-up lines, and look for GPUs once; returns the backend's name."""
    if "keras" in sys.modules:
        import keras

        backend = keras.backend.backend()
        if backend != "tensorflow" or "tensorflow" in sys.modules:
            return backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the cuInit error, when there is no GPU
    if backend == "tensorflow" and os.environ.get(VERBOSE_ENV) != "1":
        tf.get_logger().setLevel("ERROR")  # Python-side notes (e.g. on retracing)
    return backend
