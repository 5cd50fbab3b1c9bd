"""The decision primitives: threshold search, class offsets, out-of-fold tuning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from comp.submit import decision


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_search_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.3).astype(int)
    prob = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, 400), 0, 1), 2)  # many ties
    thresholds, scores = decision.threshold_scores(y, prob)
    for t, s in zip(thresholds, scores, strict=True):
        assert s == pytest.approx(balanced_accuracy_score(y, prob >= t), abs=1e-12)
    brute = max(balanced_accuracy_score(y, prob >= t) for t in [*np.unique(prob), np.inf])
    value, score = decision.best_threshold(y, prob)
    assert score == pytest.approx(brute, abs=1e-12)
    assert balanced_accuracy_score(y, prob >= value) == pytest.approx(brute, abs=1e-12)
    tuned = decision.tune_threshold(y, prob, boots=50)
    assert tuned.score_at_half == pytest.approx(balanced_accuracy_score(y, prob >= 0.5))
    assert tuned.spread >= 0 and tuned.score >= tuned.score_at_half


def test_threshold_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    # t=0.35 -> tp 3/3, tn 1/2 -> 0.75; t=0.8 -> tp 2/3, tn 2/2 -> 0.8333 (best)
    value, score = decision.best_threshold(y, prob)
    assert score == pytest.approx(5 / 6)
    assert value == pytest.approx((0.4 + 0.8) / 2)


def test_thresholds_are_tuned_out_of_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    y = np.array([0, 1] * 50)
    prob = np.linspace(0, 1, 100)
    folds = np.arange(100) % 4
    calls: list[int] = []
    real = decision.best_threshold
    monkeypatch.setattr(decision, "best_threshold",
                        lambda yy, pp: (calls.append(len(yy)), real(yy, pp))[1])
    decision.oof_decisions(prob, y, folds, num_classes=2)
    assert calls == [75, 75, 75, 75]


@pytest.mark.parametrize("seed", [0, 1])
def test_class_offsets_equal_a_brute_force_search(seed: int) -> None:
    """Three classes, every pair of offsets of the grid scored one by one with scikit-learn:
    the vectorised search finds the same best score, and the smallest shift among ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 120)
    y[:10] = 2  # class 2 common enough to matter
    logits = rng.normal(size=(120, 3)) + np.eye(3)[y] * 0.8 + np.array([0.6, 0.0, -0.6])
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    best, best_shift, best_offsets = -1.0, np.inf, None
    for a in decision.OFFSET_GRID:
        for b in decision.OFFSET_GRID:
            offsets = np.array([0.0, a, b])
            score = balanced_accuracy_score(y, (np.log(prob) + offsets).argmax(axis=1))
            shift = abs(a) + abs(b)
            if score > best + 1e-12 or (abs(score - best) <= 1e-12 and shift < best_shift):
                best, best_shift, best_offsets = score, shift, offsets
    offsets, score = decision.best_offsets(y, prob)
    assert score == pytest.approx(best)
    assert np.abs(offsets).sum() == pytest.approx(best_shift)
    assert balanced_accuracy_score(y, decision.apply_offsets(prob, offsets)) == pytest.approx(best)
    assert best > balanced_accuracy_score(y, prob.argmax(axis=1))  # the skew is worth undoing
    assert best_offsets is not None


def test_two_class_matrices_and_p1_vectors_give_the_same_decisions() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(200) < 0.3).astype(int)
    p1 = rng.uniform(size=200)
    matrix = np.stack([1 - p1, p1], axis=1)
    folds = np.arange(200) % 4
    assert decision.best_threshold(y, matrix) == decision.best_threshold(y, p1)
    np.testing.assert_array_equal(decision.oof_decisions(matrix, y, folds, num_classes=2),
                                  decision.oof_decisions(p1, y, folds, num_classes=2))
