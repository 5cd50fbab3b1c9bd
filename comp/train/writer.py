"""An epoch's files written beside the training: a copy of the model taken between epochs,
saved and committed by one background thread while the next epoch trains."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras

from comp.workspace import atomic_write


def _keras_skipsets() -> None:
    """Keras 3 caches the attribute skipsets its saving walk needs under another key than the
    one it reads (`saving_attr_skipset_*` against `saving_attr_skiplist_*`), so every save
    rebuilds them by constructing reference layers, optimizers and metrics: about a third of
    a small model's save. Store them where Keras looks (per thread: Keras' global state is
    thread-local, and `clear_session` empties it)."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:  # a Keras without these internals saves as it does
        return
    for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer",
                 "Loss"):
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key, None) is None:
            global_state.set_global_attribute(key, saving_lib.get_attr_skipset(kind))


def save_model(model: keras.Model, path: Path) -> None:
    """model.save to a temporary .keras beside `path`, then rename (never half-written)."""
    _keras_skipsets()
    atomic_write(path, model.save)


def _pairs(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(tuple(u.shape) == tuple(v.shape) and u.dtype == v.dtype
                                    for u, v in zip(a, b, strict=True))


def shadow_of(model: keras.Model) -> keras.Model | None:
    """A second model of the same layers, compiled alike, whose weights and optimizer state
    can take the trained model's (`copy_into`): the background thread saves it while the
    model trains on. None where the copy would not match variable for variable (then the
    caller saves the model itself)."""
    try:
        shadow = keras.models.clone_model(model)
        # what is frozen stays frozen (a warm-up's base, a fine-tuned base's batch norm):
        # parents before their layers, as the walk yields them
        for mine, theirs in zip(shadow._flatten_layers(), model._flatten_layers(),
                                strict=True):
            mine.trainable = theirs.trainable
        shadow.compile_from_config(model.get_compile_config())
        if model.optimizer.built and not shadow.optimizer.built:
            shadow.optimizer.build(shadow.trainable_variables)
    except Exception:  # noqa: BLE001 - a model Keras cannot clone is saved in the thread that trains
        return None
    if not (_pairs(shadow.weights, model.weights) and _pairs(
            shadow.optimizer.variables, model.optimizer.variables)):
        return None
    return shadow


def copy_into(shadow: keras.Model, model: keras.Model) -> None:
    """The model's weights and optimizer state, as they are now, into the shadow: copies
    (JAX's training step donates the model's arrays to the next step, which frees them)."""
    pairs = [*zip(shadow.weights, model.weights, strict=True),
             *zip(shadow.optimizer.variables, model.optimizer.variables, strict=True)]
    for mine, theirs in pairs:
        mine.assign(keras.ops.copy(theirs.value))


class EpochWriter:
    """One thread that writes an epoch's files while the next epoch trains. `submit(job)`
    first waits for the previous job (so at most one epoch is being written, and in epoch
    order) and raises its error, if it had one, in the training thread; `wait()` waits for
    the one in flight; `close()` waits, then stops the thread."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="comp-epoch-writer")
        self.pending: Future | None = None

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        self.pending = self.pool.submit(job)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
