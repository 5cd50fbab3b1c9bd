"""The rule a submission used, typed: which candidate (runs, CNN / stacker / stack, flip or
not), which decision, and its nested out-of-fold score; saved beside the runs so that phase
2, `comp predict` and `comp inspect` apply exactly it and never refit behind the user."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from comp.errors import note
from comp.runs import RunDir
from comp.submit import stacker
from comp.submit.predict import Predictions
from comp.submit.select import Rule, Source, apply_rule
from comp.workspace import atomic_write, read_npz, write_json

DECISION_FILE = "decision.json"
OOF_FILE = "oof.npz"  # the scored rows' ids, the chosen candidate's probabilities, decisions
LAST_RULE = "last.json"  # in <run>/submit/: the folder of the last rule that read the run


@dataclass(frozen=True)
class Scored:
    """A candidate's own out-of-fold score (the best of them is selected on itself)."""

    name: str
    balanced_accuracy: float
    rule: str


@dataclass(frozen=True)
class Decision:
    """Everything phase 2 reuses, and what its headline estimates."""

    classes: list[str]
    fingerprint: str
    cross_fitted: bool  # scored on every labelled image (else a one-model run's holdout)
    folds: int  # the outer folds of the nested score
    images: int  # images scored
    considered: list[str]  # every run the choice looked at
    runs: list[str]  # the runs the chosen candidate reads
    candidate: str  # its name
    source: str  # `Source`
    tta: bool  # the flipped image averaged in
    rule: str  # `Rule`
    threshold: float | None  # Rule.THRESHOLD
    offsets: list[float] | None  # Rule.OFFSETS
    oof_balanced_accuracy: float  # the whole procedure, every choice made without the fold
    oof_accuracy: float  # the same decisions' plain accuracy
    temperature: float  # the chosen candidate's calibration (`comp.submit.evidence`)
    members: int  # models averaged on new images (a cross-fitted run's fold models)
    candidates: list[Scored]
    picked: list[str]  # per outer fold, what was chosen without it

    @property
    def parameter(self) -> float | list[float] | None:
        """The rule's fitted parameter: the threshold, the class offsets, or None."""
        return self.offsets if self.rule == Rule.OFFSETS else self.threshold

    def apply(self, preds: dict[str, Predictions], folder: Path
              ) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) probabilities of the chosen candidate on new images and the classes its
        rule gives them. `preds`: each run of `runs`, predicted with `tta`."""
        k = len(self.classes)
        if self.source == Source.CNN:
            prob = np.asarray(preds[self.runs[0]].prob, np.float64)
        elif self.source == Source.STACKER:
            prob = stacker.apply_boosters(folder, preds[self.runs[0]].parts(), num_classes=k)
        else:
            level2 = stacker.Level2.load(folder)
            parts = [preds[r].parts() for r in self.runs]
            if len({len(p) for p in parts}) != 1:
                raise ValueError("runs with different numbers of fold models")
            prob = np.mean([level2.prob(stacker.level2_features([p[m].prob for p in parts]))
                            for m in range(len(parts[0]))], axis=0)
        return prob, apply_rule(prob, Rule(self.rule), self.parameter)

    def save(self, folder: Path) -> None:
        write_json(folder / DECISION_FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path, *, fingerprint: str) -> Decision | None:
        """The saved rule, or None when absent, unreadable, out of range or fitted on other
        data (a cache: the caller fits it anew)."""
        path = folder / DECISION_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            data["candidates"] = [Scored(**c) for c in data["candidates"]]
            decision = cls(**{f.name: data[f.name] for f in fields(cls)})
            Rule(decision.rule)
            Source(decision.source)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            note(f"{path}: unreadable saved rule ({str(exc).splitlines()[0]}); fitting it again")
            return None
        if decision.fingerprint != fingerprint:
            return None  # fitted on other data: fitted anew, as any stale cache
        if not decision.valid() or not decision.files_readable(folder):
            note(f"{path}: the saved rule holds values a fitted rule cannot have, or its "
                 "model files are unreadable; fitting it again")
            return None
        return decision

    def files_readable(self, folder: Path) -> bool:
        """The stacker's boosters or the stack's level-2 model, where the rule reads them."""
        try:
            if self.source == Source.STACKER:
                stacker.load_boosters(folder)
            elif self.source == Source.STACK:
                stacker.Level2.load(folder)
        except (OSError, ValueError, KeyError, TypeError, stacker.BoosterError):
            return False
        return True

    def valid(self) -> bool:
        """Values a fitted rule can have (a hand-edited file may not)."""
        if self.rule == Rule.THRESHOLD and not (isinstance(self.threshold, float)
                                                and 0.0 <= self.threshold <= 1.0 + 1e-6):
            return False
        if self.rule == Rule.OFFSETS and (self.offsets is None
                                          or len(self.offsets) != len(self.classes)
                                          or not all(math.isfinite(o) for o in self.offsets)):
            return False
        return (bool(self.runs) and 0.0 <= self.oof_balanced_accuracy <= 1.0
                and isinstance(self.temperature, float) and self.temperature > 0)


@dataclass(frozen=True)
class Nested:
    """The nested rule on each scored row (what the leaks' out-of-fold estimate reads)."""

    y: np.ndarray  # the labels scored
    decided: np.ndarray  # the headline's decisions
    margins: np.ndarray  # (N, K) their margins (`select.rule_margins`)
    temperatures: np.ndarray  # (N,) the calibration, fitted without the row's fold


def save_oof(folder: Path, ids: np.ndarray, prob: np.ndarray, nested: Nested) -> None:
    atomic_write(folder / OOF_FILE, lambda p: np.savez(
        p.open("wb"), ids=ids.astype(str), prob=prob, decided=nested.decided, y=nested.y,
        margins=nested.margins, temperatures=nested.temperatures))


def load_nested(folder: Path) -> Nested | None:
    saved = read_npz(folder / OOF_FILE, ("y", "decided", "margins", "temperatures"))
    if saved is None or saved["margins"].shape[:1] != saved["y"].shape:
        return None
    return Nested(saved["y"], saved["decided"], saved["margins"], saved["temperatures"])


def load_oof(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(ids, probabilities, nested decisions) of the scored rows, or None: each row's
    probabilities are those of the candidate chosen without its fold, which decided it."""
    saved = read_npz(folder / OOF_FILE, ("ids", "prob", "decided"))
    return None if saved is None else (saved["ids"], saved["prob"], saved["decided"])


def remember(run_dirs: list[RunDir], folder: Path, checkpoints: Path) -> None:
    """Record `folder` as the last rule that read each of these runs."""
    relative = str(folder.relative_to(checkpoints))
    for run_dir in run_dirs:
        (run_dir.path / "submit").mkdir(exist_ok=True)
        write_json(run_dir.path / "submit" / LAST_RULE, {"folder": relative})


def last_rule(run_dir: RunDir, checkpoints: Path, *, fingerprint: str
              ) -> tuple[Decision, Path] | None:
    """The rule the last `comp submit` that read this run used, when it is still valid."""
    try:
        relative = json.loads((run_dir.path / "submit" / LAST_RULE).read_text())["folder"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    folder = checkpoints / str(relative)
    decision = Decision.load(folder, fingerprint=fingerprint)
    return None if decision is None else (decision, folder)


def describe(decision: Decision) -> list[str]:
    """The lines `comp submit` prints about the rule: the headline first, saying what it
    estimates, then the candidates (scored on themselves) and the parameters."""
    scored = ("every labelled image, each predicted by a fold model that did not train on it"
              if decision.cross_fitted else "the holdout split")
    flip = " with the flipped image averaged in" if decision.tta else ""
    lines = [
        f"out-of-fold balanced accuracy {decision.oof_balanced_accuracy:.4f} on "
        f"{decision.images:,} images ({scored}; every choice below made in {decision.folds} "
        "outer folds without the fold it scores)",
        f"rule: {decision.candidate}{flip}, {_rule_words(decision)}"]
    if decision.members > 1:
        lines.append(f"the headline estimates one fold model; the submission averages "
                     f"{decision.members} fold models, which usually scores higher on new "
                     "images")
    picks = sorted(set(decision.picked), key=decision.picked.index)
    counts = ", ".join(f"{p} x{decision.picked.count(p)}" for p in picks)
    lines.append(f"chosen without each outer fold: {counts}")
    lines.append("candidates (each one's own out-of-fold score; the best is selected on "
                 "itself, not a score to compare): " + "; ".join(
                     f"{c.name} {c.balanced_accuracy:.4f} ({c.rule})"
                     for c in decision.candidates))
    return lines


def _rule_words(decision: Decision) -> str:
    if decision.rule == Rule.THRESHOLD:
        return f"class 1 when p >= {decision.threshold:.4f} (tuned on every scored image)"
    if decision.rule == Rule.HALF:
        return "class 1 when p >= 0.5 (a tuned threshold did not beat it by its spread)"
    if decision.rule == Rule.OFFSETS:
        assert decision.offsets is not None
        return ("arg-max after class offsets "
                + ", ".join(f"{o:+.2f}" for o in decision.offsets))
    return "arg-max of the probabilities"
