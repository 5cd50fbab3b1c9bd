"""Labels, duplicate groups, label conflicts, splits and folds: pure functions on frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from comp.errors import CompError

SPLIT_NAMES = ("train", "val", "holdout")


# -- labels ---------------------------------------------------------------------------------------

def read_labels(path: Path, id_column: str = "id", label_column: str = "label") -> pd.DataFrame:
    """Read a labels CSV as strings (ids keep leading zeros): columns `id`, `label_text`."""
    if not path.exists():
        raise CompError(f"{path}: labels file not found; pass --labels FILE")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CompError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]}); "
                        "fix the file") from None
    for column in (id_column, label_column):
        if column not in frame.columns:
            raise CompError(f"{path}: no column {column!r} (columns: {', '.join(frame.columns)}); "
                            f"pass --id-column / --label-column")
    out = pd.DataFrame({"id": frame[id_column].str.strip(),
                        "label_text": frame[label_column].str.strip()})
    # strip a file extension from ids given as file names (userid.jpg)
    out["id"] = out["id"].str.replace(r"\.(png|jpe?g|bmp|gif|webp|tiff?)$", "", regex=True,
                                      case=False)
    dup = out["id"].duplicated(keep=False)
    if dup.any():
        rows = np.nonzero(dup.to_numpy())[0][:2] + 2
        raise CompError(f"{path}: id {out['id'][dup].iloc[0]!r} appears more than once "
                        f"(rows {', '.join(map(str, rows))}); keep one row per id")
    empty = out["id"] == ""
    if empty.any():
        raise CompError(f"{path}: row {int(np.argmax(empty.to_numpy())) + 2} has an empty id; "
                        "fix the row")
    return out


def encode_labels(texts: pd.Series, classes: list[str] | None,
                  source: str) -> tuple[np.ndarray, list[str]]:
    """Label texts -> class indices. Without `classes`: 0/1 labels stay 0/1, names are sorted.

    Raises:
        CompError naming the first row whose label is empty or not a known class.
    """
    values = texts.to_numpy(dtype=str)
    if classes is None:
        unique = sorted(set(values))
        if all(v.lstrip("-").isdigit() for v in unique if v):
            classes = ["0", "1"]
        else:
            classes = [v for v in unique if v]
    lookup = {c: i for i, c in enumerate(classes)}
    codes = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        raise CompError(f"{source}: row {row + 2} (id {texts.index[row]!r}) has label "
                        f"{str(values[row])!r}, which is not one of {', '.join(classes)}; fix the "
                        "label or pass --classes with every class name")
    if len(classes) < 2:
        raise CompError(f"{source}: only one class ({classes[0]!r}); a classifier needs two")
    return codes, classes


# -- duplicate groups and conflicts ----------------------------------------------------------------

def pixel_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute pixel difference after removing each pair's mean brightness offset.

    Compared on 2x2 block means: a re-export's error (JPEG ringing, rounding) is high-frequency
    and averages out, while two different faces, even aligned alike, differ at every scale.
    A re-exported copy (JPEG round trip, +-3 brightness) scores about 0-3 on the 0..255 scale.

    Args:
        a, b: (P, H, W, C) uint8 arrays of paired images.
    Returns:
        (P,) float32.
    """
    p, h, w, c = a.shape
    if p == 0:
        return np.zeros(0, dtype=np.float32)
    h2, w2 = h // 2 * 2, w // 2 * 2
    diff = a[:, :h2, :w2].astype(np.int16)
    diff -= b[:, :h2, :w2]
    # 2x2 cell sums in exact integers (|sum| <= 1020), then the means in float32
    cells = diff[:, 0::2, 0::2] + diff[:, 1::2, 0::2]
    cells += diff[:, 0::2, 1::2]
    cells += diff[:, 1::2, 1::2]
    means = cells.reshape(p, -1).astype(np.float32)
    means /= 4
    means -= means.mean(axis=1, keepdims=True)
    return np.abs(means).mean(axis=1)


def _coarse(images: np.ndarray, grid: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Block means over a grid x grid partition of the 2x2 cells `pixel_distance` compares.

    Returns:
        (N, grid, grid, C) float32 means and the (grid, grid) share of cells in each block.
    """
    n, h, w, c = images.shape
    rows = 2 * np.linspace(0, h // 2, min(grid, h // 2) + 1).astype(int)
    cols = 2 * np.linspace(0, w // 2, min(grid, w // 2) + 1).astype(int)
    x = images[:, :rows[-1], :cols[-1]].astype(np.float32)
    sums = np.add.reduceat(np.add.reduceat(x, rows[:-1], axis=1), cols[:-1], axis=2)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float32)
    return sums / counts[None, :, :, None], counts / counts.sum()


def coarse_bound(sig_a: np.ndarray, sig_b: np.ndarray, share: np.ndarray) -> np.ndarray:
    """A lower bound of `pixel_distance` from block means (so a pair above the threshold here
    is above it there too): for any partition into blocks,
    mean|d - mu| >= sum over blocks of share * |mean_block(d) - mu|, with the same mu."""
    delta = sig_a - sig_b  # (P, g, g, C)
    weight = share[None, :, :, None] / delta.shape[-1]
    mu = (delta * weight).sum(axis=(1, 2, 3), keepdims=True)
    return (np.abs(delta - mu) * weight).sum(axis=(1, 2, 3))


def confirm_pairs(pairs: np.ndarray, images_a: np.ndarray, images_b: np.ndarray | None = None,
                  threshold: float = np.inf, batch: int = 1024) -> np.ndarray:
    """`pixel_distance` for each hash candidate pair (i in a, j in b or a), in batches.

    Pairs whose coarse lower bound already exceeds `threshold` skip the full comparison and
    report that bound instead (still above the threshold): different faces are rejected at
    about 1/50 of the cost, copies are compared in full.
    """
    out = np.zeros(len(pairs), dtype=np.float32)
    if len(pairs) == 0:
        return out

    def signatures(images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse signatures of the images a pair refers to (sorted ids, signatures)."""
        return idx, np.concatenate([_coarse(np.asarray(images[idx[s:s + batch]]))[0]
                                    for s in range(0, len(idx), batch)])

    if images_b is None:  # one set: one signature per image, whichever column it is in
        images_b = images_a
        ia, sa = ib, sb = signatures(images_a, np.unique(pairs[:, :2]))
    else:
        ia, sa = signatures(images_a, np.unique(pairs[:, 0]))
        ib, sb = signatures(images_b, np.unique(pairs[:, 1]))
    share = _coarse(np.asarray(images_a[:1]))[1]
    for s in range(0, len(pairs), batch):
        p = pairs[s:s + batch]
        bound = coarse_bound(sa[np.searchsorted(ia, p[:, 0])], sb[np.searchsorted(ib, p[:, 1])],
                             share)
        full = bound <= threshold
        bound[full] = pixel_distance(np.asarray(images_a[p[full, 0]]),
                                     np.asarray(images_b[p[full, 1]]))
        out[s:s + batch] = bound
    return out


def group_ids(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of `pairs` over n items; each item's group id is its group's
    smallest member (stable, readable: a singleton is its own group)."""
    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def resolve_groups(groups: np.ndarray, labels: np.ndarray, conflicts: str = "drop",
                   duplicates: str = "keep-one") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decide which images to keep and with which label.

    Args:
        groups: (N,) group id per image.
        labels: (N,) class index per image.
        conflicts: `drop` removes a group whose members disagree, whole (the report's policy);
            `majority` keeps it with the most common label (ties: dropped).
        duplicates: `keep-one` keeps the first member of each group; `keep-all` keeps them all.
    Returns:
        kept (N,) bool, final label (N,), conflict (N,) bool (member of a conflicting group).
    """
    frame = pd.DataFrame({"g": groups, "y": labels})
    n_labels = frame.groupby("g")["y"].transform("nunique").to_numpy()
    conflict = n_labels > 1
    final = labels.copy()
    kept = np.ones(len(labels), dtype=bool)
    if conflict.any():
        if conflicts == "drop":
            kept &= ~conflict
        elif conflicts == "majority":
            sub = frame[conflict]
            counts = sub.groupby(["g", "y"]).size().rename("c").reset_index()
            top = counts.sort_values(["g", "c"], ascending=[True, False])
            best = top.groupby("g").head(1).set_index("g")
            tie = counts.groupby("g")["c"].apply(lambda c: (c == c.max()).sum() > 1)
            for i in np.nonzero(conflict)[0]:
                g = groups[i]
                if tie[g]:
                    kept[i] = False
                else:
                    final[i] = best.loc[g, "y"]
        else:
            raise CompError(f"--conflicts must be drop or majority. Received: {conflicts!r}")
    if duplicates == "keep-one":
        # within a kept group keep its first kept member
        order = pd.Series(np.where(kept, groups, -1))
        first = ~order.duplicated().to_numpy() & kept
        kept &= first
    elif duplicates != "keep-all":
        raise CompError(f"--duplicates must be keep-one or keep-all. Received: {duplicates!r}")
    return kept, final, conflict


# -- splits and folds ------------------------------------------------------------------------------

def _group_strata(groups: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per group: its size and its majority label (the stratum)."""
    frame = pd.DataFrame({"g": groups, "y": labels})
    counts = frame.groupby(["g", "y"]).size().rename("n").reset_index()
    # majority label per group; ties go to the smallest label
    top = counts.sort_values(["g", "n", "y"], ascending=[True, False, True]).drop_duplicates("g")
    per = top.set_index("g")[["y"]]
    per["size"] = frame.groupby("g").size()
    return per.sort_index()


def assign_parts(groups: np.ndarray, labels: np.ndarray, fractions: list[float],
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


def split_frame(groups: np.ndarray, labels: np.ndarray, fractions: tuple[float, float, float],
                seed: int) -> np.ndarray:
    """train / val / holdout names per image (default fractions: the report's 59.5/10.5/30)."""
    parts = assign_parts(groups, labels, list(fractions), seed)
    return np.array(SPLIT_NAMES, dtype=object)[parts]


def assign_folds(groups: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Stratified k folds (0..k-1) with every group inside one fold."""
    if k < 2:
        raise CompError(f"need at least 2 folds. Received: {k}")
    return assign_parts(groups, labels, [1.0 / k] * k, seed)
