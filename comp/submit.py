"""`comp evaluate` and `comp submit`: holdout scores, the decision rule, and the leaderboard CSV.

The decision rule (which runs, ensemble or not, threshold) is fitted once on the holdout split
and cached beside the run, so phase 2 only decodes the new test images and predicts them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp import dataset, ensemble, images, leaks, metrics, report, submission
from comp.config import PrepareConfig, SubmitConfig
from comp.ensemble import Predictions
from comp.errors import CompError
from comp.workspace import Workspace, atomic_write, write_json

# -- runs -------------------------------------------------------------------------------------

def run_info(checkpoints: Path, name: str, fingerprint: str) -> dict[str, Any]:
    """A run's run.json, checked to exist and to belong to this workspace's data."""
    from comp.training import list_runs

    path = checkpoints / name / "run.json"
    if not path.exists() or not (checkpoints / name / "best.keras").exists():
        raise CompError(f"run {name!r} not found in {checkpoints} (runs: "
                        f"{', '.join(list_runs(checkpoints)) or 'none'}); train one with "
                        "`comp train` or pass --checkpoints")
    run = json.loads(path.read_text())
    if run.get("fingerprint") != fingerprint:
        raise CompError(f"run {name!r} was trained on other data (fingerprint "
                        f"{run.get('fingerprint')}, workspace {fingerprint}); use a run trained "
                        "on this workspace, or pass its --workspace")
    return run


def _holdout(ws: Workspace, index: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    from comp.training import load_split

    return load_split(ws, "holdout", index)


def holdout_predictions(ws: Workspace, index: pd.DataFrame, checkpoints: Path, name: str,
                        tta: bool, fingerprint: str) -> Predictions:
    """The run's predictions on the holdout split, cached in the run folder."""
    cache = checkpoints / name / f"holdout{'-tta' if tta else ''}.npz"
    if cache.exists():
        saved = np.load(cache)
        if str(saved["fingerprint"]) == fingerprint:
            return Predictions(saved["prob"], saved["embedding"])
    x, _, _ = _holdout(ws, index)
    pred = ensemble.predict_run(checkpoints / name / "best.keras", x, tta)
    atomic_write(cache, lambda p: np.savez(p.open("wb"), prob=pred.prob,
                                           embedding=pred.embedding,
                                           fingerprint=np.array(fingerprint)))
    return pred


# -- evaluate ---------------------------------------------------------------------------------

def evaluate(workspace: Path, checkpoints: Path, names: list[str], folds: int = 5,
             seed: int = 42, tta: bool = False) -> list[dict[str, Any]]:
    """Holdout scores of each run: balanced accuracy at 0.5 and at a tuned threshold (tuned
    out-of-fold), per-class accuracy, confusion matrix (printed and PNG)."""
    ws = Workspace(workspace)
    meta, index = ws.load_meta(), ws.load_index()
    _, y, rows = _holdout(ws, index)
    if len(y) == 0:
        raise CompError(f"{workspace}: the holdout split is empty; prepare with a holdout "
                        "fraction above 0")
    classes = meta["classes"]
    k = len(classes)
    fold = dataset.assign_folds(rows["split_group"].to_numpy(), y, folds, seed)
    results = []
    for name in names:
        run = run_info(checkpoints, name, meta["fingerprint"])
        pred = holdout_predictions(ws, index, checkpoints, name, tta, meta["fingerprint"])
        at_half = metrics.predict_labels(pred.prob)
        tuned = ensemble.oof_decisions(pred.prob, y, fold, k)
        matrix = metrics.confusion(y, tuned, k)
        result = {
            "run": name, "model": run["model"], "holdout_images": int(len(y)),
            "balanced_accuracy": metrics.balanced_accuracy(y, tuned),
            "balanced_accuracy_at_0.5": metrics.balanced_accuracy(y, at_half),
            "accuracy": float((tuned == y).mean()),
            "per_class_accuracy": dict(zip(classes, metrics.per_class_accuracy(matrix).tolist(),
                                           strict=True)),
            "confusion": matrix.tolist(),
            "threshold": (metrics.best_threshold(y, pred.prob)[0] if k == 2 else None),
        }
        report.confusion_plot(matrix, classes, checkpoints / name / "confusion.png",
                              f"{name}: holdout, balanced accuracy "
                              f"{result['balanced_accuracy']:.4f}")
        write_json(checkpoints / name / "holdout.json", result)
        results.append(result)
    return results


def best_run(ws: Workspace, checkpoints: Path, fingerprint: str, folds: int, seed: int) -> str:
    """The run with the best holdout balanced accuracy among those trained on this data."""
    from comp.training import list_runs

    candidates = []
    for name in list_runs(checkpoints):
        run = json.loads((checkpoints / name / "run.json").read_text())
        if run.get("fingerprint") == fingerprint and (checkpoints / name / "best.keras").exists():
            candidates.append(name)
    if not candidates:
        raise CompError(f"no run trained on this workspace in {checkpoints}; run `comp train` "
                        "first or pass --run")
    scores = {}
    for name in candidates:
        saved = checkpoints / name / "holdout.json"
        if not saved.exists():
            evaluate(ws.root, checkpoints, [name], folds, seed)
        scores[name] = json.loads(saved.read_text())["balanced_accuracy"]
    return max(scores, key=lambda n: scores[n])


# -- the decision rule --------------------------------------------------------------------------

def _cache_dir(cfg: SubmitConfig, runs: list[str]) -> Path:
    key = hashlib.sha256(json.dumps([runs, cfg.tta, cfg.ensemble, cfg.folds, cfg.seed])
                         .encode()).hexdigest()[:10]
    return cfg.checkpoints / runs[0] / "submit" / key


def fit_decision(cfg: SubmitConfig, ws: Workspace, meta: dict[str, Any], index: pd.DataFrame,
                 runs: list[str]) -> dict[str, Any]:
    """Fit (or load from the cache) everything that phase 2 reuses: ensemble, threshold."""
    cache = _cache_dir(cfg, runs)
    decision_path = cache / "decision.json"
    if decision_path.exists():
        cached: dict[str, Any] = json.loads(decision_path.read_text())
        if cached["fingerprint"] == meta["fingerprint"]:
            return cached
    classes = meta["classes"]
    k = len(classes)
    _, y, rows = _holdout(ws, index)
    if len(y) < 2 * cfg.folds:
        raise CompError(f"holdout split has {len(y)} images, too few for {cfg.folds} folds")
    pred = ensemble.combine([holdout_predictions(ws, index, cfg.checkpoints, r, cfg.tta,
                                                 meta["fingerprint"]) for r in runs])
    fold = dataset.assign_folds(rows["split_group"].to_numpy(), y, cfg.folds, cfg.seed)
    cnn_oof = metrics.balanced_accuracy(y, ensemble.oof_decisions(pred.prob, y, fold, k))
    decision: dict[str, Any] = {
        "runs": runs, "classes": classes, "fingerprint": meta["fingerprint"], "tta": cfg.tta,
        "folds": cfg.folds, "holdout_images": int(len(y)),
        "cnn_oof_balanced_accuracy": cnn_oof,
        "cnn_balanced_accuracy_at_0.5": metrics.balanced_accuracy(
            y, metrics.predict_labels(pred.prob)),
        "ensemble_tried": cfg.ensemble, "use_ensemble": False}
    chosen_prob = pred.prob
    if cfg.ensemble:
        features = ensemble.stack_features(pred)
        lgbm_oof = ensemble.oof_lgbm(features, y, fold, k, cfg.seed)
        ens_score = metrics.balanced_accuracy(y, ensemble.oof_decisions(lgbm_oof, y, fold, k))
        decision["ensemble_oof_balanced_accuracy"] = ens_score
        if ens_score > cnn_oof:
            decision["use_ensemble"] = True
            chosen_prob = lgbm_oof
            model = ensemble.fit_lgbm(features, y, k, cfg.seed)
            cache.mkdir(parents=True, exist_ok=True)
            atomic_write(cache / "lgbm.txt", lambda p: model.booster_.save_model(str(p)))
    if k == 2:
        tuned = metrics.tune_threshold(y, chosen_prob, seed=cfg.seed)
        decision["threshold"] = asdict(tuned)
    else:
        decision["threshold"] = None
        decision["note"] = f"{k} classes: no threshold, arg-max of the probabilities"
    pairs = pd.read_csv(ws.pairs)
    decision["leak_match_accuracy"], decision["leak_matches_measured"] = \
        leaks.match_label_accuracy(index, pairs)
    decision["leak_match_accuracy_holdout"], decision["leak_matches_holdout"] = \
        leaks.match_label_accuracy(index, pairs, "holdout")
    write_json(decision_path, decision)
    return decision


def _apply_decision(decision: dict[str, Any], pred: Predictions, cache: Path) -> np.ndarray:
    k = len(decision["classes"])
    prob: np.ndarray = pred.prob
    if decision["use_ensemble"]:
        import lightgbm

        booster = lightgbm.Booster(model_file=str(cache / "lgbm.txt"))
        raw = booster.predict(ensemble.stack_features(pred))
        prob = np.asarray(raw) if k == 2 else np.asarray(raw).reshape(len(prob), k)
    if k == 2:
        return metrics.predict_labels(prob, decision["threshold"]["value"])
    return metrics.predict_labels(prob)


# -- submit -----------------------------------------------------------------------------------

def _sample_path(cfg: SubmitConfig, meta: dict[str, Any], target: str) -> Path | None:
    if cfg.sample_submission is not None:
        return cfg.sample_submission
    if target == "val" and meta.get("challenge"):
        path = Path(meta["challenge"]) / "sample_submission_val.csv"
    elif target == "test" and meta.get("test_dir"):
        path = Path(meta["test_dir"]).parent / "sample_submission.csv"
    else:
        return None
    return path if path.exists() else None


def submit(cfg: SubmitConfig) -> dict[str, Any]:
    """Predict the target set and write a validated CSV plus its manifest."""
    started = time.perf_counter()
    ws = Workspace(cfg.workspace)
    target = cfg.target
    if cfg.test is not None:  # phase 2: ingest only the new images
        from comp.prepare import prepare_test

        prepare_test(PrepareConfig(workspace=cfg.workspace, test=cfg.test,
                                   on_size_mismatch=cfg.on_size_mismatch))
        target = "test"
    meta, index = ws.load_meta(), ws.load_index()
    if target not in ("val", "test"):
        raise CompError(f"--target must be val or test. Received: {target!r}")
    rows = index[index["source"] == target].sort_values("row")
    if len(rows) == 0:
        raise CompError(f"{ws.root}: no {target} images prepared; pass --test NEW_DIR or "
                        f"prepare with a {target}/ folder")
    runs = list(cfg.runs) or [best_run(ws, cfg.checkpoints, meta["fingerprint"], cfg.folds,
                                       cfg.seed)]
    infos = [run_info(cfg.checkpoints, r, meta["fingerprint"]) for r in runs]
    # 1-3. the decision rule, fitted on the holdout (cached for phase 2)
    decision = fit_decision(cfg, ws, meta, index, runs)
    x = images.load_store(ws.store(target))
    pred = ensemble.combine([ensemble.predict_run(cfg.checkpoints / r / "best.keras", x, cfg.tta)
                             for r in runs])
    labels = _apply_decision(decision, pred, _cache_dir(cfg, runs))
    # 4. leak override
    ids = rows["id"].astype(str).tolist()
    inherited = leaks.leak_labels(pd.read_csv(ws.overlap, dtype={"id": str}), target, ids)
    overridden = changed = 0
    if cfg.leaks:
        labels, overridden, changed = leaks.override(labels, inherited)
    # 5. validate and write
    classes = meta["classes"]
    names = [classes[c] for c in labels]
    sample_path = _sample_path(cfg, meta, target)
    sample = submission.read_sample(sample_path, cfg.id_column) if sample_path else None
    frame = submission.build_frame(ids, names, sample, cfg.id_column, cfg.label_column,
                                   sample_path)
    submission.validate(frame, ids, classes, cfg.id_column, cfg.label_column)
    path = submission.new_path(cfg.submissions, runs)
    manifest = {
        "csv": str(path), "created": datetime.now().isoformat(), "target": target,
        "images": len(ids), "runs": [{k: i.get(k) for k in ("run", "model", "best_epoch",
                                                            "best_val_balanced_accuracy")}
                                     for i in infos],
        "tta": cfg.tta, "ensemble": {"tried": cfg.ensemble, "used": decision["use_ensemble"],
                                     "cnn_oof_balanced_accuracy":
                                         decision["cnn_oof_balanced_accuracy"],
                                     "ensemble_oof_balanced_accuracy":
                                         decision.get("ensemble_oof_balanced_accuracy")},
        "threshold": decision["threshold"], "holdout": {
            "images": decision["holdout_images"],
            "balanced_accuracy_at_0.5": decision["cnn_balanced_accuracy_at_0.5"]},
        "leaks": {"enabled": cfg.leaks, "matched": int((inherited >= 0).sum()),
                  "overridden": overridden, "changed": changed,
                  "match_label_accuracy": decision["leak_match_accuracy"],
                  "matches_measured": decision["leak_matches_measured"],
                  "match_label_accuracy_holdout_groups": decision["leak_match_accuracy_holdout"],
                  "matches_measured_holdout_groups": decision["leak_matches_holdout"]},
        "predicted_counts": {c: int(n) for c, n in zip(classes, np.bincount(
            labels, minlength=len(classes)).tolist(), strict=True)},
        "sample_submission": str(sample_path) if sample_path else None,
        "data_fingerprint": meta["fingerprint"], "workspace": str(ws.root),
        "command": " ".join(sys.argv), "seconds": round(time.perf_counter() - started, 2),
    }
    submission.write(frame, manifest, path)
    return manifest


def score_against(csv: Path, answers: Path, id_column: str = "id",
                  label_column: str = "label") -> float:
    """Balanced accuracy of a submission against a labelled answers CSV (demo, benchmarks)."""
    sub = pd.read_csv(csv, dtype=str, keep_default_na=False)
    truth = pd.read_csv(answers, dtype=str, keep_default_na=False)
    merged = truth.merge(sub, on=id_column, suffixes=("_true", "_pred"))
    classes = sorted(set(merged[f"{label_column}_true"]) | set(merged[f"{label_column}_pred"]))
    code = {c: i for i, c in enumerate(classes)}
    return metrics.balanced_accuracy(merged[f"{label_column}_true"].map(code).to_numpy(),
                                     merged[f"{label_column}_pred"].map(code).to_numpy())

