"""Finding a challenge's files: image listings, ids, and the pairing of images with labels."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from comp.config import PrepareConfig
from comp.errors import CompError
from comp.prepare.labels import header_is_data, read_labels, read_table

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

TRAIN_FOLDERS = ("train", "images")


LABEL_FILES = ("train.csv", "labels.csv", "train_labels.csv")


def list_images(folder: Path) -> list[str]:
    """Paths (plain strings: 116k Path objects cost a second) of the image files directly
    inside `folder`, sorted by name."""
    if not folder.exists():
        raise CompError(f"{folder}: folder not found; check the path")
    if not folder.is_dir():
        raise CompError(f"{folder}: not a folder; pass the folder that holds the images")
    try:
        with os.scandir(folder) as entries:  # scandir knows file types without a stat each
            names = sorted(e.name for e in entries
                           if e.name[e.name.rfind("."):].lower() in IMAGE_SUFFIXES
                           and _is_file(folder, e))
    except PermissionError as exc:
        raise CompError(f"{folder}: cannot read the folder ({exc.strerror}); fix its "
                        "permissions") from None
    if not names:
        raise CompError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                        "point to the folder that holds the images")
    base = os.path.join(folder, "")
    return [base + name for name in names]


def _is_file(folder: Path, entry: os.DirEntry[str]) -> bool:
    """A regular file (or a link to one) with a name that can be written out again."""
    try:
        entry.name.encode("utf-8")
    except UnicodeEncodeError:
        raise CompError(f"{folder}: the file name {entry.name!r} is not valid UTF-8; rename "
                        "the file") from None
    try:
        return entry.is_file()
    except OSError as exc:  # a symbolic-link loop, a vanished file
        raise CompError(f"{os.path.join(folder, entry.name)}: cannot read it ({exc.strerror}); "
                        "replace or remove it") from None


def file_id(path: str) -> str:
    """The id of an image file: its name without the extension (as `Path.stem`)."""
    name = path[path.rfind(os.sep) + 1:]
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


@dataclass
class TrainSet:
    """The labelled images found in a challenge, before decoding."""

    paths: list[str]
    ids: list[str]
    label_text: list[str]
    skipped: list[str]
    source: str  # where the labels came from, for messages
    given_text: list[str] | None = None  # the labels as given, when --relabel changed some


def find_train(cfg: PrepareConfig) -> TrainSet:
    """Pair every training image with its label: a labels CSV, or one folder per class."""
    root = cfg.challenge
    folder = cfg.train or next((root / n for n in TRAIN_FOLDERS if root and (root / n).is_dir()),
                               None) or _only_image_folder(root)
    if folder is None:
        raise CompError(f"{root}: no training folder ({' or '.join(TRAIN_FOLDERS)}); "
                        "pass --train FOLDER")
    labels = cfg.labels or next((root / n for n in LABEL_FILES if root and (root / n).exists()),
                                None) or _only_csv(root)
    if labels is None:
        return _find_by_class_folders(folder)
    paths = list_images(folder)
    stems = [file_id(p) for p in paths]
    id_column, label_column = _columns(labels, cfg.id_column, cfg.label_column, stems)
    frame = read_labels(labels, id_column=id_column, label_column=label_column)
    by_id = dict(zip(stems, paths, strict=True))
    if len(by_id) != len(paths):
        seen: dict[str, str] = {}
        for p, stem in zip(paths, stems, strict=True):
            if stem in seen:
                raise CompError(f"{p}: id {stem!r} also used by {os.path.basename(seen[stem])}; "
                                "keep one file per id")
            seen[stem] = p
    skipped = []
    ids = frame["id"].to_numpy(dtype=object)
    has_image = np.fromiter((i in by_id for i in ids), dtype=bool, count=len(ids))
    if not has_image.all():
        missing = np.flatnonzero(~has_image)
        msg = (f"{labels}: id {ids[missing[0]]!r} (row {missing[0] + 2}) has no "
               f"image in {folder} ({len(missing)} such ids); add the image or remove the row")
        if not cfg.skip_bad:
            raise CompError(msg + ", or pass --skip-bad")
        skipped += [f"{labels}: id {ids[k]!r} has no image" for k in missing]
    if len(by_id) > has_image.sum():
        labelled = set(ids.tolist())
        unlabelled = [p for p, stem in zip(paths, stems, strict=True) if stem not in labelled]
        msg = (f"{unlabelled[0]}: image has no label in {labels} ({len(unlabelled)} such "
               "images); add a row for it or move it out of the folder")
        if not cfg.skip_bad:
            raise CompError(msg + ", or pass --skip-bad")
        skipped += [f"{p}: no label" for p in unlabelled]
    frame = frame[has_image]
    return TrainSet([by_id[i] for i in frame["id"]], frame["id"].tolist(),
                    frame["label_text"].tolist(), skipped, str(labels))


def _only_image_folder(root: Path | None) -> Path | None:
    """The challenge's one sub-folder holding images (a layout like profile/<userid>.jpg),
    when there is exactly one other than val/ and test/."""
    if root is None or not root.is_dir():
        return None
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name not in ("val", "test")
             and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())]
    return found[0] if len(found) == 1 else None


def _only_csv(root: Path | None) -> Path | None:
    """The challenge's one CSV that is not a sample submission (profile.csv, gender.csv...)."""
    if root is None or not root.is_dir():
        return None
    found = [p for p in sorted(root.glob("*.csv")) if not p.name.startswith("sample_submission")]
    return found[0] if len(found) == 1 else None


def _stem(value: str) -> str:
    return re.sub(r"\.(png|jpe?g|bmp|gif|webp|tiff?)$", "", value.strip(), flags=re.I)


def _columns(labels: Path, id_column: str, label_column: str, stems: list[str]
             ) -> tuple[str, str]:
    """The id and label columns: as given when the file has them; else, with the defaults,
    the column whose values name the images (userid) and the one other column (gender)."""
    try:
        frame = read_table(labels, nrows=2000)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError):
        return id_column, label_column  # read_labels says what is wrong
    columns = list(frame.columns)
    if id_column in columns and label_column in columns:
        return id_column, label_column
    known = set(stems)
    if id_column not in columns and id_column == "id":
        matches = {c: frame[c].str.strip().str.replace(
            r"\.(png|jpe?g|bmp|gif|webp|tiff?)$", "", regex=True, case=False).isin(known).mean()
                   for c in columns}
        best = max(matches, key=lambda c: matches[c], default=None)
        if best is not None and matches[best] > 0.5:
            id_column = best
            if _stem(best) in known:  # the first row of ids was read as the header
                raise header_is_data(labels, columns)
    if label_column not in columns and label_column == "label":
        others = [c for c in columns if c != id_column]
        if len(others) == 1:
            label_column = others[0]
    return id_column, label_column


def _find_by_class_folders(folder: Path) -> TrainSet:
    classes = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise CompError(f"{folder}: no labels file and no class sub-folders; pass --labels FILE")
    paths, ids, labels = [], [], []
    for cls in classes:
        try:
            cls.name.encode("utf-8")
        except UnicodeEncodeError:
            raise CompError(f"{folder}: the class folder name {cls.name!r} is not valid UTF-8; "
                            "rename the folder (its name is the class)") from None
        for p in list_images(cls):
            paths.append(p)
            ids.append(f"{cls.name}/{file_id(p)}")
            labels.append(cls.name)
    return TrainSet(paths, ids, labels, [], str(folder))
