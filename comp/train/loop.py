"""`comp train`: one run, from a prepared workspace to a run folder, and its resume.

A run is one model trained on the train split (`--folds 1`), or one model per prepared fold
(cross-fitting, the default): fold k's model trains on the other folds, validates on an
inner slice of them (`data.fold_rows`) and lives in `fold-<k>/`, so every labelled image
gets an out-of-fold prediction. Each model, step by step:
1. read the workspace (store, rows, classes) and pick the hardware and precision;
2. build (or, on resume, load) the model inside the strategy's scope and compile it;
3. stream batches from the uint8 store, shuffled each epoch, augmented on the fly;
4. after every epoch: history.csv, curves.png, last.keras + state.json, best.keras when the
   validation balanced accuracy improves, and one summary line (`callbacks.Recorder`).
A resume continues each model from its last completed epoch, skipping finished folds.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from comp.config import DEFAULT_EPOCHS, Balance, Schedule, TrainConfig, as_record
from comp.errors import CompError, TimeLimitReached
from comp.native_log import load_keras, native_stderr_silenced
from comp.runs import RunDir, RunRecord, check_run_name, list_runs, new_run, other_data
from comp.specs import epochs_of
from comp.train.recipe import Recipe, check_given
from comp.version import __version__
from comp.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from comp.train.callbacks import TrainState
    from comp.train.data import TrainData
    from comp.train.strategy import Hardware


def _versions() -> dict[str, str]:
    import importlib

    import keras

    backend = keras.backend.backend()
    return {"comp": __version__, backend: importlib.import_module(backend).__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _resume_config(cfg: TrainConfig) -> tuple[TrainConfig, RunDir, RunRecord]:
    """The run's own options (except where to find it, the workspace when -w names one, and,
    if given, a new epoch budget)."""
    assert cfg.resume is not None
    run_dir = RunDir(cfg.checkpoints / check_run_name(cfg.resume))
    if not run_dir.record.exists():
        raise CompError(f"{run_dir.path}: no run to resume (it needs run.json); runs here: "
                        f"{', '.join(list_runs(cfg.checkpoints)) or 'none'}")
    record = run_dir.load_record()
    if not record.folds and (not run_dir.state.exists() or not run_dir.last.exists()):
        raise CompError(f"{run_dir.path}: no run to resume (it needs last.keras, state.json "
                        f"and run.json); start a new one with `comp train`")
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: v for k, v in record.config.items() if k in known}
    workspace = (cfg.workspace if cfg.workspace != DEFAULT_WORKSPACE  # -w given: it wins
                 else Path(saved["workspace"]))
    saved.pop("given", None)
    resumed = TrainConfig(**{**saved, "workspace": workspace,
                             "checkpoints": cfg.checkpoints, "resume": cfg.resume,
                             "epochs": cfg.epochs or saved["epochs"],
                             "progress": cfg.progress, "time_limit": cfg.time_limit})
    if (Recipe.of(resumed).schedule == Schedule.COSINE and cfg.epochs is not None
            and cfg.epochs != (saved["epochs"] or DEFAULT_EPOCHS)):
        raise CompError(f"run {cfg.resume} follows a cosine schedule planned for "
                        f"{saved['epochs'] or DEFAULT_EPOCHS} epochs; resume it without "
                        "--epochs, or train a new run with the budget you want")
    return resumed, run_dir, record


def _compile(cfg: TrainConfig, recipe: Recipe, *, input_shape: tuple[int, ...],
             num_classes: int, steps_per_epoch: int, epochs: int) -> Any:
    """A new model of `cfg.model`, compiled (`compile_model`)."""
    from comp.train.models import Shape, build_model, regularise

    shape = Shape(dropout=cfg.dropout, width=cfg.width, input_scale=cfg.input_scale,
                  augment_strength=cfg.augment_strength)
    model = regularise(build_model(cfg.model, input_shape, num_classes, weights=cfg.weights,
                                   augment=recipe.augment, shape=shape),
                       l1=cfg.l1, l2=cfg.l2, init=cfg.init and str(cfg.init), seed=cfg.seed)
    return compile_model(model, recipe, num_classes=num_classes,
                         steps_per_epoch=steps_per_epoch, epochs=epochs)


def compile_model(model: Any, recipe: Recipe, *, num_classes: int, steps_per_epoch: int,
                  epochs: int, rate: float | None = None) -> Any:
    """Compile `model` with the recipe's optimizer (at `rate`, default the recipe's), schedule
    over `epochs`, loss, and the balanced-accuracy metric."""
    import keras

    from comp.train.layers import BalancedAccuracy

    lr: Any = recipe.learning_rate if rate is None else rate
    if recipe.schedule == Schedule.COSINE:  # one warm-up epoch, then cosine decay to 0
        warm = steps_per_epoch if epochs > 1 else 0
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warm else lr, decay_steps=max(steps_per_epoch * epochs - warm, 1),
            warmup_target=lr if warm else None, warmup_steps=warm)
    optimizer = (keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay)
                 if recipe.weight_decay > 0 else keras.optimizers.Adam(lr))
    smoothing = recipe.label_smoothing
    loss = (keras.losses.BinaryCrossentropy(label_smoothing=smoothing) if num_classes == 2
            else keras.losses.CategoricalCrossentropy(label_smoothing=smoothing))
    model.compile(optimizer=optimizer, loss=loss, metrics=[BalancedAccuracy(num_classes)])
    return model


def _new_record(cfg: TrainConfig, run_dir: RunDir, data: TrainData, model: Any, *,
                recipe: Recipe, folds: int, int8: str) -> RunRecord:
    from comp.train.models import count_params

    total, trainable = count_params(model)
    return RunRecord(
        run=run_dir.name, model=str(cfg.model), classes=data.classes,
        input_shape=list(data.x_train.shape[1:]), fingerprint=data.fingerprint,
        pixels=data.pixels,
        workspace=str(cfg.workspace), learning_rate=recipe.learning_rate,
        augment=recipe.augment, params=total, trainable_params=trainable,
        images_train=len(data.x_train), images_val=len(data.x_val),
        created=datetime.now().isoformat(), config=as_record(cfg), folds=folds,
        feature_int8=int8)


def _fit(model: Any, cfg: TrainConfig, data: TrainData, *, run_dir: RunDir, record: RunRecord,
         state: TrainState, recipe: Recipe, epochs: int, resume_as: str,
         watch: tuple[Any, ...] = (), until: int | None = None) -> RunRecord:
    """Steps 3-4: the input pipeline, then fit with the per-epoch callbacks, up to epoch
    `until` (default: all `epochs`; the run is finished once it reaches them)."""
    until = epochs if until is None else until
    from comp.train.callbacks import Recorder, ResumablePlateau, TimeUp
    from comp.train.data import class_weights, make_batches

    k = len(data.classes)  # global batch: split across replicas by the strategy
    train_ds = make_batches(data.x_train, data.y_train, num_classes=k,
                            batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                            epochs_from=state.epoch, mixup=cfg.mixup,
                            oversample=cfg.balance == Balance.OVERSAMPLE)
    val_ds = make_batches(data.x_val, data.y_val, num_classes=k, batch_size=cfg.batch_size,
                          shuffle=False, seed=cfg.seed)
    plateau = None
    if recipe.schedule == Schedule.PLATEAU:
        plateau = ResumablePlateau(saved=state.plateau, monitor="val_loss",
                                   factor=cfg.plateau_factor, patience=cfg.plateau_patience,
                                   verbose=0)
    recorder = Recorder(run_dir=run_dir, record=record, state=state, plateau=plateau,
                        epochs=epochs)
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=until, initial_epoch=state.epoch,
                  shuffle=False,  # the dataset reshuffles itself each epoch
                  steps_per_epoch=-(-len(data.x_train) // cfg.batch_size),
                  class_weight=(class_weights(data.y_train, k)
                                if cfg.balance == Balance.WEIGHTS else None),
                  callbacks=[c for c in (plateau, recorder, *watch) if c is not None],
                  verbose=1 if (cfg.progress and sys.stdout.isatty()) else 0)
    except (KeyboardInterrupt, TimeUp) as stop:
        recorder.close()  # the epoch being written is committed first
        run_dir.save_record(replace(recorder.record, status="interrupted"))
        error = TimeLimitReached if isinstance(stop, TimeUp) else CompError
        why = "the time limit passed" if isinstance(stop, TimeUp) else "interrupted"
        raise error(f"{why} after epoch {state.epoch}; continue with "
                    f"`comp train --resume {resume_as}`") from None
    finally:
        recorder.close()
        train_ds.close()
        val_ds.close()
    if until < epochs:
        return recorder.record
    record = replace(recorder.record, status="finished")
    run_dir.save_record(record)
    return record


def _warm_up(model: Any, cfg: TrainConfig, data: TrainData, hw: Hardware, *, recipe: Recipe,
             epochs: int, fit: Any) -> RunRecord:
    """Keras' fine-tuning recipe: the new head trained with the base frozen until epoch
    `recipe.warmup` (at `WARMUP_RATE` times the rate), then the whole base unfrozen and the
    model compiled again at the recipe's rate for the remaining epochs (its batch norm stays
    frozen, so in inference mode: `models.fine_tune`). `fit(model, until)` trains and returns
    the record."""
    from comp.specs import WARMUP_RATE
    from comp.train.models import fine_tune, pretrained_base

    steps, k = -(-len(data.x_train) // cfg.batch_size), len(data.classes)
    with hw.scope():
        pretrained_base(model).trainable = False
        compile_model(model, recipe, num_classes=k, steps_per_epoch=steps,
                      epochs=recipe.warmup, rate=recipe.learning_rate * WARMUP_RATE)
    fit(model, recipe.warmup)
    with hw.scope():
        fine_tune(pretrained_base(model))  # all but batch norm, which stays in inference mode
        compile_model(model, recipe, num_classes=k, steps_per_epoch=steps,
                      epochs=epochs - recipe.warmup)
    return fit(model, epochs)


def train(cfg: TrainConfig, *, watch: tuple[Any, ...] = ()) -> RunRecord:
    """Train (or resume) one run; returns its record (run.json). The run's lock is held
    throughout, so a second process cannot train or resume the same run at the same time.
    `watch`: extra Keras callbacks (a search's pruning) after comp's own each epoch."""
    with ExitStack() as hold:
        return _train(cfg, hold, watch)


def _fold_count(cfg: TrainConfig, ws: Workspace) -> int:
    """0 for one model on the train split (--folds 1), else the workspace's K folds."""
    if cfg.folds == 1:
        return 0
    fold = ws.labelled()["fold"].to_numpy()
    prepared = int(fold.max()) + 1
    filled = np.bincount(fold, minlength=prepared)
    if (filled == 0).any():  # a workspace an older comp prepared with too many folds
        raise CompError(f"{ws.root}: fold {int(np.argmin(filled))} of its {prepared} folds "
                        "holds no image; prepare again with fewer --folds")
    if cfg.folds is not None and cfg.folds != prepared:
        raise CompError(f"--folds {cfg.folds}: the workspace was prepared with {prepared} "
                        f"folds; pass --folds {prepared} (or --folds 1 for the train/val "
                        f"split), or prepare again with --folds {cfg.folds}")
    return prepared


def _member_plan(run_dir: RunDir, folds: int, epochs: int) -> list[tuple[int | None, RunDir,
                                                                         TrainState]]:
    """The models still to train, each with the state it starts from."""
    from comp.train.callbacks import TrainState

    members = [(k, run_dir.fold(k)) for k in range(folds)] if folds else [(None, run_dir)]
    plan = []
    for k, member in members:
        state = (TrainState.load(member) if member.state.exists() and member.last.exists()
                 else TrainState())
        if state.epoch < epochs:
            plan.append((k, member, state))
    return plan


def _train_member(cfg: TrainConfig, recipe: Recipe, hw: Hardware, *, ws: Workspace,
                  run_dir: RunDir, fold: int | None, folds: int, member: RunDir,
                  state: TrainState, record: RunRecord | None, epochs: int,
                  watch: tuple[Any, ...] = ()) -> tuple[RunRecord, RunRecord]:
    """Train one model of the run (the run itself, or fold `fold`) from `state`.

    Returns:
        (the run's record, the member's record): the same for a one-model run.
    """
    import keras

    from comp.train.callbacks import load_checkpoint, restore_rng_states
    from comp.train.data import load_training_data
    from comp.train.features import int8_tag, model_inputs

    keras.backend.clear_session()  # a fresh graph per fold model
    data = load_training_data(ws, max_images=cfg.max_images, seed=cfg.seed, fold=fold)
    int8 = record.feature_int8 if record else int8_tag(cfg.model, data.x_train, ws=ws)
    data = replace(data, x_train=model_inputs(cfg.model, data.x_train, ws=ws, int8=int8),
                   x_val=model_inputs(cfg.model, data.x_val, ws=ws, int8=int8))
    with native_stderr_silenced():  # Keras seeds TensorFlow too, importing it if present
        keras.utils.set_random_seed(cfg.seed + (fold or 0))
    steps = -(-len(data.x_train) // cfg.batch_size)
    with hw.scope():  # 2. model, inside the strategy's scope
        if state.epoch > 0:
            model = load_checkpoint(member.last)
            restore_rng_states(model, state.rng)
            if recipe.augment and "augment" not in {layer.name for layer in model.layers}:
                raise CompError(f"{member.last}: saved by an older comp, whose augmentation "
                                "was not part of the model; train a new run with "
                                "`comp train`")
        else:
            model = _compile(cfg, recipe, input_shape=tuple(data.x_train.shape[1:]),
                             num_classes=len(data.classes), steps_per_epoch=steps,
                             epochs=epochs)
    if record is None:  # a new run
        record = _new_record(cfg, run_dir, data, model, recipe=recipe, folds=folds, int8=int8)
    record = replace(record, hardware=hw.description, precision=hw.policy,
                     versions=_versions(), command=" ".join(sys.argv))
    run_dir.save_record(record)
    own = record if fold is None else _member_record(cfg, run_dir, member, data, model,
                                                     recipe=recipe, int8=int8)
    label = run_dir.name if fold is None else f"{run_dir.name} fold {fold + 1}/{record.folds}"
    print(f"run {label}: {cfg.model} on {hw.description}, {hw.policy}; "
          f"{len(data.x_train)} train / {len(data.x_val)} val images; epochs "
          f"{state.epoch + 1}..{epochs}", flush=True)

    def fit(model: Any, until: int) -> RunRecord:
        nonlocal own
        own = _fit(model, cfg, data, run_dir=member, record=own, state=state, recipe=recipe,
                   epochs=epochs, resume_as=run_dir.name, watch=watch, until=until)
        return own

    if state.epoch < recipe.warmup:  # the head alone first, then the whole network
        own = _warm_up(model, cfg, data, hw, recipe=recipe, epochs=epochs, fit=fit)
    else:
        own = fit(model, epochs)
    return (own if fold is None else record), own


def _member_record(cfg: TrainConfig, run_dir: RunDir, member: RunDir, data: TrainData,
                   model: Any, *, recipe: Recipe, int8: str) -> RunRecord:
    """A fold model's own record: the saved one (a resume), else a new one, saved."""
    own = member.load_record() if member.record.exists() else replace(_new_record(
        cfg, run_dir, data, model, recipe=recipe, folds=0, int8=int8),
        run=f"{run_dir.name}/{member.name}")
    member.save_record(own)
    return own


def _train(cfg: TrainConfig, hold: ExitStack, watch: tuple[Any, ...] = ()) -> RunRecord:
    load_keras()
    import keras

    from comp.train.features import require
    from comp.train.strategy import choose_hardware

    # 1. data and hardware
    check_given(cfg, Recipe.of(cfg))
    resumed = _resume_config(cfg) if cfg.resume else None
    if resumed is not None:
        cfg = resumed[0]
        hold.enter_context(resumed[1].lock())
    elif cfg.run_name is not None:
        check_run_name(cfg.run_name)
    require(cfg.model)
    ws = Workspace(cfg.workspace)
    meta = ws.load_meta()
    if resumed is not None and resumed[2].fingerprint != meta.fingerprint:
        raise CompError(other_data(resumed[1].name, resumed[2], fingerprint=meta.fingerprint,
                                   pixels=meta.pixels))
    folds = resumed[2].folds if resumed is not None else _fold_count(cfg, ws)
    if resumed is None:  # the budget recorded, so that a resume reads the one it started with
        cfg = replace(cfg, epochs=epochs_of(cfg.model, cfg.epochs))
    epochs = cfg.epochs or DEFAULT_EPOCHS  # a run recorded without one trained the report's
    recipe = Recipe.of(cfg)
    if resumed is not None:
        run_dir, record = resumed[1], resumed[2]
        plan = _member_plan(run_dir, folds, epochs)
        if not plan:
            raise CompError(f"run {cfg.resume} already has {epochs} epochs"
                            f"{' in every fold' if folds else ''}; pass --epochs N with N > "
                            f"{epochs} to train further")
    else:
        run_dir = new_run(cfg.checkpoints, cfg.run_name or
                          f"{cfg.model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        hold.callback(_drop_if_unstarted, run_dir)  # after the lock below is released
        hold.enter_context(run_dir.lock())
        record, plan = None, _member_plan(run_dir, folds, epochs)
    if cfg.time_limit is not None:  # after comp's own callbacks have recorded the epoch
        from comp.train.callbacks import Deadline

        watch = (*watch, Deadline(time.monotonic() + cfg.time_limit))
    hw = choose_hardware(tpu=cfg.tpu, tpu_name=cfg.tpu_name)
    keras.mixed_precision.set_global_policy(hw.policy)
    for fold, member, state in plan:
        record, _ = _train_member(cfg, recipe, hw, ws=ws, run_dir=run_dir, fold=fold,
                                  folds=folds, member=member, state=state, record=record,
                                  epochs=epochs, watch=watch)
        if folds:
            record = _fold_summary(run_dir, record, folds)
    assert record is not None
    return record


def _drop_if_unstarted(run_dir: RunDir) -> None:
    """A new run that failed before its record was written leaves no folder behind (its
    name stays free for the next `--name`)."""
    if not run_dir.record.exists():
        shutil.rmtree(run_dir.path, ignore_errors=True)


def _fold_summary(run_dir: RunDir, record: RunRecord, folds: int) -> RunRecord:
    """The run's record after a fold finishes: folds done, mean of their best scores."""
    finished = [m.load_record() for m in run_dir.fold_dirs() if m.record.exists()]
    finished = [r for r in finished if r.status == "finished"]
    scores = [r.best_val_balanced_accuracy for r in finished
              if r.best_val_balanced_accuracy is not None]
    record = replace(record, folds_done=len(finished),
                     status="finished" if len(finished) == folds else "running",
                     epochs_done=min((r.epochs_done for r in finished), default=0),
                     best_val_balanced_accuracy=float(np.mean(scores)) if scores else None,
                     images_val=sum(r.images_val for r in finished))
    run_dir.save_record(record)
    return record
