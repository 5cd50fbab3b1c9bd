"""`comp train`: one run, from a prepared workspace to a run folder, and its resume.

The training loop, step by step:
1. read the workspace (store, splits, classes) and pick the hardware and precision;
2. build (or, on resume, load) the model inside the strategy's scope and compile it;
3. stream batches from the uint8 store, shuffled each epoch, augmented on the fly;
4. after every epoch: history.csv, curves.png, last.keras + state.json, best.keras when the
   validation balanced accuracy improves, and one summary line (`callbacks.Recorder`).
"""

from __future__ import annotations

import platform
import sys
from contextlib import ExitStack
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from comp import __version__
from comp.config import DEFAULT_EPOCHS, TrainConfig, as_record
from comp.errors import CompError
from comp.native_log import load_tensorflow
from comp.runs import RunDir, RunRecord, check_run_name, list_runs, new_run
from comp.workspace import Workspace

if TYPE_CHECKING:
    from comp.train.callbacks import TrainState
    from comp.train.data import TrainData


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"comp": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _resume_config(cfg: TrainConfig) -> tuple[TrainConfig, RunDir, RunRecord]:
    """The run's own options (except where to find it and, if given, a new epoch budget)."""
    assert cfg.resume is not None
    run_dir = RunDir(cfg.checkpoints / check_run_name(cfg.resume))
    if not run_dir.state.exists() or not run_dir.last.exists() or not run_dir.record.exists():
        raise CompError(f"{run_dir.path}: no run to resume (it needs last.keras, state.json "
                        f"and run.json); runs here: "
                        f"{', '.join(list_runs(cfg.checkpoints)) or 'none'}")
    record = run_dir.load_record()
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: v for k, v in record.config.items() if k in known}
    resumed = TrainConfig(**{**saved, "workspace": Path(saved["workspace"]),
                             "checkpoints": cfg.checkpoints, "resume": cfg.resume,
                             "epochs": cfg.epochs or saved["epochs"],
                             "progress": cfg.progress})
    return resumed, run_dir, record


def _compile(cfg: TrainConfig, *, input_shape: tuple[int, int, int], num_classes: int,
             lr: float) -> Any:
    """A new model of `cfg.model`, compiled with Adam and the balanced-accuracy metric."""
    import keras

    from comp.train.models import BalancedAccuracy, build_model

    model = build_model(cfg.model, input_shape, num_classes, weights=cfg.weights)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss="binary_crossentropy" if num_classes == 2 else "categorical_crossentropy",
                  metrics=[BalancedAccuracy(num_classes)])
    return model


def _new_record(cfg: TrainConfig, run_dir: RunDir, data: TrainData, model: Any, *,
                lr: float, augment: bool) -> RunRecord:
    from comp.train.models import count_params

    total, trainable = count_params(model)
    return RunRecord(
        run=run_dir.name, model=str(cfg.model), classes=data.classes,
        input_shape=list(data.x_train.shape[1:]), fingerprint=data.fingerprint,
        workspace=str(cfg.workspace), learning_rate=lr, augment=augment, params=total,
        trainable_params=trainable, images_train=len(data.x_train),
        images_val=len(data.x_val), created=datetime.now().isoformat(), config=as_record(cfg))


def _fit(model: Any, cfg: TrainConfig, data: TrainData, *, run_dir: RunDir, record: RunRecord,
         state: TrainState, augment: bool, epochs: int) -> RunRecord:
    """Steps 3-4: the input pipeline, then fit with the per-epoch callbacks."""
    from comp.train.callbacks import Recorder, ResumablePlateau
    from comp.train.data import make_dataset

    k = len(data.classes)  # global batch: split across replicas by the strategy
    train_ds = make_dataset(data.x_train, data.y_train, num_classes=k, batch_size=cfg.batch_size,
                            shuffle=True, augment=augment, seed=cfg.seed,
                            epochs_from=state.epoch)
    val_ds = make_dataset(data.x_val, data.y_val, num_classes=k, batch_size=cfg.batch_size,
                          shuffle=False, augment=False, seed=cfg.seed)
    plateau = ResumablePlateau(saved=state.plateau, monitor="val_loss",
                               factor=cfg.plateau_factor, patience=cfg.plateau_patience,
                               verbose=0)
    recorder = Recorder(run_dir=run_dir, record=record, state=state, plateau=plateau,
                        epochs=epochs)
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=state.epoch,
                  shuffle=False,  # the dataset reshuffles itself each epoch
                  steps_per_epoch=-(-len(data.x_train) // cfg.batch_size),
                  callbacks=[plateau, recorder],
                  verbose=1 if (cfg.progress and sys.stdout.isatty()) else 0)
    except KeyboardInterrupt:
        run_dir.save_record(replace(recorder.record, status="interrupted"))
        raise CompError(f"interrupted after epoch {state.epoch}; continue with "
                        f"`comp train --resume {run_dir.name}`") from None
    record = replace(recorder.record, status="finished")
    run_dir.save_record(record)
    return record


def train(cfg: TrainConfig) -> RunRecord:
    """Train (or resume) one run; returns its record (run.json). The run's lock is held
    throughout, so a second process cannot train or resume the same run at the same time."""
    with ExitStack() as hold:
        return _train(cfg, hold)


def _train(cfg: TrainConfig, hold: ExitStack) -> RunRecord:
    load_tensorflow()
    import keras

    from comp.train.callbacks import TrainState, load_checkpoint, restore_rng_states
    from comp.train.data import load_training_data
    from comp.train.models import DEFAULTS
    from comp.train.strategy import choose_strategy

    # 1. data and hardware
    resumed = _resume_config(cfg) if cfg.resume else None
    if resumed is not None:
        cfg = resumed[0]
        hold.enter_context(resumed[1].lock())
    elif cfg.run_name is not None:
        check_run_name(cfg.run_name)
    data = load_training_data(Workspace(cfg.workspace), max_images=cfg.max_images,
                              seed=cfg.seed)
    if resumed is not None and resumed[2].fingerprint != data.fingerprint:
        raise CompError(f"run {cfg.resume} was trained on other data (fingerprint "
                        f"{resumed[2].fingerprint} vs the workspace's {data.fingerprint}); "
                        "resume it against the workspace it started from")
    epochs = cfg.epochs or DEFAULT_EPOCHS
    state = TrainState.load(resumed[1]) if resumed is not None else TrainState()
    if state.epoch >= epochs:
        raise CompError(f"run {cfg.resume} already has {state.epoch} epochs; pass --epochs N "
                        f"with N > {state.epoch} to train further")
    keras.utils.set_random_seed(cfg.seed)
    hw = choose_strategy(cfg.tpu)
    keras.mixed_precision.set_global_policy(hw.policy)
    defaults = DEFAULTS[cfg.model]
    lr = cfg.learning_rate if cfg.learning_rate is not None else defaults.learning_rate
    augment = cfg.augment if cfg.augment is not None else defaults.augment
    with hw.strategy.scope():  # 2. model, inside the strategy's scope
        if resumed is not None:
            model = load_checkpoint(resumed[1].last)
            restore_rng_states(model, state.rng)
        else:
            h, w, channels = data.x_train.shape[1:]
            model = _compile(cfg, input_shape=(h, w, channels), num_classes=len(data.classes),
                             lr=lr)
    if resumed is not None:
        run_dir, record = resumed[1], resumed[1].load_record()
    else:
        run_dir = new_run(cfg.checkpoints, cfg.run_name or
                          f"{cfg.model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        hold.enter_context(run_dir.lock())
        record = _new_record(cfg, run_dir, data, model, lr=lr, augment=augment)
    record = replace(record, hardware=hw.description, precision=hw.policy,
                     versions=_versions(), command=" ".join(sys.argv))
    run_dir.save_record(record)
    print(f"run {run_dir.name}: {cfg.model} on {hw.description}, {hw.policy}; "
          f"{len(data.x_train)} train / {len(data.x_val)} val images; epochs "
          f"{state.epoch + 1}..{epochs}", flush=True)
    return _fit(model, cfg, data, run_dir=run_dir, record=record, state=state, augment=augment,
                epochs=epochs)
