"""`comp audit`: likely label errors among the training images."""

from __future__ import annotations

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
def audit(
    run: Annotated[str | None, typer.Argument(
        help="A cross-fitted run (default: the best cross-fitted run).")] = None,
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    rank_by: Annotated[c.RankBy, typer.Option(help="cleanlab's ranking of the suspects.")]
    = c.RankBy.SELF_CONFIDENCE,
    verbose: Verbose = False,
) -> None:
    """Find likely label errors among the training images (cleanlab, out-of-fold)."""
    quiet_tensorflow(verbose)
    from comp.audit import audit as run_audit

    result = run_audit(c.AuditConfig(workspace=workspace, run=run, checkpoints=checkpoints,
                                     rank_by=rank_by))
    typer.echo(f"{result.suspects:,} of {result.images:,} labelled images are likely "
               "mislabelled; by given label: " + ", ".join(
                   f"{c} {n:,} (estimated noise {result.noise_rate[c]:.3f})"
                   for c, n in result.per_class.items()))
    typer.echo(f"audit: {result.folder / 'audit.csv'} (pictures: suspects.png; act on it: "
               f"comp prepare ... --exclude {result.folder / 'audit.csv'} or --relabel "
               f"{result.folder / 'relabel.csv'})")
