"""Target images that leak from train (hash + pixel match) and the prediction override."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LeakCheck:
    """How often a duplicate's label was right, measured on labelled duplicates (NaN: none)."""

    match_label_accuracy: float
    matches_measured: int
    match_label_accuracy_holdout: float  # only images whose group sits in the holdout
    matches_measured_holdout: int


def check_leaks(index: pd.DataFrame, pairs: pd.DataFrame) -> LeakCheck:
    """`match_label_accuracy` over all labelled duplicates and over holdout groups."""
    return LeakCheck(*match_label_accuracy(index, pairs),
                     *match_label_accuracy(index, pairs, split="holdout"))


def leak_labels(overlap: pd.DataFrame, source: str, ids: list[str]) -> np.ndarray:
    """Per target id: the training label it inherits, or -1 (no match, or matched training
    images whose labels disagree: left to the model)."""
    part = overlap[(overlap["source"] == source) & overlap["consistent"].astype(bool)]
    lookup = dict(zip(part["id"].astype(str), part["label"].astype(int), strict=True))
    return np.array([lookup.get(i, -1) for i in ids], dtype=np.int64)


def override(pred: np.ndarray, inherited: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Replace predictions by inherited labels. Returns (new labels, overridden, changed)."""
    hit = inherited >= 0
    out = np.where(hit, inherited, pred)
    return out, int(hit.sum()), int((out != pred).sum())


def match_label_accuracy(index: pd.DataFrame, pairs: pd.DataFrame, *,
                         split: str | None = None) -> tuple[float, int]:
    """How often a duplicate match's label is right, measured on labelled data.

    For every labelled image with a confirmed duplicate elsewhere in the training set (only
    those whose group sits in `split`, when given), the label the match would hand it (the
    partner's original label) is compared with its own. Conflicting groups count as wrong
    matches here: that is the risk the override takes on unlabelled images.

    Returns:
        (accuracy, number of matched images); accuracy is NaN with no match.
    """
    train = index[index["source"] == "train"].reset_index(drop=True)
    if len(pairs) == 0:
        return float("nan"), 0
    label = train["original_label"].to_numpy() if "original_label" in train else \
        train["label"].to_numpy()
    if split is None:
        in_split = np.ones(len(train), dtype=bool)
    else:  # a group's side is its kept member's split; conflict groups have none
        side = train[train["kept"].astype(bool)].set_index("group")["split"]
        in_split = (train["group"].map(side) == split).to_numpy()
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    rows = []
    for a, b in ((i, j), (j, i)):
        sel = in_split[a]
        rows.append(pd.DataFrame({"img": a[sel], "right": label[a[sel]] == label[b[sel]]}))
    per_image = pd.concat(rows).groupby("img")["right"].mean()
    if len(per_image) == 0:
        return float("nan"), 0
    return float(per_image.mean()), int(len(per_image))
