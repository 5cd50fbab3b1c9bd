"""Scores of runs: which rows, which folds, and caches that are only caches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comp.errors import CompError
from comp.runs import RunDir
from comp.submit.evaluate import Evaluation, holdout_folds, scoring_folds


def _rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"split_group": np.arange(n), "fold": np.arange(n) % 5})


def test_a_one_model_run_is_scored_on_folds_of_its_holdout(tmp_path: Path) -> None:
    one = RunDir(tmp_path / "one")
    y = np.arange(40) % 2
    fold = scoring_folds(_rows(40), y, one, folds=None, seed=1)
    assert sorted(np.bincount(fold)) == [8] * 5  # 5 folds by default, stratified
    assert (np.bincount(fold[y == 1]) == 4).all()
    assert len(np.unique(scoring_folds(_rows(40), y, one, folds=4, seed=1))) == 4
    with pytest.raises(CompError, match="holdout split has 6 images, too few for 5 folds"):
        holdout_folds(_rows(6), np.arange(6) % 2, folds=5, seed=1)


def test_a_cross_fitted_run_is_scored_on_the_prepared_folds(tmp_path: Path) -> None:
    crossed = RunDir(tmp_path / "crossed")
    (crossed.path / "fold-0").mkdir(parents=True)
    rows = _rows(20)
    assert (scoring_folds(rows, np.zeros(20), crossed, folds=None, seed=1)
            == rows["fold"].to_numpy()).all()
    with pytest.raises(CompError, match="--folds 3: run 'crossed' is cross-fitted, so it is "
                       "scored on the workspace's prepared folds"):
        scoring_folds(rows, np.zeros(20), crossed, folds=3, seed=1)


def test_a_saved_evaluation_out_of_range_is_not_trusted(tmp_path: Path) -> None:
    good = {"run": "r", "model": "b1", "images": 6, "balanced_accuracy": 0.75,
            "balanced_accuracy_at_half": 0.5, "accuracy": 0.8, "per_class_accuracy": {},
            "confusion": [[1]], "threshold": 0.4, "model_tag": "t", "scored_on": "holdout"}
    path = tmp_path / "holdout.json"
    path.write_text(json.dumps(good))
    assert Evaluation.load(path) == Evaluation(**good)
    path.write_text(json.dumps({**good, "balanced_accuracy": 2.5}))
    assert Evaluation.load(path) is None
    path.write_text("{cut")
    assert Evaluation.load(path) is None


def test_holdout_folds_are_refused_for_a_cross_fitted_run_only(tmp_path: Path) -> None:
    from comp.submit.evaluate import refuse_holdout_folds

    one, crossed = RunDir(tmp_path / "one"), RunDir(tmp_path / "crossed")
    (crossed.path / "fold-0").mkdir(parents=True)
    refuse_holdout_folds(one, 3)
    refuse_holdout_folds(crossed, None)
    with pytest.raises(CompError, match="--folds 3: run 'crossed' is cross-fitted"):
        refuse_holdout_folds(crossed, 3)
