"""The Typer app: parse options, build a config, call one function, print the result.

The only module that imports typer and turns `CompError` into one line on stderr and exit code 1.
Heavy libraries (TensorFlow, LightGBM) are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from comp import config
from comp.errors import CompError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="From raw challenge files to a leaderboard CSV.")
F = TypeVar("F", bound=Callable[..., Any])

Workspace = Annotated[Path, typer.Option("--workspace", "-w", help="Prepared workspace folder.")]


def clear_errors(func: F) -> F:
    """Turn a CompError (and Ctrl-C) into one line on stderr and a non-zero exit."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CompError as exc:
            typer.echo(f"error: {exc}", err=True)
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
    from comp.demo import DemoSpec, make_demo

    if min(train, val, test) < 0 or train < 20 or val > train:
        raise CompError(f"need --train >= 20 and 0 <= --val <= --train. Received: train={train}, "
                        f"val={val}, test={test}")
    answers = make_demo(out, DemoSpec(train=train, val=val, test=test, size=size,
                                      classes=classes, seed=seed))
    _print(answers)
    typer.echo(f"demo challenge written to {out}")


@app.command()
@clear_errors
def prepare(
    challenge: Annotated[Path | None, typer.Argument(
        help="Challenge folder: train/ (or images/), train.csv (or labels.csv), val/, test/.")]
    = None,
    workspace: Workspace = config.DEFAULT_WORKSPACE,
    train: Annotated[Path | None, typer.Option(help="Folder of training images.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels CSV (id and label columns).")] = None,
    val: Annotated[Path | None, typer.Option(help="Unlabelled validation folder.")] = None,
    test: Annotated[Path | None, typer.Option(
        help="Test folder; on a prepared workspace only these images are ingested.")] = None,
    id_column: Annotated[str, typer.Option(help="Id column of the labels CSV.")] = "id",
    label_column: Annotated[str, typer.Option(help="Label column of the labels CSV.")] = "label",
    classes: Annotated[str | None, typer.Option(
        help="Comma-separated class names, in order (default: 0/1, or sorted names).")] = None,
    size: Annotated[str | None, typer.Option(help="Resize every image to HxW, e.g. 50x50.")]
    = None,
    gray: Annotated[bool, typer.Option("--gray", help="Store one grayscale channel.")] = False,
    fit: Annotated[str, typer.Option(
        help="How --size meets another aspect ratio: crop (centre) or stretch.")] = "crop",
    max_distance: Annotated[int, typer.Option(
        help="Hash distance for duplicate candidates.")] = config.DEFAULT_MAX_DISTANCE,
    pixel_threshold: Annotated[float, typer.Option(
        help="Largest mean pixel difference (0-255, brightness offset removed) of a duplicate.")]
    = config.DEFAULT_PIXEL_THRESHOLD,
    conflicts: Annotated[str, typer.Option(help="drop or majority.")] = "drop",
    duplicates: Annotated[str, typer.Option(help="keep-one or keep-all.")] = "keep-one",
    split: Annotated[str, typer.Option(help="train/val/holdout fractions.")] = "0.595,0.105,0.3",
    seed: Annotated[int, typer.Option()] = 42,
    groups: Annotated[str | None, typer.Option(
        help="FILE:COLUMN giving a group per id (e.g. identity); groups never straddle splits.")]
    = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip bad files, count them.")]
    = False,
    workers: Annotated[int | None, typer.Option(help="Decoding processes (default: cores).")]
    = None,
) -> None:
    """Decode, hash, de-duplicate and split a challenge into a workspace."""
    from comp.images import parse_size
    from comp.prepare import prepare as run_prepare

    try:
        fractions = tuple(float(x) for x in split.split(","))
    except ValueError:
        fractions = ()
    if len(fractions) != 3:
        raise CompError(f"--split must be three fractions like 0.595,0.105,0.3. Received: {split}")
    cfg = config.PrepareConfig(
        challenge=challenge, workspace=workspace, train=train, labels=labels, val=val, test=test,
        id_column=id_column, label_column=label_column,
        classes=tuple(c.strip() for c in classes.split(",")) if classes else None,
        size=parse_size(size), gray=gray, fit=fit, max_distance=max_distance,
        pixel_threshold=pixel_threshold, conflicts=conflicts, duplicates=duplicates,
        split=fractions,  # type: ignore[arg-type]
        seed=seed, groups=groups, skip_bad=skip_bad, workers=workers)
    summary = run_prepare(cfg)
    _print({k: v for k, v in summary.items() if k != "bad_files"})
    typer.echo(f"workspace: {workspace} (report: {workspace / 'prepare-report.md'})")


@app.command()
@clear_errors
def train(
    workspace: Workspace = config.DEFAULT_WORKSPACE,
    model: Annotated[str, typer.Option(
        "--model", "-m", help="logreg, b1, b2, b3, tl1, tl2 or tl3.")]
    = "b3",
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 100; on --resume, the "
                                                    "run's own).")] = None,
    batch_size: Annotated[int, typer.Option(help="Global batch size.")] = 124,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (default: the model's).")]
    = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment",
                                                 help="Default: on for b3 only.")] = None,
    plateau_factor: Annotated[float, typer.Option()] = 0.1,
    plateau_patience: Annotated[int, typer.Option()] = 12,
    weights: Annotated[str, typer.Option(
        help="tl*: imagenet (from the Keras cache), a weights file, or none.")] = "imagenet",
    tpu: Annotated[str | None, typer.Option(
        help="Train on a TPU: its name, or 'auto' to find the local one.")] = None,
    seed: Annotated[int, typer.Option()] = 42,
    checkpoints: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("checkpoints"),
    name: Annotated[str | None, typer.Option(help="Run name (default: model-timestamp).")]
    = None,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted run by name.")]
    = None,
    max_images: Annotated[int | None, typer.Option(help="Use at most this many training "
                                                        "images (quick experiments).")] = None,
) -> None:
    """Train one of the report's models on the prepared workspace."""
    from comp.training import train as run_train

    run = run_train(config.TrainConfig(
        workspace=workspace, model=model.lower(), epochs=epochs, batch_size=batch_size,
        learning_rate=lr, augment=augment, plateau_factor=plateau_factor,
        plateau_patience=plateau_patience, weights=weights, tpu=tpu, seed=seed,
        checkpoints=checkpoints, run_name=name, resume=resume, max_images=max_images))
    typer.echo(f"run {run['run']}: best val balanced accuracy "
               f"{run['best_val_balanced_accuracy']:.4f} at epoch {run['best_epoch']}; "
               f"{run['run_dir']}")


@app.command()
@clear_errors
def evaluate(
    runs: Annotated[list[str], typer.Argument(help="Run names (folders under --checkpoints).")],
    workspace: Workspace = config.DEFAULT_WORKSPACE,
    checkpoints: Annotated[Path, typer.Option()] = Path("checkpoints"),
    folds: Annotated[int, typer.Option(help="Folds for the out-of-fold threshold.")] = 5,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Score runs on the holdout split: balanced accuracy, per-class accuracy, confusion."""
    from comp.submit import evaluate as run_evaluate

    results = run_evaluate(workspace, checkpoints, runs, folds, seed)
    for r in results:
        typer.echo(f"\n{r['run']} ({r['model']}), {r['holdout_images']} holdout images")
        typer.echo("  per-class accuracy: " + ", ".join(
            f"{c} {v:.4f}" for c, v in r["per_class_accuracy"].items()))
        matrix = r["confusion"]
        typer.echo("  confusion (rows true, columns predicted; counts | row-normalised):")
        for row in matrix:
            total = max(sum(row), 1)
            typer.echo("    " + " ".join(f"{v:6d}" for v in row) + "  | " +
                       " ".join(f"{v / total:.3f}" for v in row))
        typer.echo(f"  picture: {checkpoints / r['run'] / 'confusion.png'}")
    typer.echo("\n| run | model | balanced accuracy (tuned threshold, out-of-fold) | "
               "at 0.5 | accuracy |\n|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: -r["balanced_accuracy"]):
        typer.echo(f"| {r['run']} | {r['model'].upper()} | {r['balanced_accuracy']:.4f} | "
                   f"{r['balanced_accuracy_at_0.5']:.4f} | {r['accuracy']:.4f} |")


@app.command()
@clear_errors
def submit(
    workspace: Workspace = config.DEFAULT_WORKSPACE,
    run: Annotated[list[str] | None, typer.Option(
        "--run", "-r", help="Run(s) to use; several are ensembled (default: best on holdout).")]
    = None,
    target: Annotated[str, typer.Option(help="val (phase 1) or test (phase 2).")] = "val",
    test: Annotated[Path | None, typer.Option(
        help="Phase 2: a new test folder; ingested, then predicted.")] = None,
    checkpoints: Annotated[Path, typer.Option()] = Path("checkpoints"),
    submissions: Annotated[Path, typer.Option()] = Path("submissions"),
    tta: Annotated[bool, typer.Option("--tta", help="Average with the flipped image.")] = False,
    ensemble: Annotated[bool, typer.Option("--ensemble/--no-ensemble",
                                           help="Try the LightGBM ensemble.")] = True,
    leaks: Annotated[bool, typer.Option("--leaks/--no-leaks",
                                        help="Override leaked images with train labels.")] = True,
    folds: Annotated[int, typer.Option()] = 5,
    seed: Annotated[int, typer.Option()] = 42,
    sample: Annotated[Path | None, typer.Option(
        help="sample_submission.csv to follow (ids, order, columns).")] = None,
    id_column: Annotated[str, typer.Option()] = "id",
    label_column: Annotated[str, typer.Option()] = "label",
    on_size_mismatch: Annotated[str, typer.Option(
        help="Test images of another size than the store: fail or resize.")] = "fail",
) -> None:
    """Predict, tune, ensemble, override leaks and write a validated leaderboard CSV."""
    from comp.submit import submit as run_submit

    manifest = run_submit(config.SubmitConfig(
        workspace=workspace, runs=tuple(run or ()), target=target, test=test,
        checkpoints=checkpoints, submissions=submissions, tta=tta, ensemble=ensemble,
        leaks=leaks, folds=folds, seed=seed, sample_submission=sample, id_column=id_column,
        label_column=label_column, on_size_mismatch=on_size_mismatch))
    ens = manifest["ensemble"]
    threshold = manifest["threshold"]
    typer.echo(f"runs: {', '.join(r['run'] for r in manifest['runs'])}; ensemble "
               f"{'used' if ens['used'] else 'not used'} (out-of-fold balanced accuracy: CNN "
               f"{ens['cnn_oof_balanced_accuracy']:.4f}"
               + (f", LightGBM {ens['ensemble_oof_balanced_accuracy']:.4f}"
                  if ens["ensemble_oof_balanced_accuracy"] is not None else "") + ")")
    if threshold:
        typer.echo(f"threshold {threshold['value']:.4f} (+-{threshold['spread']:.4f}): holdout "
                   f"balanced accuracy {threshold['score']:.4f} vs {threshold['score_at_half']:.4f}"
                   " at 0.5")
    lk = manifest["leaks"]
    typer.echo(f"leaks: {lk['matched']} matched, {lk['overridden']} overridden, {lk['changed']} "
               f"changed; a duplicate's label was right for {lk['match_label_accuracy']:.3f} of "
               f"{lk['matches_measured']} labelled duplicates ("
               f"{lk['match_label_accuracy_holdout_groups']:.3f} of "
               f"{lk['matches_measured_holdout_groups']} in holdout groups)")
    typer.echo(f"wrote {manifest['csv']} ({manifest['images']} rows) in {manifest['seconds']} s")


@app.command()
@clear_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo challenge and its outputs.")]
    = Path("data/demo"),
    train: Annotated[int, typer.Option(help="Training images.")] = 12_000,
    epochs: Annotated[int, typer.Option(help="Epochs of b3.")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """The whole two-phase challenge on the demo data: generate, prepare, train, submit."""
    from comp.pipeline import run_demo

    run_demo(out, train, epochs, seed, echo=typer.echo)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
