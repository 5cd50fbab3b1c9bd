"""comp's own layers and metric: the exact balanced accuracy, the augmentation, grayscale and
ResNet50's preprocessing, each checked by hand or against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score


@pytest.mark.parametrize("classes", [2, 4])
def test_balanced_accuracy_metric_equals_sklearn(classes: int) -> None:
    from comp.metrics import balanced_accuracy
    from comp.train.layers import BalancedAccuracy

    rng = np.random.default_rng(classes)
    y = rng.choice(classes, size=500, p=[0.6] + [0.4 / (classes - 1)] * (classes - 1))
    prob = rng.random((500, 1 if classes == 2 else classes)).astype(np.float32)
    pred = (prob[:, 0] >= 0.5).astype(int) if classes == 2 else prob.argmax(1)
    metric = BalancedAccuracy(classes)
    for s in range(0, 500, 124):  # several batches accumulate into one epoch figure
        yb = y[s:s + 124]
        yt = yb[:, None].astype(np.float32) if classes == 2 else np.eye(classes)[yb]
        metric.update_state(yt, prob[s:s + 124])
    want = balanced_accuracy_score(y, pred)
    assert float(metric.result()) == pytest.approx(want, abs=1e-6)
    assert balanced_accuracy(y, pred) == pytest.approx(want, abs=1e-12)


def test_balanced_accuracy_metric_reads_mixup_targets_by_the_class_they_lean_to() -> None:
    """Blended targets 0.7, 0.3, 0.6, 0.2 are classes 1, 0, 1, 0; predictions 0.9, 0.1, 0.6,
    0.6 are 1, 0, 1, 1: class 1 recall 2/2, class 0 recall 1/2, balanced accuracy 0.75
    (casting the blends to int would call every target class 0)."""
    from comp.train.layers import BalancedAccuracy

    metric = BalancedAccuracy(2)
    metric.update_state(np.array([[0.7], [0.3], [0.6], [0.2]], np.float32),
                        np.array([[0.9], [0.1], [0.6], [0.6]], np.float32))
    assert float(metric.result()) == pytest.approx(0.75)


def test_augmentation_transform_by_hand() -> None:
    """The composed matrix maps the centre to itself; a pure mirror maps x to w-1-x; a 90
    degree turn maps (x, y) about the centre to (y', -x')."""
    import keras

    from comp.train.layers import augment_transforms

    def t(angle: float, scale: float, flip: float) -> np.ndarray:
        return keras.ops.convert_to_numpy(augment_transforms(
            keras.ops.convert_to_tensor([angle]), keras.ops.convert_to_tensor([scale]),
            keras.ops.convert_to_tensor([flip]), 9, 9))[0]

    def apply(m: np.ndarray, x: float, y: float) -> tuple[float, float]:
        return m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]

    np.testing.assert_allclose(apply(t(0.3, 1.07, -1.0), 4, 4), (4, 4), atol=1e-5)
    np.testing.assert_allclose(apply(t(0.0, 1.0, -1.0), 1, 2), (7, 2), atol=1e-5)
    np.testing.assert_allclose(apply(t(np.pi / 2, 1.0, 1.0), 5, 4), (4, 5), atol=1e-5)
    np.testing.assert_allclose(apply(t(0.0, 2.0, 1.0), 8, 8), (6, 6), atol=1e-5)  # zoom in


def test_augmentation_layer_trains_only_and_mirrors_exactly() -> None:
    """Inactive at prediction; with no rotation and no zoom each image is itself or its exact
    mirror, about half of them mirrored; with the report's ranges pixels change."""
    from comp.train.layers import Augment

    x = np.random.default_rng(1).integers(0, 256, (64, 9, 9, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(Augment()(x, training=False)), x)
    out = np.asarray(Augment(rotation_degrees=0.0, zoom=0.0, seed=1)(x, training=True))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54
    aug = np.asarray(Augment(seed=2)(x, training=True))
    assert aug.shape == x.shape and np.abs(aug - x).mean() > 1.0


def test_grayscale_is_pil_luma_and_resnet_preprocessing_is_bgr_minus_means() -> None:
    from comp.train.layers import Grayscale, ResNetPreprocess

    rgb = np.array([[[[10.0, 100.0, 200.0]]]], np.float32)
    np.testing.assert_allclose(np.asarray(Grayscale()(rgb)), [[[[0.299 * 10 + 0.587 * 100
                                                                + 0.114 * 200]]]], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ResNetPreprocess()(rgb)),
                               [[[[200 - 103.939, 100 - 116.779, 10 - 123.68]]]], rtol=1e-5)
    gray = np.full((1, 1, 1, 1), 50.0, np.float32)
    np.testing.assert_allclose(np.asarray(ResNetPreprocess()(gray)),
                               [[[[50 - 103.939, 50 - 116.779, 50 - 123.68]]]], rtol=1e-5)
