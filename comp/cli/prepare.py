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


Challenge = Annotated[Path | None, typer.Argument(
    help="Challenge folder: train/ (or images/), train.csv (or labels.csv), val/, test/.")]
Train = Annotated[Path | None, typer.Option(help="Folder of training images.")]
Labels = Annotated[Path | None, typer.Option(help="Labels CSV (id and label columns).")]
Val = Annotated[Path | None, typer.Option(help="Unlabelled validation folder.")]
Test = Annotated[Path | None, typer.Option(
    help="Test folder; on a prepared workspace only these images are ingested.")]
IdColumn = Annotated[str, typer.Option(help="Id column of the labels CSV.")]
LabelColumn = Annotated[str, typer.Option(help="Label column of the labels CSV.")]
Classes = Annotated[str | None, typer.Option(
    help="Comma-separated class names, in order (default: 0/1, or sorted names).")]
Size = Annotated[str | None, typer.Option(
    help="Resize every image (train, val and test) to HxW, e.g. 50x50.")]
Gray = Annotated[bool, typer.Option("--gray", help="Store one grayscale channel.")]
FitOption = Annotated[c.Fit, typer.Option(
    help="How --size meets another aspect ratio; face: crop each image to its main face.")]
Faces = Annotated[bool, typer.Option(
    "--faces", help="Crop every image to its main face, upright, with a margin (YuNet "
    "through OpenCV; the same as --fit face).")]
NoFaceOption = Annotated[c.NoFace, typer.Option(
    help="With --faces, images with no face found: keep (centre crop), skip (dropped from "
    "training) or fail.")]
MaxDistance = Annotated[int, typer.Option(
    min=0, max=16, help="Hash distance for duplicate candidates.")]
PixelThreshold = Annotated[float, typer.Option(
    min=0, help="Largest mean pixel difference (0-255, brightness offset removed) of a "
    "duplicate.")]
ConflictsOption = Annotated[c.Conflicts, typer.Option(
    help="Duplicate groups whose labels disagree.")]
DuplicatesOption = Annotated[c.Duplicates, typer.Option(
    help="Members kept per duplicate group.")]
Split = Annotated[str, typer.Option(help="train/val/holdout fractions.")]
DEFAULT_SPLIT = ",".join(map(str, c.DEFAULT_SPLIT))
Folds = Annotated[int, typer.Option(
    min=2, help="K folds over every kept labelled image (index.csv's fold column).")]
Groups = Annotated[str | None, typer.Option(
    help="FILE:COLUMN giving a group per id (e.g. identity); groups never straddle splits.")]
SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Skip bad files, count them.")]
Exclude = Annotated[Path | None, typer.Option(
    help="CSV with an id column (e.g. comp audit's audit.csv): training ids to drop.")]
Relabel = Annotated[Path | None, typer.Option(
    help="CSV of id,label: new labels for those training ids.")]
Workers = Annotated[int | None, typer.Option(
    min=1, help="Decoding processes (default: cores).")]
SizeMismatchOption = Annotated[c.SizeMismatch, typer.Option(
    help="val/test images of another native size than train (without --size).")]


@app.command()
@clear_errors
def prepare(  # noqa: PLR0913 - one parameter per option of the command
    challenge: Challenge = None, workspace: Workspace = c.DEFAULT_WORKSPACE,
    train: Train = None, labels: Labels = None, val: Val = None, test: Test = None,
    id_column: IdColumn = "id", label_column: LabelColumn = "label", classes: Classes = None,
    size: Size = None, gray: Gray = False, fit: FitOption = c.Fit.CROP, faces: Faces = False,
    no_face: NoFaceOption = c.NoFace.KEEP, max_distance: MaxDistance = c.DEFAULT_MAX_DISTANCE,
    pixel_threshold: PixelThreshold = c.DEFAULT_PIXEL_THRESHOLD,
    conflicts: ConflictsOption = c.Conflicts.DROP,
    duplicates: DuplicatesOption = c.Duplicates.KEEP_ONE,
    split: Split = DEFAULT_SPLIT, folds: Folds = c.DEFAULT_FOLDS,
    seed: Seed = c.DEFAULT_SEED, groups: Groups = None, skip_bad: SkipBad = False,
    exclude: Exclude = None, relabel: Relabel = None, workers: Workers = None,
    on_size_mismatch: SizeMismatchOption = c.SizeMismatch.FAIL, profile: Profile = False,
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
