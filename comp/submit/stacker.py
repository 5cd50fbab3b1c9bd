"""Stacking, in one place: the LightGBM stacker inside one model's embedding space (level 1)
and a logistic regression on several runs' out-of-fold logits (level 2).

Discipline: every row a stacker is fitted on, scored on and applied to comes from one
model's space. A cross-fitted run's out-of-fold rows of fold m were embedded by fold m's
model, so its level-1 stacker is one LightGBM per fold model, fitted and cross-validated on
that model's own out-of-fold rows only, and at prediction each reads its own model's
embeddings (their probabilities are averaged). A one-model run has one space: its holdout
rows, cross-validated over the holdout folds. Level 2 reads only logits, which mean the
same thing whichever fold model produced them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comp import threads
from comp.prepare.splits import assign_folds
from comp.submit.predict import Predictions
from comp.workspace import write_json

INNER_FOLDS = 4  # the inner cross-validation of a fold model's own out-of-fold rows
LEVEL2_C = 1.0  # inverse L2 strength of the level-2 logistic regression


def logits(prob: np.ndarray) -> np.ndarray:
    """Two classes: one column, log(p1 / p0); K classes: the K log-probabilities."""
    p = np.clip(np.asarray(prob, np.float64), 1e-7, 1.0)
    if p.shape[1] == 2:
        return np.log(p[:, 1:] / p[:, :1])
    return np.log(p)


def stack_features(pred: Predictions) -> np.ndarray:
    """LightGBM's inputs: one model's embeddings plus its own logit(s)."""
    return np.concatenate([pred.embedding, logits(pred.prob)], axis=1).astype(np.float32)


def lgbm_params(num_classes: int, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15,
              "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
              "colsample_bytree": 0.5, "reg_lambda": 1.0, "random_state": seed,
              "verbose": -1}
    if num_classes == 2:
        params["objective"] = "binary"
        params["is_unbalance"] = True  # the score is balanced accuracy
    else:
        params["objective"] = "multiclass"
        params["class_weight"] = "balanced"
    return params


def fit_lgbm(features: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> Any:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**lgbm_params(num_classes, seed),
                           n_jobs=threads.threads_for(features.size))
    model.fit(features, y)
    return model


def booster_prob(booster: Any, features: np.ndarray, *, num_classes: int) -> np.ndarray:
    """(N, K) probabilities of a saved LightGBM booster."""
    raw = np.asarray(booster.predict(features, num_threads=threads.threads_for(features.size)),
                     np.float64)
    if num_classes == 2:
        raw = raw.reshape(-1)
        return np.stack([1 - raw, raw], axis=1)
    return raw.reshape(len(features), num_classes)


def lgbm_prob(model: Any, features: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(features), np.float64)


def fits(y: np.ndarray, num_classes: int, parts: int) -> bool:
    """Whether every class has at least `parts` images: each part of a stratified split then
    trains on every class."""
    return bool(np.bincount(y, minlength=num_classes).min() >= parts)


FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def cross_val(fit_predict: FitPredict, x: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
              num_classes: int, exclude: int | None = None) -> np.ndarray:
    """Out-of-fold (N, K) probabilities: fold j predicted by a model fitted on the folds that
    are neither j nor `exclude` (the outer fold of a nested selection: its rows are left NaN,
    and their labels are never read)."""
    out = np.full((len(y), num_classes), np.nan)
    for j in np.unique(folds):
        if j == exclude:
            continue
        train = (folds != j) & (folds != exclude) if exclude is not None else folds != j
        out[folds == j] = fit_predict(x[train], y[train], x[folds == j])
    return out


def lgbm_fit_predict(num_classes: int, seed: int) -> FitPredict:
    def run(x: np.ndarray, y: np.ndarray, new: np.ndarray) -> np.ndarray:
        return lgbm_prob(fit_lgbm(x, y, num_classes=num_classes, seed=seed), new)
    return run


def member_oof(pred: Predictions, y: np.ndarray, fold: np.ndarray, groups: np.ndarray, *,
               num_classes: int, seed: int) -> np.ndarray | None:
    """A cross-fitted run's level-1 stacker, out-of-fold: for each fold model m, a LightGBM
    cross-validated (`INNER_FOLDS`, stratified, groups whole) on fold m's rows only, which
    fold m's model embedded and never trained on. None when a fold has too few images of a
    class for the inner split."""
    features = stack_features(pred)
    out = np.zeros((len(y), num_classes))
    for m in np.unique(fold):
        rows = np.flatnonzero(fold == m)
        if not fits(y[rows], num_classes, INNER_FOLDS):
            return None
        inner = assign_folds(groups[rows], y[rows], k=INNER_FOLDS, seed=seed)
        out[rows] = cross_val(lgbm_fit_predict(num_classes, seed), features[rows], y[rows],
                              inner, num_classes=num_classes)
    return out


def fit_members(pred: Predictions, y: np.ndarray, fold: np.ndarray, *, num_classes: int,
                seed: int) -> list[Any]:
    """The deployed level-1 stackers of a cross-fitted run: fold model m's fitted on all of
    fold m's rows (its own space)."""
    features = stack_features(pred)
    return [fit_lgbm(features[fold == m], y[fold == m], num_classes=num_classes, seed=seed)
            for m in np.unique(fold)]


def stacker_file(member: int) -> str:
    return f"lgbm-{member}.txt"


def save_boosters(models: list[Any], folder: Path) -> None:
    from comp.workspace import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    for m, model in enumerate(models):
        atomic_write(folder / stacker_file(m), functools.partial(_save_booster, model))


def _save_booster(model: Any, path: Path) -> None:
    model.booster_.save_model(str(path))


class BoosterError(ValueError):
    """A saved level-1 stacker that LightGBM cannot read."""


def load_boosters(folder: Path) -> list[Any]:
    """The saved level-1 stackers, in member order (BoosterError: none, or one unreadable)."""
    import lightgbm

    saved = sorted(folder.glob("lgbm-*.txt"), key=lambda p: int(p.stem[5:]))
    if not saved:
        raise BoosterError(f"{folder}: no saved stacker")
    try:
        return [lightgbm.Booster(model_file=str(p)) for p in saved]
    except lightgbm.basic.LightGBMError as exc:
        raise BoosterError(str(exc).splitlines()[0]) from None


def apply_boosters(folder: Path, members: list[Predictions], *, num_classes: int
                   ) -> np.ndarray:
    """New images through the saved level-1 stackers: member m's embeddings read by stacker
    m (one stacker for a one-model run reads every member), probabilities averaged."""
    boosters = load_boosters(folder)
    if len(boosters) == 1:
        boosters = boosters * len(members)
    if len(boosters) != len(members):
        raise ValueError(f"{len(boosters)} stackers for {len(members)} fold models")
    return np.mean([booster_prob(b, stack_features(part), num_classes=num_classes)
                    for b, part in zip(boosters, members, strict=True)], axis=0)


# -- level 2: runs combined on their out-of-fold logits ------------------------------------------

LEVEL2_FILE = "level2.json"


@dataclass(frozen=True)
class Level2:
    """A multinomial (two classes: binary) logistic regression on the runs' logits."""

    coef: list[list[float]]  # (1 or K, F)
    intercept: list[float]

    def prob(self, x: np.ndarray) -> np.ndarray:
        z = x @ np.asarray(self.coef).T + np.asarray(self.intercept)
        if z.shape[1] == 1:
            p1 = 1 / (1 + np.exp(-z[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / LEVEL2_FILE, {"coef": self.coef, "intercept": self.intercept})

    @classmethod
    def load(cls, folder: Path) -> Level2:
        data = json.loads((folder / LEVEL2_FILE).read_text())
        return cls([list(map(float, r)) for r in data["coef"]],
                   list(map(float, data["intercept"])))


def level2_features(probs: list[np.ndarray]) -> np.ndarray:
    """The runs' logits side by side."""
    return np.concatenate([logits(p) for p in probs], axis=1)


def fit_level2(x: np.ndarray, y: np.ndarray) -> Level2:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=LEVEL2_C, class_weight="balanced", max_iter=1000)
    model.fit(x, y)
    return Level2(model.coef_.tolist(), model.intercept_.tolist())


def level2_fit_predict(x: np.ndarray, y: np.ndarray, new: np.ndarray) -> np.ndarray:
    return fit_level2(x, y).prob(new)
