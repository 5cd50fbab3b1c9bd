"""`comp inspect`: an HTML report of what a run sees."""

from __future__ import annotations

from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Checkpoints,
    Folds,
    Profile,
    Seed,
    Verbose,
    Workspace,
    app,
    clear_errors,
    quiet_tensorflow,
)


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
    folds: Folds = None,
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
