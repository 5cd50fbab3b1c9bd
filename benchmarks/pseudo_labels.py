"""Pseudo-labels on the unlabelled target images, kept honest, on frozen FaceNet features.

Run after `python benchmarks/face_layers.py` (it reads that benchmark's cached features of
each task's sample; the view is `--view`, default the five stages flip-averaged). Per task, a
share of the images (`--target`, 30 %) plays the unlabelled target set (val and test); the
rest is labelled, in 5 folds (identity-grouped for CelebA). Per fold k, as comp's cross-fitted
runs are: a linear probe (standardised features, L2 logistic regression, balanced class
weights, C=0.05) on the labelled images outside fold k. With pseudo-labels, that probe labels
the target images, those it gives at least `--confidence` are added to its training images
with the label it gave, and the probe is fitted again: fold k's model learns only from labels
that no model trained on fold k produced, so its out-of-fold score stays an estimate. Printed
per task: the out-of-fold balanced accuracy (labelled images) and the target's (the fold
models' probabilities averaged), with and without, the target's difference with a 95 % paired
bootstrap interval, and how many target images were pseudo-labelled per fold.

    python benchmarks/pseudo_labels.py [--view facenet-stages-flip] [--confidence 0.9]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import face_layers  # noqa: E402

from comp.metrics import balanced_accuracy  # noqa: E402
from comp.train.features import VIEWS, features_of  # noqa: E402


def probe() -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(
        C=0.05, max_iter=3000, class_weight="balanced"))


def cross_fitted(x: np.ndarray, y: np.ndarray, fold: np.ndarray, target: np.ndarray, *,
                 confidence: float | None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Out-of-fold classes of the labelled images, the target's averaged probabilities, and
    the target images pseudo-labelled per fold (None: no pseudo-labels)."""
    oof = np.zeros(len(y), np.int64)
    prob = 0.0
    added = []
    for k in np.unique(fold):
        inside = fold != k
        model = probe().fit(x[inside], y[inside])
        if confidence is not None:
            p = model.predict_proba(target)
            sure = p.max(axis=1) >= confidence
            added.append(int(sure.sum()))
            model = probe().fit(np.concatenate([x[inside], target[sure]]),
                                np.concatenate([y[inside], model.classes_[p[sure].argmax(1)]]))
        oof[~inside] = model.predict(x[~inside])
        prob = prob + model.predict_proba(target)
    return oof, np.asarray(prob).argmax(axis=1), added


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--view", default="facenet-stages-flip", choices=sorted(VIEWS))
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not face_layers.SHARED.exists():
        print(f"skipping: {face_layers.SHARED} not found")
        return
    sets = {"smilesmiled": lambda: face_layers.smilesmiled(args.images, args.seed),
            "celeba": lambda: face_layers.celeba(args.images)}
    print("| task | OOF without | OOF with | target without | target with | target with "
          "minus without [95 %] | pseudo-labelled per fold (of target) |")
    print("|---|---|---|---|---|---|---|")
    for name, load in sets.items():
        images, tasks, groups = load()
        x_all = features_of(images, name=args.view, cache_root=face_layers.OUT / name)
        rng = np.random.default_rng(args.seed)
        unique = np.unique(groups)
        is_target = np.isin(groups, rng.choice(unique, int(len(unique) * args.target),
                                               replace=False))
        fold_of = {g: i % 5 for i, g in enumerate(rng.permutation(unique))}
        fold = np.array([fold_of[g] for g in groups])
        for task, y_all in tasks.items():
            keep = y_all >= 0
            lab, tgt = keep & ~is_target, keep & is_target
            x, y, f = x_all[lab], y_all[lab], fold[lab]
            base_oof, base_t, _ = cross_fitted(x, y, f, x_all[tgt], confidence=None)
            with_oof, with_t, added = cross_fitted(x, y, f, x_all[tgt],
                                                   confidence=args.confidence)
            yt = y_all[tgt]
            low, high = face_layers.interval(yt, with_t, base_t, args.seed)
            delta = balanced_accuracy(yt, with_t) - balanced_accuracy(yt, base_t)
            print(f"| {task} | {balanced_accuracy(y, base_oof):.4f} | "
                  f"{balanced_accuracy(y, with_oof):.4f} | {balanced_accuracy(yt, base_t):.4f} | "
                  f"{balanced_accuracy(yt, with_t):.4f} | {delta:+.4f} [{low:+.4f}, "
                  f"{high:+.4f}] | {int(np.mean(added))} of {int(tgt.sum())} |", flush=True)


if __name__ == "__main__":
    main()
