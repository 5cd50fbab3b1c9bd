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


def test_copy_agreement_leaves_one_copy_out_by_hand() -> None:
    """Group {0,1}: both agree. Group {2,3,4} given 1,1,0: image 4's copies agree on 1 (not
    its label); images 2 and 3 each have copies that disagree, so they are not measured.
    Pair {5,6} at distance 3 disagrees, and counts only when the leaks lie that far."""
    index = pd.DataFrame({"source": "train", "label": 0,
                          "original_label": [1, 1, 1, 1, 0, 0, 1]})
    pairs = pd.DataFrame({"i": [0, 2, 2, 3, 5], "j": [1, 3, 4, 4, 6],
                          "distance": [0, 0, 0, 0, 3]})
    overlap = pd.DataFrame({"source": ["test", "val"], "distance": [0, 3]})
    exact = leaks.copy_agreement(index, pairs, overlap, source="test")
    assert exact == leaks.CopyAgreement(right=2, measured=3, max_distance=0)
    assert leaks.copy_agreement(index, pairs, overlap, source="val") == \
        leaks.CopyAgreement(right=2, measured=5, max_distance=3)
    assert leaks.copy_agreement(index, pairs.iloc[:0]) == leaks.CopyAgreement(0, 0, None)


def test_two_conflicting_copies_cannot_decide_alone() -> None:
    """0 of 2 measured: the prior (0.9 worth 10 images) keeps the estimate at 9/12."""
    assert leaks.CopyAgreement(0, 2, 0).estimate == 0.75
    assert leaks.CopyAgreement(0, 0, None).estimate == leaks.PRIOR_AGREEMENT
    assert abs(leaks.CopyAgreement(900, 1000, 4).estimate - 909 / 1010) < 1e-12


def test_the_policy_is_the_best_of_three_and_ties_keep_the_evidence() -> None:
    from comp.config import Leaks
    from comp.submit.evidence import LeakScores

    assert leaks.choose_policy(Leaks.AUTO, LeakScores(0.80, 0.95, 0.95, 10))[0] == \
        Leaks.EVIDENCE
    assert leaks.choose_policy(Leaks.AUTO, LeakScores(0.90, 0.95, 0.93, 10))[0] == Leaks.ALWAYS
    assert leaks.choose_policy(Leaks.AUTO, LeakScores(0.90, 0.70, 0.90, 10))[0] == \
        Leaks.EVIDENCE
    assert leaks.choose_policy(Leaks.AUTO, LeakScores(0.91, 0.70, 0.90, 10))[0] == Leaks.NEVER
    assert leaks.choose_policy(Leaks.AUTO, None)[0] == Leaks.NEVER
    assert leaks.choose_policy(Leaks.ALWAYS, None) == (Leaks.ALWAYS, "--leaks always")


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
