"""Plots and markdown reports: what a person would rather look at than read.

Montages of images are drawn with PIL (a grid of pictures needs no axes, and it takes
milliseconds); plots with matplotlib, imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from comp.workspace import Meta, Workspace, atomic_write, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    _pyplot().close(fig)


def prepare_summary(index: pd.DataFrame, pairs: pd.DataFrame, overlap: pd.DataFrame,
                    bad: list[str], meta: Meta, seconds: float) -> dict[str, Any]:
    """The counts the prepare report shows (also stored in meta.json)."""
    train = index[index["source"] == "train"]
    groups = train.groupby("group").size()
    dup_groups = groups[groups > 1]
    conflict_groups = train[train["conflict"].astype(bool)]["group"].nunique()
    classes = meta.classes
    balance = {}
    for split in ("train", "val", "holdout"):
        part = train[train["split"] == split]
        balance[split] = {classes[c]: int(n) for c, n in part["label"].value_counts().sort_index()
                          .items()}
    summary: dict[str, Any] = {
        "images_read": int(len(train)),
        "skipped": len(bad),
        "size": meta.size, "channels": meta.channels,
        "store_mb": round(len(train) * int(np.prod(meta.size)) * meta.channels / 2**20, 1),
        "duplicate_pairs": int(len(pairs)),
        "duplicate_pairs_exact_hash": int((pairs["distance"] == 0).sum()) if len(pairs) else 0,
        "duplicate_groups": int(len(dup_groups)),
        "images_in_duplicate_groups": int(dup_groups.sum()),
        "conflict_groups": int(conflict_groups),
        "dropped_conflicts": int((train["split"] == "conflict").sum()),
        "dropped_duplicates": int((train["split"] == "duplicate").sum()),
        "kept": int(train["kept"].astype(bool).sum()),
        "class_balance": balance,
        "seconds": round(seconds, 2),
        "bad_files": bad[:20],
    }
    if meta.groups:
        summary["identity_groups"] = int(train["split_group"].nunique())
    for source in ("val", "test"):
        n = int((index["source"] == source).sum())
        if n:
            part = overlap[overlap["source"] == source]
            summary[f"{source}_images"] = n
            summary[f"{source}_in_train"] = int(len(part))
            summary[f"{source}_in_train_consistent"] = int(part["consistent"].astype(bool).sum())
    return summary


def montage(groups: list[list[tuple[np.ndarray, str]]], title: str, path: Path) -> None:
    """One row per group of images, each enlarged and captioned; saved atomically as PNG."""
    font = ImageFont.load_default(size=11)
    sample = next((image for group in groups for image, _ in group), None)
    h, w = sample.shape[:2] if sample is not None else (56, 56)
    scale = max(1, 112 // max(h, w))
    cell_w, cell_h, caption_h, pad, title_h = max(w * scale, 96), h * scale, 30, 8, 28
    cols = max((len(g) for g in groups), default=1)
    rows = max(len(groups), 1)
    width = max(pad + cols * (cell_w + pad), 420)
    canvas = Image.new("RGB", (width, title_h + rows * (cell_h + caption_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 8), title, fill="black", font=font)
    if not groups:
        draw.text((pad, title_h + 8), "none found", fill="black", font=font)
    for r, group in enumerate(groups):
        top = title_h + r * (cell_h + caption_h + pad)
        for c, (image, caption) in enumerate(group):
            left = pad + c * (cell_w + pad)
            picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            picture = picture.resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(picture.convert("RGB"), (left, top))
            draw.multiline_text((left, top + cell_h + 2), caption, fill="black", font=font,
                                spacing=2)
    atomic_write(path, lambda p: canvas.save(p, format="PNG"))


def no_face_montage(paths: list[str], *, ws: Workspace, size: tuple[int, int], gray: bool,
                    limit: int = 24) -> None:
    """The training images in which `--faces` found no face (centre-cropped), up to `limit`."""
    from comp.prepare.decode import decode_file

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
                         overlap: pd.DataFrame, summary: dict[str, Any], store: np.ndarray,
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
             f"- images read: {summary['images_read']:,} "
             f"({summary['size'][0]}x{summary['size'][1]}x{summary['channels']}, "
             f"store {summary['store_mb']} MB)",
             f"- skipped files: {summary['skipped']}",
             f"- duplicate pairs (hash candidates confirmed by pixels): "
             f"{summary['duplicate_pairs']:,}, of which equal hashes: "
             f"{summary['duplicate_pairs_exact_hash']:,}",
             f"- duplicate groups: {summary['duplicate_groups']:,} "
             f"({summary['images_in_duplicate_groups']:,} images)",
             f"- groups with conflicting labels: {summary['conflict_groups']:,} "
             f"({summary['dropped_conflicts']:,} images dropped)",
             f"- duplicates dropped (one kept per group): {summary['dropped_duplicates']:,}",
             f"- kept for training: {summary['kept']:,}"]
    if "identity_groups" in summary:
        lines.append(f"- identity groups (never split across sides): "
                     f"{summary['identity_groups']:,}")
    for source in ("val", "test"):
        if f"{source}_images" in summary:
            lines.append(f"- {source}: {summary[source + '_images']:,} images, "
                         f"{summary[source + '_in_train']:,} match a training image "
                         f"({summary[source + '_in_train_consistent']:,} with one consistent "
                         "label)")
    if "no_face" in summary:
        action = {"keep": "kept as centre crops", "skip": "dropped",
                  "fail": "none"}[summary["no_face_action"]]
        lines.append(f"- face crops: no face found in {summary['no_face']:,} training images "
                     f"({action})" + "".join(
                         f"; {s}: {summary[s + '_no_face']:,} (centre crops)"
                         for s in ("val", "test") if f"{s}_no_face" in summary))
    lines += ["", "## Class balance per split", "", "| split | " +
              " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for split, counts in summary["class_balance"].items():
        lines.append(f"| {split} | " + " | ".join(str(counts.get(c, 0)) for c in classes) + " |")
    if summary["bad_files"]:
        lines += ["", "## Skipped files", ""] + [f"- {b}" for b in summary["bad_files"]]
    lines += ["", "## Pictures", "", "![duplicates](duplicates.png)", "",
              "![conflicts](conflicts.png)", ""]
    if "no_face" in summary:
        lines += ["![no face found](no-face.png)", ""]
    lines += [
              f"Prepared in {summary['seconds']} s. Machine-readable: index.csv, pairs.csv, "
              "overlap.csv.", ""]
    write_text(ws.report, "\n".join(lines))


def learning_curves(history: pd.DataFrame, path: Path, title: str) -> None:
    """Loss and balanced accuracy per epoch, train vs val."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = _pyplot().subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "balanced_accuracy"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            key = prefix + metric
            if key in history:
                ax.plot(history["epoch"], history[key], style, marker="o", ms=3,
                        label="val" if prefix else "train")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _save_figure(fig, path)


def confusion_plot(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in each cell."""
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = _pyplot().subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v}\n{norm[r, c]:.2f}", ha="center", va="center",
                color="white" if norm[r, c] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    _save_figure(fig, path)
