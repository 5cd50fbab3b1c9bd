"""The primitives a submission's decision is made of: the threshold for balanced accuracy
(two classes), class offsets (K classes), and their out-of-fold use (fold k decided by a
rule tuned on the other folds). `comp.submit.select` chooses among them, nested;
`comp.submit.rule` holds the typed `Decision` that `comp.submit.candidates` fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comp.metrics import balanced_accuracy, positive

OFFSET_GRID = np.round(np.arange(-2.0, 2.0001, 0.25), 2)  # per-class log-probability offsets
EXHAUSTIVE_CLASSES = 4  # up to this many classes the offset search tries every combination


# -- the threshold ---------------------------------------------------------------------------------

def threshold_scores(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Balanced accuracy of `prob >= t` for every distinct predicted probability t (and one
    threshold above them all), in O(N log N).

    Returns:
        (thresholds ascending, scores).
    """
    y = np.asarray(y_true, int).reshape(-1)
    p = np.asarray(positive(prob), float)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"threshold search needs both classes. Received: {pos} positives, "
                         f"{neg} negatives")
    values, inverse = np.unique(p, return_inverse=True)
    pos_at = np.bincount(inverse, weights=(y == 1), minlength=len(values))
    neg_at = np.bincount(inverse, weights=(y == 0), minlength=len(values))
    # predicting 1 for p >= values[k]: positives found = positives at or above k
    tp = np.cumsum(pos_at[::-1])[::-1]
    tn = np.cumsum(neg_at) - neg_at
    thresholds = np.append(values, np.inf)
    tp, tn = np.append(tp, 0), np.append(tn, neg)
    return thresholds, 0.5 * (tp / pos + tn / neg)


@dataclass(frozen=True)
class Threshold:
    value: float  # predict class 1 when p >= value
    score: float  # balanced accuracy at value on the data it was tuned on
    score_at_half: float
    spread: float  # standard deviation of the tuned threshold over bootstrap resamples
    score_spread: float  # standard deviation of the tuned score over bootstrap resamples


def best_threshold(y_true: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """The cut-off maximising balanced accuracy; placed midway between the best distinct
    probability and the next lower one, so new data near the edge is treated evenly.
    Ties go to the threshold closest to 0.5."""
    thresholds, scores = threshold_scores(y_true, prob)
    best = scores.max()
    candidates = np.nonzero(np.isclose(scores, best, rtol=0, atol=1e-12))[0]
    finite = np.where(np.isfinite(thresholds), thresholds, 1.0)
    k = candidates[np.argmin(np.abs(finite[candidates] - 0.5))]
    lower = thresholds[k - 1] if k > 0 else 0.0
    upper = thresholds[k] if np.isfinite(thresholds[k]) else 1.0 + 1e-9
    return float((lower + upper) / 2), float(scores[k])


def tune_threshold(y_true: np.ndarray, prob: np.ndarray, *, boots: int = 200,
                   seed: int = 0) -> Threshold:
    """`best_threshold` plus how stable it is over bootstrap resamples."""
    y, p = np.asarray(y_true, int).reshape(-1), np.asarray(positive(prob), float)
    value, score = best_threshold(y, p)
    rng = np.random.default_rng(seed)
    values, scores = [], []
    for _ in range(boots):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        v, s = best_threshold(y[idx], p[idx])
        values.append(v)
        scores.append(s)
    return Threshold(value, score, balanced_accuracy(y, p >= 0.5),
                     float(np.std(values)) if values else 0.0,
                     float(np.std(scores)) if scores else 0.0)


# -- class offsets (more than two classes) --------------------------------------------------------

def apply_offsets(prob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """arg-max of log-probability plus a per-class offset (offsets 0: the plain arg-max)."""
    return (np.log(np.clip(np.asarray(prob, float), 1e-12, None)) + offsets).argmax(axis=1)


def _scores_of(logp: np.ndarray, y: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Balanced accuracy of every row of `candidates` (C, k) as offsets, vectorised."""
    out = np.empty(len(candidates))
    present = np.bincount(y, minlength=k)
    seen = present > 0
    for start in range(0, len(candidates), 64):
        chunk = candidates[start:start + 64]
        pred = (logp[None] + chunk[:, None, :]).argmax(axis=2)  # (c, N)
        hits = np.zeros((len(chunk), k))
        for c in range(k):  # per class: how many of its images are predicted as it
            hits[:, c] = ((pred == c) & (y == c)[None]).sum(axis=1)
        out[start:start + 64] = (hits[:, seen] / present[seen]).mean(axis=1)
    return out


def best_offsets(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class offsets on the log-probabilities maximising balanced accuracy.

    Class 0's offset is 0, the others take values of `OFFSET_GRID`: every combination for
    up to `EXHAUSTIVE_CLASSES` classes, else coordinate ascent from 0 (three sweeps). Ties
    go to the smallest total shift (the plain arg-max when nothing beats it).
    """
    y = np.asarray(y_true, np.int64)
    k = np.asarray(prob).shape[1]
    logp = np.log(np.clip(np.asarray(prob, float), 1e-12, None))

    def pick(candidates: np.ndarray) -> tuple[np.ndarray, float]:
        scores = _scores_of(logp, y, candidates, k)
        best = np.isclose(scores, scores.max(), rtol=0, atol=1e-12)
        shift = np.abs(candidates).sum(axis=1)
        i = np.flatnonzero(best)[np.argmin(shift[best])]
        return candidates[i], float(scores[i])

    if k <= EXHAUSTIVE_CLASSES:
        grid = np.meshgrid(*([OFFSET_GRID] * (k - 1)), indexing="ij")
        others = np.stack([g.ravel() for g in grid], axis=1)
        return pick(np.concatenate([np.zeros((len(others), 1)), others], axis=1))
    offsets = np.zeros(k)
    score = _scores_of(logp, y, offsets[None], k)[0]
    for _ in range(3):
        for c in range(1, k):
            candidates = np.repeat(offsets[None], len(OFFSET_GRID), axis=0)
            candidates[:, c] = OFFSET_GRID
            offsets, score = pick(candidates)
    return offsets, score


def oof_decisions(prob: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
                  num_classes: int, offsets: bool = False) -> np.ndarray:
    """Out-of-fold class decisions: the threshold (two classes) or, with `offsets`, the
    class offsets applied to fold k are tuned on the other folds; else the arg-max."""
    if num_classes != 2 and not offsets:
        return np.asarray(prob).argmax(axis=1)
    pred = np.zeros(len(y), np.int64)
    for k in np.unique(folds):
        test = folds == k
        if num_classes != 2:
            pred[test] = apply_offsets(prob[test], best_offsets(y[~test], prob[~test])[0])
            continue
        if len(np.unique(y[~test])) < 2:
            threshold = 0.5
        else:
            threshold, _ = best_threshold(y[~test], prob[~test])
        pred[test] = positive(prob[test]) >= threshold
    return pred


