"""Pictures: what a person would rather look at than read (montages, curves, confusion).

Montages of images are drawn with PIL (a grid of pictures needs no axes, and it takes
milliseconds); plots with matplotlib, imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from comp.workspace import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    pyplot().close(fig)


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


def learning_curves(history: pd.DataFrame, path: Path, title: str) -> None:
    """Loss and balanced accuracy per epoch, train vs val."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.6))
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
    save_figure(fig, path)


def confusion_plot(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in each cell."""
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = pyplot().subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v}\n{norm[r, c]:.2f}", ha="center", va="center",
                color="white" if norm[r, c] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
