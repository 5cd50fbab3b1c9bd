"""An epoch's files written beside the training: the model's copy, the writer thread, and a
save that gives the same file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.backends  # CI runs these under TensorFlow and JAX


def _fitted(frozen: bool = False):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    base_in = keras.Input((6,))
    base = keras.Model(base_in, keras.layers.BatchNormalization()(
        keras.layers.Dense(5, activation="relu")(base_in)), name="base")
    base.trainable = not frozen
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(base(inputs)))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy())
    x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model, x, y


@pytest.mark.parametrize("frozen", [False, True])
def test_the_copy_saves_the_model_as_it_was(tmp_path: Path, frozen: bool) -> None:
    """The copy taken after one epoch, saved while the model trains a second: the file holds
    the first epoch's weights and optimizer state (Adam's step count 4, not 8), and what is
    frozen stays frozen."""
    from comp.train.callbacks import load_checkpoint
    from comp.train.writer import copy_into, save_model, shadow_of

    model, x, y = _fitted(frozen)
    shadow = shadow_of(model)
    assert shadow is not None
    assert len(shadow.trainable_variables) == len(model.trainable_variables) == (2 if frozen
                                                                                 else 6)
    copy_into(shadow, model)
    then = [np.array(w) for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # the model trains on
    assert not all(np.array_equal(a, b) for a, b in zip(then, model.get_weights(), strict=True))
    save_model(shadow, tmp_path / "last.keras")
    saved = load_checkpoint(tmp_path / "last.keras")
    for a, b in zip(then, saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(np.asarray(saved.optimizer.iterations)) == 4
    assert len(saved.trainable_variables) == len(model.trainable_variables)


def test_a_model_keras_cannot_copy_is_saved_by_the_training_thread() -> None:
    import keras

    from comp.train.writer import shadow_of

    class Custom(keras.Model):  # no get_config: clone_model cannot rebuild it
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = Custom()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), verbose=0)
    assert shadow_of(model) is None


def test_the_writer_keeps_epoch_order_and_raises_in_the_training_thread() -> None:
    """Jobs run one at a time, in order, in another thread; a job's error is raised by the
    next submit (or wait) in the caller's thread; close waits for the last one."""
    from comp.train.writer import EpochWriter

    done: list[tuple[int, str]] = []

    def job(k: int, seconds: float = 0.0):
        def run() -> None:
            time.sleep(seconds)
            done.append((k, threading.current_thread().name))
        return run

    writer = EpochWriter()
    writer.submit(job(1, 0.2))
    writer.submit(job(2))  # waits for job 1 first
    assert [k for k, _ in done] == [1]
    writer.close()
    assert [k for k, _ in done] == [1, 2]
    assert all(name.startswith("comp-epoch-writer") for _, name in done)

    def broken() -> None:
        raise OSError(28, "No space left on device")

    writer = EpochWriter()
    writer.submit(broken)
    with pytest.raises(OSError, match="No space left"):
        writer.submit(job(3))
    assert 3 not in [k for k, _ in done]
    writer.close()
