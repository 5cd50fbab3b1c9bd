"""Run folders (`checkpoints/<run>/`): the name of every file in one, its typed record
(run.json), and listing, creating and opening runs with the data-fingerprint check."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from comp.commit import FolderLock, Staging, version_dir
from comp.errors import CompError
from comp.workspace import claim_name, read_json, write_json

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


EPOCH_FILES = frozenset({"best.keras", "last.keras", "run.json", "state.json", "history.csv",
                         "curves.png"})


@dataclass(frozen=True)
class RunDir:
    """Every file of a run folder, named in one place.

    The files of training (checkpoints, history, curves, state, record) form a versioned
    folder (`comp.commit`): each epoch commits them together, so a kill leaves the previous
    epoch whole. `version` names a folder explicitly (the staging folder of an epoch).
    Evaluation and submission caches live beside the versions, keyed by the model they
    were computed from (`model_tag`).
    """

    path: Path
    version: Path | None = None

    @property
    def dir(self) -> Path:
        return version_dir(self.path, self.version,
                           fix="this run cannot be used; train a new one with `comp train`")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best(self) -> Path:
        return self.dir / "best.keras"  # weights of the epoch with the best val score

    @property
    def last(self) -> Path:
        return self.dir / "last.keras"  # the last completed epoch (resume starts here)

    @property
    def record(self) -> Path:
        return self.dir / "run.json"

    @property
    def state(self) -> Path:
        return self.dir / "state.json"  # epoch counter and plateau counters for resume

    @property
    def history(self) -> Path:
        return self.dir / "history.csv"

    @property
    def curves(self) -> Path:
        return self.dir / "curves.png"

    @property
    def confusion(self) -> Path:
        return self.path / "confusion.png"

    @property
    def evaluation(self) -> Path:
        return self.path / "holdout.json"

    def holdout_predictions(self, tta: bool) -> Path:
        return self.path / f"holdout{'-tta' if tta else ''}.npz"

    @property
    def submit_score(self) -> Path:
        return self.path / "submit" / "score.json"  # its candidates, as the last submit scored

    @property
    def made(self) -> Path:
        return self.path / "submissions"  # <submission>.json per submission it made (beside,
        # not inside, submit/: that folder holds one sub-folder per cached rule)

    def decision_cache(self, key: str) -> Path:
        return self.path / "submit" / key

    def fold(self, k: int) -> RunDir:
        """Fold k's model of a cross-fitted run: trained without fold k's images."""
        return RunDir(self.path / f"fold-{k}")

    def fold_dirs(self) -> list[RunDir]:
        """The fold models of a cross-fitted run, by fold ([] for a one-model run)."""
        found = [p for p in self.path.glob("fold-*") if p.name[5:].isdigit()]
        return [RunDir(p) for p in sorted(found, key=lambda p: int(p.name[5:]))]

    @property
    def cross_fitted(self) -> bool:
        """One model per fold (scored out-of-fold on every labelled image), not one model."""
        return bool(self.fold_dirs())

    def members(self) -> list[RunDir]:
        """The folders whose best.keras predict for this run: its folds, or itself."""
        return self.fold_dirs() or [self]

    def unfinished(self, record: RunRecord) -> list[str]:
        """The models of the run (by its record) that have no best checkpoint yet."""
        members = [self.fold(k) for k in range(record.folds)] if record.folds else [self]
        return [m.name for m in members if not m.best.exists()]

    @property
    def engine(self) -> Path:
        """Where the run's ONNX graphs are cached (outside its versions: keyed by content)."""
        return self.path / "engine"

    def model_tag(self) -> str:
        """The best checkpoints' content hash: caches computed from other best models (the
        run trained on) are recomputed; a copied run folder keeps its caches."""
        digest = hashlib.sha256()
        for member in self.members():
            with member.best.open("rb") as fh:  # 10 ms for b3's 8 MB
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        return digest.hexdigest()[:16]

    def load_record(self) -> RunRecord:
        data = read_json(self.record, what="run record",
                         fix="this run cannot be used; train a new one with `comp train`")
        return RunRecord.from_json(data)

    def save_record(self, record: RunRecord) -> None:
        """Commit a version whose record is `record` (the other files stay as they are).
        The caller holds the run's lock (`lock()`)."""
        with Staging(self.path, locked=True) as stage:
            stage.link_current(skip=frozenset({"run.json"}))
            write_json(RunDir(self.path, version=stage.dir).record, record.to_json())
            stage.commit()

    def lock(self) -> FolderLock:
        return FolderLock(self.path, busy=f"run {self.name!r} is being trained by another "
                          "process; wait for it to finish")


@dataclass(frozen=True)
class RunRecord:
    """run.json: what was trained, on which data, how far it got."""

    run: str
    model: str
    classes: list[str]
    input_shape: list[int]
    fingerprint: str  # of the workspace data it was trained on
    workspace: str
    learning_rate: float
    augment: bool
    params: int
    trainable_params: int
    images_train: int
    images_val: int
    created: str
    config: dict[str, Any]
    hardware: str = ""
    precision: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    status: str = "created"  # created, running, interrupted, finished
    epochs_done: int = 0
    best_epoch: int = 0
    best_val_balanced_accuracy: float | None = None  # fold runs: the mean over the folds
    seconds_per_epoch: list[float] = field(default_factory=list)
    folds: int = 0  # cross-fitted: one model per fold in fold-<k>/; 0: one model
    folds_done: int = 0
    pixels: str = ""  # how the workspace stored the pixels it trained on (`Meta.pixels`)
    # a feature model's int8 extractor (`comp.train.features.int8_tag`); "": float32, as
    # for every run recorded before it was kept
    feature_int8: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise CompError(f"run record {data.get('run', '?')!r} is damaged ({exc}); train "
                            "a new run with `comp train`") from None


def check_run_name(name: str) -> str:
    """A run name must be a plain folder name (no path, no leading dot)."""
    if not PLAIN_NAME.fullmatch(name):
        raise CompError(f"run name {name!r} is not a plain name; use letters, digits and "
                        "._+- only, starting with a letter or digit (e.g. b3-long)")
    return name


def list_runs(checkpoints: Path) -> list[str]:
    """Names of the run folders under `checkpoints`."""
    if not checkpoints.is_dir():
        return []
    return sorted(p.name for p in checkpoints.iterdir()
                  if p.is_dir() and RunDir(p).record.exists())


def new_run(checkpoints: Path, name: str) -> RunDir:
    """A fresh run folder; a taken name gets -2, -3, ... (nothing is overwritten)."""
    return RunDir(claim_name(checkpoints, check_run_name(name), "", Path.mkdir))


def _runs_here(checkpoints: Path) -> str:
    return ", ".join(list_runs(checkpoints)) or "none"


def other_data(name: str, record: RunRecord, *, fingerprint: str, pixels: str) -> str:
    """The line refusing run `name` on a workspace of other data, naming both sides."""
    def side(key: str, how: str) -> str:
        return f"fingerprint {key}" + (f", images {how}" if how else "")

    shape = record.input_shape
    trained = record.pixels or (f"{shape[0]}x{shape[1]}, {shape[2]} channels"
                                if len(shape) == 3 else "")
    return (f"run {name!r} was trained on other data ({side(record.fingerprint, trained)}; "
            f"this workspace: {side(fingerprint, pixels)}); use a run trained on this "
            "workspace, or pass the --workspace it was trained on")


def open_run(checkpoints: Path, name: str, *, fingerprint: str | None, pixels: str = ""
             ) -> tuple[RunDir, RunRecord]:
    """A finished-enough run (every model of it has best.keras) and its record, checked to
    belong to the workspace whose data fingerprint is given (None: no check; `pixels`, the
    workspace's `Meta.pixels`, only words the refusal)."""
    check_run_name(name)
    run_dir = RunDir(checkpoints / name)
    if not run_dir.record.exists():
        raise CompError(f"run {name!r} not found in {checkpoints} (runs: "
                        f"{_runs_here(checkpoints)}); train one with `comp train` or pass "
                        "--checkpoints")
    record = run_dir.load_record()
    missing = run_dir.unfinished(record)
    if missing:
        raise CompError(f"run {name!r} has no best checkpoint yet ({', '.join(missing)}); "
                        f"finish it with `comp train --resume {name}`")
    if fingerprint is not None and record.fingerprint != fingerprint:
        raise CompError(other_data(name, record, fingerprint=fingerprint, pixels=pixels))
    return run_dir, record


def runs_for(checkpoints: Path, fingerprint: str) -> list[str]:
    """Runs with a best checkpoint, trained on the data with this fingerprint."""
    out = []
    for name in list_runs(checkpoints):
        run_dir = RunDir(checkpoints / name)
        try:
            record = run_dir.load_record()
        except CompError:
            continue  # a damaged run is not a candidate; naming it with --run says why
        if record.fingerprint == fingerprint and not run_dir.unfinished(record):
            out.append(name)
    return out
