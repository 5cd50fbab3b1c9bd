"""Splits and folds: stratified by label, every duplicate (and identity) group on one side.

`assign_parts` is the one assignment rule; `split_frame` names train/val/holdout and
`assign_folds` numbers K folds. `identity_groups` reads `--groups FILE:COLUMN` and
`split_groups` merges identity groups with duplicate groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from comp.errors import CompError, note
from comp.prepare.duplicates import group_ids
from comp.prepare.labels import read_labels

SPLIT_NAMES = ("train", "val", "holdout")


def _group_strata(groups: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per group: its size and its majority label (the stratum)."""
    frame = pd.DataFrame({"g": groups, "y": labels})
    counts = frame.groupby(["g", "y"]).size().rename("n").reset_index()
    # majority label per group; ties go to the smallest label
    top = counts.sort_values(["g", "n", "y"], ascending=[True, False, True]).drop_duplicates("g")
    per = top.set_index("g")[["y"]]
    per["size"] = frame.groupby("g").size()
    return per.sort_index()


def assign_parts(groups: np.ndarray, labels: np.ndarray, *, fractions: list[float],
                 seed: int) -> np.ndarray:
    """Stratified, grouped assignment of images to parts with the given fractions.

    Every group lands in one part; within each label stratum the groups are shuffled with
    `numpy.random.default_rng(seed)` (PCG64: the same on every machine) and cut where the
    cumulative image count crosses each fraction.

    Returns:
        (N,) part index per image.
    """
    shares = np.asarray(fractions, dtype=float)
    if (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
        raise CompError(f"split fractions must be >= 0 and add up to 1. Received: "
                        f"{shares.tolist()}")
    per = _group_strata(groups, labels)
    rng = np.random.default_rng(seed)
    part_of_group: dict[int, int] = {}
    bounds = np.cumsum(shares)[:-1]
    for _, stratum in per.groupby("y", sort=True):
        ids = stratum.index.to_numpy()
        sizes = stratum["size"].to_numpy()
        perm = rng.permutation(len(ids))
        ids, sizes = ids[perm], sizes[perm]
        # position of each group's midpoint on [0, 1) of the stratum's images
        mid = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
        parts = np.searchsorted(bounds, mid, side="right")
        part_of_group.update(zip(ids.tolist(), parts.tolist(), strict=True))
    return np.array([part_of_group[g] for g in groups], dtype=np.int64)


def split_frame(groups: np.ndarray, labels: np.ndarray, *,
                fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """train / val / holdout names per image (default fractions: the report's 59.5/10.5/30)."""
    parts = assign_parts(groups, labels, fractions=list(fractions), seed=seed)
    return np.array(SPLIT_NAMES, dtype=object)[parts]


def check_split_classes(names: np.ndarray, labels: np.ndarray, *,
                        fractions: tuple[float, float, float], classes: list[str]) -> None:
    """Every class in every split that has a share: a class missing from val or holdout
    cannot be validated or tuned for, one missing from train cannot be learned."""
    for split, share in zip(SPLIT_NAMES, fractions, strict=True):
        if share == 0:
            continue
        present = np.bincount(labels[names == split], minlength=len(classes))
        if (present == 0).any():
            k = int(np.argmax(present == 0))
            total = int((labels == k).sum())
            raise CompError(f"class {classes[k]!r} has no image in the {split} split (it has "
                            f"{total} kept images in all); add images of that class, or pass "
                            "other --split fractions")


def check_fold_count(labels: np.ndarray, *, k: int, classes: list[str],
                     folds: np.ndarray | None = None) -> None:
    """K folds need at least K images and, once assigned (`folds`), an image in every fold.
    A class with fewer than K images leaves some folds without it (as scikit-learn's
    StratifiedKFold warns): said in a note, once the folds are assigned."""
    if k > len(labels):
        raise CompError(f"--folds {k}: there are only {len(labels)} labelled images; pass "
                        f"--folds {max(len(labels), 2)} or fewer")
    if folds is None:
        return
    filled = np.bincount(folds, minlength=k)
    if (filled == 0).any():
        raise CompError(f"--folds {k}: fold {int(np.argmin(filled))} gets no image (the "
                        "duplicate and identity groups are too large for so many folds); "
                        "pass fewer --folds")
    counts = np.bincount(labels, minlength=len(classes))
    if k > counts.min():
        c = int(np.argmin(counts))
        note(f"--folds {k}: class {classes[c]!r} has only {int(counts[c])} kept images, so "
             f"{k - int(counts[c])} of the folds hold none of it (their out-of-fold scores "
             "miss that class)")


def assign_folds(groups: np.ndarray, labels: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """Stratified k folds (0..k-1) with every group inside one fold."""
    if k < 2:
        raise CompError(f"need at least 2 folds. Received: {k}")
    return assign_parts(groups, labels, fractions=[1.0 / k] * k, seed=seed)


def identity_groups(spec: str, ids: pd.Series) -> np.ndarray:
    """`FILE:COLUMN` -> an integer group per image (ids without a row form their own group)."""
    path_text, _, column = spec.rpartition(":")
    if not path_text or not column:
        raise CompError(f"--groups must be FILE:COLUMN. Received: {spec!r}")
    frame = read_labels(Path(path_text), id_column="id", label_column=column, role="groups")
    codes = pd.factorize(frame["label_text"])[0]
    lookup = dict(zip(frame["id"], codes, strict=True))
    base = len(codes) + 1
    return np.array([lookup.get(i, base + k) for k, i in enumerate(ids)], dtype=np.int64)


def split_groups(duplicate_groups: np.ndarray, identity: np.ndarray | None) -> np.ndarray:
    """The groups that must stay on one side of a split: duplicate groups joined with
    identity groups (`identity_groups`), as connected components over both kinds of link.

    Each group is named by its smallest member, as `group_ids` does.
    """
    n = len(duplicate_groups)
    if identity is None:
        return duplicate_groups
    links = np.concatenate([
        np.stack([np.arange(n), duplicate_groups], axis=1),  # image -- its duplicate group
        np.stack([np.arange(n), n + identity], axis=1),  # image -- its identity node
    ])
    return group_ids(n + int(identity.max()) + 1, links)[:n]
