"""The batches a model trains on, and the augmentation layer."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.backends  # CI runs these under TensorFlow and JAX


def _epochs(batches, steps: int, epochs: int) -> list[list[np.ndarray]]:
    """`epochs` consecutive epochs of `steps` batches, as Keras reads them (by index)."""
    return [[batches[e * steps + k][0] for k in range(steps)] for e in range(epochs)]


def test_batches_are_uint8_pixels_and_float_targets() -> None:
    """The pixels leave the host as the store holds them (uint8: no conversion, a quarter of
    the bytes); mixup's blends are float32."""
    from comp.train.data import make_batches

    x = np.random.default_rng(0).integers(0, 256, (20, 6, 6, 3), np.uint8)
    y = np.arange(20) % 4
    binary = make_batches(x, y % 2, num_classes=2, batch_size=8, shuffle=False, seed=0)
    assert binary.num_batches == 3
    xb, yb = binary[2]
    assert xb.dtype == np.uint8 and xb.shape == (4, 6, 6, 3)  # the last, short batch
    np.testing.assert_array_equal(xb, x[16:])
    mixed = make_batches(x, y % 2, num_classes=2, batch_size=8, shuffle=False, seed=0,
                         mixup=0.2)
    assert mixed[0][0].dtype == np.float32
    np.testing.assert_array_equal(yb, [[0], [1], [0], [1]])
    four = make_batches(x, y, num_classes=4, batch_size=8, shuffle=False, seed=0)
    np.testing.assert_array_equal(four[0][1], np.eye(4)[y[:8]])


def test_each_epoch_is_a_function_of_seed_and_epoch() -> None:
    from comp.train.data import make_batches

    x = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), np.uint8)
    y = np.arange(40) % 2
    options = {"num_classes": 2, "batch_size": 8, "shuffle": True, "seed": 5}
    whole = make_batches(x, y, epochs_from=0, **options)
    assert whole.num_batches is None  # endless: fit it with steps_per_epoch
    epochs = _epochs(whole, 5, 3)
    resumed = _epochs(make_batches(x, y, epochs_from=2, **options), 5, 1)
    for a, b in zip(epochs[2], resumed[0], strict=True):  # epoch 2, with or without a restart
        np.testing.assert_array_equal(a, b)
    for epoch in epochs:  # each epoch holds every image once
        seen = np.sort(np.concatenate([b.reshape(len(b), -1)[:, 0] for b in epoch]))
        np.testing.assert_array_equal(seen, np.sort(x.reshape(40, -1)[:, 0].astype(np.float32)))
    assert any(not np.array_equal(a, b) for a, b in zip(epochs[0], epochs[1], strict=True))


def test_mixup_blends_images_and_targets_alike() -> None:
    """Images of value 200 * label: after mixup every image is still 200 x its target (the
    same weight blends both), targets fall between 0 and 1, and nothing is mixed at 0."""
    from comp.train.data import make_batches

    y = np.array([0, 1] * 32)
    x = (np.broadcast_to(y[:, None, None, None], (64, 8, 8, 1)) * 200).astype(np.uint8)
    batches = make_batches(x, y, num_classes=2, batch_size=32, shuffle=True, seed=3,
                           mixup=0.4)
    blended = 0
    for xb, yb in batches:
        np.testing.assert_allclose(xb.mean(axis=(1, 2, 3)), 200 * yb[:, 0], rtol=1e-5,
                                   atol=1e-3)
        assert ((yb >= 0) & (yb <= 1)).all()
        blended += int(((yb > 0.01) & (yb < 0.99)).sum())
    assert blended > 10
    plain = make_batches(x, y, num_classes=2, batch_size=64, shuffle=False, seed=3)[0][1]
    np.testing.assert_array_equal(plain[:, 0], y)


@pytest.mark.parametrize("model", ["b3", "res"])
def test_augmented_model_saves_and_predicts_like_the_plain_one(model: str, tmp_path) -> None:
    """The augmentation is part of the saved model but changes nothing at prediction."""
    import keras

    from comp.train.models import build_model

    keras.utils.set_random_seed(0)
    aug = build_model(model, (32, 32, 3), 2, augment=True)
    keras.utils.set_random_seed(0)
    plain = build_model(model, (32, 32, 3), 2)
    assert "augment" in [layer.name for layer in aug.layers]
    plain.set_weights(aug.get_weights()[len(aug.get_weights()) - len(plain.get_weights()):])
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    aug.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(plain(x)), rtol=1e-5,
                               atol=1e-6)


def test_class_weights_by_hand() -> None:
    from comp.train.data import class_weights

    y = np.array([0] * 6 + [1] * 2)
    assert class_weights(y, 2) == pytest.approx({0: 8 / 12, 1: 8 / 4})
    assert class_weights(np.array([0, 0, 2]), 3) == pytest.approx({0: 3 / 4, 2: 3 / 2})


def test_oversampling_draws_each_class_equally() -> None:
    from comp.train.data import batch_order, make_batches

    y = np.array([1] * 10 + [0] * 90)
    order = batch_order(100, shuffle=True, seed=1, epoch=3, labels=y)
    assert len(order) == 100 and (y[order] == 1).sum() == 50
    np.testing.assert_array_equal(order, batch_order(100, shuffle=True, seed=1, epoch=3,
                                                     labels=y))
    assert set(order[y[order] == 1]) <= set(range(10))  # the minority, drawn again
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    batches = make_batches(x, y, num_classes=2, batch_size=25, shuffle=True, seed=1,
                           epochs_from=0, oversample=True)
    targets = np.concatenate([batches[i][1] for i in range(4)])
    assert targets.sum() == 50


def test_weighted_loss_equals_a_hand_computation() -> None:
    """One step of a fixed logistic model with class weights reports the mean over the
    batch of weight x binary cross-entropy (learning rate 0: the step changes nothing)."""
    import keras

    from comp.train.data import class_weights, make_batches

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 2, 2, 1)).astype(np.uint8)
    y = np.array([0] * 9 + [1] * 3)
    inputs = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers
                             .Constant(0.7), bias_initializer=keras.initializers
                             .Constant(-1.0))(flat)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.BinaryCrossentropy())
    weights = class_weights(y, 2)
    history = model.fit(make_batches(x, y, num_classes=2, batch_size=12, shuffle=False,
                                     seed=0), class_weight=weights, epochs=1, verbose=0)
    p = 1 / (1 + np.exp(-(x.reshape(12, -1) / 255 @ np.full(4, 0.7) - 1.0)))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    want = np.mean(np.array([weights[c] for c in y]) * bce)
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-5)


def test_worker_threads_gather_the_same_batches_in_the_same_order() -> None:
    """fit reads the endless batches; with two gathering threads (the default) the model
    ends on exactly the weights gathering in the training thread gives, over three epochs
    with mixup (each backend asks for the batches in its own order), and the batches were
    gathered in those threads."""
    import threading

    import keras

    from comp.train.data import GATHER_WORKERS, make_batches

    assert GATHER_WORKERS > 1
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 3, 3, 1)).astype(np.uint8)
    y = rng.integers(0, 2, 50)
    seen: set[str] = set()

    def trained(workers: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3, 3, 1))
        flat = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(flat))
        model.compile(keras.optimizers.SGD(0.5), keras.losses.BinaryCrossentropy())
        batches = make_batches(x, y, num_classes=2, batch_size=8, shuffle=True, seed=4,
                               epochs_from=0, mixup=0.2, workers=workers)
        gather = batches.batch

        def spied(i: int) -> tuple[np.ndarray, np.ndarray]:
            seen.add(threading.current_thread().name)
            return gather(i)

        batches.batch = spied
        model.fit(batches, epochs=3, steps_per_epoch=7, verbose=0)
        batches.close()
        return model.get_weights()

    one = trained(0)
    assert not any(name.startswith("comp-gather") for name in seen)
    seen.clear()
    two = trained(GATHER_WORKERS)
    assert sum(name.startswith("comp-gather") for name in seen) >= 1
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
