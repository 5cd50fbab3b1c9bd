"""The decision rule of a submission, typed: which model's probabilities, which threshold.

`fit_decision` fits it on the holdout's predictions: the threshold (bootstrap spread included)
and the choice between the CNN and the LightGBM stacker are scored out-of-fold (fold k is
decided by a rule tuned on the other folds), so the score printed as "holdout balanced
accuracy" was never measured on the data it was tuned on. `Decision.apply` turns new
predictions into classes; `save`/`load` keep it beside the run for phase 2.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from comp.metrics import balanced_accuracy, predict_labels
from comp.submit import stacker
from comp.submit.leaks import LeakCheck
from comp.submit.predict import Predictions
from comp.workspace import atomic_write, write_json

DECISION_FILE = "decision.json"
STACKER_FILE = "lgbm.txt"
SCHEMA = 3  # part of the cache key: a rule saved in another layout is fitted anew
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
    p = np.asarray(prob, float).reshape(-1)
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
    y, p = np.asarray(y_true, int).reshape(-1), np.asarray(prob, float).reshape(-1)
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
        pred[test] = prob[test] >= threshold
    return pred


# -- the decision rule -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Everything phase 2 reuses: the runs, whether the stacker is used, the threshold."""

    runs: list[str]
    classes: list[str]
    fingerprint: str
    tta: bool
    folds: int
    holdout_images: int
    cnn_oof_balanced_accuracy: float  # CNN probabilities, threshold tuned out-of-fold
    cnn_balanced_accuracy_at_half: float
    ensemble_tried: bool
    ensemble_oof_balanced_accuracy: float | None  # LightGBM, out-of-fold, threshold too
    use_ensemble: bool  # only when its out-of-fold score is higher
    threshold: Threshold | None  # two classes
    offsets: list[float] | None  # more than two classes, when they beat the arg-max OOF
    leaks: LeakCheck
    cross_fitted: bool  # fitted on every labelled image's out-of-fold predictions

    @property
    def oof_balanced_accuracy(self) -> float:
        """The score of the chosen rule, out-of-fold."""
        if self.use_ensemble and self.ensemble_oof_balanced_accuracy is not None:
            return self.ensemble_oof_balanced_accuracy
        return self.cnn_oof_balanced_accuracy

    def apply(self, pred: Predictions, folder: Path) -> np.ndarray:
        """Class per image from new predictions (the stacker is read from `folder`). With
        fold models, the stacker reads each member's embeddings (the space it was trained
        in: fold k's model's) and its probabilities are averaged."""
        prob: np.ndarray = pred.prob
        if self.use_ensemble:
            import lightgbm

            booster = lightgbm.Booster(model_file=str(folder / STACKER_FILE))
            raw = np.mean([np.asarray(booster.predict(stacker.stack_features(part)))
                           for part in pred.parts()], axis=0)
            prob = raw if len(self.classes) == 2 else raw.reshape(len(prob), len(self.classes))
        if self.threshold is not None:
            return predict_labels(prob, self.threshold.value)
        if self.offsets is not None:
            return apply_offsets(prob, np.asarray(self.offsets))
        return predict_labels(prob)

    def save(self, folder: Path) -> None:
        write_json(folder / DECISION_FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path, *, fingerprint: str) -> Decision | None:
        """The saved rule, or None when absent, unreadable or fitted on other data."""
        try:
            data = json.loads((folder / DECISION_FILE).read_text())
            data["threshold"] = Threshold(**data["threshold"]) if data["threshold"] else None
            data["offsets"] = list(data["offsets"]) if data["offsets"] is not None else None
            data["leaks"] = LeakCheck(**data["leaks"])
            decision = cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return decision if decision.fingerprint == fingerprint else None


def decision_key(*, runs: list[str], tta: bool, ensemble: bool, folds: int, seed: int) -> str:
    """Name of the folder a decision rule is cached in, from every option it depends on."""
    return hashlib.sha256(json.dumps([runs, tta, ensemble, folds, seed, SCHEMA])
                          .encode()).hexdigest()[:10]


def _oof_score(prob: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int
               ) -> tuple[float, bool]:
    """Out-of-fold balanced accuracy of the best rule on `prob`, and for K classes whether
    the class offsets beat the plain arg-max (they are used only then)."""
    plain = balanced_accuracy(y, oof_decisions(prob, y, fold, num_classes=k))
    if k == 2:
        return plain, False
    tuned = balanced_accuracy(y, oof_decisions(prob, y, fold, num_classes=k, offsets=True))
    return max(plain, tuned), tuned > plain


def fit_decision(pred: Predictions, y: np.ndarray, fold: np.ndarray, *, classes: list[str],
                 runs: list[str], fingerprint: str, tta: bool, ensemble: bool, seed: int,
                 leaks: LeakCheck, folder: Path, cross_fitted: bool = False) -> Decision:
    """Fit the rule on out-of-fold predictions `pred` with labels `y` and folds `fold`; the
    stacker, when it wins, is saved in `folder`.

    Nested discipline: the stacker's own score on fold k comes from a stacker fitted on
    the other folds, and the threshold (or class offsets) applied to it from the other
    folds too; the CNN's score likewise. Each is kept only when its score is higher."""
    k = len(classes)
    cnn_oof, use_offsets = _oof_score(pred.prob, y, fold, k)
    chosen, ens_score, use_ensemble = pred.prob, None, False
    if ensemble:
        features = stacker.stack_features(pred)
        lgbm_oof = stacker.oof_lgbm(features, y, fold, num_classes=k, seed=seed)
        ens_score, ens_offsets = _oof_score(lgbm_oof, y, fold, k)
        use_ensemble = ens_score > cnn_oof
        if use_ensemble:
            use_offsets = ens_offsets
        if use_ensemble:
            chosen = lgbm_oof
            model = stacker.fit_lgbm(features, y, num_classes=k, seed=seed)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / STACKER_FILE, lambda p: model.booster_.save_model(str(p)))
    return Decision(
        runs=runs, classes=classes, fingerprint=fingerprint, tta=tta,
        folds=int(len(np.unique(fold))), holdout_images=int(len(y)),
        cnn_oof_balanced_accuracy=cnn_oof,
        cnn_balanced_accuracy_at_half=balanced_accuracy(y, predict_labels(pred.prob)),
        ensemble_tried=ensemble, ensemble_oof_balanced_accuracy=ens_score,
        use_ensemble=use_ensemble,
        threshold=tune_threshold(y, chosen, seed=seed) if k == 2 else None,
        offsets=best_offsets(y, chosen)[0].tolist() if use_offsets else None, leaks=leaks,
        cross_fitted=cross_fitted)


def describe(decision: Decision) -> list[str]:
    """The lines `comp submit` prints about the rule."""
    used = "used" if decision.use_ensemble else "not used"
    ens = (f", LightGBM {decision.ensemble_oof_balanced_accuracy:.4f}"
           if decision.ensemble_oof_balanced_accuracy is not None else "")
    scored = ("every labelled image, each predicted by the fold model that did not train on "
              "it" if decision.cross_fitted else "the holdout split")
    lines = [f"runs: {', '.join(decision.runs)}; LightGBM ensemble {used} (out-of-fold "
             f"balanced accuracy: CNN {decision.cnn_oof_balanced_accuracy:.4f}{ens})",
             f"out-of-fold balanced accuracy {decision.oof_balanced_accuracy:.4f} on "
             f"{decision.holdout_images} images ({scored}; each fold decided by a rule tuned "
             f"on the others); CNN at threshold 0.5: "
             f"{decision.cnn_balanced_accuracy_at_half:.4f}"]
    t = decision.threshold
    if t is not None:
        lines.append(f"threshold {t.value:.4f} (+-{t.spread:.4f} over bootstrap resamples); "
                     f"{t.score:.4f} on the images it was tuned on (optimistic: not a "
                     "score to compare)")
    elif decision.offsets is not None:
        lines.append(f"{len(decision.classes)} classes: arg-max after class offsets "
                     f"{', '.join(f'{o:+.2f}' for o in decision.offsets)} (they beat the "
                     "plain arg-max out-of-fold)")
    else:
        lines.append(f"{len(decision.classes)} classes: arg-max of the probabilities")
    return lines
