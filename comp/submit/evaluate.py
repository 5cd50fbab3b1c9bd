"""`comp evaluate`: holdout scores of runs, and the choice of the best run.

Every score here is out-of-fold on the holdout: the CNNs never trained on it, and the threshold
applied to each holdout fold is tuned on the other folds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from comp import metrics, report
from comp.errors import CompError
from comp.prepare.splits import assign_folds
from comp.runs import RunDir, open_run, runs_for
from comp.submit.decision import best_threshold, oof_decisions
from comp.submit.predict import Predictions, predict_run
from comp.workspace import Workspace, atomic_write, write_json


@dataclass(frozen=True)
class Evaluation:
    """holdout.json: one run's holdout scores."""

    run: str
    model: str
    holdout_images: int
    balanced_accuracy: float  # threshold tuned out-of-fold (arg-max for K classes)
    balanced_accuracy_at_half: float
    accuracy: float
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]
    threshold: float | None  # tuned on the whole holdout (for reference)
    model_tag: str = ""  # the best checkpoint it scored (`RunDir.model_tag`)

    @classmethod
    def load(cls, path: Path) -> Evaluation | None:
        try:
            data = json.loads(path.read_text())
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None


def holdout_predictions(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, tta: bool,
                        fingerprint: str) -> Predictions:
    """The run's predictions on the holdout split, cached in the run folder (for this data
    and this best checkpoint)."""
    cache, key = run_dir.holdout_predictions(tta), f"{fingerprint}/{run_dir.model_tag()}"
    if cache.exists():
        try:
            saved = np.load(cache)
            if str(saved["key"]) == key:
                return Predictions(saved["prob"], saved["embedding"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged or stale cache is predicted anew
    x, _, _ = ws.split("holdout", index)
    pred = predict_run(run_dir.best, x, tta=tta)
    atomic_write(cache, lambda p: np.savez(p.open("wb"), prob=pred.prob,
                                           embedding=pred.embedding, key=np.array(key)))
    return pred


def holdout_folds(rows: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """The holdout's folds for out-of-fold decisions (groups never straddle two folds)."""
    if len(y) < 2 * folds:
        raise CompError(f"holdout split has {len(y)} images, too few for {folds} folds; "
                        "prepare with a larger holdout fraction or pass --folds 2")
    return assign_folds(rows["split_group"].to_numpy(), y, k=folds, seed=seed)


def evaluate_run(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, model: str,
                 classes: list[str], fingerprint: str, fold: np.ndarray, y: np.ndarray,
                 tta: bool = False) -> Evaluation:
    """One run's holdout scores; writes holdout.json and confusion.png in the run folder."""
    pred = holdout_predictions(ws, index, run_dir, tta=tta, fingerprint=fingerprint)
    k = len(classes)
    tuned = oof_decisions(pred.prob, y, fold, num_classes=k)
    matrix = metrics.confusion(y, tuned, k)
    result = Evaluation(
        run=run_dir.name, model=model, holdout_images=int(len(y)),
        balanced_accuracy=metrics.balanced_accuracy(y, tuned),
        balanced_accuracy_at_half=metrics.balanced_accuracy(y, metrics.predict_labels(
            pred.prob)),
        accuracy=float((tuned == y).mean()),
        per_class_accuracy=dict(zip(classes, metrics.per_class_accuracy(matrix).tolist(),
                                    strict=True)),
        confusion=matrix.tolist(),
        threshold=best_threshold(y, pred.prob)[0] if k == 2 else None,
        model_tag=run_dir.model_tag())
    report.confusion_plot(matrix, classes, run_dir.confusion,
                          f"{run_dir.name}: holdout, balanced accuracy "
                          f"{result.balanced_accuracy:.4f}")
    write_json(run_dir.evaluation, asdict(result))
    return result


def evaluate(workspace: Path, checkpoints: Path, names: list[str], *, folds: int = 5,
             seed: int = 42, tta: bool = False) -> list[Evaluation]:
    """Holdout scores of each run: balanced accuracy at 0.5 and at a tuned threshold (tuned
    out-of-fold), per-class accuracy, confusion matrix (printed and PNG)."""
    ws = Workspace(workspace)
    meta, index = ws.load_meta(), ws.load_index()
    _, y, rows = ws.split("holdout", index)
    if len(y) == 0:
        raise CompError(f"{workspace}: the holdout split is empty; prepare with a holdout "
                        "fraction above 0")
    fold = holdout_folds(rows, y, folds=folds, seed=seed)
    results = []
    for name in names:
        run_dir, record = open_run(checkpoints, name, fingerprint=meta.fingerprint)
        results.append(evaluate_run(ws, index, run_dir, model=record.model,
                                    classes=meta.classes, fingerprint=meta.fingerprint,
                                    fold=fold, y=y, tta=tta))
    return results


def best_run(ws: Workspace, checkpoints: Path, *, fingerprint: str, folds: int,
             seed: int) -> str:
    """The run with the best holdout balanced accuracy among those trained on this data."""
    candidates = runs_for(checkpoints, fingerprint)
    if not candidates:
        raise CompError(f"no run trained on this workspace in {checkpoints}; run `comp train` "
                        "first or pass --run")
    scores = {}
    for name in candidates:
        run_dir = RunDir(checkpoints / name)
        saved = Evaluation.load(run_dir.evaluation)
        if saved is None or saved.model_tag != run_dir.model_tag():
            saved = evaluate(ws.root, checkpoints, [name], folds=folds, seed=seed)[0]
        scores[name] = saved.balanced_accuracy
    return max(scores, key=lambda n: scores[n])
