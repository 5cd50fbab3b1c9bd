"""`comp submit`: predict the target set, apply the decision rule, override leaks, write the CSV.

The decision rule (runs, stacker or not, threshold or class offsets) is fitted once on
out-of-fold predictions (every labelled image for cross-fitted runs, the holdout split for
one-model runs) and cached beside the first run, so phase 2 only decodes the new test images
and predicts them (a cross-fitted run: its fold models, averaged).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from comp.config import PrepareConfig, SubmitConfig, Target
from comp.errors import CompError
from comp.runs import RunDir, RunRecord, open_run
from comp.stopwatch import Stopwatch
from comp.submit import leaks, submission
from comp.submit.decision import Decision, decision_key, fit_decision
from comp.submit.evaluate import (
    best_run,
    holdout_predictions,
    predict_new,
    scored_rows,
    scoring_folds,
)
from comp.submit.predict import combine
from comp.workspace import Meta, Workspace


@dataclass
class Submitted:
    """What `submit` hands back: the manifest written beside the CSV, and the rule used."""

    manifest: submission.Manifest
    decision: Decision
    clock: Stopwatch


def load_decision(cfg: SubmitConfig, ws: Workspace, meta: Meta, index: pd.DataFrame,
                  runs: list[RunDir]) -> tuple[Decision, Path]:
    """The decision rule for these runs and options: from the cache, or fitted now."""
    names = [r.name for r in runs]
    folder = runs[0].decision_cache(decision_key(
        runs=[f"{r.name}/{r.model_tag()}" for r in runs], tta=cfg.tta, ensemble=cfg.ensemble,
        folds=cfg.folds, seed=cfg.seed))
    cached = Decision.load(folder, fingerprint=meta.fingerprint)
    if cached is not None:
        return cached, folder
    kinds = {r.cross_fitted for r in runs}
    if len(kinds) > 1:
        raise CompError(f"runs {', '.join(names)} mix cross-fitted and one-model runs, which "
                        "are scored on different images; submit them separately")
    rows = scored_rows(ws, index, runs[0])
    y = rows["label"].to_numpy(np.int64)
    fold = scoring_folds(rows, y, runs[0], folds=cfg.folds, seed=cfg.seed)
    pred = combine([holdout_predictions(ws, index, r, tta=cfg.tta, fingerprint=meta.fingerprint)
                    for r in runs])
    decision = fit_decision(pred, y, fold, classes=meta.classes, runs=names,
                            fingerprint=meta.fingerprint, tta=cfg.tta, ensemble=cfg.ensemble,
                            seed=cfg.seed, leaks=leaks.check_leaks(index, pd.read_csv(ws.pairs)),
                            folder=folder, cross_fitted=runs[0].cross_fitted)
    decision.save(folder)
    return decision, folder


def _sample_path(cfg: SubmitConfig, meta: Meta, target: Target) -> Path | None:
    if cfg.sample_submission is not None:
        return cfg.sample_submission
    if target == Target.VAL and meta.challenge:
        path = Path(meta.challenge) / "sample_submission_val.csv"
    elif target == Target.TEST and meta.test_dir:
        path = Path(meta.test_dir).parent / "sample_submission.csv"
    else:
        return None
    return path if path.exists() else None


def _frame(cfg: SubmitConfig, meta: Meta, target: Target, ids: list[str],
           labels: np.ndarray) -> tuple[pd.DataFrame, Path | None]:
    """The validated submission table (following the sample submission when there is one)."""
    names = [meta.classes[c] for c in labels]
    sample_path = _sample_path(cfg, meta, target)
    sample = submission.read_sample(sample_path, cfg.id_column) if sample_path else None
    frame = submission.build_frame(ids, names, sample, id_column=cfg.id_column,
                                   label_column=cfg.label_column, sample_path=sample_path)
    submission.validate(frame, ids, meta.classes, id_column=cfg.id_column,
                        label_column=cfg.label_column)
    return frame, sample_path


def _runs_summary(records: list[RunRecord]) -> list[dict[str, object]]:
    return [{"run": r.run, "model": r.model, "best_epoch": r.best_epoch,
             "best_val_balanced_accuracy": r.best_val_balanced_accuracy} for r in records]


def submit(cfg: SubmitConfig) -> Submitted:
    """Predict the target set and write a validated CSV plus its manifest."""
    clock, target = Stopwatch(), cfg.target
    if cfg.test is not None:  # phase 2: ingest only the new images
        from comp.prepare import prepare_test

        ingested = prepare_test(PrepareConfig(workspace=cfg.workspace, test=cfg.test,
                                              on_size_mismatch=cfg.on_size_mismatch))
        clock.seconds.update({f"ingest: {k}": v for k, v in ingested.clock.seconds.items()})
        target = Target.TEST
    ws = Workspace(cfg.workspace)  # the version committed by the ingest, if any
    with clock.stage("read workspace and runs"):
        meta, index = ws.load_meta(), ws.load_index()
        rows = index[index["source"] == str(target)].sort_values("row")
        if len(rows) == 0:
            raise CompError(f"{ws.root}: no {target} images prepared; pass --test NEW_DIR or "
                            f"prepare with a {target}/ folder")
        names = list(cfg.runs) or [best_run(ws, cfg.checkpoints, fingerprint=meta.fingerprint,
                                            folds=cfg.folds, seed=cfg.seed)]
        opened = [open_run(cfg.checkpoints, n, fingerprint=meta.fingerprint) for n in names]
    with clock.stage("decision rule"):  # 1-3. fitted on the holdout (cached for phase 2)
        decision, folder = load_decision(cfg, ws, meta, index, [r for r, _ in opened])
    with clock.stage(f"predict {target}"):
        x = ws.load_store(str(target))
        pred = combine([predict_new(r, x, tta=cfg.tta) for r, _ in opened])
        labels = decision.apply(pred, folder)
    with clock.stage("leaks and CSV"):
        ids = rows["id"].astype(str).tolist()  # 4. leak override
        inherited = leaks.leak_labels(pd.read_csv(ws.overlap, dtype={"id": str}), str(target),
                                      ids)
        overridden = changed = 0
        if cfg.leaks:
            labels, overridden, changed = leaks.override(labels, inherited)
        frame, sample_path = _frame(cfg, meta, target, ids, labels)  # 5. validate and write
        manifest = submission.Manifest(
            csv="", created=datetime.now().isoformat(), target=str(target), images=len(ids),
            runs=_runs_summary([rec for _, rec in opened]), tta=cfg.tta,
            decision=asdict(decision),
            leaks={"enabled": cfg.leaks, "matched": int((inherited >= 0).sum()),
                   "overridden": overridden, "changed": changed},
            predicted_counts={c: int(n) for c, n in zip(meta.classes, np.bincount(
                labels, minlength=len(meta.classes)).tolist(), strict=True)},
            sample_submission=str(sample_path) if sample_path else None,
            data_fingerprint=meta.fingerprint, workspace=str(ws.root),
            command=" ".join(sys.argv), seconds=round(clock.total(), 2))
        manifest = submission.write(frame, manifest, cfg.submissions,
                                    submission.submission_stem(names))
    return Submitted(manifest, decision, clock)
