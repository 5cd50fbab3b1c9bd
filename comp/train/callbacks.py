"""Per-epoch bookkeeping of a training run: the resumable plateau schedule, and the recorder
that writes history, curves, checkpoints, resume state and run record after every epoch
(beside the next epoch's training: `comp.train.writer`)."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from comp import pictures
from comp.commit import Staging
from comp.errors import CompError
from comp.faults import fault_point
from comp.runs import EPOCH_FILES, RunDir, RunRecord
from comp.train.writer import EpochWriter, copy_into, save_model, shadow_of
from comp.workspace import write_csv, write_json

CURVES_EVERY_S = 10.0  # curves.png is redrawn at most this often, and at a fit's last epoch


class TimeUp(Exception):
    """Raised by `Deadline` at the end of an epoch once the time limit has passed."""


class Deadline(keras.callbacks.Callback):
    """Stop training at the first epoch's end past `at` (`time.monotonic()`), after comp's
    own callbacks have recorded the epoch (list it after them)."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if time.monotonic() >= self.at:
            raise TimeUp


@dataclass
class TrainState:
    """state.json (what a resume needs) plus the history rows of the epochs done."""

    epoch: int = 0  # epochs completed
    best_score: float = -1.0  # best validation balanced accuracy so far
    best_epoch: int = 0
    plateau: dict[str, float] = field(default_factory=dict)  # wait, best, cooldown_counter
    rng: dict[str, list[int]] = field(default_factory=dict)  # random-layer states (dropout)
    history: list[dict[str, float]] = field(default_factory=list)

    def save(self, run_dir: RunDir) -> None:
        write_json(run_dir.state, {k: v for k, v in asdict(self).items() if k != "history"})

    @classmethod
    def load(cls, run_dir: RunDir) -> TrainState:
        """The state of the last completed epoch. History rows beyond it (written before a
        kill that came ahead of state.json) are dropped, so no epoch appears twice."""
        try:
            saved = json.loads(run_dir.state.read_text())
            state = cls(**{k: saved[k] for k in ("epoch", "best_score", "best_epoch",
                                                  "plateau")}, rng=saved.get("rng", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise CompError(f"{run_dir.path}: resume state is damaged ({exc}); start a new "
                            "run with `comp train`") from None
        if run_dir.history.exists():
            state.history = _history_rows(run_dir.history, state.epoch)
        return state


def _history_rows(path: Path, epochs: int) -> list[dict[str, float]]:
    """history.csv's rows of epochs 1..`epochs`, checked: one numeric row per epoch."""
    fix = ("the earlier epochs' history cannot be rebuilt: start a new run with `comp train`, "
           "or delete the file to resume without it")
    try:
        frame = pd.read_csv(path)
        epoch = pd.to_numeric(frame["epoch"], errors="raise")
    except (ValueError, KeyError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        why = f"no column {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise CompError(f"{path}: history is damaged ({why}); "
                        f"{fix}") from None
    rows = frame[epoch <= epochs]
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if list(rows["epoch"]) != list(range(1, epochs + 1)) or text:
        raise CompError(f"{path}: history is damaged (it does not hold one row per epoch "
                        f"1..{epochs}); {fix}")
    return rows.to_dict("records")


def rng_states(model: keras.Model) -> dict[str, list[int]]:
    """The state of every layer's random-number stream (dropout): not part of a saved model,
    so a resumed run would draw other dropout masks than an uninterrupted one."""
    return {layer.name: [int(v) for v in keras.ops.convert_to_numpy(
        layer.seed_generator.state)] for layer in model.layers
        if getattr(layer, "seed_generator", None) is not None}


def restore_rng_states(model: keras.Model, saved: dict[str, list[int]]) -> None:
    for layer in model.layers:
        if layer.name in saved and getattr(layer, "seed_generator", None) is not None:
            state = layer.seed_generator.state
            state.assign(keras.ops.cast(saved[layer.name], state.dtype))


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a restart (Keras resets them on train begin)."""

    def __init__(self, *, saved: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.saved = saved

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.saved:
            self.wait, self.best = int(self.saved["wait"]), float(self.saved["best"])
            self.cooldown_counter = int(self.saved["cooldown_counter"])

    def counters(self) -> dict[str, float]:
        return {"wait": int(self.wait), "best": float(self.best),
                "cooldown_counter": int(self.cooldown_counter)}


def load_checkpoint(path: Path, *, compile: bool = True) -> keras.Model:
    """A saved model, or one line saying the file is missing or damaged."""
    import comp.train.layers  # noqa: F401 (registers comp's layers and metric with Keras)

    if not path.exists():
        raise CompError(f"{path}: checkpoint not found; the run is incomplete, train a new one "
                        "with `comp train`")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for a damaged file
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CompError(f"{path}: checkpoint is damaged ({reason}); train a new run with "
                        "`comp train` (or resume from a run whose checkpoint is whole)") from None


class Recorder(keras.callbacks.Callback):
    """Per epoch: history, curves, last/best checkpoints, resume state, run record, and a line.

    An epoch's files are committed together (`comp.commit`): a kill at any point leaves the
    previous epoch's checkpoints, history, state and record, all of one epoch. They are
    written by a background thread while the next epoch trains, from a copy of the model
    taken at the epoch's end (`writer.shadow_of`; where Keras cannot copy a model, it is
    saved in the training thread, as before); the fit's last epoch is committed before
    `fit` returns. So a kill loses the epoch in training and, at worst, the one being
    written, as a kill during the save did. best.keras is a hard link to last.keras when
    the epoch improved; curves.png is redrawn every `CURVES_EVERY_S` seconds and at the
    last epoch (history.csv has every epoch).
    """

    def __init__(self, *, run_dir: RunDir, record: RunRecord, state: TrainState,
                 plateau: ResumablePlateau | None, epochs: int) -> None:
        super().__init__()
        self.run_dir, self.record, self.state = run_dir, record, state
        self.plateau, self.epochs = plateau, epochs
        self.started = time.perf_counter()
        self.writer = EpochWriter()
        self.shadow: keras.Model | None | bool = False  # False: not made yet
        self.drawn = -float("inf")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        seconds = time.perf_counter() - self.started
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        state = self.state
        state.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
                              "lr": lr, "seconds": round(seconds, 2)})
        score = logs.get("val_balanced_accuracy", float("nan"))
        improved = score > state.best_score  # NaN never wins
        if improved:
            state.best_score, state.best_epoch = float(score), epoch + 1
        state.epoch = epoch + 1
        state.plateau = self.plateau.counters() if self.plateau is not None else {}
        state.rng = rng_states(self.model)
        self.record = replace(self.record, status="running", epochs_done=epoch + 1,
                              best_epoch=state.best_epoch,
                              best_val_balanced_accuracy=state.best_score,
                              seconds_per_epoch=[h["seconds"] for h in state.history])
        last = epoch + 1 >= self.params.get("epochs", self.epochs)
        draw = last or time.monotonic() - self.drawn >= CURVES_EVERY_S
        if draw:
            self.drawn = time.monotonic()
        self.writer.wait()  # the previous epoch is committed; the shadow is free
        if self.shadow is False:
            self.shadow = shadow_of(self.model)
        if self.shadow is not None:
            copy_into(self.shadow, self.model)
        line = (f"epoch {epoch + 1:3d}/{self.epochs}  loss {logs.get('loss', 0):.4f}  "
                f"bal.acc {logs.get('balanced_accuracy', 0):.4f}  val loss "
                f"{logs.get('val_loss', 0):.4f}  val bal.acc {score:.4f}  lr {lr:.2e}  "
                f"{seconds:.1f}s")
        job = self._job(model=self.shadow or self.model, state=copy.deepcopy(state),
                        record=self.record, improved=improved, draw=draw, line=line)
        if self.shadow is None:
            job()  # the model itself: saved before it trains on
        else:
            self.writer.submit(job)
        if last:
            self.writer.wait()

    def _job(self, *, model: keras.Model, state: TrainState, record: RunRecord,
             improved: bool, draw: bool, line: str) -> Any:
        """The epoch's files, committed; then its line (printed once the epoch is safe)."""
        def write() -> None:
            with Staging(self.run_dir.path, locked=True) as stage:
                out = RunDir(self.run_dir.path, version=stage.dir)
                keep = {"best.keras"} if not improved else set()
                if not draw:
                    keep.add("curves.png")
                stage.link_current(skip=EPOCH_FILES - keep)
                frame = pd.DataFrame(state.history)
                write_csv(out.history, frame)
                if draw:
                    pictures.learning_curves(frame, out.curves, out.name)
                save_model(model, out.last)
                if improved:
                    out.best.hardlink_to(out.last)  # the same bytes, written once
                state.save(out)
                write_json(out.record, record.to_json())
                fault_point("train:epoch-staged")
                stage.commit()
            print(line, flush=True)

        return write

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the epoch being written (raising its error), then stop the thread."""
        self.writer.close()
