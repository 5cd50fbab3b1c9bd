"""`comp tune`: the Optuna search over training options."""

from __future__ import annotations

from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Seed,
    Verbose,
    Workspace,
    app,
    clear_errors,
    quiet_tensorflow,
)


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
