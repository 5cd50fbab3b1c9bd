"""`comp predict`: photos from anywhere through a run and its rule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Checkpoints,
    Verbose,
    Workspace,
    app,
    clear_errors,
    quiet_tensorflow,
)


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
        typer.echo(result.header, err=True)
        for row in result.table.itertuples(index=False):
            typer.echo(f"{row.file:<{width}}  {row._1:<10}  {row.probability:.3f}")
