"""The decision rule of a submission, typed: which model's probabilities, which threshold.

`fit_decision` fits it on the holdout's predictions: the threshold (bootstrap spread included)
and the choice between the CNN and the LightGBM stacker are scored out-of-fold (fold k is
decided by a rule tuned on the other folds), so the score printed as "holdout balanced
accuracy" was never measured on the data it was tuned on. `Decision.apply` turns new
predictions into classes; `save`/`load` keep it beside the run for phase 2.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from comp.metrics import balanced_accuracy, predict_labels
from comp.submit import stacker
from comp.submit.leaks import LeakCheck
from comp.submit.predict import Predictions
from comp.workspace import atomic_write, write_json

DECISION_FILE = "decision.json"
STACKER_FILE = "lgbm.txt"
SCHEMA = 2  # part of the cache key: a rule saved in another layout is fitted anew


# -- the threshold ---------------------------------------------------------------------------------

def threshold_scores(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Balanced accuracy of `prob >= t` for every distinct predicted probability t (and one
    threshold above them all), in O(N log N).

    Returns:
        (thresholds ascending, scores).
    """
    y = np.asarray(y_true, int).reshape(-1)
    p = np.asarray(prob, float).reshape(-1)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"threshold search needs both classes. Received: {pos} positives, "
                         f"{neg} negatives")
    values, inverse = np.unique(p, return_inverse=True)
    pos_at = np.bincount(inverse, weights=(y == 1), minlength=len(values))
    neg_at = np.bincount(inverse, weights=(y == 0), minlength=len(values))
    # predicting 1 for p >= values[k]: positives found = positives at or above k
    tp = np.cumsum(pos_at[::-1])[::-1]
    tn = np.cumsum(neg_at) - neg_at
    thresholds = np.append(values, np.inf)
    tp, tn = np.append(tp, 0), np.append(tn, neg)
    return thresholds, 0.5 * (tp / pos + tn / neg)


@dataclass(frozen=True)
class Threshold:
    value: float  # predict class 1 when p >= value
    score: float  # balanced accuracy at value on the data it was tuned on
    score_at_half: float
    spread: float  # standard deviation of the tuned threshold over bootstrap resamples
    score_spread: float  # standard deviation of the tuned score over bootstrap resamples


def best_threshold(y_true: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """The cut-off maximising balanced accuracy; placed midway between the best distinct
    probability and the next lower one, so new data near the edge is treated evenly.
    Ties go to the threshold closest to 0.5."""
    thresholds, scores = threshold_scores(y_true, prob)
    best = scores.max()
    candidates = np.nonzero(np.isclose(scores, best, rtol=0, atol=1e-12))[0]
    finite = np.where(np.isfinite(thresholds), thresholds, 1.0)
    k = candidates[np.argmin(np.abs(finite[candidates] - 0.5))]
    lower = thresholds[k - 1] if k > 0 else 0.0
    upper = thresholds[k] if np.isfinite(thresholds[k]) else 1.0 + 1e-9
    return float((lower + upper) / 2), float(scores[k])


def tune_threshold(y_true: np.ndarray, prob: np.ndarray, *, boots: int = 200,
                   seed: int = 0) -> Threshold:
    """`best_threshold` plus how stable it is over bootstrap resamples."""
    y, p = np.asarray(y_true, int).reshape(-1), np.asarray(prob, float).reshape(-1)
    value, score = best_threshold(y, p)
    rng = np.random.default_rng(seed)
    values, scores = [], []
    for _ in range(boots):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        v, s = best_threshold(y[idx], p[idx])
        values.append(v)
        scores.append(s)
    return Threshold(value, score, balanced_accuracy(y, p >= 0.5),
                     float(np.std(values)) if values else 0.0,
                     float(np.std(scores)) if scores else 0.0)


def oof_decisions(prob: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
                  num_classes: int) -> np.ndarray:
    """Out-of-fold class decisions: the threshold applied to fold k is tuned on the others
    (arg-max for more than two classes)."""
    if num_classes != 2:
        return np.asarray(prob).argmax(axis=1)
    pred = np.zeros(len(y), np.int64)
    for k in np.unique(folds):
        test = folds == k
        if len(np.unique(y[~test])) < 2:
            threshold = 0.5
        else:
            threshold, _ = best_threshold(y[~test], prob[~test])
        pred[test] = prob[test] >= threshold
    return pred


# -- the decision rule -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Everything phase 2 reuses: the runs, whether the stacker is used, the threshold."""

    runs: list[str]
    classes: list[str]
    fingerprint: str
    tta: bool
    folds: int
    holdout_images: int
    cnn_oof_balanced_accuracy: float  # CNN probabilities, threshold tuned out-of-fold
    cnn_balanced_accuracy_at_half: float
    ensemble_tried: bool
    ensemble_oof_balanced_accuracy: float | None  # LightGBM, out-of-fold, threshold too
    use_ensemble: bool  # only when its out-of-fold score is higher
    threshold: Threshold | None  # two classes; arg-max otherwise
    leaks: LeakCheck

    @property
    def oof_balanced_accuracy(self) -> float:
        """The holdout score of the chosen rule, out-of-fold."""
        if self.use_ensemble and self.ensemble_oof_balanced_accuracy is not None:
            return self.ensemble_oof_balanced_accuracy
        return self.cnn_oof_balanced_accuracy

    def apply(self, pred: Predictions, folder: Path) -> np.ndarray:
        """Class per image from new predictions (the stacker is read from `folder`)."""
        prob: np.ndarray = pred.prob
        if self.use_ensemble:
            import lightgbm

            booster = lightgbm.Booster(model_file=str(folder / STACKER_FILE))
            raw = np.asarray(booster.predict(stacker.stack_features(pred)))
            prob = raw if len(self.classes) == 2 else raw.reshape(len(prob), len(self.classes))
        if self.threshold is not None:
            return predict_labels(prob, self.threshold.value)
        return predict_labels(prob)

    def save(self, folder: Path) -> None:
        write_json(folder / DECISION_FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path, *, fingerprint: str) -> Decision | None:
        """The saved rule, or None when absent, unreadable or fitted on other data."""
        try:
            data = json.loads((folder / DECISION_FILE).read_text())
            data["threshold"] = Threshold(**data["threshold"]) if data["threshold"] else None
            data["leaks"] = LeakCheck(**data["leaks"])
            decision = cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return decision if decision.fingerprint == fingerprint else None


def decision_key(*, runs: list[str], tta: bool, ensemble: bool, folds: int, seed: int) -> str:
    """Name of the folder a decision rule is cached in, from every option it depends on."""
    return hashlib.sha256(json.dumps([runs, tta, ensemble, folds, seed, SCHEMA])
                          .encode()).hexdigest()[:10]


def fit_decision(pred: Predictions, y: np.ndarray, fold: np.ndarray, *, classes: list[str],
                 runs: list[str], fingerprint: str, tta: bool, ensemble: bool, seed: int,
                 leaks: LeakCheck, folder: Path) -> Decision:
    """Fit the rule on holdout predictions `pred` with labels `y` and folds `fold`; the
    stacker, when it wins, is saved in `folder`."""
    k = len(classes)
    cnn_oof = balanced_accuracy(y, oof_decisions(pred.prob, y, fold, num_classes=k))
    chosen, ens_score, use_ensemble = pred.prob, None, False
    if ensemble:
        features = stacker.stack_features(pred)
        lgbm_oof = stacker.oof_lgbm(features, y, fold, num_classes=k, seed=seed)
        ens_score = balanced_accuracy(y, oof_decisions(lgbm_oof, y, fold, num_classes=k))
        use_ensemble = ens_score > cnn_oof
        if use_ensemble:
            chosen = lgbm_oof
            model = stacker.fit_lgbm(features, y, num_classes=k, seed=seed)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / STACKER_FILE, lambda p: model.booster_.save_model(str(p)))
    return Decision(
        runs=runs, classes=classes, fingerprint=fingerprint, tta=tta,
        folds=int(len(np.unique(fold))), holdout_images=int(len(y)),
        cnn_oof_balanced_accuracy=cnn_oof,
        cnn_balanced_accuracy_at_half=balanced_accuracy(y, predict_labels(pred.prob)),
        ensemble_tried=ensemble, ensemble_oof_balanced_accuracy=ens_score,
        use_ensemble=use_ensemble,
        threshold=tune_threshold(y, chosen, seed=seed) if k == 2 else None, leaks=leaks)


def describe(decision: Decision) -> list[str]:
    """The lines `comp submit` prints about the rule."""
    used = "used" if decision.use_ensemble else "not used"
    ens = (f", LightGBM {decision.ensemble_oof_balanced_accuracy:.4f}"
           if decision.ensemble_oof_balanced_accuracy is not None else "")
    lines = [f"runs: {', '.join(decision.runs)}; LightGBM ensemble {used} (out-of-fold "
             f"balanced accuracy: CNN {decision.cnn_oof_balanced_accuracy:.4f}{ens})",
             f"holdout balanced accuracy {decision.oof_balanced_accuracy:.4f} (out-of-fold: "
             f"each fold decided by a rule tuned on the others; {decision.holdout_images} "
             f"images); CNN at threshold 0.5: {decision.cnn_balanced_accuracy_at_half:.4f}"]
    t = decision.threshold
    if t is not None:
        lines.append(f"threshold {t.value:.4f} (+-{t.spread:.4f} over bootstrap resamples); "
                     f"{t.score:.4f} on the holdout it was tuned on (optimistic: not a "
                     "score to compare)")
    else:
        lines.append(f"{len(decision.classes)} classes: arg-max of the probabilities")
    return lines
