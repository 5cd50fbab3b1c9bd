"""`comp evaluate`: scores of runs, and the choice of the best run.

Every score here is out-of-fold. A cross-fitted run is scored on every labelled image, each
predicted by the fold model that did not train on it; a one-model run on the holdout split,
which it never trained on. The threshold applied to each fold is tuned on the other folds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from comp import metrics, pictures
from comp.commit import reading
from comp.config import DEFAULT_FOLDS, DEFAULT_SEED
from comp.errors import CompError
from comp.metrics import probability_matrix
from comp.prepare.splits import assign_folds
from comp.runs import RunDir, open_run, runs_for
from comp.submit.decision import best_threshold, oof_decisions
from comp.submit.predict import Predictions, predict_models, predict_run
from comp.train.features import flippable, run_inputs
from comp.workspace import Workspace, atomic_write, read_npz, write_json


@dataclass(frozen=True)
class Evaluation:
    """holdout.json: one run's holdout scores."""

    run: str
    model: str
    images: int  # images scored: every labelled image (cross-fitted), else the holdout split
    balanced_accuracy: float  # threshold tuned out-of-fold (arg-max for K classes)
    balanced_accuracy_at_half: float
    accuracy: float
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]
    threshold: float | None  # tuned on every scored image (for reference)
    model_tag: str = ""  # the best checkpoint it scored (`RunDir.model_tag`)
    scored_on: str = "holdout"  # or "out-of-fold": every labelled image (cross-fitted run)

    @classmethod
    def load(cls, path: Path) -> Evaluation | None:
        try:
            data = json.loads(path.read_text())
            saved = cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a cache: scored again
        scores = (saved.balanced_accuracy, saved.balanced_accuracy_at_half, saved.accuracy)
        if not all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores):
            return None  # values no evaluation gives (an edited file): scored again
        return saved


def scored_rows(ws: Workspace, index: pd.DataFrame, run_dir: RunDir) -> pd.DataFrame:
    """The index rows a run is scored (and its decision rule fitted) on: every kept labelled
    image for a cross-fitted run, else the holdout split (CompError when there are none)."""
    rows = ws.labelled(index) if run_dir.cross_fitted else ws.split_rows("holdout", index)
    if len(rows) == 0:
        raise CompError(f"{ws.root}: run {run_dir.name!r} has no images to be scored on (one "
                        "model, and the workspace's holdout split is empty); prepare with a "
                        "holdout (e.g. --split 0.7,0.15,0.15), or train one model per fold "
                        "(--folds 5)")
    return rows


def scoring_folds(rows: pd.DataFrame, y: np.ndarray, run_dir: RunDir, *, folds: int | None,
                  seed: int) -> np.ndarray:
    """Folds of the out-of-fold decisions: the prepared folds the models were cross-fitted
    on, or for a one-model run `folds` (default 5) folds of its holdout.

    Raises:
        CompError when `folds` is given for a cross-fitted run (it would not be used).
    """
    refuse_holdout_folds(run_dir, folds)
    if run_dir.cross_fitted:
        return rows["fold"].to_numpy(np.int64)
    return holdout_folds(rows, y, folds=folds or DEFAULT_FOLDS, seed=seed)


def refuse_holdout_folds(run_dir: RunDir, folds: int | None) -> None:
    """`--folds` sets a one-model run's holdout folds: given for a cross-fitted run, it would
    not be used, so it is refused."""
    if run_dir.cross_fitted and folds is not None:
        raise CompError(f"--folds {folds}: run {run_dir.name!r} is cross-fitted, so it is "
                        "scored on the workspace's prepared folds; --folds sets a one-model "
                        "run's holdout folds: drop it")


def _out_of_fold(ws: Workspace, rows: pd.DataFrame, run_dir: RunDir, *, tta: bool
                 ) -> Predictions:
    """Each labelled image predicted by the fold model that did not train on it."""
    store = ws.load_store("train")
    fold, at = rows["fold"].to_numpy(), rows["row"].to_numpy()
    record = run_dir.load_record()
    features = None if flippable(record.model) else run_inputs(record, store[at], ws=ws)
    prob: np.ndarray | None = None
    emb: np.ndarray | None = None
    for k, member in enumerate(run_dir.fold_dirs()):
        here = np.nonzero(fold == k)[0]
        pred = predict_run(member.best, store[at[here]] if features is None else features[here],
                           tta=tta, desc=f"out-of-fold {k + 1}", engine=run_dir.engine)
        if prob is None or emb is None:
            prob = np.zeros((len(rows), *pred.prob.shape[1:]), np.float32)
            emb = np.zeros((len(rows), pred.embedding.shape[1]), np.float32)
        prob[here], emb[here] = pred.prob, pred.embedding
    assert prob is not None and emb is not None
    return Predictions(prob, emb)


def holdout_predictions(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, tta: bool,
                        fingerprint: str) -> Predictions:
    """The run's predictions on its `scored_rows` (out-of-fold for a cross-fitted run),
    cached in the run folder (for this data and these best checkpoints)."""
    record = run_dir.load_record()
    tta = tta and flippable(record.model)  # a feature model's features are not flipped
    cache, key = run_dir.holdout_predictions(tta), f"{fingerprint}/{run_dir.model_tag()}"
    saved = read_npz(cache, ("key", "prob", "embedding"))
    if saved is not None and str(saved["key"]) == key:  # else predicted anew
        return Predictions(probability_matrix(saved["prob"]), saved["embedding"])
    if run_dir.cross_fitted:
        pred = _out_of_fold(ws, ws.labelled(index), run_dir, tta=tta)
    else:
        pred = predict_run(run_dir.best, run_inputs(record, ws.split("holdout", index)[0],
                                                    ws=ws), tta=tta, engine=run_dir.engine)
    atomic_write(cache, lambda p: np.savez(p.open("wb"), prob=pred.prob,
                                           embedding=pred.embedding, key=np.array(key)))
    return pred


def predict_new(run_dir: RunDir, x: np.ndarray, *, tta: bool,
                ws: Workspace | None = None) -> Predictions:
    """A run's predictions on new images: its model, or its fold models (as members), all in
    one compiled call per batch (a feature model on their features, kept in `ws`'s cache)."""
    from comp.submit.predict import members_of

    x = run_inputs(run_dir.load_record(), x, ws=ws)
    return members_of(predict_models([m.best for m in run_dir.members()], x, tta=tta,
                                     engine=run_dir.engine))


def holdout_folds(rows: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """The holdout's folds for out-of-fold decisions (groups never straddle two folds)."""
    if len(y) < 2 * folds:
        raise CompError(f"holdout split has {len(y)} images, too few for {folds} folds; "
                        "prepare with a larger holdout fraction or pass --folds 2")
    return assign_folds(rows["split_group"].to_numpy(), y, k=folds, seed=seed)


def evaluate_run(ws: Workspace, index: pd.DataFrame, run_dir: RunDir, *, model: str,
                 classes: list[str], fingerprint: str, folds: int | None, seed: int,
                 tta: bool = False) -> Evaluation:
    """One run's out-of-fold scores; writes holdout.json and confusion.png in the run
    folder."""
    rows = scored_rows(ws, index, run_dir)
    y = rows["label"].to_numpy(np.int64)
    fold = scoring_folds(rows, y, run_dir, folds=folds, seed=seed)
    pred = holdout_predictions(ws, index, run_dir, tta=tta, fingerprint=fingerprint)
    k = len(classes)
    tuned = oof_decisions(pred.prob, y, fold, num_classes=k)
    matrix = metrics.confusion(y, tuned, k)
    result = Evaluation(
        run=run_dir.name, model=model, images=int(len(y)),
        balanced_accuracy=metrics.balanced_accuracy(y, tuned),
        balanced_accuracy_at_half=metrics.balanced_accuracy(y, metrics.predict_labels(
            pred.prob)),
        accuracy=float((tuned == y).mean()),
        per_class_accuracy=dict(zip(classes, metrics.per_class_accuracy(matrix).tolist(),
                                    strict=True)),
        confusion=matrix.tolist(),
        threshold=best_threshold(y, pred.prob)[0] if k == 2 else None,
        model_tag=run_dir.model_tag(),
        scored_on="out-of-fold" if run_dir.cross_fitted else "holdout")
    pictures.confusion_plot(matrix, classes, run_dir.confusion,
                          f"{run_dir.name}: {result.scored_on}, balanced accuracy "
                          f"{result.balanced_accuracy:.4f}")
    write_json(run_dir.evaluation, asdict(result))
    return result


@reading()  # a run resumed meanwhile keeps the versions read here
def evaluate(workspace: Path, checkpoints: Path, names: list[str], *, folds: int | None = None,
             seed: int | None = None, tta: bool = False) -> list[Evaluation]:
    """Out-of-fold scores of each run (`scored_rows`): balanced accuracy at 0.5 and at a tuned
    threshold (tuned out-of-fold), per-class accuracy, confusion matrix (printed and PNG).
    `folds` and `seed` draw a one-model run's holdout folds; a cross-fitted run refuses them
    (it is scored on the prepared folds)."""
    ws = Workspace(workspace)
    meta, index = ws.load_meta(), ws.load_index()
    results = []
    for name in names:
        run_dir, record = open_run(checkpoints, name, fingerprint=meta.fingerprint,
                                   pixels=meta.pixels)
        if seed is not None and run_dir.cross_fitted:
            raise CompError(f"--seed {seed}: run {name!r} is cross-fitted, so it is scored on "
                            "the workspace's prepared folds and evaluate draws nothing: drop "
                            "it")
        results.append(evaluate_run(ws, index, run_dir, model=record.model,
                                    classes=meta.classes, fingerprint=meta.fingerprint,
                                    folds=folds, seed=DEFAULT_SEED if seed is None else seed,
                                    tta=tta))
    return results


def best_run(ws: Workspace, checkpoints: Path, *, fingerprint: str, folds: int | None,
             seed: int, cross_fitted: bool = False) -> str:
    """The run with the best out-of-fold balanced accuracy among those trained on this data
    (a cross-fitted run's over every labelled image, a one-model run's over the holdout);
    with `cross_fitted`, among the cross-fitted runs only."""
    candidates = runs_for(checkpoints, fingerprint)
    if cross_fitted:
        candidates = [n for n in candidates if RunDir(checkpoints / n).cross_fitted]
    if not candidates:
        kind = "cross-fitted run (comp train, the default)" if cross_fitted else "run"
        raise CompError(f"no {kind} trained on this workspace in {checkpoints}; run `comp "
                        "train` first or pass --run")
    scores = {}
    for name in candidates:
        run_dir = RunDir(checkpoints / name)
        saved = Evaluation.load(run_dir.evaluation)
        if saved is None or saved.model_tag != run_dir.model_tag():
            own = not run_dir.cross_fitted  # holdout folds are a one-model run's only
            saved = evaluate(ws.root, checkpoints, [name], folds=folds if own else None,
                             seed=seed if own else None)[0]
        scores[name] = saved.balanced_accuracy
    return max(scores, key=lambda n: scores[n])
