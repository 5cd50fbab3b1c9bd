"""`comp inspect`: what the model sees, and clues to the hidden property, as one HTML page.

1. average image per class, and each class against the rest (signed difference);
2. saliency: plain gradients, SmoothGrad, Grad-CAM, over the most confident images of each
   class and the worst errors, and the mean saliency per class;
3. most confident true/false positives/negatives per class, from out-of-fold predictions;
4. class distribution (real, out-of-fold, target set), confusion matrix, balanced accuracy
   against the threshold with the chosen one and its bootstrap band, reliability curve;
5. learning curves (per fold; several runs overlaid);
6. named image statistics ranked by how well each alone separates the classes.
Every section samples at most a fixed number of images and says how many it used.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from comp.commit import replace_folder
from comp.config import InspectConfig
from comp.errors import CompError
from comp.inspect import page, saliency, stats
from comp.runs import RunDir, open_run
from comp.stopwatch import Stopwatch
from comp.workspace import Workspace

AVERAGE_SAMPLE = 20_000  # images per average
STATS_SAMPLE = 20_000  # images whose statistics are ranked
PREDICT_SAMPLE = 20_000  # out-of-fold images predicted when the run has no cached predictions
TARGET_SAMPLE = 2_000  # target-set images predicted for its class distribution
MEAN_SALIENCY_PER_CLASS = 48  # images per class in the mean saliency


@dataclass
class Inspected:
    index: Path
    sections: dict[str, str] = field(default_factory=dict)  # section -> images used
    clock: Stopwatch = field(default_factory=Stopwatch)


def _sample(n: int, at_most: int, seed: int) -> np.ndarray:
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False))


def _oof(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, fingerprint: str, seed: int
         ) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows, probabilities) out-of-fold: the run's cached predictions when it has them
    (`comp evaluate` / `comp submit` wrote them), else a sample predicted now."""
    from comp.submit.evaluate import _out_of_fold, holdout_predictions, scored_rows
    from comp.submit.predict import predict_run

    rows = scored_rows(ws, index, run_dir)
    if len(rows) == 0:
        raise CompError(f"{ws.root}: the run has no out-of-fold images (the holdout split is "
                        "empty); train one model per fold, or prepare with a holdout")
    if run_dir.holdout_predictions(False).exists() or len(rows) <= PREDICT_SAMPLE:
        pred = holdout_predictions(ws, index, run_dir, tta=False, fingerprint=fingerprint)
        return rows, pred.prob
    rows = rows.iloc[_sample(len(rows), PREDICT_SAMPLE, seed)]
    if run_dir.cross_fitted:
        return rows, _out_of_fold(ws, rows, run_dir, tta=False).prob
    store = ws.load_store("train")
    return rows, predict_run(run_dir.best, store[rows["row"].to_numpy()]).prob


def _model_of(run_dir: RunDir, fold: int) -> Path:
    return run_dir.fold(fold).best if run_dir.cross_fitted else run_dir.best


def inspect(cfg: InspectConfig) -> Inspected:
    """Write the report folder of a run (atomically replacing an earlier one)."""
    from comp.native_log import load_keras
    from comp.submit.decision import oof_decisions, threshold_scores, tune_threshold
    from comp.submit.evaluate import best_run, scoring_folds

    clock = Stopwatch()
    ws = Workspace(cfg.workspace)
    with clock.stage("read workspace and runs"):
        meta, index = ws.load_meta(), ws.load_index()
        names = list(cfg.runs) or [best_run(ws, cfg.checkpoints, fingerprint=meta.fingerprint,
                                            folds=cfg.folds, seed=cfg.seed)]
        opened = [open_run(cfg.checkpoints, n, fingerprint=meta.fingerprint) for n in names]
        run_dir, record = opened[0]
        classes, k = meta.classes, len(meta.classes)
        labelled = ws.labelled(index)
        store = ws.load_store("train")
    out_root = run_dir.path / "inspect"
    tmp = run_dir.path / f".inspect-{time.time_ns()}-{os.getpid()}"
    for stale in run_dir.path.glob(".inspect-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed inspect
    tmp.mkdir()
    report = page.Page(tmp, title=f"comp inspect: {run_dir.name} ({record.model})")
    used: dict[str, str] = {}
    try:
        with clock.stage("average images"):  # 1.
            pick = _sample(len(labelled), AVERAGE_SAMPLE, cfg.seed)
            x = np.asarray(store[labelled["row"].to_numpy()[pick]])
            y = labelled["label"].to_numpy()[pick]
            means = stats.mean_images(x, y, k)
            counts = np.bincount(y, minlength=k).astype(np.float64)
            report.averages(means, stats.class_differences(means, counts), classes, counts)
            used["average images"] = f"{len(x):,} training images"
        with clock.stage("out-of-fold predictions"):  # 3., 4.
            rows, prob = _oof(ws, index, run_dir, fingerprint=meta.fingerprint, seed=cfg.seed)
            y_oof = rows["label"].to_numpy(np.int64)
            fold = scoring_folds(rows, y_oof, run_dir, folds=cfg.folds, seed=cfg.seed)
            decided = oof_decisions(prob, y_oof, fold, num_classes=k, offsets=k > 2)
            used["out-of-fold"] = (f"{len(rows):,} images, each predicted by a model that did "
                                   "not train on it" if run_dir.cross_fitted else
                                   f"{len(rows):,} holdout images")
        with clock.stage("examples and distributions"):
            row_of = rows["row"].to_numpy()
            report.examples(lambda idx: np.asarray(store[row_of[idx]]),
                            rows["id"].astype(str).to_numpy(), y_oof, decided, prob, classes,
                            top=cfg.top)
            threshold = None
            curve = None
            if k == 2:
                threshold = tune_threshold(y_oof, prob, seed=cfg.seed)
                curve = threshold_scores(y_oof, prob)
            target, target_pred = _target_distribution(ws, index, run_dir, classes,
                                                       threshold.value if threshold else 0.5,
                                                       seed=cfg.seed)
            report.distributions(y_oof, decided, prob, classes, threshold=threshold,
                                 curve=curve, target=target, target_pred=target_pred)
            if target is not None:
                used["target set"] = f"{len(target_pred):,} {target} images"
        with clock.stage("saliency"):  # 2.
            load_keras()
            _saliency(report, store, rows, y_oof, decided, prob, fold, run_dir, classes,
                      top=cfg.top, seed=cfg.seed)
            used["saliency"] = (f"{cfg.top} most confident images per class and {cfg.top} "
                                f"worst errors; mean saliency over up to "
                                f"{MEAN_SALIENCY_PER_CLASS} images per class")
        with clock.stage("learning curves"):  # 5.
            report.learning_curves([r for r, _ in opened])
        with clock.stage("image statistics"):  # 6.
            pick = _sample(len(labelled), STATS_SAMPLE, cfg.seed + 1)
            x = np.asarray(store[labelled["row"].to_numpy()[pick]])
            y = labelled["label"].to_numpy()[pick]
            named = stats.image_statistics(x)
            report.clues(stats.rank_statistics(named, y, classes), named, y, classes)
            used["image statistics"] = f"{len(x):,} training images"
        report.write(used)
        replace_folder(tmp, out_root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Inspected(out_root / "index.html", used, clock)


def _target_distribution(ws: Workspace, index: pd.DataFrame, run_dir: RunDir,
                         classes: list[str], threshold: float, *, seed: int
                         ) -> tuple[str | None, np.ndarray]:
    """The predicted classes of (a sample of) the target set: test if prepared, else val."""
    from comp.metrics import predict_labels
    from comp.submit.evaluate import predict_new

    for source in ("test", "val"):
        rows = index[index["source"] == source].sort_values("row")
        if len(rows):
            store = ws.load_store(source)
            pick = _sample(len(rows), TARGET_SAMPLE, seed)
            x = np.asarray(store[rows["row"].to_numpy()[pick]])
            prob = predict_new(run_dir, x, tta=False).prob
            return source, predict_labels(prob, threshold)
    return None, np.zeros(0, np.int64)


def _saliency(report: page.Page, store: np.ndarray, rows: pd.DataFrame, y: np.ndarray,
              decided: np.ndarray, prob: np.ndarray, fold: np.ndarray, run_dir: RunDir,
              classes: list[str], *, top: int, seed: int) -> None:
    """Saliency of the most confident correct images per class, the worst errors, and the
    mean saliency per class, each image explained by the model that predicted it."""
    from comp.train.callbacks import load_checkpoint

    k = len(classes)
    p_true = np.where(y == 1, prob, 1 - prob) if k == 2 else prob[np.arange(len(y)), y]
    chosen: list[tuple[str, np.ndarray]] = []
    for c in range(k):
        right = np.nonzero((y == c) & (decided == c))[0]
        chosen.append((f"most confident {classes[c]}", right[np.argsort(-p_true[right])][:top]))
    wrong = np.nonzero(decided != y)[0]
    chosen.append(("worst errors", wrong[np.argsort(p_true[wrong])][:top]))
    rng = np.random.default_rng(seed)
    mean_rows = [rng.permutation(np.nonzero(y == c)[0])[:MEAN_SALIENCY_PER_CLASS]
                 for c in range(k)]
    models: dict[int, object] = {}
    cross = run_dir.cross_fitted

    def explain(idx: np.ndarray, *, smooth: bool) -> dict[str, np.ndarray]:
        maps: dict[str, np.ndarray] = {}
        x = np.asarray(store[rows["row"].to_numpy()[idx]]).astype(np.float32)
        out = {"gradient": np.zeros(x.shape[:3], np.float32),
               "smoothgrad": np.zeros(x.shape[:3], np.float32),
               "grad-cam": np.zeros(x.shape[:3], np.float32)}
        has_cam = False
        for f in np.unique(fold[idx]) if cross else [0]:
            here = np.nonzero(fold[idx] == f)[0] if cross else np.arange(len(idx))
            if int(f) not in models:
                models[int(f)] = load_checkpoint(_model_of(run_dir, int(f)), compile=False)
            model = models[int(f)]
            target = y[idx][here]
            out["gradient"][here] = saliency.plain_saliency(model, x[here], target)
            if smooth:
                out["smoothgrad"][here] = saliency.smoothgrad(model, x[here], target)
                cam = saliency.grad_cam(model, x[here], target)
                if cam is not None:
                    out["grad-cam"][here], has_cam = cam, True
        maps["gradient"] = out["gradient"]
        if smooth:
            maps["smoothgrad"] = out["smoothgrad"]
            if has_cam:
                maps["grad-cam"] = out["grad-cam"]
        return maps

    panels = []
    for title, idx in chosen:
        if len(idx) == 0:
            continue
        images = np.asarray(store[rows["row"].to_numpy()[idx]])
        captions = [f"{rows['id'].iloc[i]}\ntrue {classes[y[i]]}, p(true)={p_true[i]:.2f}"
                    for i in idx]
        panels.append((title, images, captions, explain(idx, smooth=True)))
    report.saliency_panels(panels)
    means = []
    for c, idx in enumerate(mean_rows):
        if len(idx):
            means.append((classes[c], saliency.normalised(
                explain(idx, smooth=False)["gradient"]).mean(axis=0), len(idx)))
    report.mean_saliency(means)
