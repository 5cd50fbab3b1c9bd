"""Target images that leak from train (hash + pixel match), the labels they inherit, and
how far to trust them.

A matched target image inherits the *original* label of its training copies (as the
organisers gave it, before `--relabel` or `--conflicts majority`), when they agree. How
often such a label is right is measured on the labelled duplicates themselves, on the kind
of match the override acts on: a labelled image whose other copies (within the leaks' own
hash distance) agree on one label, and whether its own label is that one
(`copy_agreement`), shrunk towards a prior so that a handful of pairs cannot decide.
`comp.submit.evidence` combines it with the rule's calibrated probability; `choose_policy`
picks model alone, copies alone, or both, by their out-of-fold estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from comp.config import Leaks
from comp.submit.evidence import LeakScores

PRIOR_AGREEMENT = 0.9  # a copy's label is right, before any labelled duplicate is measured
PRIOR_IMAGES = 10  # the prior is worth this many measured images


@dataclass(frozen=True)
class CopyAgreement:
    """Labelled images whose other copies agree on one original label: how many, and for
    how many that label is their own."""

    right: int
    measured: int
    max_distance: int | None  # copies this close (None: every pair)

    @property
    def estimate(self) -> float:
        """The probability that an inherited label is right: the measured share, shrunk
        towards `PRIOR_AGREEMENT` as if `PRIOR_IMAGES` more images had been measured."""
        return ((self.right + PRIOR_AGREEMENT * PRIOR_IMAGES)
                / (self.measured + PRIOR_IMAGES))

    def words(self) -> str:
        close = (f" at hash distance <= {self.max_distance}" if self.max_distance is not None
                 else "")
        return (f"an inherited label is right with probability {self.estimate:.3f} (a "
                f"labelled image's agreeing copies{close} gave its own label for "
                f"{self.right} of {self.measured}; prior {PRIOR_AGREEMENT} worth "
                f"{PRIOR_IMAGES} images)")


def original_labels(train: pd.DataFrame) -> np.ndarray:
    """The labels as given, per training row (before relabelling or a majority vote)."""
    label = train["label"].to_numpy(np.int64)
    for column in ("original_label", "given_label"):  # older workspaces lack the latter
        if column in train:
            given = train[column].fillna(-1).to_numpy(np.int64)
            label = np.where(given >= 0, given, label)
    return label


def copy_agreement(index: pd.DataFrame, pairs: pd.DataFrame,
                   overlap: pd.DataFrame | None = None, *, source: str | None = None
                   ) -> CopyAgreement:
    """Leave one copy out: for every labelled image in a duplicate pair as close as
    `source`'s matches in `overlap` (every pair without them), whose other copies that close
    agree on one original label, whether that label is its own."""
    limit = None
    if overlap is not None and source is not None and len(pairs) and "distance" in pairs:
        matched = overlap[overlap["source"] == source]
        if len(matched):
            limit = int(matched["distance"].max())
    close = pairs if limit is None else pairs[pairs["distance"] <= limit]
    if len(close) == 0:
        return CopyAgreement(0, 0, limit)
    train = index[index["source"] == "train"].reset_index(drop=True)
    label = original_labels(train)
    i, j = close["i"].to_numpy(np.int64), close["j"].to_numpy(np.int64)
    both = pd.DataFrame({"img": np.r_[i, j], "copy": label[np.r_[j, i]]})
    copies = both.groupby("img")["copy"].agg(["min", "max"])
    agree = copies[copies["min"] == copies["max"]]
    right = int((label[agree.index.to_numpy()] == agree["min"].to_numpy()).sum())
    return CopyAgreement(right, int(len(agree)), limit)


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


def choose_policy(policy: Leaks, scores: LeakScores | None) -> tuple[Leaks, str]:
    """What to do with the inherited labels (never, always, or evidence), and why in words.
    `auto`: the best of the three by their out-of-fold estimates (ties: evidence, then the
    model alone); without scores (no scored rows) the model alone."""
    if policy != Leaks.AUTO:
        return policy, f"--leaks {policy}"
    if scores is None:
        return Leaks.NEVER, "auto: nothing scored out-of-fold to weigh the copies against"
    ranked = [(scores.evidence, Leaks.EVIDENCE), (scores.never, Leaks.NEVER),
              (scores.always, Leaks.ALWAYS)]
    best = max(ranked, key=lambda r: r[0])[1]  # max keeps the first of equals
    return best, f"auto: {best} scores highest"


def leak_words(scores: LeakScores | None) -> str:
    if scores is None:
        return "no out-of-fold estimate"
    return (f"expected balanced accuracy on leaked images like the {scores.images:,} scored "
            f"ones, out-of-fold: model alone {scores.never:.4f}, copies' labels alone "
            f"{scores.always:.4f}, both as evidence {scores.evidence:.4f}")
