"""Writing and validating the leaderboard CSV and its manifest (never overwriting)."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from comp.errors import CompError
from comp.faults import fault_point
from comp.metrics import balanced_accuracy
from comp.prepare.labels import check_ids
from comp.runs import RunDir
from comp.submit.rule import Decision
from comp.workspace import claim_name, fsync_file, remove_dead_temps, write_json, write_new


def read_sample(path: Path, id_column: str) -> pd.DataFrame:
    """A sample submission: its ids (as strings, in order) and columns."""
    if not path.exists():
        raise CompError(f"{path}: sample submission not found; check the path")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CompError(f"{path}: sample submission is empty; pass the organisers' sample "
                        "(a header and one row per image)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CompError(f"{path}: cannot read the sample submission as CSV "
                        f"({str(exc).splitlines()[0]}); fix or replace the file") from None
    if id_column not in frame.columns:
        raise CompError(f"{path}: no id column {id_column!r} (columns: "
                        f"{', '.join(frame.columns)}); pass --id-column")
    check_ids(path, frame[id_column].str.strip(), where=" in the sample submission",
              fix_empty="pass the organisers' sample, whole",
              fix_repeated="pass the organisers' sample, one row per image")
    return frame


def build_frame(ids: list[str], labels: list[str], sample: pd.DataFrame | None, *,
                id_column: str, label_column: str, sample_path: Path | None = None
                ) -> pd.DataFrame:
    """The submission table: the sample's ids, order and columns when given, else id,label."""
    predicted = dict(zip(ids, labels, strict=True))
    if sample is None:
        return pd.DataFrame({id_column: ids, label_column: labels})
    sample_ids = sample[id_column].tolist()
    missing = [i for i in sample_ids if i not in predicted]
    extra = sorted(set(predicted) - set(sample_ids))
    if missing or extra:
        what = (f"{len(missing)} of its ids have no image (first: {missing[0]!r})" if missing
                else f"{len(extra)} images are not in it (first: {extra[0]!r})")
        raise CompError(f"{sample_path}: sample submission does not match the target images: "
                        f"{what}; pass the sample that belongs to this target set")
    out = sample.copy()
    column = label_column if label_column in out.columns else out.columns[-1]
    out[column] = [predicted[i] for i in sample_ids]
    return out


def validate(frame: pd.DataFrame, ids: list[str], allowed: list[str], *, id_column: str,
             label_column: str) -> None:
    """Every target id exactly once, no extra ids, labels in the allowed set."""
    got = frame[id_column].astype(str)
    dup = got[got.duplicated()]
    if len(dup):
        raise CompError(f"submission has id {dup.iloc[0]!r} more than once")
    missing = set(ids) - set(got)
    extra = set(got) - set(ids)
    if missing or extra:
        raise CompError(f"submission ids differ from the target images: {len(missing)} missing, "
                        f"{len(extra)} extra")
    column = label_column if label_column in frame.columns else frame.columns[-1]
    bad = frame[~frame[column].astype(str).isin(allowed)]
    if len(bad):
        raise CompError(f"submission label {bad[column].iloc[0]!r} is not one of "
                        f"{', '.join(allowed)}")


@dataclass(frozen=True)
class LeakRecord:
    """What was done with the leaked images, and the numbers that decided it."""

    policy: str  # --leaks: auto, evidence, always, never
    applied: str  # what was done: evidence, always or never
    matched: int  # target images whose training copies agree on one original label
    changed: int  # of them, images whose class changed from the model's
    agreement: float  # the probability that an inherited label is right (with its prior)
    agreement_right: int  # labelled images whose agreeing copies gave their own label
    agreement_measured: int  # labelled images whose copies agree
    max_distance: int | None  # the copies measured: this close (None: every pair)
    expected: dict[str, float] | None  # `evidence.LeakScores`: each policy, out-of-fold


@dataclass(frozen=True)
class RunUsed:
    """A run a submission's rule read, as the manifest names it."""

    run: str
    model: str
    best_epoch: int
    best_val_balanced_accuracy: float | None  # a cross-fitted run's: the mean of its folds


@dataclass(frozen=True)
class Manifest:
    """The .json beside a submission CSV: what made it, and how it was checked."""

    csv: str
    created: str
    target: str
    images: int
    runs: list[RunUsed]  # the runs the rule read
    tta: bool
    decision: Decision  # the rule, as saved beside the runs
    leaks: LeakRecord
    predicted_counts: dict[str, int]
    sample_submission: str | None
    data_fingerprint: str
    workspace: str
    command: str
    seconds: float


def write(frame: pd.DataFrame, manifest: Manifest, folder: Path, stem: str) -> Manifest:
    """Write `<stem>.csv` and its `<stem>.json` manifest under `folder` (`-2`, `-3`, ... when
    the name is taken), never replacing an existing file. Both are written and fsynced under
    temporary names first; then the manifest's name is claimed, and the CSV is linked beside
    it last, so a kill leaves a complete CSV with its manifest, or no CSV at all (at most a
    manifest without one). Returns the manifest with the CSV's final path."""
    def claim(path: Path) -> None:  # path: <name>.json
        if path.with_suffix(".csv").exists():
            raise FileExistsError(path)  # a CSV of an earlier submission has this stem
        final = replace(manifest, csv=str(path.with_suffix(".csv")))
        write_new(path, functools.partial(_write_manifest, final))

    folder.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(folder)
    tmp = Path(tempfile.mkstemp(prefix=f".{stem}.pid{os.getpid()}.", suffix=".tmp.csv",
                                dir=folder)[1])
    try:
        frame.to_csv(tmp, index=False)
        fsync_file(tmp)
        while True:
            manifest_path = claim_name(folder, stem, ".json", claim)
            fault_point("submit:manifest-claimed")
            try:
                os.link(tmp, manifest_path.with_suffix(".csv"))
                return replace(manifest, csv=str(manifest_path.with_suffix(".csv")))
            except FileExistsError:  # another process took the CSV name meanwhile
                manifest_path.unlink()
    finally:
        tmp.unlink()


def _write_manifest(manifest: Manifest, path: Path) -> None:
    path.write_text(json.dumps(asdict(manifest), indent=2, default=str) + "\n")


@dataclass(frozen=True)
class Submission:
    """One submission made from a run (`<run>/submissions/<name>.json`), and its leaderboard
    score once given (`comp runs --lb`)."""

    name: str  # the CSV's stem
    created: str
    target: str
    oof_balanced_accuracy: float  # the rule's nested out-of-fold headline
    leaderboard: float | None = None


def record_scores(run_dir: RunDir, *, candidates: list[dict[str, Any]], scored_on: str,
                  images: int, headline: float, rule: str, runs: list[str]) -> None:
    """The run's own candidates' out-of-fold scores, as `comp submit` just printed them, and
    the nested headline of the rule chosen among `runs` (kept per set of runs considered, the
    latest last, so the run's headline alone survives a later submit with other runs)."""
    mine = [c for c in candidates
            if c["name"] == run_dir.name or c["name"].startswith(f"{run_dir.name} ")]
    headlines = _headlines(run_dir)
    key = "+".join(runs)
    headlines.pop(key, None)
    headlines[key] = {"headline": headline, "rule": rule, "runs": runs}
    write_json(run_dir.submit_score, {"candidates": mine, "scored_on": scored_on,
                                      "images": images, "headlines": headlines})


def _headlines(run_dir: RunDir) -> dict[str, Any]:
    try:
        saved = json.loads(run_dir.submit_score.read_text()).get("headlines", {})
    except (OSError, ValueError, AttributeError):
        return {}  # none yet, or a damaged file: rewritten whole
    return saved if isinstance(saved, dict) else {}


def record_submission(run_dir: RunDir, made: Submission) -> None:
    """The submission, in the folder of a run its rule read (a new file each: no race)."""
    run_dir.made.mkdir(parents=True, exist_ok=True)
    path = run_dir.made / f"{made.name}.json"
    if not path.exists():
        write_new(path, functools.partial(_write_made, made))


def _write_made(made: Submission, path: Path) -> None:
    path.write_text(json.dumps(asdict(made), indent=2))


def submission_stem(run_names: list[str]) -> str:
    """<timestamp>_<run>[+<run>...]: the name a new submission starts from."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}_{'+'.join(run_names)}"


def score_against(csv: Path, answers: Path, *, id_column: str = "id",
                  label_column: str = "label") -> float:
    """Balanced accuracy of a submission against a labelled answers CSV (demo, benchmarks)."""
    sub = pd.read_csv(csv, dtype=str, keep_default_na=False)
    truth = pd.read_csv(answers, dtype=str, keep_default_na=False)
    merged = truth.merge(sub, on=id_column, suffixes=("_true", "_pred"))
    classes = sorted(set(merged[f"{label_column}_true"]) | set(merged[f"{label_column}_pred"]))
    code = {c: i for i, c in enumerate(classes)}
    return balanced_accuracy(merged[f"{label_column}_true"].map(code).to_numpy(),
                             merged[f"{label_column}_pred"].map(code).to_numpy())
