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
        out = training.augment_batch(tf.constant(x), tf.random.Generator.from_seed(0)).numpy()
    finally:
        training.ROTATION_DEGREES, training.ZOOM = old
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54
