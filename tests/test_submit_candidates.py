"""The candidates of the submission rule: CNNs with and without the flip, stackers, stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from comp.config import Tta
from comp.runs import RunDir
from comp.submit.candidates import build, flips
from comp.submit.predict import Predictions
from comp.submit.select import Source


def test_the_flip_policy() -> None:
    assert flips(Tta.AUTO) == [False, True]
    assert flips(Tta.ON) == [True] and flips(Tta.OFF) == [False]


def _preds(n: int, y: np.ndarray, seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    p1 = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, n), 0.01, 0.99)
    return Predictions(np.stack([1 - p1, p1], axis=1), rng.normal(size=(n, 4)).astype(np.float32))


def test_candidates_come_simplest_first(tmp_path: Path) -> None:
    """Two one-model runs, flip on and off: four CNNs, then their stackers, then the two
    stacks of both runs; every candidate holds out-of-fold probabilities of every row."""
    n = 200
    y = np.arange(n) % 2
    fold = np.arange(n) % 4
    runs = [RunDir(tmp_path / "a"), RunDir(tmp_path / "b")]
    preds = {(r.name, t): _preds(n, y, k) for k, (r, t) in enumerate(
        (r, t) for r in runs for t in (False, True))}
    made = build(preds, runs, y, fold, np.arange(n), num_classes=2, tta=[False, True],
                 ensemble=True, seed=0)
    names = [c.name for c in made]
    assert names[:4] == ["a", "b", "a +flip", "b +flip"]
    assert names[4:8] == ["a LightGBM", "b LightGBM", "a LightGBM +flip", "b LightGBM +flip"]
    assert names[8:] == ["stack of 2 runs", "stack of 2 runs +flip"]
    assert [c.source for c in made] == [Source.CNN] * 4 + [Source.STACKER] * 4 + [
        Source.STACK] * 2
    for c in made:
        assert c.full.shape == (n, 2)
        np.testing.assert_allclose(c.full.sum(axis=1), 1, atol=1e-6)
    assert made[0].full is preds[("a", False)].prob  # a CNN's own probabilities
    assert made[8].runs == ("a", "b") and made[8].nested is not None
    without = build(preds, runs, y, fold, np.arange(n), num_classes=2, tta=[False],
                    ensemble=False, seed=0)
    assert [c.name for c in without] == ["a", "b"]
    # b a feature run: neither flipped nor stacked by LightGBM; still in both stacks
    featured = build(preds, runs, y, fold, np.arange(n), num_classes=2, tta=[False, True],
                     ensemble=True, seed=0, flipped=frozenset({"a"}), stacked=frozenset({"a"}))
    assert [c.name for c in featured] == ["a", "b", "a +flip", "a LightGBM",
                                          "a LightGBM +flip", "stack of 2 runs",
                                          "stack of 2 runs +flip"]
