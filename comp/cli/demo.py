"""`comp demo-data` and `comp demo`: the synthetic challenge, and the whole challenge on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Json,
    Verbose,
    app,
    clear_errors,
    echo_json,
    quiet_tensorflow,
)


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
    seed: Annotated[int, typer.Option(help="Random seed of the generated images and labels.")]
    = 0,
    json: Json = False,
) -> None:
    """Write a synthetic two-phase face challenge with planted duplicates, conflicts and leaks."""
    from comp.demo.generate import DemoSpec, make_demo

    spec = DemoSpec(train=train, val=val, test=test, size=size, classes=classes, seed=seed)
    answers = make_demo(out, spec)
    if json:
        echo_json(answers)
        return
    typer.echo(f"wrote {spec.train:,} training images ({answers['exact_duplicates']:,} exact and "
               f"{answers['near_duplicates']:,} near copies, {answers['conflicts']:,} copies "
               f"given the other label), {spec.val:,} val images (all copies of training "
               f"images) and {spec.test:,} phase-2 test images ({answers['test_leaks']:,} "
               f"from train), {spec.size}x{spec.size}; classes: "
               f"{', '.join(answers['classes'])}")
    typer.echo(f"answers: {out / 'answers'} (and answers.json); challenge: {out}")


@app.command()
@clear_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo challenge and its outputs.")]
    = Path("data/demo"),
    train: Annotated[int, typer.Option(min=100, help="Training images.")] = c.DEMO_TRAIN,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of each fold's res.")]
    = c.DEMO_EPOCHS,
    seed: Annotated[int, typer.Option(help="Random seed of the generated data and of training.")]
    = 0,
    verbose: Verbose = False,
) -> None:
    """The whole two-phase challenge on the demo data, by comp's defaults: generate, prepare,
    train one res per fold, submit by the out-of-fold rule, then phase 2."""
    quiet_tensorflow(verbose)
    from comp.demo.pipeline import run_demo

    run_demo(out, n_train=train, epochs=epochs, seed=seed, echo=typer.echo)
