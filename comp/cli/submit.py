"""`comp submit`: the rule, the predictions, the leak override, the CSV."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Checkpoints,
    Folds,
    Json,
    Profile,
    Seed,
    Verbose,
    Workspace,
    app,
    clear_errors,
    echo_json,
    quiet_tensorflow,
)


@app.command()
@clear_errors
def submit(
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    run: Annotated[list[str] | None, typer.Option(
        "--run", "-r", help="Run(s) to consider (repeat); with several, a level-2 stack of "
        "them is a candidate too (default: every finished run of the workspace).")] = None,
    preset: Annotated[str | None, typer.Option(
        help="The runs of `comp train --preset NAME` (its finished ones), instead of "
        "--run.")] = None,
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
        help="Leaked images and their training copies' label: evidence (weighed beside the "
        "rule's calibrated probability), always (it replaces the model's), never, or auto "
        "(the best of the three out-of-fold).")]
    = c.Leaks.AUTO,
    folds: Folds = None,
    seed: Seed = c.DEFAULT_SEED,
    sample: Annotated[Path | None, typer.Option(
        help="sample_submission.csv to follow (ids, order, columns).")] = None,
    id_column: Annotated[str, typer.Option(help="Id column of the submission.")] = "id",
    label_column: Annotated[str, typer.Option(help="Label column of the submission.")] = "label",
    on_size_mismatch: Annotated[c.SizeMismatch, typer.Option(
        help="Test images of another size than the training images.")] = c.SizeMismatch.FAIL,
    profile: Profile = False,
    json: Json = False,
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
        label_column=label_column, on_size_mismatch=on_size_mismatch, preset=preset))
    manifest, decision = result.manifest, result.decision
    if json:
        echo_json({**asdict(manifest), "notes": result.notes,
                   "stages": result.clock.seconds if profile else None})
        return
    for line in describe(decision) + result.notes:
        typer.echo(line)
    if profile:
        typer.echo("stages:\n" + result.clock.table())
    typer.echo(f"wrote {manifest.csv} ({manifest.images} rows) in {manifest.seconds} s")
