"""One frozen dataclass per command, and every default (the choices: `comp.choices`).

This is the single source of defaults: the CLI reads its option defaults from these classes,
and each class checks its own values when it is built (`__post_init__`), so the Python API and
the command line refuse the same bad options with the same one-line message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from comp.choices import (
    Balance,
    Conflicts,
    Duplicates,
    Fit,
    Init,
    Leaks,
    Model,
    NoFace,
    RankBy,
    Schedule,
    SizeMismatch,
    Target,
    Tta,
)
from comp.errors import CompError
from comp.workspace import DEFAULT_WORKSPACE

__all__ = [
    "DEFAULT_WORKSPACE",
    "Balance",
    "Conflicts",
    "Duplicates",
    "Fit",
    "Init",
    "Leaks",
    "Model",
    "NoFace",
    "RankBy",
    "Schedule",
    "SizeMismatch",
    "Target",
    "Tta",
]

DEFAULT_CHECKPOINTS = Path("checkpoints")
DEFAULT_SUBMISSIONS = Path("submissions")
# Candidate search radius and pixel check, chosen by measurement (BENCHMARKS.md, "Duplicates").
DEFAULT_MAX_DISTANCE = 4
DEFAULT_PIXEL_THRESHOLD = 5.0
DEFAULT_SPLIT = (0.595, 0.105, 0.30)  # the report's train / val / holdout
DEFAULT_SEED = 42
DEFAULT_EPOCHS = 100  # the report's budget
DEFAULT_BATCH_SIZE = 124  # the report's batch
DEFAULT_PLATEAU_FACTOR = 0.1
DEFAULT_PLATEAU_PATIENCE = 12
MAX_INPUT_SCALE = 8  # a pretrained base may see the stored image enlarged up to this
MAX_TOP = 50  # images per row of inspect's montages
MIN_SIDE = 16  # pixels: the smallest image side comp stores or reads (hash, pixel check, models)
DEMO_TRAIN, DEMO_EPOCHS = 4_000, 8  # `comp demo`: about 3 minutes on 2 cores, end to end
DEFAULT_FOLDS = 5  # K of prepare's folds; holdout folds of the threshold and the stacker


def _choice(kind: type[StrEnum], value: Any, option: str) -> Any:
    """`value` as a member of `kind`, or one line naming the option and its choices."""
    try:
        return kind(value.lower() if isinstance(value, str) else value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise CompError(f"{option} must be one of {choices}. Received: {value!r}") from None


def _at_least(value: float | None, low: float, option: str) -> None:
    if value is not None and not (isinstance(value, int | float) and value >= low):
        raise CompError(f"{option} must be at least {low}. Received: {value!r}")


def _positive(value: float | None, option: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise CompError(f"{option} must be a positive number. Received: {value!r}")


def _coerce(obj: Any, option_kinds: dict[str, tuple[type[StrEnum], str]]) -> None:
    """Turn the string values of a frozen dataclass's choice fields into their enums."""
    for name, (kind, option) in option_kinds.items():
        object.__setattr__(obj, name, _choice(kind, getattr(obj, name), option))


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'56x56' or '56' -> (56, 56)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < MIN_SIDE:
        raise CompError(f"--size must look like 56x56 (height x width, at least {MIN_SIDE}). "
                        f"Received: {text!r}")
    return values[0], values[1]


OPTION_OF = {"learning_rate": "--lr", "run_name": "--name", "workspace": "--workspace"}


def parse_duration(text: str | None, option: str) -> float | None:
    """'90', '90s', '45m' or '2h' -> seconds (None stays None)."""
    if text is None:
        return None
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    seconds = (float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]
               if found else 0.0)
    if seconds <= 0:
        raise CompError(f"{option} must be a positive duration: seconds, or with s, m or h "
                        f"(90, 45m, 2h). Received: {text!r}")
    return seconds


def option(field_name: str) -> str:
    """The command-line option that sets a config field (`learning_rate` -> `--lr`)."""
    return OPTION_OF.get(field_name, "--" + field_name.replace("_", "-"))


def as_record(cfg: Any) -> dict[str, Any]:
    """A config as JSON-ready values (paths and enums as strings, tuples as lists)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, Path | StrEnum):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, frozenset):
            value = sorted(value)
        out[f.name] = value
    return out


@dataclass(frozen=True)
class PrepareConfig:
    challenge: Path | None = None  # folder with train/, labels CSV, val/, test/
    workspace: Path = DEFAULT_WORKSPACE
    train: Path | None = None  # folder of training images (default: <challenge>/train or images)
    labels: Path | None = None  # CSV (default: <challenge>/train.csv, labels.csv...)
    val: Path | None = None
    test: Path | None = None
    id_column: str = "id"
    label_column: str = "label"
    classes: tuple[str, ...] | None = None
    size: tuple[int, int] | None = None
    gray: bool = False
    fit: Fit = Fit.CROP
    max_distance: int = DEFAULT_MAX_DISTANCE
    pixel_threshold: float = DEFAULT_PIXEL_THRESHOLD
    conflicts: Conflicts = Conflicts.DROP
    duplicates: Duplicates = Duplicates.KEEP_ONE
    split: tuple[float, float, float] = DEFAULT_SPLIT
    folds: int = DEFAULT_FOLDS  # K folds over every kept labelled image (cross-fitting)
    seed: int = DEFAULT_SEED
    groups: str | None = None  # FILE:COLUMN, e.g. meta.csv:celeba_identity
    skip_bad: bool = False
    exclude: Path | None = None  # CSV with an id column: training ids to drop (audit.csv)
    relabel: Path | None = None  # CSV id,label: new labels for those training ids
    workers: int | None = None
    on_size_mismatch: SizeMismatch = SizeMismatch.FAIL
    no_face: NoFace = NoFace.KEEP  # with fit "face"

    def __post_init__(self) -> None:
        _coerce(self, {"fit": (Fit, "--fit"), "conflicts": (Conflicts, "--conflicts"),
                       "duplicates": (Duplicates, "--duplicates"),
                       "on_size_mismatch": (SizeMismatch, "--on-size-mismatch"),
                       "no_face": (NoFace, "--no-face")})
        _at_least(self.max_distance, 0, "--max-distance")
        _at_least(self.workers, 1, "--workers")
        _at_least(self.folds, 2, "--folds")
        if not (math.isfinite(self.pixel_threshold) and self.pixel_threshold >= 0):
            raise CompError(f"--pixel-threshold must be a number from 0 to 255. Received: "
                            f"{self.pixel_threshold!r}")
        if self.max_distance > 16:
            raise CompError(f"--max-distance must be at most 16 (of 64 hash bits; beyond that "
                            f"nearly every pair is a candidate). Received: {self.max_distance}")
        shares = self.split
        if (len(shares) != 3 or not all(math.isfinite(s) and s >= 0 for s in shares)
                or not math.isclose(sum(shares), 1.0) or shares[0] == 0):
            raise CompError(f"--split must be three fractions >= 0 that add up to 1, with a "
                            f"training share above 0, like 0.595,0.105,0.3. Received: "
                            f"{','.join(map(str, shares))}")


@dataclass(frozen=True)
class TrainConfig:
    workspace: Path = DEFAULT_WORKSPACE
    model: Model = Model.RES  # measured ahead of b3 on ../shared/data (BENCHMARKS.md)
    epochs: int | None = None  # None: DEFAULT_EPOCHS (or, on resume, the run's own budget)
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float | None = None  # None: the model's (3e-3 res; 1e-4 b3, tl2, tl3; else 1e-3)
    plateau_factor: float = DEFAULT_PLATEAU_FACTOR
    plateau_patience: int = DEFAULT_PLATEAU_PATIENCE
    augment: bool | None = None  # None: the model's default (on for b3 and res)
    weights: str | None = "imagenet"  # tl*: imagenet (from the Keras cache), a file, or none
    seed: int = DEFAULT_SEED
    tpu: bool = False  # a TPU: this TPU VM's, else TPU_NAME / Colab's (strategy.connect_tpu)
    tpu_name: str | None = None  # a named TPU (implies tpu)
    checkpoints: Path = DEFAULT_CHECKPOINTS
    run_name: str | None = None
    resume: str | None = None
    max_images: int | None = None  # cap the training split (quick experiments)
    progress: bool = True  # Keras progress bar (on a terminal)
    folds: int | None = None  # None: one model per prepared fold; 1: the train/val split
    schedule: Schedule | None = None  # None: the model's default
    label_smoothing: float | None = None  # None: the model's default (0.1 for res, else 0)
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha); 0: off
    balance: Balance = Balance.NONE
    l1: float = 0.0  # L1 penalty on every convolution and dense kernel
    l2: float = 0.0  # L2 penalty on every convolution and dense kernel
    init: Init | None = None  # None: each model's own (res: He; the report's: Glorot)
    dropout: float | None = None  # None: each model's own (b2, b3: 0.3; res: 0.2; else none)
    width: float = 1.0  # filters and hidden units x this (b1-b3, res)
    input_scale: float = 1.0  # the network sees the stored images resized by this
    augment_strength: float = 1.0  # rotation (10 degrees) and zoom (10 %) ranges x this
    warmup_epochs: int | None = None  # a backbone's frozen first epochs (None: the model's own)
    time_limit: float | None = None  # seconds: stop at the first epoch's end past them
    given: frozenset[str] = frozenset()  # the fields typed on the command line (checked)

    def __post_init__(self) -> None:
        _coerce(self, {"model": (Model, "--model"), "balance": (Balance, "--balance")})
        if self.init is not None:
            _coerce(self, {"init": (Init, "--init")})
        _at_least(self.l1, 0, "--l1")
        if self.dropout is not None and not (0 <= self.dropout < 1):
            raise CompError(f"--dropout must be from 0 to below 1. Received: {self.dropout!r}")
        if not (math.isfinite(self.width) and 0.125 <= self.width <= 8):
            raise CompError(f"--width must be from 0.125 to 8 (a multiplier on the filters "
                            f"and hidden units). Received: {self.width!r}")
        if not (math.isfinite(self.augment_strength) and 0 <= self.augment_strength <= 4):
            raise CompError(f"--augment-strength must be from 0 to 4 (times the rotation of "
                            f"10 degrees and zoom of 10 %). Received: {self.augment_strength!r}")
        if not (math.isfinite(self.input_scale) and 0 < self.input_scale <= MAX_INPUT_SCALE):
            raise CompError(f"--input-scale must be above 0 and at most {MAX_INPUT_SCALE} (the "
                            "stored image side times this, inside the model; above 1 for a "
                            f"pretrained base only). Received: {self.input_scale!r}")
        _at_least(self.l2, 0, "--l2")
        _at_least(self.warmup_epochs, 0, "--warmup-epochs")
        _positive(self.time_limit, "--time-limit")
        if self.schedule is not None:
            _coerce(self, {"schedule": (Schedule, "--schedule")})
        _at_least(self.folds, 1, "--folds")
        _at_least(self.mixup, 0, "--mixup")
        if self.label_smoothing is not None and not (0 <= self.label_smoothing < 0.5):
            raise CompError(f"--label-smoothing must be from 0 to below 0.5. Received: "
                            f"{self.label_smoothing!r}")
        _at_least(self.epochs, 1, "--epochs")
        _at_least(self.batch_size, 1, "--batch-size")
        _at_least(self.plateau_patience, 1, "--plateau-patience")
        _at_least(self.max_images, 1, "--max-images")
        _positive(self.learning_rate, "--lr")
        if not (0 < self.plateau_factor < 1):
            raise CompError(f"--plateau-factor must be between 0 and 1 (the learning rate is "
                            f"multiplied by it). Received: {self.plateau_factor!r}")


@dataclass(frozen=True)
class AuditConfig:
    workspace: Path = DEFAULT_WORKSPACE
    run: str | None = None  # None: the best cross-fitted run
    checkpoints: Path = DEFAULT_CHECKPOINTS
    rank_by: RankBy = RankBy.SELF_CONFIDENCE

    def __post_init__(self) -> None:
        _coerce(self, {"rank_by": (RankBy, "--rank-by")})


@dataclass(frozen=True)
class PredictConfig:
    run: str
    images: tuple[Path, ...]  # image files, or folders of them
    workspace: Path = DEFAULT_WORKSPACE
    checkpoints: Path = DEFAULT_CHECKPOINTS
    out: Path | None = None  # a CSV; None: print the table

    def __post_init__(self) -> None:
        if not self.images:
            raise CompError("pass at least one image file or folder to predict")
        if self.out is not None and self.out.suffix.lower() != ".csv":
            raise CompError(f"--out must name a .csv file. Received: {self.out}")


@dataclass(frozen=True)
class TuneConfig:
    workspace: Path = DEFAULT_WORKSPACE
    model: Model = Model.RES
    study: str = ""  # empty: the model's name
    trials: int = 20  # finished trials the study should hold (a resumed study counts its own)
    timeout: float | None = None  # seconds for this call's trials
    epochs: int = 5  # per trial
    max_images: int | None = None  # per trial (quick searches)
    startup: int = 5  # random trials before TPE, and unpruned trials before pruning
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        _coerce(self, {"model": (Model, "--model")})
        if not self.study:
            object.__setattr__(self, "study", str(self.model))
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.study):
            raise CompError(f"--study must be a plain name (letters, digits, . _ -). "
                            f"Received: {self.study!r}")
        _at_least(self.trials, 1, "--trials")
        _at_least(self.epochs, 1, "--epochs")
        _at_least(self.max_images, 1, "--max-images")
        _at_least(self.startup, 0, "--startup")
        _positive(self.timeout, "--timeout")


@dataclass(frozen=True)
class InspectConfig:
    workspace: Path = DEFAULT_WORKSPACE
    runs: tuple[str, ...] = ()  # empty: the best run by out-of-fold score; several: curves
    checkpoints: Path = DEFAULT_CHECKPOINTS
    top: int = 5  # images per montage row and saliency panel
    folds: int | None = None  # a one-model run's holdout folds (None: DEFAULT_FOLDS)
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        _at_least(self.top, 1, "--top")
        if self.top > MAX_TOP:
            raise CompError(f"--top must be at most {MAX_TOP} (images per montage row and "
                            f"saliency panel). Received: {self.top}")
        _at_least(self.folds, 2, "--folds")


@dataclass(frozen=True)
class SubmitConfig:
    workspace: Path = DEFAULT_WORKSPACE
    runs: tuple[str, ...] = ()  # empty: every run of the workspace is a candidate
    target: Target = Target.VAL
    test: Path | None = None  # phase 2: a new test folder to ingest first
    checkpoints: Path = DEFAULT_CHECKPOINTS
    submissions: Path = DEFAULT_SUBMISSIONS
    tta: Tta = Tta.AUTO
    ensemble: bool = True  # the LightGBM stacker and the level-2 stack are candidates
    leaks: Leaks = Leaks.AUTO
    folds: int | None = None  # a one-model run's holdout folds (None: DEFAULT_FOLDS)
    seed: int = DEFAULT_SEED
    sample_submission: Path | None = None
    id_column: str = "id"
    label_column: str = "label"
    on_size_mismatch: SizeMismatch = SizeMismatch.FAIL
    preset: str | None = None  # the runs: this preset's finished ones (`comp.train.preset`)

    def __post_init__(self) -> None:
        if self.preset is not None and self.runs:
            raise CompError(f"--preset {self.preset} names its runs itself; drop --run, or "
                            "drop --preset to choose the runs")
        _coerce(self, {"target": (Target, "--target"), "tta": (Tta, "--tta"),
                       "leaks": (Leaks, "--leaks"),
                       "on_size_mismatch": (SizeMismatch, "--on-size-mismatch")})
        _at_least(self.folds, 2, "--folds")
