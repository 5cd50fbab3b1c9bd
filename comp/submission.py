"""Writing and validating the leaderboard CSV and its manifest (never overwriting)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from comp.errors import CompError
from comp.workspace import atomic_write, write_json


def read_sample(path: Path, id_column: str) -> pd.DataFrame:
    """A sample submission: its ids (as strings, in order) and columns."""
    if not path.exists():
        raise CompError(f"{path}: sample submission not found; check the path")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if id_column not in frame.columns:
        raise CompError(f"{path}: no id column {id_column!r} (columns: "
                        f"{', '.join(frame.columns)}); pass --id-column")
    return frame


def build_frame(ids: list[str], labels: list[str], sample: pd.DataFrame | None,
                id_column: str, label_column: str, sample_path: Path | None = None
                ) -> pd.DataFrame:
    """The submission table: the sample's ids, order and columns when given, else id,label."""
    predicted = dict(zip(ids, labels, strict=True))
    if sample is None:
        return pd.DataFrame({id_column: ids, label_column: labels})
    sample_ids = sample[id_column].tolist()
    missing = [i for i in sample_ids if i not in predicted]
    extra = sorted(set(predicted) - set(sample_ids))
    if missing or extra:
        what = (f"{len(missing)} of its ids have no image (first: {missing[0]!r})" if missing
                else f"{len(extra)} images are not in it (first: {extra[0]!r})")
        raise CompError(f"{sample_path}: sample submission does not match the target images: "
                        f"{what}; pass the sample that belongs to this target set")
    out = sample.copy()
    column = label_column if label_column in out.columns else out.columns[-1]
    out[column] = [predicted[i] for i in sample_ids]
    return out


def validate(frame: pd.DataFrame, ids: list[str], allowed: list[str], id_column: str,
             label_column: str) -> None:
    """Every target id exactly once, no extra ids, labels in the allowed set."""
    got = frame[id_column].astype(str)
    dup = got[got.duplicated()]
    if len(dup):
        raise CompError(f"submission has id {dup.iloc[0]!r} more than once")
    missing = set(ids) - set(got)
    extra = set(got) - set(ids)
    if missing or extra:
        raise CompError(f"submission ids differ from the target images: {len(missing)} missing, "
                        f"{len(extra)} extra")
    column = label_column if label_column in frame.columns else frame.columns[-1]
    bad = frame[~frame[column].astype(str).isin(allowed)]
    if len(bad):
        raise CompError(f"submission label {bad[column].iloc[0]!r} is not one of "
                        f"{', '.join(allowed)}")


def new_path(folder: Path, run_names: list[str], suffix: str = ".csv") -> Path:
    """submissions/<timestamp>_<run>.csv, never an existing name."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}_{'+'.join(run_names)}"
    path, k = folder / f"{stem}{suffix}", 2
    while path.exists() or path.with_suffix(".json").exists():
        path, k = folder / f"{stem}-{k}{suffix}", k + 1
    return path


def write(frame: pd.DataFrame, manifest: dict[str, Any], path: Path) -> Path:
    """Write the CSV (atomically) and its manifest beside it; returns the CSV path."""
    atomic_write(path, lambda p: frame.to_csv(p, index=False))
    write_json(path.with_suffix(".json"), manifest)
    return path
