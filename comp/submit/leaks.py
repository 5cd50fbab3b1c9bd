"""Target images that leak from train (hash + pixel match), the override, and its gate.

The override hands a matched target image the *original* label of its training copies (as
the organisers gave it, before `--relabel` or `--conflicts majority`). Whether that is
better than the model is measured, not assumed: `check_leaks` measures how often one
labelled copy's original label equals another's (conflicting groups included), on pairs as
close as the leaks' own match distance, and `gate` overrides only where that agreement
beats the rule's own out-of-fold accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from comp.config import Leaks

MIN_MEASURED = 30  # labelled duplicates needed before the agreement is read at a distance


@dataclass(frozen=True)
class LeakCheck:
    """How often a labelled duplicate's original label equals its copy's (NaN: none)."""

    match_label_accuracy: float
    matches_measured: int
    max_distance: int | None  # pairs measured: hash distance at most this (None: every pair)


def original_labels(train: pd.DataFrame) -> np.ndarray:
    """The labels as given, per training row (before relabelling or a majority vote)."""
    label = train["label"].to_numpy(np.int64)
    for column in ("original_label", "given_label"):  # older workspaces lack the latter
        if column in train:
            given = train[column].fillna(-1).to_numpy(np.int64)
            label = np.where(given >= 0, given, label)
    return label


def check_leaks(index: pd.DataFrame, pairs: pd.DataFrame, overlap: pd.DataFrame | None = None,
                *, source: str | None = None) -> LeakCheck:
    """`match_label_accuracy` on the pairs as close as the target's leaks: those within the
    largest hash distance of `source`'s matches in `overlap`, when at least `MIN_MEASURED`
    labelled duplicates lie that close; else on every pair."""
    limit = None
    if overlap is not None and source is not None and len(pairs) and "distance" in pairs:
        matched = overlap[overlap["source"] == source]
        if len(matched):
            limit = int(matched["distance"].max())
    if limit is not None:
        close = pairs[pairs["distance"] <= limit]
        accuracy, measured = match_label_accuracy(index, close)
        if measured >= MIN_MEASURED:
            return LeakCheck(accuracy, measured, limit)
    return LeakCheck(*match_label_accuracy(index, pairs), None)


def leak_labels(overlap: pd.DataFrame, source: str, ids: list[str],
                index: pd.DataFrame | None = None) -> np.ndarray:
    """Per target id: the original training label it inherits, or -1 (no match, or matched
    training images whose original labels disagree: left to the model). Without `index`,
    the labels recorded in `overlap`."""
    part = overlap[overlap["source"] == source]
    if index is None:
        part = part[part["consistent"].astype(bool)]
        lookup = dict(zip(part["id"].astype(str), part["label"].astype(int), strict=True))
    else:
        train = index[index["source"] == "train"]
        given = dict(zip(train["id"].astype(str), original_labels(train).tolist(),
                         strict=True))
        lookup = {}
        for target, copies in zip(part["id"].astype(str), part["train_ids"].astype(str),
                                  strict=True):
            labels = {given[c] for c in copies.split(";") if c in given}
            if len(labels) == 1:
                lookup[target] = labels.pop()
    return np.array([lookup.get(i, -1) for i in ids], dtype=np.int64)


def override(pred: np.ndarray, inherited: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Replace predictions by inherited labels. Returns (new labels, overridden, changed)."""
    hit = inherited >= 0
    out = np.where(hit, inherited, pred)
    return out, int(hit.sum()), int((out != pred).sum())


def gate(policy: Leaks, check: LeakCheck, rule_accuracy: float) -> tuple[bool, str]:
    """Whether to override, and why, in words."""
    agreement = (f"a labelled duplicate's original label matched its copy's for "
                 f"{check.match_label_accuracy:.3f} of {check.matches_measured}"
                 + (f" (hash distance <= {check.max_distance})"
                    if check.max_distance is not None else ""))
    rule = f"the rule's out-of-fold accuracy {rule_accuracy:.3f}"
    if policy == Leaks.ALWAYS:
        return True, f"overridden (--leaks always); {agreement}; {rule}"
    if policy == Leaks.NEVER:
        return False, "not overridden (--leaks never)"
    if check.matches_measured == 0 or np.isnan(check.match_label_accuracy):
        return False, ("not overridden: no labelled duplicates to measure a copy's label "
                       "against (--leaks always overrides anyway)")
    if check.match_label_accuracy > rule_accuracy:
        return True, f"overridden: {agreement}, above {rule}"
    return False, f"not overridden: {agreement}, not above {rule}"


def match_label_accuracy(index: pd.DataFrame, pairs: pd.DataFrame, *,
                         split: str | None = None) -> tuple[float, int]:
    """How often a duplicate match's label is right, measured on labelled data.

    For every labelled image with a confirmed duplicate elsewhere in the training set (only
    those whose group sits in `split`, when given), the label the match would hand it (the
    partner's original label) is compared with its own original label. Conflicting groups
    count as wrong matches here: that is the risk the override takes on unlabelled images.

    Returns:
        (accuracy, number of matched images); accuracy is NaN with no match.
    """
    train = index[index["source"] == "train"].reset_index(drop=True)
    if len(pairs) == 0:
        return float("nan"), 0
    label = original_labels(train)
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
