"""Leaks: the override and the label accuracy of duplicate matches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from comp.config import PrepareConfig
from comp.submit import leaks
from comp.workspace import Workspace


def test_override_by_hand() -> None:
    pred = np.array([0, 1, 1, 0])
    inherited = np.array([-1, 0, 1, 1])
    out, overridden, changed = leaks.override(pred, inherited)
    assert out.tolist() == [0, 0, 1, 1] and overridden == 3 and changed == 2


def test_match_label_accuracy_by_hand() -> None:
    index = pd.DataFrame({"source": "train", "original_label": [1, 1, 0, 1, 0, 0],
                          "label": [1, 1, 0, 1, 0, 0], "group": [0, 0, 2, 2, 4, 5],
                          "kept": [True, False, False, False, True, True],
                          "split": ["holdout", "duplicate", "conflict", "conflict", "train",
                                    "holdout"]})
    pairs = pd.DataFrame({"i": [0, 2], "j": [1, 3]})
    # pair (0,1) agrees, pair (2,3) conflicts: 4 images, 2 right
    assert leaks.match_label_accuracy(index, pairs) == (0.5, 4)
    assert leaks.match_label_accuracy(index, pairs, split="holdout") == (1.0, 2)


def test_every_planted_leak_is_overridden_and_none_else(demo_dir: Path, workspace: Path,
                                                        tmp_path: Path) -> None:
    from comp.prepare import prepare

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    prepare(PrepareConfig(workspace=ws, test=demo_dir / "phase2/test", workers=1))
    overlap = pd.read_csv(Workspace(ws).overlap, dtype={"id": str})
    answers = pd.read_csv(demo_dir / "answers/test.csv", dtype=str, keep_default_na=False)
    inherited = leaks.leak_labels(overlap, "test", answers["id"].tolist())
    planted = (answers["train_id"] != "").to_numpy()
    copies = pd.read_csv(demo_dir / "answers/train_copies.csv", dtype=str)
    conflicted = set(copies[copies["kind"] == "conflict"]["original_id"])
    ambiguous = answers["train_id"].isin(conflicted).to_numpy()
    assert (inherited[planted & ~ambiguous] >= 0).all()
    assert (inherited[~planted] == -1).all()
    assert (inherited[planted & ~ambiguous] ==
            answers["label"][planted & ~ambiguous].astype(int)).all()


def test_the_gate_overrides_only_when_the_duplicates_agree_more_than_the_rule_is_right() -> None:
    from comp.config import Leaks

    agree = leaks.LeakCheck(0.95, 120, 4)
    disagree = leaks.LeakCheck(0.70, 120, 4)
    use, why = leaks.gate(Leaks.AUTO, agree, 0.86)
    assert use and "0.950 of 120" in why and "0.860" in why
    use, why = leaks.gate(Leaks.AUTO, disagree, 0.86)
    assert not use and why.startswith("not overridden")
    assert leaks.gate(Leaks.ALWAYS, disagree, 0.86)[0]
    assert not leaks.gate(Leaks.NEVER, agree, 0.86)[0]
    assert not leaks.gate(Leaks.AUTO, leaks.LeakCheck(float("nan"), 0, None), 0.5)[0]


def test_inherited_labels_are_the_original_ones_not_the_relabelled() -> None:
    """An audit relabelled t1's copy from 1 to 0: the leak still inherits the given 1; a
    target whose copies were given different labels inherits nothing."""
    index = pd.DataFrame({"id": ["a", "b", "c"], "source": "train", "label": [0, 0, 1],
                          "original_label": [0, 0, 1], "given_label": [1, 0, 1]})
    overlap = pd.DataFrame({"source": "test", "id": ["t1", "t2"], "train_ids": ["a", "b;c"],
                            "label": [0, -1], "consistent": [True, False],
                            "distance": [0, 2]})
    assert leaks.leak_labels(overlap, "test", ["t1", "t2", "t3"], index).tolist() == [1, -1, -1]
    assert leaks.leak_labels(overlap, "test", ["t1", "t2"]).tolist() == [0, -1]


def test_agreement_is_read_at_the_leaks_distance_when_enough_pairs_lie_that_close() -> None:
    n = 2 * leaks.MIN_MEASURED + 20
    index = pd.DataFrame({"source": "train", "label": 0, "original_label": 0,
                          "given_label": np.r_[np.zeros(n // 2 * 2 - 20, int),
                                               np.tile([0, 1], 10)]})
    close = n // 2 - 10  # pairs at distance 0 agree; the last 10 (distance 3) conflict
    pairs = pd.DataFrame({"i": np.arange(0, n, 2), "j": np.arange(1, n, 2),
                          "distance": np.r_[np.zeros(close, int), np.full(10, 3)]})
    overlap = pd.DataFrame({"source": ["test"], "distance": [0]})
    exact = leaks.check_leaks(index, pairs, overlap, source="test")
    assert exact == leaks.LeakCheck(1.0, 2 * close, 0)
    every = leaks.check_leaks(index, pairs)
    assert every.max_distance is None and every.match_label_accuracy < 1.0
