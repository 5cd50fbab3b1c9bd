"""The LightGBM stacker on CNN embeddings (plus the CNN's probability), fitted out-of-fold.

Discipline: every probability used to choose between models comes from a model that did not
see that image. LightGBM is fitted on holdout folds and scored on the fold left out
(duplicate and identity groups never straddle two folds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from comp.submit.predict import Predictions


def stack_features(pred: Predictions) -> np.ndarray:
    """LightGBM's inputs: the embeddings plus the CNN's own probability (stacking)."""
    prob = pred.prob.reshape(len(pred.prob), -1)
    return np.concatenate([pred.embedding, prob], axis=1)


def lgbm_params(num_classes: int, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15,
              "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
              "colsample_bytree": 0.5, "reg_lambda": 1.0, "random_state": seed,
              "n_jobs": 2, "verbose": -1}
    if num_classes == 2:
        params["objective"] = "binary"
        params["is_unbalance"] = True  # the score is balanced accuracy
    else:
        params["objective"] = "multiclass"
        params["class_weight"] = "balanced"
    return params


def fit_lgbm(features: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> Any:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**lgbm_params(num_classes, seed))
    model.fit(features, y)
    return model


def lgbm_prob(model: Any, features: np.ndarray, *, num_classes: int) -> np.ndarray:
    prob = model.predict_proba(features)
    return prob[:, 1] if num_classes == 2 else prob


def oof_lgbm(features: np.ndarray, y: np.ndarray, folds: np.ndarray, *, num_classes: int,
             seed: int) -> np.ndarray:
    """Out-of-fold LightGBM probabilities: fold k is predicted by a model fitted without it."""
    out = np.zeros((len(y),) if num_classes == 2 else (len(y), num_classes), np.float64)
    for k in np.unique(folds):
        test = folds == k
        model = fit_lgbm(features[~test], y[~test], num_classes=num_classes, seed=seed)
        out[test] = lgbm_prob(model, features[test], num_classes=num_classes)
    return out
