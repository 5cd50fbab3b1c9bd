"""`comp submit`: predict the target set, apply the decision rule, override leaks, write the CSV.

The decision rule (which runs, CNN or stacker or level-2 stack, flip or not, threshold or
class offsets) is chosen once on out-of-fold predictions (every labelled image for
cross-fitted runs, the holdout split for one-model runs), every choice nested in an outer
loop over the folds, and cached beside the first run; each run it reads records it as its
last rule (for `comp predict` and `comp inspect`). Phase 2 only decodes the new test images
and predicts them (a cross-fitted run: its fold models, averaged).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from comp.commit import reading
from comp.config import Leaks, PrepareConfig, SubmitConfig, Target
from comp.errors import CompError
from comp.runs import RunDir, RunRecord, open_run, runs_for
from comp.stopwatch import Stopwatch
from comp.submit import evidence, leaks, submission
from comp.submit.candidates import fit_decision
from comp.submit.evaluate import predict_new
from comp.submit.rule import Decision, last_rule, load_nested, load_oof, remember
from comp.submit.select import Rule, rule_margins
from comp.workspace import Meta, Workspace

SCHEMA = 7  # part of the cache key: a rule saved in another layout is fitted anew


@dataclass
class Submitted:
    """What `submit` hands back: the manifest written beside the CSV, the rule used, and the
    lines to print about the choice of runs and the leaks."""

    manifest: submission.Manifest
    decision: Decision
    clock: Stopwatch
    notes: list[str]


def decision_key(cfg: SubmitConfig, runs: list[RunDir]) -> str:
    """Name of the folder a rule is cached in, from every input it depends on."""
    parts = [[f"{r.name}/{r.model_tag()}" for r in runs], str(cfg.tta), cfg.ensemble,
             cfg.folds, cfg.seed, SCHEMA]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]


def candidate_runs(cfg: SubmitConfig, fingerprint: str) -> tuple[list[str], list[str]]:
    """(the runs to consider, lines saying which and why). `--run`: those, all of one kind;
    else every finished run trained on this data, of one kind (cross-fitted ones when there
    are any: one-model runs are scored on the holdout only, other images)."""
    if cfg.preset is not None:
        from comp.train.preset import finished_runs, run_names

        names = finished_runs(cfg.preset, cfg.checkpoints, fingerprint)
        left = [n for n in run_names(cfg.preset) if n not in names]
        return names, [f"runs considered: preset {cfg.preset}'s finished runs, "
                       f"{', '.join(names)}" + (f" (not finished: {', '.join(left)}; "
                                                f"`comp train --preset {cfg.preset}` "
                                                "continues them)" if left else "")]
    if cfg.runs:
        names = list(dict.fromkeys(cfg.runs))
        found = [RunDir(cfg.checkpoints / n) for n in names]
        # a run that is not there is named as such when it is opened, not called one-model
        kinds = {r.cross_fitted for r in found if r.record.exists()}
        if len(kinds) > 1:
            raise CompError(f"runs {', '.join(names)} mix cross-fitted and one-model runs, "
                            "which are scored on different images (every labelled image, the "
                            "holdout); submit them separately")
        return names, []
    names = runs_for(cfg.checkpoints, fingerprint)
    if not names:
        raise CompError(f"no run trained on this workspace in {cfg.checkpoints}; run `comp "
                        "train` first or pass --run")
    crossed = [n for n in names if RunDir(cfg.checkpoints / n).cross_fitted]
    notes = []
    if crossed and len(crossed) < len(names):
        left = [n for n in names if n not in crossed]
        notes.append(f"runs considered: the cross-fitted {', '.join(crossed)}; not "
                     f"{', '.join(left)} (one model each, scored on the holdout only)")
        names = crossed
    else:
        notes.append(f"runs considered: {', '.join(names)} (every finished run of this "
                     "workspace; pass --run to choose)")
    return names, notes


def load_decision(cfg: SubmitConfig, ws: Workspace, meta: Meta, index: pd.DataFrame,
                  runs: list[RunDir], *, clock: Stopwatch | None = None
                  ) -> tuple[Decision, Path]:
    """The rule for these runs and options: from the cache, or fitted now (its stages timed
    into `clock`)."""
    clock = clock or Stopwatch()
    with clock.stage("decision rule: cache lookup"):
        folder = runs[0].decision_cache(decision_key(cfg, runs))
        cached = Decision.load(folder, fingerprint=meta.fingerprint)
        if (cached is not None and load_oof(folder) is not None  # inspect reads both
                and load_nested(folder) is not None):  # the leaks' estimate reads this
            return cached, folder
    return fit_decision(cfg, ws, meta, index, runs, folder=folder, clock=clock), folder


def rule_for(run_dir: RunDir, *, ws: Workspace, meta: Meta, index: pd.DataFrame,
             checkpoints: Path) -> tuple[Decision, Path, str]:
    """The rule the last `comp submit` that read this run used, and words saying so; when
    there is none (or it no longer fits the data), the default rule for this run alone,
    fitted now, and words saying that."""
    saved = last_rule(run_dir, checkpoints, fingerprint=meta.fingerprint)
    if saved is not None:
        decision, folder = saved
        return decision, folder, (f"{decision.candidate} ({decision.rule}), as the last "
                                  "comp submit that read this run decided")
    decision, folder = load_decision(SubmitConfig(workspace=ws.root, runs=(run_dir.name,),
                                                  checkpoints=checkpoints),
                                     ws, meta, index, [run_dir])
    return decision, folder, (f"{decision.candidate} ({decision.rule}); no comp submit has "
                              "read this run yet, so its default rule was fitted now")


def predict_rule(decision: Decision, folder: Path, checkpoints: Path, x: np.ndarray, *,
                 ws: Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, classes) of new images by the rule: each run it reads predicted with
    its flip setting (fold models in one compiled call; a feature model's features kept in
    `ws`)."""
    preds = {name: predict_new(RunDir(checkpoints / name), x, tta=decision.tta, ws=ws)
             for name in decision.runs}
    return decision.apply(preds, folder)


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


def leak_decisions(applied: Leaks, decision: Decision, prob: np.ndarray, labels: np.ndarray,
                   inherited: np.ndarray, *, agreement: float) -> np.ndarray:
    """The classes of the target images: the rule's `labels`, except for leaked ones
    (`inherited` >= 0) as `applied` says (copies' label, or weighed as evidence)."""
    if applied == Leaks.ALWAYS:
        return leaks.override(labels, inherited)[0]
    if applied == Leaks.EVIDENCE:
        margins = rule_margins(prob, Rule(decision.rule), decision.parameter)
        weighed = evidence.with_evidence(margins, decision.temperature, inherited,
                                         agreement=agreement)
        return np.where(inherited >= 0, weighed, labels)
    return labels


def _leaks(cfg: SubmitConfig, ws: Workspace, index: pd.DataFrame, decision: Decision,
           folder: Path, target: str, ids: list[str], prob: np.ndarray, labels: np.ndarray
           ) -> tuple[np.ndarray, submission.LeakRecord, str]:
    """The target's classes after its leaks are dealt with, the manifest's record, and the
    line to print."""
    overlap = ws.load_overlap()
    inherited = leaks.leak_labels(overlap, target, ids, index)
    agreement = leaks.copy_agreement(index, ws.load_pairs(), overlap, source=target)
    nested = load_nested(folder)
    scores = None if nested is None else evidence.leak_scores(
        nested.y, nested.decided, nested.margins, nested.temperatures,
        agreement=agreement.estimate)
    applied, why = leaks.choose_policy(cfg.leaks, scores)
    out = leak_decisions(applied, decision, prob, labels, inherited,
                         agreement=agreement.estimate)
    hit = inherited >= 0
    changed = int((out != labels).sum())
    matched = int(hit.sum())
    record = submission.LeakRecord(
        policy=str(cfg.leaks), applied=str(applied), matched=matched, changed=changed,
        agreement=agreement.estimate, agreement_right=agreement.right,
        agreement_measured=agreement.measured, max_distance=agreement.max_distance,
        expected=None if scores is None else asdict(scores))
    line = (f"leaks: {matched} {target} images match labelled training images whose labels "
            f"agree; {agreement.words()}; {leaks.leak_words(scores)}; {why}: "
            + {Leaks.NEVER: "the model decides them",
               Leaks.ALWAYS: "the copies' labels replace the model's",
               Leaks.EVIDENCE: "the copies' labels weighed beside the model's"}[applied]
            + f" ({changed} changed)")
    return out, record, line


def _runs_used(records: list[RunRecord]) -> list[submission.RunUsed]:
    return [submission.RunUsed(r.run, r.model, r.best_epoch, r.best_val_balanced_accuracy)
            for r in records]


def submit(cfg: SubmitConfig) -> Submitted:
    """Predict the target set and write a validated CSV plus its manifest."""
    clock, target = Stopwatch(), cfg.target
    if cfg.submissions.exists() and not cfg.submissions.is_dir():  # before any work
        raise CompError(f"{cfg.submissions}: is a file; pass a folder as --submissions")
    if cfg.test is not None:  # phase 2: ingest only the new images
        from comp.prepare import prepare_test
        from comp.prepare.image import BAD_IMAGE_FIX

        try:
            ingested = prepare_test(PrepareConfig(workspace=cfg.workspace, test=cfg.test,
                                                  on_size_mismatch=cfg.on_size_mismatch))
        except CompError as exc:  # a test image cannot be skipped: the CSV needs its label
            if BAD_IMAGE_FIX not in str(exc):
                raise
            raise CompError(str(exc).replace(BAD_IMAGE_FIX, (
                "replace the file (the submission needs a label for every test image)"))
            ) from None
        clock.seconds.update({f"ingest: {k}": v for k, v in ingested.clock.seconds.items()})
        target = Target.TEST
    with reading():  # a run resumed meanwhile keeps the versions read here
        return _submit(cfg, clock, target)


def _submit(cfg: SubmitConfig, clock: Stopwatch, target: Target) -> Submitted:
    ws = Workspace(cfg.workspace)  # the version committed by the ingest, if any
    with clock.stage("read workspace and runs"):
        meta, index = ws.load_meta(), ws.load_index()
        rows = index[index["source"] == str(target)].sort_values("row")
        if len(rows) == 0:
            raise CompError(f"{ws.root}: no {target} images prepared; pass --test NEW_DIR or "
                            f"prepare with a {target}/ folder")
        names, notes = candidate_runs(cfg, meta.fingerprint)
        opened = {n: open_run(cfg.checkpoints, n, fingerprint=meta.fingerprint,
                              pixels=meta.pixels) for n in names}
    # 1-3. chosen out-of-fold, nested (cached for phase 2)
    decision, folder = load_decision(cfg, ws, meta, index, [r for r, _ in opened.values()],
                                     clock=clock)
    notes += _recorded("which rule read the runs (comp inspect and comp predict use it)",
                       lambda: remember([opened[n][0] for n in decision.runs], folder,
                                        cfg.checkpoints))
    with clock.stage(f"predict {target}"):
        prob, labels = predict_rule(decision, folder, cfg.checkpoints,
                                    ws.load_store(str(target)), ws=ws)
    with clock.stage("leaks and CSV"):
        ids = rows["id"].astype(str).tolist()  # 4. leaks: model, copies, or both
        labels, record, line = _leaks(cfg, ws, index, decision, folder, str(target), ids,
                                      prob, labels)
        notes.append(line)
        frame, sample_path = _frame(cfg, meta, target, ids, labels)  # 5. validate and write
        manifest = submission.Manifest(
            csv="", created=datetime.now().isoformat(), target=str(target), images=len(ids),
            runs=_runs_used([opened[n][1] for n in decision.runs]), tta=decision.tta,
            decision=decision,
            leaks=record,
            predicted_counts={c: int(n) for c, n in zip(meta.classes, np.bincount(
                labels, minlength=len(meta.classes)).tolist(), strict=True)},
            sample_submission=str(sample_path) if sample_path else None,
            data_fingerprint=meta.fingerprint, workspace=str(ws.root),
            command=" ".join(sys.argv), seconds=round(clock.total(), 2))
        manifest = submission.write(frame, manifest, cfg.submissions,
                                    submission.submission_stem(decision.runs))
        notes += _recorded("the scores and the submission in the runs' folders (comp runs "
                           "shows them)", lambda: _record(decision, manifest, [
                               run_dir for run_dir, _ in opened.values()]))
    return Submitted(manifest, decision, clock, notes)


def _recorded(what: str, write: Callable[[], None]) -> list[str]:
    """Bookkeeping in the run folders, which a submission does not need: a folder that
    cannot be written (read-only, a file in the way) is a note, not a failed submit."""
    try:
        write()
    except OSError as exc:
        return [f"not recorded: {what}; {exc.filename or 'a run folder'}: "
                f"{exc.strerror or exc}"]
    return []


def _record(decision: Decision, manifest: submission.Manifest, considered: list[RunDir]
            ) -> None:
    """What `comp runs` shows: each considered run's own scores, and the submission in the
    folder of each run the rule read."""
    candidates = [asdict(c) for c in decision.candidates]
    scored_on = "out-of-fold" if decision.cross_fitted else "holdout"
    for run_dir in considered:
        submission.record_scores(run_dir, candidates=candidates, scored_on=scored_on,
                                 images=decision.images,
                                 headline=decision.oof_balanced_accuracy,
                                 rule=f"{decision.candidate} ({decision.rule})",
                                 runs=decision.considered)
    made = submission.Submission(name=Path(manifest.csv).stem, created=manifest.created,
                                 target=manifest.target,
                                 oof_balanced_accuracy=decision.oof_balanced_accuracy)
    for run_dir in considered:
        if run_dir.name in decision.runs:
            submission.record_submission(run_dir, made)
