"""`comp evaluate`: out-of-fold scores of runs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Checkpoints,
    Folds,
    Json,
    Verbose,
    Workspace,
    app,
    clear_errors,
    echo_json,
    quiet_tensorflow,
)


@app.command()
@clear_errors
def evaluate(
    runs: Annotated[list[str], typer.Argument(help="Run names (folders under --checkpoints).")],
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    folds: Folds = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of a one-model run's holdout folds (default 42).")] = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Score runs out-of-fold (a cross-fitted run on every labelled image, a one-model run on
    its holdout split): balanced accuracy, per-class accuracy, confusion."""
    quiet_tensorflow(verbose)
    from comp.submit import evaluate as run_evaluate

    results = run_evaluate(workspace, checkpoints, runs, folds=folds, seed=seed)
    if json:
        echo_json([asdict(r) for r in results])
        return
    for r in results:
        scored = ("images, each predicted by the fold model that did not train on it"
                  if r.scored_on == "out-of-fold" else "holdout images")
        typer.echo(f"\n{r.run} ({r.model}), {r.images} {scored}")
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
