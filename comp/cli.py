"""The Typer app: parse options, build a config, call one function, print the result.

The only module that imports typer and turns `CompError` into one line on stderr and exit code 1.
Defaults and choices come from `comp.config`; heavy libraries (TensorFlow, LightGBM) are imported
inside the commands that need them.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.exceptions import TyperException

from comp import config as c
from comp.errors import CompError
from comp.native_log import VERBOSE_ENV

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="From raw challenge files to a leaderboard CSV.")
F = TypeVar("F", bound=Callable[..., Any])

Workspace = Annotated[Path, typer.Option("--workspace", "-w", help="Prepared workspace folder.")]
Checkpoints = Annotated[Path, typer.Option(help="Where run folders are.")]
Seed = Annotated[int, typer.Option(help="Random seed (splits, folds, training).")]
Folds = Annotated[int, typer.Option(min=2, help="Holdout folds for out-of-fold decisions.")]
Profile = Annotated[bool, typer.Option("--profile", help="Print the time of each stage.")]
Verbose = Annotated[bool, typer.Option("--verbose", help="Show TensorFlow's own start-up log.")]


def quiet_tensorflow(verbose: bool) -> None:
    """TensorFlow's C++ start-up lines stay off the terminal unless --verbose
    (`comp.native_log.load_tensorflow` reads this when TensorFlow is first needed)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


def os_problem(exc: OSError) -> str:
    """One line for a failed file operation: the file, what the system said, what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{where}{what}: the disk is full; free some space and run the command again "
                "(what was already there is unchanged)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{what}; fix the permissions or choose another folder"
    return f"{where}{what}; check the path and run the command again"


def clear_errors(func: F) -> F:
    """Turn a CompError (and Ctrl-C) into one line on stderr and a non-zero exit."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CompError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        except OSError as exc:  # the machine's side: a full disk, a permission, a vanished file
            typer.echo(f"error: {os_problem(exc)}", err=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing half-written was left behind", err=True)
            raise typer.Exit(code=130) from None
    return wrapper  # type: ignore[return-value]


def _print(summary: dict[str, Any]) -> None:
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command("demo-data")
@clear_errors
def demo_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the demo challenge into.")],
    train: Annotated[int, typer.Option(help="Training images (planted copies included).")] =
    116_157,
    val: Annotated[int, typer.Option(help="Validation images (all copies of train).")] = 5_000,
    test: Annotated[int, typer.Option(help="Phase-2 test images.")] = 20_000,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 56,
    classes: Annotated[int, typer.Option(help="2 (glasses) or 4 (glasses x smile).")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write a synthetic two-phase face challenge with planted duplicates, conflicts and leaks."""
    from comp.demo.generate import DemoSpec, make_demo

    spec = DemoSpec(train=train, val=val, test=test, size=size, classes=classes, seed=seed)
    _print(make_demo(out, spec))
    typer.echo(f"demo challenge written to {out}")


def _split(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise CompError(f"--split must be three fractions like 0.595,0.105,0.3. "
                        f"Received: {text}") from None


@app.command()
@clear_errors
def prepare(
    challenge: Annotated[Path | None, typer.Argument(
        help="Challenge folder: train/ (or images/), train.csv (or labels.csv), val/, test/.")]
    = None,
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    train: Annotated[Path | None, typer.Option(help="Folder of training images.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels CSV (id and label columns).")] = None,
    val: Annotated[Path | None, typer.Option(help="Unlabelled validation folder.")] = None,
    test: Annotated[Path | None, typer.Option(
        help="Test folder; on a prepared workspace only these images are ingested.")] = None,
    id_column: Annotated[str, typer.Option(help="Id column of the labels CSV.")] = "id",
    label_column: Annotated[str, typer.Option(help="Label column of the labels CSV.")] = "label",
    classes: Annotated[str | None, typer.Option(
        help="Comma-separated class names, in order (default: 0/1, or sorted names).")] = None,
    size: Annotated[str | None, typer.Option(
        help="Resize every image (train, val and test) to HxW, e.g. 50x50.")] = None,
    gray: Annotated[bool, typer.Option("--gray", help="Store one grayscale channel.")] = False,
    fit: Annotated[c.Fit, typer.Option(
        help="How --size meets another aspect ratio; face: crop each image to its main "
        "face.")] = c.Fit.CROP,
    faces: Annotated[bool, typer.Option(
        "--faces", help="Crop every image to its main face, upright, with a margin (YuNet "
        "through OpenCV; the same as --fit face).")] = False,
    no_face: Annotated[c.NoFace, typer.Option(
        help="With --faces, images with no face found: keep (centre crop), skip (dropped "
        "from training) or fail.")] = c.NoFace.KEEP,
    max_distance: Annotated[int, typer.Option(
        min=0, max=16, help="Hash distance for duplicate candidates.")] = c.DEFAULT_MAX_DISTANCE,
    pixel_threshold: Annotated[float, typer.Option(
        min=0, help="Largest mean pixel difference (0-255, brightness offset removed) of a "
        "duplicate.")] = c.DEFAULT_PIXEL_THRESHOLD,
    conflicts: Annotated[c.Conflicts, typer.Option(
        help="Duplicate groups whose labels disagree.")] = c.Conflicts.DROP,
    duplicates: Annotated[c.Duplicates, typer.Option(
        help="Members kept per duplicate group.")] = c.Duplicates.KEEP_ONE,
    split: Annotated[str, typer.Option(help="train/val/holdout fractions.")] =
    ",".join(map(str, c.DEFAULT_SPLIT)),
    folds: Annotated[int, typer.Option(
        min=2, help="K folds over every kept labelled image (index.csv's fold column).")]
    = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED,
    groups: Annotated[str | None, typer.Option(
        help="FILE:COLUMN giving a group per id (e.g. identity); groups never straddle splits.")]
    = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip bad files, count them.")]
    = False,
    exclude: Annotated[Path | None, typer.Option(
        help="CSV with an id column (e.g. comp audit's audit.csv): training ids to drop.")]
    = None,
    relabel: Annotated[Path | None, typer.Option(
        help="CSV of id,label: new labels for those training ids.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Decoding processes (default: cores).")] = None,
    on_size_mismatch: Annotated[c.SizeMismatch, typer.Option(
        help="val/test images of another native size than train (without --size).")]
    = c.SizeMismatch.FAIL,
    profile: Profile = False,
) -> None:
    """Decode, hash, de-duplicate and split a challenge into a workspace."""
    from comp.prepare import prepare as run_prepare

    result = run_prepare(c.PrepareConfig(
        challenge=challenge, workspace=workspace, train=train, labels=labels, val=val, test=test,
        id_column=id_column, label_column=label_column,
        classes=tuple(x.strip() for x in classes.split(",")) if classes else None,
        size=c.parse_size(size), gray=gray, fit=c.Fit.FACE if faces else fit,
        no_face=no_face, max_distance=max_distance,
        pixel_threshold=pixel_threshold, conflicts=conflicts, duplicates=duplicates,
        split=_split(split),  # type: ignore[arg-type]
        folds=folds, seed=seed, groups=groups, skip_bad=skip_bad, workers=workers,
        exclude=exclude, relabel=relabel,
        on_size_mismatch=on_size_mismatch))
    _print({k: v for k, v in result.summary.items() if k != "bad_files"})
    if profile:
        typer.echo("stages:\n" + result.clock.table())
    typer.echo(f"workspace: {workspace} (report: {result.report})")


@app.command()
@clear_errors
def train(
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    model: Annotated[c.Model, typer.Option("--model", "-m", case_sensitive=False,
                                           help="The report's models, or res (comp's "
                                           "residual net).")] = c.Model.RES,
    epochs: Annotated[int | None, typer.Option(
        min=1, help=f"Epochs (default {c.DEFAULT_EPOCHS}; on --resume, the run's own).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch size.")]
    = c.DEFAULT_BATCH_SIZE,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the model's).")]
    = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment",
                                                 help="Default: on for b3 and res.")] = None,
    plateau_factor: Annotated[float, typer.Option(
        help="Multiply the learning rate by this on a plateau of the validation loss.")]
    = c.DEFAULT_PLATEAU_FACTOR,
    plateau_patience: Annotated[int, typer.Option(min=1, help="Epochs without improvement.")]
    = c.DEFAULT_PLATEAU_PATIENCE,
    weights: Annotated[str, typer.Option(
        help="tl*: imagenet (the Keras cache, downloaded there when online), a weights "
        "file, or none.")] = "imagenet",
    tpu: Annotated[bool, typer.Option(
        "--tpu", help="Train on a TPU in bfloat16: this TPU VM's (Kaggle, Colab, Cloud), "
        "else the one TPU_NAME names.")] = False,
    tpu_name: Annotated[str | None, typer.Option(
        help="Train on this named TPU (implies --tpu).")] = None,
    seed: Seed = c.DEFAULT_SEED,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    name: Annotated[str | None, typer.Option(help="Run name (default: model-timestamp).")]
    = None,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted run by name.")]
    = None,
    max_images: Annotated[int | None, typer.Option(
        min=1, help="Use at most this many training images (quick experiments).")] = None,
    folds: Annotated[int | None, typer.Option(
        min=1, help="Default: one model per prepared fold (out-of-fold predictions for "
        "every label); 1: one model on the train/val split.")] = None,
    schedule: Annotated[c.Schedule | None, typer.Option(
        help="Learning-rate schedule (default: the model's; cosine for res).")] = None,
    label_smoothing: Annotated[float | None, typer.Option(
        help="Label smoothing of the loss (default: the model's; 0.1 for res).")] = None,
    params: Annotated[str | None, typer.Option(
        help="Tuned parameters: 'best' (comp tune's best for this model) or a JSON file; "
        "they override the options they set.")] = None,
    l1: Annotated[float, typer.Option(min=0, help="L1 penalty on every kernel.")] = 0.0,
    l2: Annotated[float, typer.Option(min=0, help="L2 penalty on every kernel.")] = 0.0,
    init: Annotated[c.Init | None, typer.Option(
        help="Kernel initialisation: glorot or he (default: the model's own).")] = None,
    balance: Annotated[c.Balance, typer.Option(
        help="Class balance: none, weights (loss weighted by N / (K x class count)) or "
        "oversample (each class drawn equally often).")] = c.Balance.NONE,
    dropout: Annotated[float | None, typer.Option(
        help="Dropout rate of the hidden layers (default: the model's own).")] = None,
    width: Annotated[float, typer.Option(
        help="Multiply every convolution's filters and hidden units by this (b1-b3, "
        "res).")] = 1.0,
    augment_strength: Annotated[float, typer.Option(
        help="Multiply the augmentation's rotation (10 degrees) and zoom (10 %) ranges by "
        "this.")] = 1.0,
    input_scale: Annotated[float, typer.Option(
        help="Resize the stored images by this inside the model (0-1]; prediction feeds "
        "the stored size as is.")] = 1.0,
    mixup: Annotated[float, typer.Option(
        min=0, help="mixup: blend image pairs with weights from Beta(alpha, alpha); "
        "0: off.")] = 0.0,
    verbose: Verbose = False,
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
        input_scale=input_scale, augment_strength=augment_strength)
    if params is not None:
        from comp.tune import load_params, params_path, tuned_epochs, with_params
        from comp.workspace import Workspace as Ws

        cfg = with_params(cfg, load_params(params, Ws(workspace), str(model)),
                          source=params_path(params, Ws(workspace), str(model)))
        tuned_for = tuned_epochs(params, Ws(workspace), str(model))
        budget = cfg.epochs or c.DEFAULT_EPOCHS
        if tuned_for is not None and tuned_for != budget:
            typer.echo(f"warning: --params {params} was tuned with {tuned_for} epochs per "
                       f"trial; this run trains {budget}, and the best options for one "
                       "budget are not always the best for another", err=True)
    record = run_train(cfg)
    score = record.best_val_balanced_accuracy or 0.0
    where = (f"mean over {record.folds} fold models" if record.folds
             else f"at epoch {record.best_epoch}")
    typer.echo(f"run {record.run}: best val balanced accuracy {score:.4f} ({where}); "
               f"{checkpoints / record.run}")


@app.command()
@clear_errors
def evaluate(
    runs: Annotated[list[str], typer.Argument(help="Run names (folders under --checkpoints).")],
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    folds: Folds = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED,
    verbose: Verbose = False,
) -> None:
    """Score runs on the holdout split: balanced accuracy, per-class accuracy, confusion."""
    quiet_tensorflow(verbose)
    from comp.submit import evaluate as run_evaluate

    results = run_evaluate(workspace, checkpoints, runs, folds=folds, seed=seed)
    for r in results:
        scored = ("images, each predicted by the fold model that did not train on it"
                  if r.scored_on == "out-of-fold" else "holdout images")
        typer.echo(f"\n{r.run} ({r.model}), {r.holdout_images} {scored}")
        typer.echo("  per-class accuracy: " + ", ".join(
            f"{name} {v:.4f}" for name, v in r.per_class_accuracy.items()))
        typer.echo("  confusion (rows true, columns predicted; counts | row-normalised):")
        for row in r.confusion:
            total = max(sum(row), 1)
            typer.echo("    " + " ".join(f"{v:6d}" for v in row) + "  | " +
                       " ".join(f"{v / total:.3f}" for v in row))
        typer.echo(f"  picture: {checkpoints / r.run / 'confusion.png'}")
    typer.echo("\n| run | model | balanced accuracy (tuned threshold, out-of-fold) | "
               "at 0.5 | accuracy |\n|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: -r.balanced_accuracy):
        typer.echo(f"| {r.run} | {r.model.upper()} | {r.balanced_accuracy:.4f} | "
                   f"{r.balanced_accuracy_at_half:.4f} | {r.accuracy:.4f} |")


@app.command()
@clear_errors
def predict(
    run: Annotated[str, typer.Argument(help="The trained run (a folder under --checkpoints).")],
    images: Annotated[list[Path], typer.Argument(help="Image files, or folders of them.")],
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    out: Annotated[Path | None, typer.Option(help="Write the predictions to this CSV.")]
    = None,
    verbose: Verbose = False,
) -> None:
    """Predict photos from anywhere with a trained run and the rule the last `comp submit`
    that read it used (flip, stacker, threshold)."""
    quiet_tensorflow(verbose)
    from comp.photos import predict as run_predict

    result = run_predict(c.PredictConfig(run=run, images=tuple(images), workspace=workspace,
                                         checkpoints=checkpoints, out=out))
    typer.echo(f"rule: {result.rule}", err=True)
    for line in result.bad:
        typer.echo(f"skipped: {line}", err=True)
    if result.out is not None:
        typer.echo(f"wrote {result.out} ({len(result.table)} images)")
    else:
        width = max(len(f) for f in result.table["file"])
        for row in result.table.itertuples(index=False):
            typer.echo(f"{row.file:<{width}}  {row._1:<10}  {row.probability:.3f}")


@app.command()
@clear_errors
def tune(
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    model: Annotated[c.Model, typer.Option("--model", "-m", case_sensitive=False,
                                           help="The model whose training is searched.")]
    = c.Model.RES,
    trials: Annotated[int, typer.Option(min=1, help="Finished trials the study should hold "
                                        "(a resumed study counts its earlier ones).")] = 20,
    timeout: Annotated[float | None, typer.Option(help="Seconds for this call's trials.")]
    = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per trial.")] = 5,
    max_images: Annotated[int | None, typer.Option(
        min=1, help="Training images per trial (quick searches).")] = None,
    study: Annotated[str, typer.Option(help="Study name (default: the model's).")] = "",
    startup: Annotated[int, typer.Option(min=0, help="Random trials before TPE, and trials "
                                         "before pruning starts.")] = 5,
    seed: Seed = c.DEFAULT_SEED,
    verbose: Verbose = False,
) -> None:
    """Search training options with Optuna (TPE, median pruning); resumes after a kill."""
    quiet_tensorflow(verbose)
    from comp.tune import tune as run_tune

    result = run_tune(c.TuneConfig(workspace=workspace, model=model, study=study,
                                   trials=trials, timeout=timeout, epochs=epochs,
                                   max_images=max_images, startup=startup, seed=seed))
    names = list(result.trials[0]) if result.trials else []
    typer.echo("| " + " | ".join(names) + " |\n|" + "---|" * len(names))
    for row in result.trials:
        typer.echo("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                     for v in row.values()) + " |")
    typer.echo(f"best: {result.best_value:.4f} (val balanced accuracy, threshold tuned "
               f"out-of-fold) with {result.best_params}")
    typer.echo(result.warning)
    typer.echo(f"saved: {result.best_file} (comp train --model {model} --params best); "
               f"history: {result.history_png}; study: {result.storage}")


@app.command()
@clear_errors
def audit(
    run: Annotated[str | None, typer.Argument(
        help="A cross-fitted run (default: the best).")] = None,
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    rank_by: Annotated[c.RankBy, typer.Option(help="cleanlab's ranking of the suspects.")]
    = c.RankBy.SELF_CONFIDENCE,
    folds: Folds = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED,
    verbose: Verbose = False,
) -> None:
    """Find likely label errors among the training images (cleanlab, out-of-fold)."""
    quiet_tensorflow(verbose)
    from comp.audit import audit as run_audit

    result = run_audit(c.AuditConfig(workspace=workspace, run=run, checkpoints=checkpoints,
                                     rank_by=rank_by, folds=folds, seed=seed))
    typer.echo(f"{result.suspects:,} of {result.images:,} labelled images are likely "
               "mislabelled; by given label: " + ", ".join(
                   f"{c} {n:,} (estimated noise {result.noise_rate[c]:.3f})"
                   for c, n in result.per_class.items()))
    typer.echo(f"audit: {result.folder / 'audit.csv'} (pictures: suspects.png; act on it: "
               f"comp prepare ... --exclude {result.folder / 'audit.csv'} or --relabel "
               f"{result.folder / 'relabel.csv'})")


@app.command()
@clear_errors
def inspect(
    runs: Annotated[list[str] | None, typer.Argument(
        help="Run(s) to inspect (default: the best); the first is explained, every run's "
        "learning curves are overlaid.")] = None,
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    top: Annotated[int, typer.Option(min=1, help="Images per montage row and saliency "
                                     "panel.")] = 5,
    folds: Folds = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED,
    profile: Profile = False,
    verbose: Verbose = False,
) -> None:
    """Write an HTML report of what a run sees: average images, saliency, confident errors,
    distributions, learning curves, and image statistics that separate the classes."""
    quiet_tensorflow(verbose)
    from comp.inspect import inspect as run_inspect

    result = run_inspect(c.InspectConfig(workspace=workspace, runs=tuple(runs or ()),
                                         checkpoints=checkpoints, top=top, folds=folds,
                                         seed=seed))
    for section, used in result.sections.items():
        typer.echo(f"  {section}: {used}")
    if profile:
        typer.echo("stages:\n" + result.clock.table())
    typer.echo(f"report: {result.index}")


@app.command()
@clear_errors
def submit(
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    run: Annotated[list[str] | None, typer.Option(
        "--run", "-r", help="Run(s) to consider (repeat); with several, a level-2 stack of "
        "them is a candidate too (default: every finished run of the workspace).")] = None,
    target: Annotated[c.Target, typer.Option(help="val (phase 1) or test (phase 2).")]
    = c.Target.VAL,
    test: Annotated[Path | None, typer.Option(
        help="Phase 2: a new test folder; ingested, then predicted.")] = None,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    submissions: Annotated[Path, typer.Option(help="Where submissions are written.")]
    = c.DEFAULT_SUBMISSIONS,
    tta: Annotated[c.Tta, typer.Option(help="Average with the flipped image: auto (chosen "
                                       "out-of-fold, nested), on or off.")] = c.Tta.AUTO,
    ensemble: Annotated[bool, typer.Option(
        "--ensemble/--no-ensemble", help="Let the LightGBM stacker and the level-2 stack of "
        "runs compete with the CNNs.")] = True,
    leaks: Annotated[c.Leaks, typer.Option(
        help="Give leaked images their training copies' label: auto (when the duplicates' "
        "label agreement beats the rule's out-of-fold accuracy), always or never.")]
    = c.Leaks.AUTO,
    folds: Folds = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED,
    sample: Annotated[Path | None, typer.Option(
        help="sample_submission.csv to follow (ids, order, columns).")] = None,
    id_column: Annotated[str, typer.Option(help="Id column of the submission.")] = "id",
    label_column: Annotated[str, typer.Option(help="Label column of the submission.")] = "label",
    on_size_mismatch: Annotated[c.SizeMismatch, typer.Option(
        help="Test images of another size than the training images.")] = c.SizeMismatch.FAIL,
    profile: Profile = False,
    verbose: Verbose = False,
) -> None:
    """Choose the best rule out-of-fold (runs, flip, stacker, threshold), predict, override
    leaks where they earn it, and write a validated leaderboard CSV."""
    quiet_tensorflow(verbose)
    from comp.submit import submit as run_submit
    from comp.submit.rule import describe

    result = run_submit(c.SubmitConfig(
        workspace=workspace, runs=tuple(run or ()), target=target, test=test,
        checkpoints=checkpoints, submissions=submissions, tta=tta, ensemble=ensemble,
        leaks=leaks, folds=folds, seed=seed, sample_submission=sample, id_column=id_column,
        label_column=label_column, on_size_mismatch=on_size_mismatch))
    manifest, decision = result.manifest, result.decision
    for line in describe(decision) + result.notes:
        typer.echo(line)
    if profile:
        typer.echo("stages:\n" + result.clock.table())
    typer.echo(f"wrote {manifest.csv} ({manifest.images} rows) in {manifest.seconds} s")


@app.command()
@clear_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo challenge and its outputs.")]
    = Path("data/demo"),
    train: Annotated[int, typer.Option(min=20, help="Training images.")] = 12_000,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of b3.")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    verbose: Verbose = False,
) -> None:
    """The whole two-phase challenge on the demo data: generate, prepare, train, submit."""
    quiet_tensorflow(verbose)
    from comp.demo.pipeline import run_demo

    run_demo(out, n_train=train, epochs=epochs, seed=seed, echo=typer.echo)


def main(argv: list[str] | None = None) -> None:
    """The `comp` command. Usage errors (an unknown option or choice, a number out of range)
    are one line too, naming the option, with the command whose --help lists the choices."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args, standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `comp` alone: the help, as asked
            typer.echo(message)
            raise SystemExit(0) from None
        command = next((a for a in args if not a.startswith("-")), "")
        text = " ".join(message.replace("Value error, ", "").split()).rstrip(".")
        typer.echo(f"error: {text}; see `comp {command} --help`".replace("comp  ", "comp "),
                   err=True)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
