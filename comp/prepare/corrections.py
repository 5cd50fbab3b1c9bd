"""Acting on a label audit: `--exclude FILE` drops the listed training ids, `--relabel FILE`
gives the listed ids new labels, both before anything is decoded (so the fingerprint, the
duplicate groups, the splits and the folds are those of the corrected labels)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from comp.errors import CompError
from comp.prepare.files import TrainSet
from comp.prepare.labels import read_labels


def _unknown(path: Path, ids: list[str], option: str) -> CompError:
    shown = ", ".join(repr(i) for i in ids[:3]) + (f" and {len(ids) - 3} more"
                                                     if len(ids) > 3 else "")
    return CompError(f"{path}: {len(ids)} id(s) of {option} are not training images ({shown}); "
                     "list training ids only (an audit.csv of this workspace works as is)")


def _read(path: Path, option: str, label: bool) -> pd.DataFrame:
    """The id (and label) columns of a corrections file, or one line saying what is wrong."""
    if not path.is_file():
        raise CompError(f"{option} {path}: file not found; pass a CSV with an id column"
                        + (" and a label column" if label else ""))
    try:
        head = pd.read_csv(path, dtype=str, nrows=0)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CompError(f"{option} {path}: cannot read as CSV ({str(exc).splitlines()[0]}); "
                        "fix the file") from None
    needed = ["id", "label"] if label else ["id"]
    missing = [c for c in needed if c not in head.columns]
    if missing:
        raise CompError(f"{option} {path}: no column {missing[0]!r} (columns: "
                        f"{', '.join(head.columns) or 'none'}); the file needs "
                        f"{' and '.join(needed)}")
    return read_labels(path, id_column="id", label_column="label" if label else "id")


def apply_corrections(found: TrainSet, *, exclude: Path | None, relabel: Path | None
                      ) -> tuple[TrainSet, dict[str, int]]:
    """The training set with `relabel` applied and `exclude`'s ids dropped, and how many of
    each. `relabel`: a CSV with `id` and `label` columns (labels among the classes found);
    `exclude`: a CSV with an `id` column (other columns are ignored)."""
    counts = {"excluded": 0, "relabelled": 0}
    if relabel is None and exclude is None:
        return found, counts
    known = set(found.ids)
    labels = list(found.label_text)
    if relabel is not None:
        frame = _read(relabel, "--relabel", label=True)
        missing = [i for i in frame["id"] if i not in known]
        if missing:
            raise _unknown(relabel, missing, "--relabel")
        classes = set(found.label_text)
        strange = sorted(set(frame["label_text"]) - classes)
        if strange:
            raise CompError(f"{relabel}: label {strange[0]!r} is not one of the classes "
                            f"({', '.join(sorted(classes))}); use the training labels' names")
        new = dict(zip(frame["id"], frame["label_text"], strict=True))
        position = {i: k for k, i in enumerate(found.ids)}
        for i, label in new.items():
            counts["relabelled"] += labels[position[i]] != label
            labels[position[i]] = label
    drop: set[str] = set()
    if exclude is not None:
        frame = _read(exclude, "--exclude", label=False)
        missing = [i for i in frame["id"] if i not in known]
        if missing:
            raise _unknown(exclude, missing, "--exclude")
        drop = set(frame["id"])
        counts["excluded"] = len(drop)
    keep = [k for k, i in enumerate(found.ids) if i not in drop]
    if not keep:
        raise CompError(f"{exclude}: excludes every training image; list fewer ids")
    left = {labels[k] for k in keep}
    if len(left) < 2 <= len(set(found.label_text)):  # the corrections, not the labels, did it
        files = " and ".join(str(p) for p in (relabel, exclude) if p is not None)
        raise CompError(f"{files}: after them every training label is {left.pop()!r}: a "
                        "classifier needs at least two classes; correct fewer images")
    return replace(found, paths=[found.paths[k] for k in keep], ids=[found.ids[k] for k in keep],
                   label_text=[labels[k] for k in keep],
                   given_text=[found.label_text[k] for k in keep]), counts
