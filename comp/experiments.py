"""`comp runs`: the table of every experiment of a workspace, one row per run (what it was,
its out-of-fold score as `comp submit` reported it, its wall time, the submissions made from
it and the leaderboard scores given to them).

`comp submit` writes what the table reads (`submission.record_scores`, `record_submission`):
each run it considered gets `submit/score.json` (its own candidates' out-of-fold scores), each
run the submitted rule read gets `submissions/<submission>.json`; `comp runs --lb SUBMISSION
SCORE` keeps leaderboard scores in `<submissions>/leaderboard.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from comp.commit import FolderLock
from comp.config import TrainConfig
from comp.errors import CompError
from comp.runs import RunDir, RunRecord, list_runs
from comp.submit.evaluate import Evaluation
from comp.submit.submission import Submission
from comp.workspace import Workspace, read_json, write_json

LEADERBOARD = "leaderboard.json"  # in the submissions folder: stem -> score
NOT_OPTIONS = frozenset({"workspace", "checkpoints", "run_name", "resume", "progress", "epochs",
                         "tpu_name", "given"})  # where and how long, not what was trained
SORTS = ("created", "name", "oof", "lb", "time")


@dataclass(frozen=True)
class RunRow:
    """One row of `comp runs`."""

    run: str
    model: str
    folds: int  # 0: one model on the train/val split
    epochs: int  # epochs done (the fewest of the fold models)
    status: str
    options: dict[str, Any]  # the training options that differ from the defaults
    oof: float | None  # submit's nested headline: the rule chosen without each outer fold
    oof_by: str  # which rule, on which images, and the other runs it was chosen among
    oof_with: list[str]  # the other runs of the submit the headline comes from (none: alone)
    best_own: float | None  # the best of the run's own candidates, selected on itself
    best_own_by: str  # which candidate, and on which images
    seconds: float  # training wall time, every fold model together
    created: str
    submissions: list[Submission] = field(default_factory=list)

    @property
    def best_lb(self) -> float | None:
        scores = [s.leaderboard for s in self.submissions if s.leaderboard is not None]
        return max(scores) if scores else None


# -- leaderboard scores ----------------------------------------------------------------------

def set_leaderboard(submissions: Path, name: str, score: float) -> str:
    """Keep the leaderboard score of submission `name` (its CSV's file name, stem or path);
    returns the stem it was stored under."""
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise CompError(f"--lb: the score must be a number from 0 to 1. Received: {score}")
    stem = Path(name).name.removesuffix(".csv")
    if not ((submissions / f"{stem}.json").exists() and (submissions / f"{stem}.csv").exists()):
        known = sorted(p.stem for p in submissions.glob("*.csv"))[-3:]
        raise CompError(f"--lb: no submission {stem!r} in {submissions} (latest: "
                        f"{', '.join(known) or 'none'}); pass a CSV's name, or --submissions")
    with FolderLock(submissions, busy=f"{submissions}: another `comp runs --lb` is writing; "
                    "run it again"):
        scores = leaderboard(submissions)
        scores[stem] = score
        write_json(submissions / LEADERBOARD, scores)
    return stem


def leaderboard(submissions: Path) -> dict[str, float]:
    path = submissions / LEADERBOARD
    if not path.exists():
        return {}
    fix = "delete it and give the scores again with `comp runs --lb`"
    data = read_json(path, what="leaderboard scores", fix=fix)
    if not isinstance(data, dict):
        raise CompError(f"{path}: not a table of submission scores; {fix}")
    scores = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and 0.0 <= value <= 1.0):
            raise CompError(f"{path}: the score of {name!r} is {value!r}, not a number from 0 "
                            f"to 1; {fix}")
        scores[str(name)] = float(value)
    return scores


# -- the table ---------------------------------------------------------------------------------

def options_changed(record: RunRecord) -> dict[str, Any]:
    """The training options of a run that differ from `comp train`'s defaults."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    out = {}
    for name, value in record.config.items():
        if name in NOT_OPTIONS or name not in defaults or name == "model":
            continue
        default = defaults[name]
        default = str(default) if default is not None and not isinstance(
            default, bool | int | float | str) else default
        if value != default:
            out[name] = value
    return out


def _saved_scores(run_dir: RunDir) -> dict[str, Any]:
    try:
        saved = json.loads(run_dir.submit_score.read_text())
    except (OSError, ValueError):
        return {}  # never submitted, or an unreadable file
    return saved if isinstance(saved, dict) else {}


def _headline(run_dir: RunDir, saved: dict[str, Any]
              ) -> tuple[float | None, str, list[str]]:
    """Submit's nested headline for the run alone, else for the latest submit it was one of
    several runs in (said so, with those runs); else comp evaluate's score (threshold tuned
    out-of-fold)."""
    headlines = saved.get("headlines")
    if isinstance(headlines, dict) and headlines:
        key = run_dir.name if run_dir.name in headlines else list(headlines)[-1]
        try:
            entry = headlines[key]
            score, runs = float(entry["headline"]), [str(r) for r in entry["runs"]]
            others = [r for r in runs if r != run_dir.name]
            with_others = f"; with {', '.join(others)}" if others else ""
            return score, (f"{entry['rule']}, nested {saved.get('scored_on', 'out-of-fold')}"
                           f"{with_others}"), others
        except (KeyError, TypeError, ValueError):
            pass  # an edited file: as if never submitted
    evaluation = Evaluation.load(run_dir.evaluation)
    if evaluation is not None:
        return evaluation.balanced_accuracy, (f"comp evaluate, threshold tuned out-of-fold on "
                                              f"the {evaluation.scored_on} images"), []
    return None, "not scored yet: comp submit (or comp evaluate) scores it", []


def _best_own(saved: dict[str, Any]) -> tuple[float | None, str]:
    try:
        best = max(saved["candidates"], key=lambda c: float(c["balanced_accuracy"]))
        return float(best["balanced_accuracy"]), f"{best['name']}, {saved['scored_on']}"
    except (KeyError, TypeError, ValueError):
        return None, "not submitted yet"


def _seconds(run_dir: RunDir, record: RunRecord) -> float:
    if not record.folds:
        return float(sum(record.seconds_per_epoch))
    total = 0.0
    for member in run_dir.fold_dirs():
        try:
            total += sum(member.load_record().seconds_per_epoch)
        except CompError:
            continue  # a damaged fold record: its time is unknown
    return total


def _submissions(run_dir: RunDir, scores: dict[str, float]) -> list[Submission]:
    out = []
    for path in sorted(run_dir.made.glob("*.json")):
        try:
            made = Submission(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        out.append(Submission(**{**asdict(made), "leaderboard": scores.get(made.name)}))
    return out


def table(workspace: Path, checkpoints: Path, submissions: Path, *, sort: str = "created"
          ) -> tuple[list[RunRow], list[str]]:
    """(a row per run trained on this workspace's data, the names of the other runs)."""
    if sort not in SORTS:
        raise CompError(f"--sort must be one of {', '.join(SORTS)}. Received: {sort!r}")
    meta = Workspace(workspace).load_meta()
    scores = leaderboard(submissions) if submissions.is_dir() else {}
    rows, others = [], []
    for name in list_runs(checkpoints):
        run_dir = RunDir(checkpoints / name)
        try:
            record = run_dir.load_record()
        except CompError:
            others.append(f"{name} (damaged run.json)")
            continue
        if record.fingerprint != meta.fingerprint:
            others.append(name)
            continue
        saved = _saved_scores(run_dir)
        (oof, by, with_runs), (own, own_by) = _headline(run_dir, saved), _best_own(saved)
        rows.append(RunRow(run=name, model=record.model, folds=record.folds,
                           epochs=record.epochs_done, status=record.status,
                           options=options_changed(record), oof=oof, oof_by=by,
                           oof_with=with_runs,
                           best_own=own, best_own_by=own_by,
                           seconds=round(_seconds(run_dir, record), 1), created=record.created,
                           submissions=_submissions(run_dir, scores)))
    key = {"created": lambda r: r.created, "name": lambda r: r.run,
           "oof": lambda r: -(r.oof if r.oof is not None else -1.0),
           "lb": lambda r: -(r.best_lb if r.best_lb is not None else -1.0),
           "time": lambda r: r.seconds}[sort]
    return sorted(rows, key=key), others


def as_lines(rows: list[RunRow], others: list[str]) -> list[str]:
    """The table as a person reads it (markdown, one row per run)."""
    out = ["| run | model | folds | epochs | out-of-fold (nested) | best own candidate "
           "(self-selected) | leaderboard | minutes | options | submissions |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        oof = f"{r.oof:.4f}" if r.oof is not None else "-"
        if r.oof is not None and r.oof_with:
            oof += " (with other runs)"
        own = f"{r.best_own:.4f}" if r.best_own is not None else "-"
        lb = f"{r.best_lb:.4f}" if r.best_lb is not None else "-"
        options = ", ".join(f"{k}={v}" for k, v in r.options.items()) or "defaults"
        made = ", ".join(s.name + (f" ({s.leaderboard:.4f})" if s.leaderboard is not None
                                   else "") for s in r.submissions) or "-"
        status = "" if r.status == "finished" else f" ({r.status})"
        out.append(f"| {r.run}{status} | {r.model} | {r.folds or 1} | {r.epochs} | {oof} | "
                   f"{own} | {lb} | {r.seconds / 60:.1f} | {options} | {made} |")
    if not rows:
        out.append("| (no run trained on this workspace yet: comp train) ||||||||||")
    if any(r.oof is not None for r in rows):
        out.append("out-of-fold (nested): comp submit's headline, the rule chosen without "
                   "each outer fold and scored on it (the run alone; else the latest submit "
                   "it was in, with other runs); best own candidate: the best of the run's "
                   "own candidates scored on the same images, selected on itself and so "
                   "optimistic (a one-model run's on its holdout split); leaderboard: the best "
                   "score given with --lb")
    if others:
        out.append(f"not shown: {len(others)} run(s) of other data ({', '.join(others[:5])})")
    return out
