"""What `comp prepare` says: the typed summary (stored in meta.json), its short human form,
prepare-report.md and its montages (duplicate groups, conflicts, images without a face)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp.pictures import montage
from comp.workspace import Meta, Workspace, write_text

NO_FACE_ACTIONS = {"keep": "kept as centre crops", "skip": "dropped", "fail": "none"}


@dataclass(frozen=True)
class PrepareSummary:
    """The counts of a prepared workspace (meta.json's `summary`, flat as JSON)."""

    images_read: int
    skipped: int
    size: list[int]
    channels: int
    store_mb: float
    duplicate_pairs: int
    duplicate_pairs_exact_hash: int
    duplicate_groups: int
    images_in_duplicate_groups: int
    conflict_groups: int
    dropped_conflicts: int
    dropped_duplicates: int
    kept: int
    class_balance: dict[str, dict[str, int]]  # split -> class -> images
    seconds: float
    bad_files: list[str] = field(default_factory=list)  # the first 20 skipped files
    classes: list[str] = field(default_factory=list)
    folds: int = 0
    identity_groups: int | None = None  # with --groups
    excluded: int = 0  # --exclude
    relabelled: int = 0  # --relabel
    val_images: int = 0
    val_in_train: int = 0  # val images that copy a labelled training image
    val_in_train_consistent: int = 0  # ... whose copies carry one label
    test_images: int = 0
    test_in_train: int = 0
    test_in_train_consistent: int = 0
    no_face: int | None = None  # --faces: training images in which no face was found
    val_no_face: int | None = None
    test_no_face: int | None = None
    no_face_action: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrepareSummary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_test(self, *, images: int, in_train: int, consistent: int, no_face: int | None,
                  seconds: float) -> PrepareSummary:
        """The summary after a phase-2 ingest replaced the test set."""
        return replace(self, test_images=images, test_in_train=in_train,
                       test_in_train_consistent=consistent, test_no_face=no_face,
                       seconds=seconds)

    def lines(self) -> list[str]:
        """The short human form: what a competitor checks after prepare, one screen."""
        h, w = self.size
        colour = "gray" if self.channels == 1 else "RGB"
        out = [f"read {self.images_read:,} training images ({h}x{w} {colour}, store "
               f"{self.store_mb} MB) in {self.seconds} s; classes: {', '.join(self.classes)}"]
        if self.skipped:
            first = f" (first: {self.bad_files[0]})" if self.bad_files else ""
            out.append(f"skipped {self.skipped:,} bad files{first}")
        if self.excluded or self.relabelled:
            out.append(f"corrections: {self.excluded:,} excluded, {self.relabelled:,} "
                       "relabelled")
        out.append(f"duplicates: {self.duplicate_groups:,} groups of "
                   f"{self.images_in_duplicate_groups:,} images ({self.dropped_duplicates:,} "
                   f"dropped, one kept per group); conflicting labels: "
                   f"{self.conflict_groups:,} groups ({self.dropped_conflicts:,} images dropped)")
        splits = "; ".join(
            f"{split} {sum(counts.values()):,} (" + ", ".join(
                f"{c}: {n:,}" for c, n in counts.items()) + ")"
            for split, counts in self.class_balance.items())
        folds = f", {self.folds} folds over all of them" if self.folds else ""
        out.append(f"kept {self.kept:,}: {splits}{folds}")
        if self.identity_groups is not None:
            out.append(f"identity groups: {self.identity_groups:,} (never split across sides)")
        out += self.target_lines()
        if self.no_face is not None:
            action = NO_FACE_ACTIONS.get(self.no_face_action or "keep", "kept")
            out.append(f"faces: none found in {self.no_face:,} training images ({action})")
        return out

    def target_lines(self, sources: tuple[str, ...] = ("val", "test")) -> list[str]:
        """One line per unlabelled set: its size and its copies of labelled images."""
        out = []
        for source in sources:
            images = getattr(self, f"{source}_images")
            if images:
                faceless = getattr(self, f"{source}_no_face")
                out.append(f"{source}: {images:,} images, {getattr(self, source + '_in_train'):,} "
                           f"copy labelled training images ("
                           f"{getattr(self, source + '_in_train_consistent'):,} with one "
                           "consistent label)" + (f"; no face found in {faceless:,}"
                                                  if faceless else ""))
        return out


def summarise(index: pd.DataFrame, pairs: pd.DataFrame, overlap: pd.DataFrame,
              bad: list[str], meta: Meta, seconds: float, *, folds: int,
              corrected: dict[str, int], no_face: dict[str, int],
              no_face_action: str | None) -> PrepareSummary:
    """The counts the prepare report shows (also stored in meta.json)."""
    train = index[index["source"] == "train"]
    groups = train.groupby("group").size()
    dup_groups = groups[groups > 1]
    classes = meta.classes
    balance = {}
    for split in ("train", "val", "holdout"):
        part = train[train["split"] == split]
        balance[split] = {classes[c]: int(n) for c, n in part["label"].value_counts().sort_index()
                          .items()}
    targets: dict[str, int] = {}
    for source in ("val", "test"):
        n = int((index["source"] == source).sum())
        if n:
            part = overlap[overlap["source"] == source]
            targets[f"{source}_images"] = n
            targets[f"{source}_in_train"] = int(len(part))
            targets[f"{source}_in_train_consistent"] = int(part["consistent"].astype(bool).sum())
    return PrepareSummary(
        images_read=int(len(train)), skipped=len(bad), size=list(meta.size),
        channels=meta.channels,
        store_mb=round(len(train) * int(np.prod(meta.size)) * meta.channels / 2**20, 1),
        duplicate_pairs=int(len(pairs)),
        duplicate_pairs_exact_hash=int((pairs["distance"] == 0).sum()) if len(pairs) else 0,
        duplicate_groups=int(len(dup_groups)),
        images_in_duplicate_groups=int(dup_groups.sum()),
        conflict_groups=int(train[train["conflict"].astype(bool)]["group"].nunique()),
        dropped_conflicts=int((train["split"] == "conflict").sum()),
        dropped_duplicates=int((train["split"] == "duplicate").sum()),
        kept=int(train["kept"].astype(bool).sum()), class_balance=balance,
        seconds=round(seconds, 2), bad_files=bad[:20], classes=list(classes), folds=folds,
        identity_groups=int(train["split_group"].nunique()) if meta.groups else None,
        excluded=corrected.get("excluded", 0), relabelled=corrected.get("relabelled", 0),
        no_face_action=no_face_action, **targets, **no_face)


def no_face_montage(paths: list[str], *, ws: Workspace, size: tuple[int, int], gray: bool,
                    limit: int = 24) -> None:
    """The training images in which `--faces` found no face (centre-cropped), up to `limit`."""
    from comp.prepare.image import decode_file

    shown = []
    for path in paths[:limit]:
        pixels, _, _ = decode_file(path, size, gray, "crop")
        shown.append((pixels, Path(path).stem))
    rows = [shown[k:k + 8] for k in range(0, len(shown), 8)]
    more = f", {len(paths) - limit:,} more not shown" if len(paths) > limit else ""
    montage(rows, f"No face found: {len(paths):,} training images (centre crops{more})",
            ws.no_face_png)


def _group_samples(train: pd.DataFrame, store: np.ndarray, mask: pd.Series, classes: list[str],
                   limit: int = 8) -> list[list[tuple[np.ndarray, str]]]:
    out = []
    for _, members in train[mask].groupby("group"):
        if len(members) < 2:
            continue
        out.append([(np.asarray(store[int(m.row)]),
                     f"{m.id}\n{classes[int(m.original_label)]}")
                    for m in members.head(5).itertuples()])
        if len(out) == limit:
            break
    return out


def write_prepare_report(ws: Workspace, index: pd.DataFrame, pairs: pd.DataFrame,
                         overlap: pd.DataFrame, summary: PrepareSummary, store: np.ndarray,
                         classes: list[str]) -> None:
    """prepare-report.md plus montages of duplicate groups and of conflicts."""
    train = index[index["source"] == "train"]
    sizes = train.groupby("group")["id"].transform("size")
    conflict = train["conflict"].astype(bool)
    montage(_group_samples(train, store, (sizes > 1) & ~conflict, classes),
            "Duplicate groups (one row per group; id and label)", ws.duplicates_png)
    montage(_group_samples(train, store, conflict, classes),
            "Conflicting duplicates (same image, different labels): dropped",
            ws.conflicts_png)
    lines = ["# prepare report", "",
             f"- images read: {summary.images_read:,} "
             f"({summary.size[0]}x{summary.size[1]}x{summary.channels}, "
             f"store {summary.store_mb} MB)",
             f"- skipped files: {summary.skipped}",
             f"- duplicate pairs (hash candidates confirmed by pixels): "
             f"{summary.duplicate_pairs:,}, of which equal hashes: "
             f"{summary.duplicate_pairs_exact_hash:,}",
             f"- duplicate groups: {summary.duplicate_groups:,} "
             f"({summary.images_in_duplicate_groups:,} images)",
             f"- groups with conflicting labels: {summary.conflict_groups:,} "
             f"({summary.dropped_conflicts:,} images dropped)",
             f"- duplicates dropped (one kept per group): {summary.dropped_duplicates:,}",
             f"- kept for training: {summary.kept:,}"]
    if summary.identity_groups is not None:
        lines.append(f"- identity groups (never split across sides): "
                     f"{summary.identity_groups:,}")
    lines += [f"- {line}" for line in summary.target_lines()]
    if summary.no_face is not None:
        action = NO_FACE_ACTIONS.get(summary.no_face_action or "keep", "kept")
        lines.append(f"- face crops: no face found in {summary.no_face:,} training images "
                     f"({action})")
    lines += ["", "## Class balance per split", "", "| split | " +
              " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for split, counts in summary.class_balance.items():
        lines.append(f"| {split} | " + " | ".join(str(counts.get(c, 0)) for c in classes) + " |")
    if summary.bad_files:
        lines += ["", "## Skipped files", ""] + [f"- {b}" for b in summary.bad_files]
    lines += ["", "## Pictures", "", "![duplicates](duplicates.png)", "",
              "![conflicts](conflicts.png)", ""]
    if summary.no_face is not None:
        lines += ["![no face found](no-face.png)", ""]
    lines += [f"Prepared in {summary.seconds} s. Machine-readable: index.csv, pairs.csv, "
              "overlap.csv.", ""]
    write_text(ws.report, "\n".join(lines))


