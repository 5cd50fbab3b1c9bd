"""`comp runs`: the experiment table, and leaderboard scores given to submissions."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import Checkpoints, Json, Workspace, app, clear_errors, echo_json


@app.command()
@clear_errors
def runs(
    workspace: Workspace = c.DEFAULT_WORKSPACE,
    checkpoints: Checkpoints = c.DEFAULT_CHECKPOINTS,
    submissions: Annotated[Path, typer.Option(help="Where submissions are written.")]
    = c.DEFAULT_SUBMISSIONS,
    sort: Annotated[str, typer.Option(
        help="Order of the rows: created, name, oof, lb (best first) or time.")] = "created",
    lb: Annotated[tuple[str, float] | None, typer.Option(
        help="SUBMISSION SCORE: keep the leaderboard score of a submission (its CSV name), "
        "then show the table.")] = None,
    json: Json = False,
) -> None:
    """Every run of the workspace: model, folds, epochs, changed options, comp submit's nested
    out-of-fold headline (and, apart, its best own candidate's self-selected score), training
    time, the submissions made from it and their leaderboard scores."""
    from comp.experiments import as_lines, set_leaderboard, table

    if lb is not None:
        stem = set_leaderboard(submissions, lb[0], lb[1])
        if not json:
            typer.echo(f"leaderboard: {stem} scored {lb[1]:.4f}")
    rows, others = table(workspace, checkpoints, submissions, sort=sort)
    if json:
        echo_json({"runs": [{**asdict(r), "best_lb": r.best_lb} for r in rows],
                   "other_data": others})
        return
    typer.echo("\n".join(as_lines(rows, others)))
