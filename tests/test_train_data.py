"""The input pipeline and the fused augmentation."""

from __future__ import annotations

import numpy as np


def test_augmentation_keeps_shapes_and_changes_pixels() -> None:
    from comp.train.data import make_dataset

    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), np.uint8)
    y = np.arange(16) % 2
    options = {"num_classes": 2, "batch_size": 16, "shuffle": False, "seed": 0}
    plain = next(iter(make_dataset(x, y, augment=False, **options)))[0].numpy()
    aug = next(iter(make_dataset(x, y, augment=True, **options)))[0].numpy()
    assert aug.shape == plain.shape == (16, 32, 32, 3) and aug.dtype == np.float32
    np.testing.assert_array_equal(plain, x.astype(np.float32))
    assert np.abs(aug - plain).mean() > 1.0


def test_augmentation_geometry_by_hand() -> None:
    """With no rotation and no zoom the transform is the identity or an exact mirror."""
    import tensorflow as tf

    import comp.train.data as training

    x = np.random.default_rng(1).integers(0, 256, (64, 9, 9, 1)).astype(np.float32)
    old = training.ROTATION_DEGREES, training.ZOOM
    training.ROTATION_DEGREES, training.ZOOM = 0.0, 0.0
    try:
        out = training.augment_batch(tf.constant(x), tf.constant([0, 1], tf.int64)).numpy()
    finally:
        training.ROTATION_DEGREES, training.ZOOM = old
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54


def _epochs(ds, batches: int, epochs: int) -> list[list[np.ndarray]]:
    """`epochs` consecutive epochs of `batches` batches from one iterator."""
    it = iter(ds)
    return [[next(it)[0].numpy() for _ in range(batches)] for _ in range(epochs)]


def test_each_epoch_is_a_function_of_seed_and_epoch() -> None:
    from comp.train.data import make_dataset

    x = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), np.uint8)
    y = np.arange(40) % 2
    options = {"num_classes": 2, "batch_size": 8, "shuffle": True, "seed": 5}
    whole = _epochs(make_dataset(x, y, augment=True, epochs_from=0, **options), 5, 3)
    resumed = _epochs(make_dataset(x, y, augment=True, epochs_from=2, **options), 5, 1)
    for a, b in zip(whole[2], resumed[0], strict=True):  # epoch 2, with or without a restart
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(whole[0], whole[1], strict=True))
    plain = _epochs(make_dataset(x, y, augment=False, epochs_from=0, **options), 5, 2)
    for epoch in plain:  # each epoch holds every image once
        seen = np.sort(np.concatenate([b.reshape(len(b), -1)[:, 0] for b in epoch]))
        np.testing.assert_array_equal(seen, np.sort(x.reshape(40, -1)[:, 0].astype(np.float32)))
    assert any(not np.array_equal(a, b) for a, b in zip(plain[0], plain[1], strict=True))


def test_mixup_blends_images_and_targets_alike() -> None:
    """Images of value 200 * label: after mixup every image is still 200 x its target (the
    same weight blends both), targets fall between 0 and 1, and nothing is mixed at 0."""
    from comp.train.data import make_dataset

    y = np.array([0, 1] * 32)
    x = (np.broadcast_to(y[:, None, None, None], (64, 8, 8, 1)) * 200).astype(np.uint8)
    ds = make_dataset(x, y, num_classes=2, batch_size=32, shuffle=True, augment=False,
                      seed=3, mixup=0.4)
    blended = 0
    for xb, yb in ds:
        xb, yb = xb.numpy(), yb.numpy()[:, 0]
        np.testing.assert_allclose(xb.mean(axis=(1, 2, 3)), 200 * yb, rtol=1e-5, atol=1e-3)
        assert ((yb >= 0) & (yb <= 1)).all()
        blended += int(((yb > 0.01) & (yb < 0.99)).sum())
    assert blended > 10
    plain = next(iter(make_dataset(x, y, num_classes=2, batch_size=64, shuffle=False,
                                   augment=False, seed=3)))[1].numpy()[:, 0]
    np.testing.assert_array_equal(plain, y)
