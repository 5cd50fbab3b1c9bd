"""One frozen dataclass per command; defaults from the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from comp.workspace import DEFAULT_WORKSPACE

__all__ = ["DEFAULT_WORKSPACE"]

# Candidate search radius and pixel check, chosen by measurement (BENCHMARKS.md, "Duplicates").
DEFAULT_MAX_DISTANCE = 4
DEFAULT_PIXEL_THRESHOLD = 5.0
DEFAULT_EPOCHS = 100  # the report's budget


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
    fit: str = "crop"  # how non-matching aspect ratios become --size: crop or stretch
    max_distance: int = DEFAULT_MAX_DISTANCE
    pixel_threshold: float = DEFAULT_PIXEL_THRESHOLD
    conflicts: str = "drop"
    duplicates: str = "keep-one"
    split: tuple[float, float, float] = (0.595, 0.105, 0.30)
    seed: int = 42
    groups: str | None = None  # FILE:COLUMN, e.g. meta.csv:celeba_identity
    skip_bad: bool = False
    workers: int | None = None
    on_size_mismatch: str = "fail"  # val/test images of another size: fail or resize


@dataclass(frozen=True)
class TrainConfig:
    workspace: Path = DEFAULT_WORKSPACE
    model: str = "b3"
    epochs: int | None = None  # None: DEFAULT_EPOCHS (or, on resume, the run's own budget)
    batch_size: int = 124
    learning_rate: float | None = None  # None: the model's default (1e-4 for b3, 1e-3 otherwise)
    plateau_factor: float = 0.1
    plateau_patience: int = 12
    augment: bool | None = None  # None: the model's default (on for b3)
    weights: str | None = "imagenet"  # tl*: imagenet (from the Keras cache), a file, or none
    seed: int = 42
    tpu: str | None = None  # None: no TPU; "" or "local": the local TPU; else its name
    checkpoints: Path = Path("checkpoints")
    run_name: str | None = None
    resume: str | None = None
    max_images: int | None = None  # cap the training split (quick experiments)
    verbose: bool = True


@dataclass(frozen=True)
class SubmitConfig:
    workspace: Path = DEFAULT_WORKSPACE
    runs: tuple[str, ...] = ()  # empty: the best run by holdout score
    target: str = "val"  # val (phase 1) or test (phase 2)
    test: Path | None = None  # phase 2: a new test folder to ingest first
    checkpoints: Path = Path("checkpoints")
    submissions: Path = Path("submissions")
    tta: bool = False
    ensemble: bool = True
    leaks: bool = True
    folds: int = 5
    seed: int = 42
    sample_submission: Path | None = None
    id_column: str = "id"
    label_column: str = "label"
    on_size_mismatch: str = "fail"  # fail or resize
