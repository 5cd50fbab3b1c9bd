"""The LightGBM stacker is fitted out-of-fold."""

from __future__ import annotations

import numpy as np
import pytest

from comp.submit import stacker


def test_lightgbm_probabilities_are_out_of_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    n = 300
    ids = np.arange(n, dtype=float)
    y = (rng.random(n) < 0.4).astype(int)
    features = np.column_stack([ids, y + rng.normal(0, 1, n), rng.normal(0, 1, (n, 3))])
    folds = np.repeat(np.arange(5), n // 5)
    seen: list[set[int]] = []
    real_fit = stacker.fit_lgbm

    def spy(x, yy, *, num_classes, seed):
        seen.append(set(x[:, 0].astype(int)))
        return real_fit(x, yy, num_classes=num_classes, seed=seed)

    monkeypatch.setattr(stacker, "fit_lgbm", spy)
    stacker.oof_lgbm(features, y, folds, num_classes=2, seed=0)
    assert len(seen) == 5
    for k, trained_on in enumerate(seen):
        assert trained_on.isdisjoint(set(np.nonzero(folds == k)[0]))
        assert len(trained_on) == n - (folds == k).sum()
