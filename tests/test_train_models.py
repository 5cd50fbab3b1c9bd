"""The report's models and the balanced-accuracy metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from comp.errors import CompError

REPORT_COUNTS = {  # (total, trainable) at 56x56x3, from the report
    "b1": (1_723_009, 1_723_009), "b2": (1_985_665, 1_985_665), "b3": (1_985_665, 1_985_665),
    "tl1": (24_899_969, 1_312_257), "tl2": (24_899_969, 9_193_473),
    "tl3": (24_899_969, 24_846_849),
}


@pytest.mark.parametrize("name", sorted(REPORT_COUNTS))
def test_parameter_counts_match_the_report(name: str) -> None:
    from comp.train.models import build_model, count_params

    assert count_params(build_model(name, (56, 56, 3), 2, weights="none")) == REPORT_COUNTS[name]


@pytest.mark.parametrize("classes", [2, 4])
def test_balanced_accuracy_metric_equals_sklearn(classes: int) -> None:
    from comp.metrics import balanced_accuracy
    from comp.train.models import BalancedAccuracy

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


def test_logreg_is_logistic_regression_on_gray_pixels() -> None:
    from comp.train.models import build_model, count_params

    model = build_model("logreg", (50, 50, 3), 2)
    assert count_params(model) == (50 * 50 + 1, 50 * 50 + 1)
    x = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3)).astype(np.float32)
    w, b = model.get_layer("output").get_weights()
    luma = (x @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(4, -1) / 255
    want = 1 / (1 + np.exp(-(luma @ w + b)))
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-4, atol=1e-6)


def test_weights_file_is_loaded(workspace: Path, tmp_path: Path) -> None:
    import keras

    from comp.train.models import build_model

    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    model = build_model("tl1", (32, 32, 3), 2, weights=str(path))
    loaded = model.get_layer("resnet50").get_weights()
    for want, got in zip(base.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(want, got)


def test_missing_imagenet_weights_say_what_to_do(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.train.models import RESNET_NOTOP, resolve_weights

    monkeypatch.setattr("keras.config.keras_home", lambda: str(tmp_path), raising=False)
    with pytest.raises(CompError, match=f"put {RESNET_NOTOP} in .*--weights none"):
        resolve_weights("imagenet")
    with pytest.raises(CompError, match="file not found"):
        resolve_weights(str(tmp_path / "nope.h5"))
