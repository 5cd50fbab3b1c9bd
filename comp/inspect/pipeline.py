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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp.commit import fresh_folder, reading
from comp.config import InspectConfig
from comp.errors import CompError
from comp.inspect import page, saliency, stats
from comp.runs import RunDir, open_run
from comp.specs import spec
from comp.stopwatch import Stopwatch
from comp.submit.rule import Decision
from comp.workspace import Meta, Workspace

AVERAGE_SAMPLE = 20_000  # images per average
STATS_SAMPLE = 20_000  # images whose statistics are ranked
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


def _oof(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, meta: Meta,
         checkpoints: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, Decision, Path, str]:
    """(rows, probabilities, decisions) out-of-fold by the rule `comp submit` uses for the
    run (saved by the last submit that read it, else fitted now), its rule and folder, and a
    line saying which."""
    from comp.submit.evaluate import scored_rows
    from comp.submit.pipeline import rule_for
    from comp.submit.rule import load_oof

    rows = scored_rows(ws, index, run_dir)
    decision, folder, words = rule_for(run_dir, ws=ws, meta=meta, index=index,
                                       checkpoints=checkpoints)
    saved = load_oof(folder)
    if saved is None:
        raise CompError(f"{folder}: the rule's out-of-fold file is missing or damaged; run "
                        f"`comp submit --run {run_dir.name}` to fit the rule again")
    ids, prob, decided = saved
    where = pd.Series(np.arange(len(ids)), index=ids)
    order = where.reindex(rows["id"].astype(str)).to_numpy()
    if np.isnan(order).any():
        raise CompError(f"{folder}: the rule was fitted on other images; run "
                        f"`comp submit --run {run_dir.name}` to fit it again")
    order = order.astype(np.int64)
    return rows, prob[order], decided[order], decision, folder, words


def _model_of(run_dir: RunDir, fold: int) -> Path:
    return run_dir.fold(fold).best if run_dir.cross_fitted else run_dir.best


@reading()  # a run resumed meanwhile keeps the versions read here
def inspect(cfg: InspectConfig) -> Inspected:
    """Write the report folder of a run (atomically replacing an earlier one)."""
    from comp.native_log import load_keras
    from comp.submit.evaluate import best_run, refuse_holdout_folds, scoring_folds

    clock = Stopwatch()
    ws = Workspace(cfg.workspace)
    with clock.stage("read workspace and runs"):
        meta, index = ws.load_meta(), ws.load_index()
        names = list(cfg.runs) or [best_run(ws, cfg.checkpoints, fingerprint=meta.fingerprint,
                                            folds=cfg.folds, seed=cfg.seed)]
        opened = [open_run(cfg.checkpoints, n, fingerprint=meta.fingerprint,
                           pixels=meta.pixels) for n in names]
        run_dir, record = opened[0]
        refuse_holdout_folds(run_dir, cfg.folds)  # before any work
        classes = meta.classes
        labelled = ws.labelled(index)
        store = ws.load_store("train")
    out_root = run_dir.path / "inspect"
    used: dict[str, str] = {}
    with fresh_folder(out_root) as tmp:  # an earlier report is replaced whole
        report = page.Page(tmp, title=f"comp inspect: {run_dir.name} ({record.model})")
        with clock.stage("average images"):  # 1.
            used["average images"] = _averages(report, store, labelled, classes, cfg.seed)
        with clock.stage("out-of-fold predictions"):  # 3., 4.
            rows, prob, decided, decision, folder, words = _oof(
                ws, index, run_dir, meta=meta, checkpoints=cfg.checkpoints)
            y_oof = rows["label"].to_numpy(np.int64)
            fold = scoring_folds(rows, y_oof, run_dir, folds=cfg.folds, seed=cfg.seed)
            used["out-of-fold"] = _scored_on(len(rows), run_dir, words)
        with clock.stage("examples and distributions"):
            row_of = rows["row"].to_numpy()
            report.examples(lambda idx: np.asarray(store[row_of[idx]]),
                            rows["id"].astype(str).to_numpy(), y_oof, decided, prob, classes,
                            top=cfg.top)
            target = _target_distribution(ws, index, decision, folder, cfg.checkpoints,
                                          seed=cfg.seed)
            report.distributions(y_oof, decided, prob, classes, **_threshold_view(
                y_oof, prob, decision, seed=cfg.seed), target=target[0], target_pred=target[1])
            if target[0] is not None:
                used["target set"] = f"{len(target[1]):,} {target[0]} images"
        features = spec(record.model).features
        if features is not None:  # its gradients end at the frozen features
            used["saliency"] = (f"not drawn: {record.model} reads frozen {features} "
                                "features, not pixels")
        else:
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
            used["image statistics"] = _clues(report, store, labelled, classes, cfg.seed + 1)
        report.write(used)
    return Inspected(out_root / "index.html", used, clock)


def _scored_on(n: int, run_dir: RunDir, words: str) -> str:
    return (f"{n:,} images, each predicted by a model that did not train on it"
            if run_dir.cross_fitted else f"{n:,} holdout images") + (
        f", decided by the submitted rule {words}")


def _threshold_view(y: np.ndarray, prob: np.ndarray, decision: Decision, *, seed: int
                    ) -> dict[str, Any]:
    """Two classes: the rule's own threshold with the bootstrap band of a tuned one, and the
    balanced accuracy of every threshold; K classes: neither."""
    from comp.submit.decision import threshold_scores, tune_threshold

    if prob.shape[1] != 2:
        return {"threshold": None, "curve": None}
    return {"threshold": replace(tune_threshold(y, prob, seed=seed),
                                 value=decision.threshold or 0.5),
            "curve": threshold_scores(y, prob)}


def _averages(report: page.Page, store: np.ndarray, labelled: pd.DataFrame,
              classes: list[str], seed: int) -> str:
    """Section 1: each class's average image and their differences, on a sample."""
    k = len(classes)
    pick = _sample(len(labelled), AVERAGE_SAMPLE, seed)
    x = np.asarray(store[labelled["row"].to_numpy()[pick]])
    y = labelled["label"].to_numpy()[pick]
    means = stats.mean_images(x, y, k)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    report.averages(means, stats.class_differences(means, counts), classes, counts)
    return f"{len(x):,} training images"


def _clues(report: page.Page, store: np.ndarray, labelled: pd.DataFrame,
           classes: list[str], seed: int) -> str:
    """Section 6: simple image statistics, ranked by how well each separates the classes."""
    pick = _sample(len(labelled), STATS_SAMPLE, seed)
    x = np.asarray(store[labelled["row"].to_numpy()[pick]])
    y = labelled["label"].to_numpy()[pick]
    named = stats.image_statistics(x)
    report.clues(stats.rank_statistics(named, y, classes), named, y, classes)
    return f"{len(x):,} training images"


def _target_distribution(ws: Workspace, index: pd.DataFrame, decision: Decision,
                         folder: Path, checkpoints: Path, *, seed: int
                         ) -> tuple[str | None, np.ndarray]:
    """The classes the rule gives (a sample of) the target set: test if prepared, else val."""
    from comp.submit.pipeline import predict_rule

    for source in ("test", "val"):
        rows = index[index["source"] == source].sort_values("row")
        if len(rows):
            store = ws.load_store(source)
            pick = _sample(len(rows), TARGET_SAMPLE, seed)
            x = np.asarray(store[rows["row"].to_numpy()[pick]])
            return source, predict_rule(decision, folder, checkpoints, x, ws=ws)[1]
    return None, np.zeros(0, np.int64)


def _saliency(report: page.Page, store: np.ndarray, rows: pd.DataFrame, y: np.ndarray,
              decided: np.ndarray, prob: np.ndarray, fold: np.ndarray, run_dir: RunDir,
              classes: list[str], *, top: int, seed: int) -> None:
    """Saliency of the most confident correct images per class, the worst errors, and the
    mean saliency per class, each image explained by the model that predicted it."""
    k = len(classes)
    p_true = prob[np.arange(len(y)), y]
    chosen: list[tuple[str, np.ndarray]] = []
    for c in range(k):
        right = np.nonzero((y == c) & (decided == c))[0]
        chosen.append((f"most confident {classes[c]}", right[np.argsort(-p_true[right])][:top]))
    wrong = np.nonzero(decided != y)[0]
    chosen.append(("worst errors", wrong[np.argsort(p_true[wrong])][:top]))
    rng = np.random.default_rng(seed)
    mean_rows = [rng.permutation(np.nonzero(y == c)[0])[:MEAN_SALIENCY_PER_CLASS]
                 for c in range(k)]
    explainer = _Explainer(store, rows, y, fold, run_dir)
    panels = []
    for title, idx in chosen:
        if len(idx) == 0:
            continue
        images = np.asarray(store[rows["row"].to_numpy()[idx]])
        captions = [f"{rows['id'].iloc[i]}\ntrue {classes[y[i]]}, p(true)={p_true[i]:.2f}"
                    for i in idx]
        panels.append((title, images, captions, explainer.maps(idx, smooth=True)))
    report.saliency_panels(panels)
    means = []
    for c, idx in enumerate(mean_rows):
        if len(idx):
            means.append((classes[c], saliency.normalised(
                explainer.maps(idx, smooth=False)["gradient"]).mean(axis=0), len(idx)))
    report.mean_saliency(means)


class _Explainer:
    """Saliency maps of scored rows, each row explained by the fold model that predicted it
    (each model loaded once)."""

    def __init__(self, store: np.ndarray, rows: pd.DataFrame, y: np.ndarray,
                 fold: np.ndarray, run_dir: RunDir) -> None:
        self.store, self.rows, self.y, self.fold, self.run_dir = store, rows, y, fold, run_dir
        self.models: dict[int, object] = {}

    def model(self, f: int) -> object:
        from comp.train.callbacks import load_checkpoint

        if f not in self.models:
            self.models[f] = load_checkpoint(_model_of(self.run_dir, f), compile=False)
        return self.models[f]

    def maps(self, idx: np.ndarray, *, smooth: bool) -> dict[str, np.ndarray]:
        """The plain gradient; with `smooth`, SmoothGrad and (where the model has a last
        convolution) Grad-CAM too."""
        x = np.asarray(self.store[self.rows["row"].to_numpy()[idx]]).astype(np.float32)
        out = {name: np.zeros(x.shape[:3], np.float32)
               for name in ("gradient", "smoothgrad", "grad-cam")}
        has_cam, cross = False, self.run_dir.cross_fitted
        for f in np.unique(self.fold[idx]) if cross else [0]:
            here = np.nonzero(self.fold[idx] == f)[0] if cross else np.arange(len(idx))
            model, target = self.model(int(f)), self.y[idx][here]
            out["gradient"][here] = saliency.plain_saliency(model, x[here], target)
            if smooth:
                out["smoothgrad"][here] = saliency.smoothgrad(model, x[here], target)
                cam = saliency.grad_cam(model, x[here], target)
                if cam is not None:
                    out["grad-cam"][here], has_cam = cam, True
        if not smooth:
            return {"gradient": out["gradient"]}
        return out if has_cam else {k: v for k, v in out.items() if k != "grad-cam"}
