"""Splits and folds: stratified, grouped, the same on every machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comp.prepare.splits import assign_folds, split_frame


def _toy(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    groups = np.arange(n)
    groups[1::7] = groups[0::7][: len(groups[1::7])]  # some pairs
    labels[1::7] = labels[0::7][: len(labels[1::7])]
    return groups, labels


def test_split_is_reproducible_stratified_and_grouped() -> None:
    groups, labels = _toy()
    split = split_frame(groups, labels, fractions=(0.595, 0.105, 0.3), seed=7)
    assert (split == split_frame(groups, labels, fractions=(0.595, 0.105, 0.3), seed=7)).all()
    assert not (split == split_frame(groups, labels, fractions=(0.595, 0.105, 0.3), seed=8)).all()
    frame = pd.DataFrame({"g": groups, "s": split, "y": labels})
    assert (frame.groupby("g")["s"].nunique() == 1).all()
    for name, frac in (("train", 0.595), ("val", 0.105), ("holdout", 0.3)):
        part = frame[frame["s"] == name]
        assert len(part) / len(frame) == pytest.approx(frac, abs=0.01)
        assert part["y"].mean() == pytest.approx(labels.mean(), abs=0.02)


def test_split_is_the_same_on_every_machine() -> None:
    """PCG64 is platform independent: pin the first assignments."""
    groups, labels = np.arange(12), np.array([0, 1] * 6)
    split = split_frame(groups, labels, fractions=(0.5, 0.25, 0.25), seed=0)
    # per stratum of 6: group midpoints at (k + 0.5) / 6 cut at 0.5 and 0.75 -> 3 / 1 / 2
    assert split.tolist() == ["holdout", "holdout", "holdout", "train", "train", "val", "train",
                              "holdout", "val", "train", "train", "train"]


def test_folds_are_balanced_and_grouped() -> None:
    groups, labels = _toy(1000, 3)
    folds = assign_folds(groups, labels, k=5, seed=1)
    assert set(folds) == set(range(5))
    frame = pd.DataFrame({"g": groups, "f": folds})
    assert (frame.groupby("g")["f"].nunique() == 1).all()
    assert np.bincount(folds).min() >= 180
