"""Balanced accuracy, confusion matrices and the decision-threshold search, on numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return out


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class absent from y_true)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class accuracy over the classes present in y_true (as scikit-learn's
    `balanced_accuracy_score`)."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    k = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    return float(np.nanmean(per_class_accuracy(confusion(y_true, y_pred, k))))


def predict_labels(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class per row: `prob >= threshold` for a binary (N,) or (N,1) output, else arg-max."""
    prob = np.asarray(prob)
    if prob.ndim == 1 or prob.shape[1] == 1:
        return (prob.reshape(-1) >= threshold).astype(np.int64)
    return prob.argmax(axis=1)


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


def tune_threshold(y_true: np.ndarray, prob: np.ndarray, boots: int = 200,
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
