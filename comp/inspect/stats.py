"""What separates the classes, on pixels alone: average images, and named image statistics
ranked by how well each separates the classes on its own. Pure numpy on (N, H, W, C) uint8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Face regions as fractions of the image (top, bottom, left, right): faces in these challenges
# are cropped and roughly centred, eyes at about 40 % of the height, the mouth at about 75 %.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "whole": (0.0, 1.0, 0.0, 1.0),
    "top": (0.0, 0.15, 0.0, 1.0),
    "hair": (0.0, 0.3, 0.2, 0.8),
    "eyes": (0.3, 0.5, 0.15, 0.85),
    "mouth": (0.65, 0.85, 0.3, 0.7),
    "background": (0.15, 1.0, 0.0, 0.12),  # the left strip (and the right, mirrored)
    "corners": (0.0, 0.15, 0.0, 0.15),  # the four corners
}
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def region_mask(name: str, height: int, width: int) -> np.ndarray:
    """(H, W) boolean mask of a named region (background: both side strips; corners: all
    four)."""
    top, bottom, left, right = REGIONS[name]
    rows = np.arange(height)[:, None] + 0.5
    cols = np.arange(width)[None, :] + 0.5
    inside = ((rows >= top * height) & (rows < bottom * height)
              & (cols >= left * width) & (cols < right * width))
    if name in ("background", "corners"):
        inside = inside | inside[:, ::-1]
    if name == "corners":
        inside = inside | inside[::-1, :]
    return inside


def mean_images(x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """(K, H, W, C) float32: the mean image of each class (zeros for an absent class)."""
    out = np.zeros((classes, *x.shape[1:]), np.float32)
    for k in range(classes):
        if (y == k).any():
            out[k] = x[y == k].mean(axis=0, dtype=np.float64)
    return out


def class_differences(means: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(K, H, W) signed luma difference of each class's mean image against the mean of the
    other classes (weighted by their counts): positive where the class is brighter. Two
    classes: row 1 is class 1 minus class 0, row 0 its negative."""
    luma = (means.astype(np.float32) @ LUMA if means.shape[-1] == 3
            else means[..., 0].astype(np.float32))
    out = np.zeros(luma.shape, np.float32)
    for k in range(len(luma)):
        others = [j for j in range(len(luma)) if j != k and counts[j] > 0]
        if counts[k] == 0 or not others:
            continue
        w = counts[others] / counts[others].sum()
        out[k] = luma[k] - np.tensordot(w, luma[others], axes=1)
    return out


def _luma(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) @ LUMA if x.shape[-1] == 3 else x[..., 0].astype(np.float32)


def image_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """Named per-image statistics (N,) each: mean brightness of every region, mean red,
    green and blue of every region (colour images), colour saturation (whole, hair),
    edge density (whole, eyes, mouth: the share of pixels whose brightness gradient is
    above 20 of 255), and left-right asymmetry (mean absolute difference from the mirror
    image, whole and eyes)."""
    n, h, w = x.shape[:3]
    luma = _luma(x)
    out: dict[str, np.ndarray] = {}
    masks = {name: region_mask(name, h, w) for name in REGIONS}
    for name, mask in masks.items():
        out[f"brightness: {name}"] = luma[:, mask].mean(axis=1)
        if x.shape[-1] == 3:
            pixels = x[:, mask].astype(np.float32)
            for c, colour in enumerate(("red", "green", "blue")):
                out[f"{colour}: {name}"] = pixels[..., c].mean(axis=1)
    if x.shape[-1] == 3:
        xf = x.astype(np.float32)
        hi, lo = xf.max(axis=-1), xf.min(axis=-1)
        saturation = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-6), 0.0)
        for name in ("whole", "hair"):
            out[f"saturation: {name}"] = saturation[:, masks[name]].mean(axis=1)
    gy = np.abs(np.diff(luma, axis=1))[:, :, :-1]
    gx = np.abs(np.diff(luma, axis=2))[:, :-1, :]
    edges = np.maximum(gx, gy) > 20
    for name in ("whole", "eyes", "mouth"):
        out[f"edge density: {name}"] = edges[:, masks[name][:-1, :-1]].mean(axis=1)
    mirror = np.abs(luma - luma[:, :, ::-1])
    for name in ("whole", "eyes"):
        out[f"asymmetry: {name}"] = mirror[:, masks[name]].mean(axis=1)
    return out


def one_feature_score(values: np.ndarray, positive: np.ndarray) -> tuple[float, float, str]:
    """Balanced accuracy of the best threshold on one statistic separating `positive` from
    the rest, either way round: (score, threshold, "higher" or "lower" for the positive
    class)."""
    order = np.argsort(values, kind="stable")
    v, p = values[order], positive[order].astype(np.int64)
    pos, neg = int(p.sum()), int(len(p) - p.sum())
    if pos == 0 or neg == 0:
        return 0.5, float("nan"), "higher"
    # predicting positive for values above cut k (k = 0..n): tn = negatives below, tp = the rest
    neg_below = np.concatenate([[0], np.cumsum(1 - p)])
    pos_below = np.concatenate([[0], np.cumsum(p)])
    distinct = np.concatenate([[True], v[1:] != v[:-1], [True]])  # cuts between values only
    higher = 0.5 * (neg_below / neg + (pos - pos_below) / pos)
    scores = np.where(distinct, np.maximum(higher, 1 - higher), -1)
    k = int(np.argmax(scores))
    cut = (v[k - 1] + v[k]) / 2 if 0 < k < len(v) else (v[0] - 1 if k == 0 else v[-1] + 1)
    return float(scores[k]), float(cut), "higher" if higher[k] >= 0.5 else "lower"


@dataclass(frozen=True)
class Clue:
    statistic: str
    target: str  # the class it separates from the rest
    balanced_accuracy: float
    threshold: float
    direction: str  # "higher" or "lower" for the target class
    effect: float  # |difference of the means| / pooled standard deviation (Cohen's d)


def effect_size(values: np.ndarray, positive: np.ndarray) -> float:
    """Cohen's d of the statistic between `positive` and the rest (0 when either is empty
    or nothing varies)."""
    a, b = values[positive], values[~positive]
    if len(a) < 2 or len(b) < 2:
        return 0.0
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1))
                     / (len(a) + len(b) - 2))
    return float(abs(a.mean() - b.mean()) / pooled) if pooled > 0 else 0.0


def rank_statistics(stats: dict[str, np.ndarray], y: np.ndarray, classes: list[str]
                    ) -> list[Clue]:
    """Every statistic scored for every class against the rest (two classes: class 1 only),
    best first: by balanced accuracy, ties by effect size."""
    targets = [1] if len(classes) == 2 else list(range(len(classes)))
    clues = [Clue(name, classes[k], *one_feature_score(values, y == k),
                  effect_size(values, y == k))
             for name, values in stats.items() for k in targets]
    return sorted(clues, key=lambda c: (-c.balanced_accuracy, -c.effect))
