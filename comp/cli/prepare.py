"""`comp prepare`: a challenge's files into a workspace (or, phase 2, new test images)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from comp import config as c
from comp.cli.base import (
    Json,
    Profile,
    Seed,
    Workspace,
    app,
    clear_errors,
    echo_json,
)
from comp.errors import CompError


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
    json: Json = False,
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
    if json:
        echo_json({**result.summary.to_json(), "report": str(result.report),
                   "phase2": result.phase2})
        return
    lines = result.lines()
    if profile:
        lines[-1:-1] = ["stages:", result.clock.table()]
    typer.echo("\n".join(lines))
