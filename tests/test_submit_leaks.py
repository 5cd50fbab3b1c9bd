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
