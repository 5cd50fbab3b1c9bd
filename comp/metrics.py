"""Balanced accuracy, confusion matrices and class decisions, on numpy arrays."""

from __future__ import annotations

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


def probability_matrix(prob: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities, the one shape comp hands around: a two-class model's
    p(class 1) ((N,) or (N, 1)) becomes the columns [1 - p, p]."""
    prob = np.asarray(prob)
    if prob.ndim == 1 or prob.shape[1] == 1:
        p1 = prob.reshape(-1)
        return np.stack([1 - p1, p1], axis=1)
    return prob


def positive(prob: np.ndarray) -> np.ndarray:
    """p(class 1) of a two-class (N, 2) matrix (or of the (N,) form)."""
    return probability_matrix(prob)[:, 1]


def predict_labels(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class per row: p(class 1) >= threshold for two classes ((N, 2), (N,) or (N, 1)),
    else the arg-max."""
    prob = probability_matrix(prob)
    if prob.shape[1] == 2:
        return (prob[:, 1] >= threshold).astype(np.int64)
    return prob.argmax(axis=1)
