"""Balanced accuracy, confusion matrices, probability shapes: numbers worked out by hand."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from comp import metrics


def test_confusion_and_balanced_accuracy_by_hand() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 0, 2])
    matrix = metrics.confusion(y, pred, 3)
    assert matrix.tolist() == [[2, 2, 0], [1, 1, 0], [0, 0, 1]]
    # recalls 2/4, 1/2, 1/1: their mean
    assert metrics.balanced_accuracy(y, pred) == (0.5 + 0.5 + 1.0) / 3
    assert metrics.balanced_accuracy(y, pred) == balanced_accuracy_score(y, pred)


def test_a_class_missing_from_the_truth_is_not_averaged() -> None:
    matrix = metrics.confusion(np.array([0, 0]), np.array([0, 1]), 2)
    recall = metrics.per_class_accuracy(matrix)
    assert recall[0] == 0.5 and np.isnan(recall[1])
    assert metrics.balanced_accuracy(np.array([0, 0]), np.array([0, 1])) == 0.5


def test_probabilities_are_n_by_k_everywhere() -> None:
    p1 = np.array([0.2, 0.9])
    expected = [[0.8, 0.2], [0.1, 0.9]]
    np.testing.assert_allclose(metrics.probability_matrix(p1), expected)
    np.testing.assert_allclose(metrics.probability_matrix(p1[:, None]), expected)
    three = np.array([[0.1, 0.2, 0.7]])
    assert metrics.probability_matrix(three) is three
    np.testing.assert_allclose(metrics.positive(np.array(expected)), p1)
    assert metrics.predict_labels(p1, threshold=0.25).tolist() == [0, 1]
    assert metrics.predict_labels(three).tolist() == [2]
