"""Stacking: level 1 inside one model's embedding space, level 2 on runs' logits, both
cross-validated without the rows they score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comp.submit import stacker
from comp.submit.predict import Predictions


def test_cross_val_never_fits_on_the_fold_it_predicts_nor_on_the_excluded_one() -> None:
    n = 100
    x = np.arange(n, dtype=float)[:, None]
    y = np.arange(n) % 2
    folds = np.arange(n) % 5
    seen: list[tuple[set[int], set[int]]] = []

    def spy(xt: np.ndarray, yt: np.ndarray, new: np.ndarray) -> np.ndarray:
        seen.append((set(xt[:, 0].astype(int)), set(new[:, 0].astype(int))))
        return np.full((len(new), 2), 0.5)

    out = stacker.cross_val(spy, x, y, folds, num_classes=2, exclude=3)
    assert len(seen) == 4  # fold 3 is neither predicted nor fitted on
    for fitted, predicted in seen:
        assert not fitted & predicted
        assert not fitted & set(np.flatnonzero(folds == 3))
        assert len(fitted) == 60
    assert np.isnan(out[folds == 3]).all() and not np.isnan(out[folds != 3]).any()


def _marked(n: int = 400, folds: int = 4) -> tuple[Predictions, np.ndarray, np.ndarray]:
    """Out-of-fold predictions whose first embedding column names the fold model that made
    the row (as a cross-fitted run's: rows of fold m come from fold m's model)."""
    rng = np.random.default_rng(0)
    fold = np.arange(n) % folds
    y = (rng.random(n) < 0.4).astype(int)
    p1 = np.clip(0.3 * y + rng.normal(0.35, 0.15, n), 0.01, 0.99)
    emb = np.column_stack([fold, y + rng.normal(0, 1, n), rng.normal(0, 1, (n, 2))])
    return Predictions(np.stack([1 - p1, p1], axis=1), emb.astype(np.float32)), y, fold


def test_every_stacker_fits_scores_and_applies_rows_of_one_models_space(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pred, y, fold = _marked()
    fitted: list[set[int]] = []
    scored: list[set[int]] = []
    real_fit, real_prob = stacker.fit_lgbm, stacker.lgbm_prob

    def fit_spy(x, yy, *, num_classes, seed):
        fitted.append(set(x[:, 0].astype(int).tolist()))
        return real_fit(x, yy, num_classes=num_classes, seed=seed)

    def prob_spy(model, x):
        scored.append(set(x[:, 0].astype(int).tolist()))
        return real_prob(model, x)

    monkeypatch.setattr(stacker, "fit_lgbm", fit_spy)
    monkeypatch.setattr(stacker, "lgbm_prob", prob_spy)
    oof = stacker.member_oof(pred, y, fold, np.arange(len(y)), num_classes=2, seed=0)
    assert oof is not None and oof.shape == (len(y), 2)
    assert len(fitted) == len(scored) == 4 * stacker.INNER_FOLDS
    for fit_space, score_space in zip(fitted, scored, strict=True):
        assert len(fit_space) == 1 and fit_space == score_space  # one model's space
    # deployed: stacker m fitted on fold m's rows, applied to member m's embeddings only
    fitted.clear()
    models = stacker.fit_members(pred, y, fold, num_classes=2, seed=0)
    assert fitted == [{0}, {1}, {2}, {3}]
    stacker.save_boosters(models, tmp_path)
    read: list[tuple[int, set[int]]] = []
    real_booster = stacker.booster_prob

    def booster_spy(booster, features, *, num_classes):
        read.append((len(read), set(features[:, 0].astype(int).tolist())))
        return real_booster(booster, features, num_classes=num_classes)

    monkeypatch.setattr(stacker, "booster_prob", booster_spy)
    rng = np.random.default_rng(1)
    members = [Predictions(np.full((10, 2), 0.5), np.column_stack(
        [np.full(10, m), rng.normal(size=(10, 3))]).astype(np.float32)) for m in range(4)]
    prob = stacker.apply_boosters(tmp_path, members, num_classes=2)
    assert read == [(m, {m}) for m in range(4)]
    expected = np.mean([real_booster(models[m].booster_, stacker.stack_features(members[m]),
                                     num_classes=2) for m in range(4)], axis=0)
    np.testing.assert_allclose(prob, expected, rtol=1e-6)


def test_level2_is_scikit_learns_logistic_regression_on_the_logits(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    probs = []
    for _ in range(2):
        z = rng.normal(size=(300, 3)) + np.eye(3)[y]
        probs.append(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    x = stacker.level2_features(probs)
    np.testing.assert_allclose(x[:, :3], np.log(probs[0]), rtol=1e-6)
    level2 = stacker.fit_level2(x, y)
    level2.save(tmp_path)
    ref = LogisticRegression(C=stacker.LEVEL2_C, class_weight="balanced", max_iter=1000)
    np.testing.assert_allclose(stacker.Level2.load(tmp_path).prob(x),
                               ref.fit(x, y).predict_proba(x), atol=1e-6)
    # two classes: one logit per run, log(p1 / p0)
    p1 = rng.uniform(0.1, 0.9, 50)
    two = stacker.logits(np.stack([1 - p1, p1], axis=1))
    np.testing.assert_allclose(two[:, 0], np.log(p1 / (1 - p1)), rtol=1e-6)
