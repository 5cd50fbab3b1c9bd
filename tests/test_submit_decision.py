"""The decision rule: threshold search, out-of-fold tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from comp.submit import decision
from comp.submit.predict import Predictions


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


def _holdout(n: int = 200, seed: int = 0) -> tuple[np.ndarray, Predictions, np.ndarray]:


    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    prob = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1)  # a middling CNN
    pred = Predictions(prob, rng.normal(0, 1, (n, 4)).astype(np.float32))
    return y, pred, np.arange(n) % 5


@pytest.mark.parametrize("stacker_quality", ["better", "worse"])
def test_lightgbm_is_used_only_when_its_out_of_fold_score_is_higher(
        stacker_quality: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.submit import stacker
    from comp.submit.leaks import LeakCheck

    y, pred, fold = _holdout()
    oof = (y * 0.8 + 0.1) if stacker_quality == "better" else np.full(len(y), 0.5)
    monkeypatch.setattr(stacker, "oof_lgbm", lambda *a, **k: oof.astype(float))
    rule = decision.fit_decision(pred, y, fold, classes=["0", "1"], runs=["r"],
                                 fingerprint="f", tta=False, ensemble=True, seed=0,
                                 leaks=LeakCheck(1.0, 2, 1.0, 1),
                                 folder=tmp_path)
    cnn = balanced_accuracy_score(y, decision.oof_decisions(pred.prob, y, fold, num_classes=2))
    assert rule.cnn_oof_balanced_accuracy == pytest.approx(cnn)
    if stacker_quality == "better":
        assert rule.ensemble_oof_balanced_accuracy == pytest.approx(1.0)
        assert rule.use_ensemble and (tmp_path / decision.STACKER_FILE).exists()
        assert rule.oof_balanced_accuracy == pytest.approx(1.0)
    else:
        assert rule.ensemble_oof_balanced_accuracy < cnn
        assert not rule.use_ensemble and not (tmp_path / decision.STACKER_FILE).exists()
        assert rule.oof_balanced_accuracy == pytest.approx(cnn)
        # applied without the stacker: the CNN's probabilities at the tuned threshold
        assert rule.threshold is not None
        np.testing.assert_array_equal(rule.apply(pred, tmp_path),
                                      (pred.prob >= rule.threshold.value).astype(int))
    rule.save(tmp_path)
    assert decision.Decision.load(tmp_path, fingerprint="f") == rule
    assert decision.Decision.load(tmp_path, fingerprint="other") is None


def test_printed_holdout_score_is_the_out_of_fold_one(tmp_path: Path) -> None:
    from comp.submit.leaks import LeakCheck

    y, pred, fold = _holdout(seed=3)
    rule = decision.fit_decision(pred, y, fold, classes=["0", "1"], runs=["r"],
                                 fingerprint="f", tta=False, ensemble=False, seed=0,
                                 leaks=LeakCheck(1.0, 2, 1.0, 1),
                                 folder=tmp_path)
    assert rule.threshold is not None
    # tuned on all of the holdout, its score there is optimistic: never above it out-of-fold
    assert rule.threshold.score >= rule.oof_balanced_accuracy
    lines = decision.describe(rule)
    assert f"out-of-fold balanced accuracy {rule.oof_balanced_accuracy:.4f} on" in lines[1]
    assert f"{rule.threshold.score:.4f} on the images it was tuned on (optimistic" in lines[2]


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


def test_class_offsets_are_kept_only_when_they_win_out_of_fold(tmp_path: Path) -> None:
    from comp.submit.leaks import LeakCheck
    from comp.submit.predict import Predictions

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 200)
    fold = np.arange(600) % 5
    for skew, kept in ((np.array([1.5, 0.0, -1.5]), True), (np.zeros(3), False)):
        logits = rng.normal(size=(600, 3)) + np.eye(3)[y] * 1.5 + skew
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        rule = decision.fit_decision(Predictions(prob, np.zeros((600, 2))), y, fold,
                                     classes=["a", "b", "c"], runs=["r"], fingerprint="f",
                                     tta=False, ensemble=False, seed=0,
                                     leaks=LeakCheck(1.0, 0, 1.0, 0), folder=tmp_path)
        plain = balanced_accuracy_score(y, prob.argmax(axis=1))
        tuned = balanced_accuracy_score(y, decision.oof_decisions(prob, y, fold, num_classes=3,
                                                                  offsets=True))
        assert (rule.offsets is not None) == kept == (tuned > plain)
        assert rule.cnn_oof_balanced_accuracy == pytest.approx(max(plain, tuned))
